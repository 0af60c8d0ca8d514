"""Analytics: call-volume metrics in portable SQL, disclosure control and forecasting.

The public entry points are re-exported here; see ``docs/analytics.md``.
"""

from cswb.analytics.query import AnalyticsError, CallFilter, DuckDBEngine, Engine
from cswb.analytics.tables import MetricTable

__all__ = ["AnalyticsError", "CallFilter", "DuckDBEngine", "Engine", "MetricTable"]
