"""Flags from free-text narratives, computed by the engine in the ingest's one pass.

Where a source publishes a narrative, the flag rules of ``rules.yaml`` (RE2 patterns, as the
engine's regular expressions are) run over it as SQL, row by row inside the mapping query, so a
narrative never leaves the engine and never reaches Python or a log. The narrative is normalised
the simple way (lower case, runs of other characters as one space); CAD shorthand is spelled
out only in call types, which is where it is used.
"""

from __future__ import annotations

import hashlib

from cswb.classify.rules import load_rules
from cswb.classify.taxonomy import Taxonomy, load_taxonomy
from cswb.storage.sql import lit


def narrative_flags_sql(expr: str, taxonomy: Taxonomy | None = None) -> str:
    """SQL of the sorted list of flags the narrative ``expr`` shows (NULL for no narrative)."""
    taxonomy = taxonomy or load_taxonomy()
    patterns: dict[str, list[str]] = {}
    for rule in load_rules(taxonomy).flag_rules:
        patterns.setdefault(rule.flag, []).append(f"(?:{rule.pattern})")
    text = f"(' ' || regexp_replace(lower({expr}), '[^a-z0-9]+', ' ', 'g') || ' ')"
    implied = taxonomy.implied_flags()
    items = []
    for flag, alternatives in patterns.items():
        test = f"regexp_matches({text}, {lit('|'.join(alternatives))})"
        shown = ", ".join(lit(f) for f in (flag, *implied.get(flag, ())))
        items.append(f"CASE WHEN {test} THEN [{shown}] END")
    listed = f"flatten(list_filter([{', '.join(items)}], lambda x: x IS NOT NULL))"
    return f"CASE WHEN {expr} IS NOT NULL THEN list_sort(list_distinct({listed})) END"


def narrative_rules_version(taxonomy: Taxonomy | None = None) -> str:
    """A short fingerprint of the SQL :func:`narrative_flags_sql` runs: call files record it,
    and ``cswb classify apply`` refreshes the flags of those written under other rules."""
    sql = narrative_flags_sql("narrative", taxonomy)
    return hashlib.sha256(sql.encode()).hexdigest()[:16]
