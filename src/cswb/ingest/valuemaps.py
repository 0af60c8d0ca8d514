"""Value maps (raw value to standard value) as SQL, with cswb's default rules.

A mapping's own exact values win, then its patterns, then (for disposition groups and origins)
the defaults below, then the map's ``default``. A raw value none of them matches is stored as
null and flagged ``<field>:unmapped_value``; the raw value is always kept beside the mapped one.
"""

from __future__ import annotations

from cswb.ingest.mapping import PatternRule, ValueMap

DEFAULT_RULES: dict[str, tuple[PatternRule, ...]] = {
    "disposition_group": tuple(
        PatternRule(pattern=p, value=v)
        for p, v in (
            (r"cancel|duplicat|\bvoid\b|disregard", "cancelled"),
            (r"unable to locate|\butl\b|gone on arrival|\bgoa\b|could not locate|"
             r"no complainant|unable to find", "unable_to_locate"),
            (r"unfounded|false (alarm|complaint)|no (such )?(incident|problem) found", "unfounded"),
            (r"arrest|booked|custody", "arrest"),
            (r"citation|cited|ticket|summons|ordered to appear", "citation"),
            (r"warning|warned", "warning"),
            (r"report|to be filed|\bfiled\b|open investigation", "report"),
            (r"referr|referred|other agency", "referral"),
            (r"transport|hospital|emergency department|detox|sobering|crisis (center|centre)",
             "transport"),
            (r"no (police )?action|not necessary|no further action|\bnfa\b", "no_action"),
            (r"in progress|pending|holding", "pending"),
            (r"assist|service|advised|rendered|completed|restored|resolved|remained in community|"
             r"contact made|handled|order restored|checked|patrol", "service_rendered"),
        )
    ),
    "origin": tuple(
        PatternRule(pattern=p, value=v)
        for p, v in (
            (r"^(e?911|9-1-1|e-911)\b|emergency line", "911"),
            (r"on[- ]?view|officer[- ]initiated|self[- ]initiated|field[- ]initiated|proactive",
             "officer_initiated"),
            (r"phone|telephone|non[- ]emergency|10[- ]digit|admin line|311", "phone"),
            (r"alarm|text|online|walk[- ]?in|radio|e-?mail|web|app|scheduled", "other"),
        )
    ),
}


def _lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _value_sql(value: str | int) -> str:
    return str(value) if isinstance(value, int) else _lit(value)


def value_map_sql(field: str, expr: str, vmap: ValueMap | None) -> tuple[str, bool]:
    """SQL mapping ``expr``; and whether a non-null value can stay unmapped (to flag)."""
    vmap = vmap or ValueMap.model_validate({})
    whens: list[str] = []
    for raw, value in vmap.values.items():
        whens.append(f"WHEN upper(trim({expr})) = {_lit(raw.strip().upper())} "
                     f"THEN {_value_sql(value)}")
    defaults = DEFAULT_RULES.get(field, ()) if vmap.use_default_rules else ()
    rules = [*vmap.patterns, *defaults]
    for rule in rules:
        whens.append(f"WHEN regexp_matches({expr}, {_lit('(?i)' + rule.pattern)}) "
                     f"THEN {_value_sql(rule.value)}")
    default = "NULL" if vmap.default is None else _value_sql(vmap.default)
    if not whens:
        return f"CASE WHEN {expr} IS NULL THEN NULL ELSE {default} END", vmap.default is None
    body = " ".join(whens)
    return f"CASE WHEN {expr} IS NULL THEN NULL {body} ELSE {default} END", vmap.default is None
