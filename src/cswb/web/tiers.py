"""The response-tier filter: calls restricted to the tier the response policy gives them.

The calls view has no tier column (the tier depends on the local policy, not on the call), so
the filter is applied where the analytics engine reads: on the request's own DuckDB cursor, a
temporary ``calls`` view over the stored one, with the policy's tier computed by
:func:`cswb.respond.policy.with_tier_sql`, keeps only classified calls of the chosen tier. Every
panel then reads the filtered calls without knowing about tiers.
"""

from __future__ import annotations

from cswb.analytics.query import DuckDBEngine
from cswb.respond.policy import Policy, with_tier_sql
from cswb.storage.sql import ident, lit, run


def tier_filtered(engine: DuckDBEngine, policy: Policy, tier: str) -> DuckDBEngine:
    """``engine`` whose ``calls`` are the classified calls ``policy`` gives to ``tier``.

    ``engine`` must hold a cursor of its own (one per request): the view is temporary to it.
    Roll-ups count every stored call, so the filtered engine does not use them.
    """
    engine.rollups = None
    database = run(engine.con, "SELECT current_database()")[0][0]
    stored = f"{ident(database)}.main.calls"
    run(engine.con, f"CREATE OR REPLACE TEMP VIEW calls AS SELECT * EXCLUDE (tier) FROM "
                    f"{with_tier_sql(policy, stored)} WHERE category IS NOT NULL "
                    f"AND tier = {lit(tier)}")
    return engine
