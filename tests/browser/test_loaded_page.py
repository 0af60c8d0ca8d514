"""The "What was loaded" page in a real browser: Debian's chromium driven by Playwright.

Never a downloaded browser: the tests use ``/usr/bin/chromium`` (``apt-get install chromium``)
and are skipped with the reason when it is absent. Screenshots (full page and phone width) are
saved under pytest's temporary folder and their paths printed (``pytest -s`` or ``-rP`` shows
them).
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from tests.browser.support import BROWSER_TESTS, chromium, serving

from cswb.api import create_app
from cswb.ingest.mapping import parse_mapping
from cswb.ingest.pipeline import ingest_file
from cswb.settings import load_settings
from cswb.storage import open_analytic_store

CALL_TYPES = {"THEFT": 9, "TRAFFIC STOP": 7, "WELFARE CHECK": 5, "MENTAL HEALTH": 4,
              "DISTURBANCE": 4, "NOISE COMPLAINT": 3, "ALARM": 3, "OVERDOSE": 1,
              "SUSPICIOUS PERSON": 2, "FAMILY DISPUTE": 2, "ASSAULT": 1, "LOST PROPERTY": 1}

pytestmark = BROWSER_TESTS


def write_export(path: Path, months: int = 28, seed: int = 7) -> None:
    """A CAD export with seasonal monthly volumes, a few bad rows and identifying columns."""
    rng = random.Random(seed)
    types, weights = list(CALL_TYPES), list(CALL_TYPES.values())
    lines, start = ["id,time,nature,location,caller_phone"], datetime(2023, 1, 1)
    number = 0
    for month in range(months):
        first = datetime(start.year + (start.month + month - 1) // 12,
                         (start.month + month - 1) % 12 + 1, 1)
        volume = 40 + 25 * ((month % 12) in (5, 6, 7)) + rng.randint(0, 15) + month
        for _ in range(volume):
            number += 1
            when = first + timedelta(days=rng.randint(0, 27), minutes=rng.randint(0, 1439))
            lines.append(f"{number},{when:%Y-%m-%d %H:%M},{rng.choices(types, weights)[0]},"
                         f"{rng.randint(1, 99)}00 MAIN ST,555-{rng.randint(100, 999)}-0000")
    lines += ["x1,not a time,THEFT,1 MAIN ST,555-000-0000", "x2,2023-03-03 10:00,,1 MAIN ST,"]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")



@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """uvicorn in a background thread over a store holding one ingested export."""
    root = tmp_path_factory.mktemp("browser")
    settings = load_settings(data_dir=root / "var", duckdb_memory_limit="1GB",
                             store_url=f"duckdb:///{(root / 'store').as_posix()}")
    store = open_analytic_store(settings.resolved_store_url, settings)
    write_export(root / "riverton_cad.csv")
    mapping = parse_mapping({
        "name": "riverton", "agency": "Riverton Police Service", "time_zone": "America/Toronto",
        "record_id": "id", "file": {"format": "csv"},
        "timestamps": {"received_at": {"column": "time", "formats": ["%Y-%m-%d %H:%M"]}},
        "fields": {"initial_call_type": "nature", "location": "location"},
        "identifying": {"drop": ["caller_phone"]}})
    assert ingest_file(root / "riverton_cad.csv", mapping, store, settings).reconciles
    with serving(create_app(settings)) as url:
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with chromium() as launched:
        yield launched


def test_page_tables_chart_and_screenshots(browser, base_url: str,  # type: ignore[no-untyped-def]
                                           tmp_path_factory: pytest.TempPathFactory) -> None:
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text)
            if message.type == "error" else None)
    response = page.goto(base_url + "/loaded")
    assert response is not None and response.status == 200
    assert page.title() == "What was loaded · cswb"
    assert page.get_by_role("heading", level=1).inner_text() == "What was loaded"
    assert page.get_by_role("main").count() == 1 and page.get_by_role("navigation").count() == 1

    sources = page.get_by_role("table", name="Calls stored per source")
    assert "riverton" in sources.inner_text() and "Riverton Police Service" in sources.inner_text()
    batches = page.get_by_role("table", name="Ingest batches")
    assert "riverton_cad.csv" in batches.inner_text() and "Yes" in batches.inner_text()

    chart = page.get_by_role("img", name="Calls per month")
    assert chart.is_visible()
    bars = page.locator("svg.bar-chart rect")
    assert bars.count() == 28
    month_rows = page.get_by_role("table", name="Calls per month").locator("tbody tr")
    assert month_rows.count() == 28
    first_bar_calls = bars.first.get_attribute("data-calls")
    assert month_rows.first.locator("td").inner_text() == first_bar_calls
    box = chart.bounding_box()
    assert box is not None and box["width"] > 400 and box["height"] > 150
    tallest = max(bars.nth(i).bounding_box()["height"] for i in range(bars.count()))
    assert tallest > 0.6 * box["height"]
    assert page.get_by_role("table", name="most frequent call types").is_visible()

    out = tmp_path_factory.mktemp("screenshots")
    full = out / "loaded-page-full.png"
    page.screenshot(path=str(full), full_page=True)
    page.set_viewport_size({"width": 390, "height": 844})
    phone = out / "loaded-page-phone.png"
    page.screenshot(path=str(phone), full_page=True)
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the page scrolls sideways on a phone ({width}px)"
    print(f"\nscreenshots: {full}\n             {phone}")
    assert errors == []
    page.close()


def test_keyboard_reaches_every_link_and_control(browser, base_url: str  # type: ignore[no-untyped-def]
                                                 ) -> None:
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(base_url + "/loaded")
    focusable = """() => Array.from(document.querySelectorAll(
        'a[href], select, button, [tabindex="0"]'))"""
    count = page.evaluate(f"({focusable})().length")
    reached: list[int] = []
    for _ in range(count):
        page.keyboard.press("Tab")
        reached.append(page.evaluate(f"({focusable})().indexOf(document.activeElement)"))
    assert reached == list(range(count)), "Tab visits every link and control in page order"
    names = page.evaluate(f"({focusable})().map(e => e.getAttribute('href') || e.id || e.tagName)")
    assert names[0] == "#main", "the first Tab stop is the skip link"
    assert "/api/v1/docs" in names and "source" in names

    page.goto(base_url + "/loaded")
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"
    page.get_by_label("Source", exact=True).select_option("riverton")
    page.get_by_role("button", name="Show").press("Enter")
    page.wait_for_url("**/loaded?source=riverton")
    assert page.get_by_role("img", name="Calls per month").is_visible()
    page.close()


def test_api_docs_render_offline(browser, base_url: str) -> None:  # type: ignore[no-untyped-def]
    page = browser.new_page()
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text)
            if message.type == "error" else None)
    page.goto(base_url + "/api/v1/docs")
    if page.locator("#swagger-ui[data-openapi]").count():
        page.get_by_text("/api/v1/calls/summary", exact=True).first.wait_for(timeout=15000)
    else:
        assert page.get_by_role("heading", name="GET /api/v1/calls/summary").is_visible()
    assert errors == [], errors
    page.close()
