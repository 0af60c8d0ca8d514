"""The nine responder tiers of PRODUCT.md and which of them count as diverted from police."""

from __future__ import annotations

from enum import StrEnum


class Tier(StrEnum):
    """Who answers a call under a response policy."""

    POLICE_EMERGENCY = "police_emergency"
    POLICE = "police"
    CO_RESPONSE = "co_response"
    CIVILIAN_CRISIS = "civilian_crisis"
    COMMUNITY_SERVICE = "community_service"
    ALTERNATIVE_REPORTING = "alternative_reporting"
    EMS_FIRE = "ems_fire"
    NO_DISPATCH = "no_dispatch"
    OFFICER_ACTIVITY = "officer_activity"


TIER_DESCRIPTIONS: dict[Tier, str] = {
    Tier.POLICE_EMERGENCY: "police, immediately: a threat to life or violence in progress",
    Tier.POLICE: "a police unit, at the call's priority",
    Tier.CO_RESPONSE: "police with a mental-health clinician (IMPACT, MCRRT)",
    Tier.CIVILIAN_CRISIS: "a civilian crisis team of medic and crisis worker (CAHOOTS, STAR, TCCS)",
    Tier.COMMUNITY_SERVICE: "community responders or outreach (welfare, unhoused, intoxicated)",
    Tier.ALTERNATIVE_REPORTING: "a report taken online or by telephone, no unit sent",
    Tier.EMS_FIRE: "ambulance or fire service",
    Tier.NO_DISPATCH: "no unit: call handled by the call-taker (hang-ups, misdials, cancelled)",
    Tier.OFFICER_ACTIVITY: "officer-generated work, not a request from the public",
}

POLICE_TIERS: frozenset[Tier] = frozenset(
    {Tier.POLICE_EMERGENCY, Tier.POLICE, Tier.OFFICER_ACTIVITY})
"""Tiers whose calls stay with police alone."""

DIVERTED_TIERS: tuple[Tier, ...] = tuple(t for t in Tier if t not in POLICE_TIERS)
"""Tiers counted as *diverted from police*: every tier but police_emergency, police and
officer_activity. ``co_response`` is included (a clinician leads, police attend), so scenarios
also report it separately."""


def tier_table_markdown() -> str:
    """The tiers, who answers each, and whether it counts as diverted, as Markdown."""
    lines = ["| tier | who answers | diverted from police |", "|---|---|---|"]
    for tier in Tier:
        lines.append(f"| `{tier.value}` | {TIER_DESCRIPTIONS[tier]} | "
                     f"{'yes' if tier in DIVERTED_TIERS else 'no'} |")
    return "\n".join(lines)
