"""Storage backends: the analytic store (Parquet read with DuckDB); the operational store later.

Open the analytic store with :func:`open_analytic_store` from a URL; callers never construct a
backend class themselves, so another engine (Apache Spark) can be added behind a new URL scheme.
"""

from cswb.storage.analytic import AnalyticStore, open_analytic_store

__all__ = ["AnalyticStore", "open_analytic_store"]
