"""Every panel by id: the volume panels and the forecast panels (which take seconds)."""

from __future__ import annotations

from cswb.web.forecasts import backtest_panel, forecast_panel
from cswb.web.panels import PANELS as VOLUME_PANELS
from cswb.web.panels import PanelBuilder
from cswb.web.respond_panels import scenario, staffing

PANELS: dict[str, PanelBuilder] = {**VOLUME_PANELS, "forecast": forecast_panel,
                                   "backtest": backtest_panel, "scenario": scenario,
                                   "staffing": staffing}
"""Panel id -> builder; pages list ids and ``/dashboard/data/<id>.csv`` serves any of them."""
