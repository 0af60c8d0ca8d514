"""The dashboard in a real browser (Debian's chromium driven by Playwright).

A small synthetic city is ingested and served (its calls carrying the truth's categories and
flags, see ``tests/dashboard_fixtures.py``); the test changes a filter and sees the charts
change, downloads a CSV, walks a keyboard path and checks a phone-sized viewport. Screenshots
are saved under the test's temporary folder and their paths printed (``pytest -rP``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.browser.support import BROWSER_TESTS, chromium, serving
from tests.dashboard_fixtures import classified_engine, load_city

from cswb.api import create_app
from cswb.web.dashboard import dashboard_engine

pytestmark = BROWSER_TESTS

DRAWN = ".plot[data-drawn=true]"


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The dashboard over a small city whose calls carry the synthetic truth's categories."""
    city = load_city(tmp_path_factory.mktemp("dashboard-browser"))
    engine = classified_engine(city)
    app = create_app(city.settings)
    app.dependency_overrides[dashboard_engine] = lambda: type(engine)(engine.con.cursor())
    with serving(app) as url:
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as launched:
        yield launched


def _errors(page: Any) -> list[str]:
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    return errors


def _monthly(page: Any) -> list[float]:
    values: list[float] = page.evaluate(
        "document.getElementById('plot-monthly').data[0].y")
    return values


def test_filter_changes_the_charts_and_csv_downloads(browser: Any, base_url: str,
                                                     tmp_path: Path) -> None:
    page = browser.new_page(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    errors = _errors(page)
    assert page.goto(base_url + "/").status == 200
    page.locator(DRAWN).nth(3 - 1).wait_for()
    assert page.get_by_role("img", name="Calls per month").is_visible()
    assert page.locator("#plot-monthly svg.main-svg").count() >= 1
    before = _monthly(page)
    page.screenshot(path=str(tmp_path / "overview.png"), full_page=True)

    page.get_by_label("Neighbourhood").select_option("Old Town")
    page.get_by_role("button", name="Apply filters").click()
    page.wait_for_url("**/?*area=Old+Town*")
    page.locator(DRAWN).nth(3 - 1).wait_for()
    after = _monthly(page)
    assert len(after) == len(before) and sum(after) < sum(before)
    assert page.get_by_text("Showing: in Old Town").is_visible()

    page.get_by_role("link", name="Categories and flags").click()
    page.wait_for_url("**/categories?*area=Old+Town*")
    assert page.get_by_label("Neighbourhood").input_value() == "Old Town"

    with page.expect_download() as info:
        page.get_by_role("link", name="Download CSV of Calls by category").click()
    download = info.value
    saved = tmp_path / download.suggested_filename
    download.save_as(saved)
    lines = saved.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "category,calls,share_percent" and len(lines) > 3
    page.get_by_text("Table view").first.click()
    table = page.get_by_role("table", name="Calls by category")
    assert table.locator("tbody tr").count() == len(lines) - 1
    page.screenshot(path=str(tmp_path / "categories-old-town.png"), full_page=True)

    page.goto(base_url + "/areas")
    assert page.get_by_role("img", name="Map of calls per 1,000 residents").is_visible()
    page.screenshot(path=str(tmp_path / "areas.png"), full_page=True)
    page.goto(base_url + "/time")
    page.locator(DRAWN).nth(2 - 1).wait_for()
    page.screenshot(path=str(tmp_path / "time.png"), full_page=True)
    for name in ("forecasts", "response"):
        page.goto(f"{base_url}/{name}")
        page.locator(DRAWN).first.wait_for()
        page.screenshot(path=str(tmp_path / f"{name}.png"), full_page=True)
    print(f"\nscreenshots in {tmp_path}")
    assert errors == [], errors
    page.close()


def test_keyboard_path_and_phone_viewport(browser: Any, base_url: str, tmp_path: Path) -> None:
    page = browser.new_page(viewport={"width": 390, "height": 844})
    errors = _errors(page)
    page.goto(base_url + "/")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.getAttribute('href')") == "#main"
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"
    for _ in range(40):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == "f-flag":
            break
    assert page.evaluate("document.activeElement.id") == "f-flag", "Tab reaches the filters"
    page.keyboard.press("ArrowDown")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "f-tier"
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Apply filters"
    page.keyboard.press("Enter")
    page.wait_for_url("**/?flag=*")
    assert "area=" not in page.url, "empty filters are left out of the address"
    page.locator(DRAWN).nth(3 - 1).wait_for()
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the page scrolls sideways on a phone ({width}px)"
    page.screenshot(path=str(tmp_path / "overview-phone.png"), full_page=True)
    print(f"\nscreenshot: {tmp_path / 'overview-phone.png'}")
    assert errors == [], errors
    page.close()
