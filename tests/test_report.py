"""The CSWB report: self-contained, public-safe, and the command that writes it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cswb.analytics.populations import load_populations
from cswb.cli.main import app
from cswb.settings import load_settings
from cswb.storage import open_analytic_store
from cswb.web.filters import DashboardFilter
from cswb.web.geo import load_boundaries
from cswb.web.panel import SUPPRESSED
from cswb.web.panels import Context
from cswb.web.report import ReportError, build_report, numeric_cells, render_report, write_report
from tests.dashboard_fixtures import LoadedCity, classified_engine, load_city


@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory) -> LoadedCity:
    return load_city(tmp_path_factory.mktemp("report"))


def context(city: LoadedCity, flt: DashboardFilter) -> Context:
    s = city.settings
    assert s.area_boundaries and s.populations_path
    return Context(classified_engine(city), flt, s.disclosure_threshold,
                   load_boundaries(s.area_boundaries), load_populations(s.populations_path))


def test_report_is_self_contained_and_states_the_threshold(city: LoadedCity,
                                                            tmp_path: Path) -> None:
    report = build_report(context(city, DashboardFilter()))
    out = write_report(report, tmp_path / "report.html")
    text = out.read_text(encoding="utf-8")
    assert not re.search(r"https?://|//cdn|<script|<link|<img|@import|url\((?!#)", text)
    assert "<style>" in text and '<svg class="map"' in text and '<svg class="bars"' in text
    assert "threshold\n    10)" in text and "Safe to publish" in text
    for section in ("Calls per month", "Crime and non-crime calls", "Behavioural-health share",
                    "Is the change more than noise?", "Response time (minutes)",
                    "Calls by neighbourhood", "Calls per 1,000", "Forecast accuracy",
                    "80% high"):
        assert section in text, section


def test_every_count_in_the_report_is_suppressed_when_small(city: LoadedCity) -> None:
    flt = DashboardFilter.from_query({"area": "Old Town", "flag": "mental_health"})
    report = build_report(context(city, flt))
    counts = numeric_cells(report.panels)
    assert SUPPRESSED in counts and report.suppressed > 0
    assert all(c in (SUPPRESSED, None) or c == 0 or c >= 10 for c in counts)
    text = render_report(report)
    shown = re.findall(r'<td class="num count">([^<]*)</td>', text)
    assert shown and all(v == SUPPRESSED or int(v.replace(",", "")) == 0
                         or int(v.replace(",", "")) >= 10 for v in shown)


def test_report_command_writes_the_file(city: LoadedCity, tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CSWB_STORE_URL", city.settings.store_url or "")
    monkeypatch.setenv("CSWB_DATA_DIR", str(city.settings.data_dir))
    out = tmp_path / "cswb-report.html"
    result = CliRunner().invoke(app, ["report", "--out", str(out), "--period",
                                      "2024-03-01:2024-06-30"])
    assert result.exit_code == 0, result.output
    assert "from 2024-03-01 to 2024-06-30" in out.read_text(encoding="utf-8")
    bad = CliRunner().invoke(app, ["report", "--out", str(out), "--period", "2024-13-01:"])
    assert bad.exit_code != 0 and "'from' filter" in str(bad.exception)


def test_report_of_an_empty_store_is_a_clear_error(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path / "var",
                             store_url=f"duckdb:///{(tmp_path / 'store').as_posix()}")
    store = open_analytic_store(settings.resolved_store_url, settings)
    from cswb.analytics.query import DuckDBEngine

    with pytest.raises(ReportError, match="holds no calls"):
        build_report(Context(DuckDBEngine(store.connect()), DashboardFilter(), 10))
