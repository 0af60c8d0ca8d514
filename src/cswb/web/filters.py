"""The dashboard's filters: read from the query string, carried in every link, checked once.

Every page and every CSV download takes the same six parameters (``from``, ``to``, ``area``,
``category``, ``flag``, ``tier``); a filter that cannot be applied is a :class:`FilterError` with a
message naming the parameter, shown on the page with status 400, never a traceback.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from datetime import date
from typing import Any
from urllib.parse import urlencode

from cswb.analytics.query import FLAGS, CallFilter
from cswb.errors import CswbError
from cswb.respond.tiers import Tier

CATEGORIES: tuple[str, ...] = (
    "violent_crime", "other_crime", "property_crime", "sex_offense", "domestic_violence",
    "drugs", "liquor", "warrant", "status_offense", "suspicion", "complaint",
    "behavioral_health", "medical", "fire", "missing_person", "assist_public", "traffic",
    "alarm", "officer_needs_help", "officer_status", "call_issue", "other_noncrime", "unknown",
)
"""The taxonomy's categories, in the order of ``CALL_TAXONOMY.md``."""

TIERS: tuple[str, ...] = tuple(t.value for t in Tier)
"""The response policy's tiers (``cswb.respond.tiers``)."""

PARAMETERS: dict[str, str] = {"date_from": "from", "date_to": "to", "area": "area",
                              "category": "category", "flag": "flag", "tier": "tier"}
"""Field of :class:`DashboardFilter` -> its name in the query string."""


class FilterError(CswbError):
    """A dashboard filter in the query string cannot be applied."""

    code = "bad_filter"
    exit_code = 2


SPECIAL_LABELS: dict[str, str] = {"ems_fire": "EMS or fire", "co_response": "Co-response",
                                  "non_crime": "Non-crime"}
"""Codes whose words are not simply the code's parts."""


def label(code: str) -> str:
    """``behavioral_health`` as ``Behavioral health`` (and a few spelled out, ``EMS or fire``)."""
    return SPECIAL_LABELS.get(code) or code.replace("_", " ").capitalize()


@dataclass(frozen=True)
class DashboardFilter:
    """Period (inclusive local dates), neighbourhood, category and flag of the calls shown."""

    date_from: date | None = None
    date_to: date | None = None
    area: str | None = None
    category: str | None = None
    flag: str | None = None
    tier: str | None = None
    """Responder tier under the response policy (applied by :mod:`cswb.web.tiers`)."""

    @classmethod
    def from_query(cls, params: dict[str, str]) -> DashboardFilter:
        """Parse the query parameters (empty values mean "all")."""
        values: dict[str, Any] = {}
        for name, param in PARAMETERS.items():
            raw = (params.get(param) or "").strip()
            if not raw:
                continue
            if len(raw) > 200:
                raise FilterError(f"the '{param}' filter is longer than 200 characters")
            values[name] = _date(param, raw) if name.startswith("date_") else raw
        if values.get("category") and values["category"] not in CATEGORIES:
            raise FilterError(f"the 'category' filter {values['category']!r} is not a category "
                              "of the taxonomy")
        if values.get("flag") and values["flag"] not in FLAGS:
            raise FilterError(f"the 'flag' filter {values['flag']!r} is not a taxonomy flag")
        if values.get("tier") and values["tier"] not in TIERS:
            raise FilterError(f"the 'tier' filter {values['tier']!r} is not a responder tier "
                              f"({', '.join(TIERS)})")
        found = cls(**values)
        if found.date_from and found.date_to and found.date_from > found.date_to:
            raise FilterError("the 'from' date is after the 'to' date")
        return found

    def call_filter(self) -> CallFilter:
        """The analytics filter of the same calls (but the tier, which the engine applies)."""
        return CallFilter(date_from=self.date_from, date_to=self.date_to, area=self.area,
                          category=self.category, flag=self.flag)

    def params(self) -> dict[str, str]:
        """The non-empty query parameters of this filter."""
        out = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value is not None:
                out[PARAMETERS[f.name]] = value.isoformat() if isinstance(value, date) else value
        return out

    def query(self) -> str:
        """``?from=...&area=...`` (empty when no filter is set)."""
        params = self.params()
        return "?" + urlencode(params) if params else ""

    def but(self, **changes: Any) -> DashboardFilter:
        """A copy with some fields changed."""
        return replace(self, **changes)

    @property
    def active(self) -> bool:
        return bool(self.params())

    def describe(self) -> str:
        """The filter in words, for captions and the report."""
        parts = []
        if self.date_from or self.date_to:
            parts.append(f"from {self.date_from or 'the first call'} to "
                         f"{self.date_to or 'the last call'}")
        if self.area:
            parts.append(f"in {self.area}")
        if self.category:
            parts.append(f"category {label(self.category)}")
        if self.flag:
            parts.append(f"flagged {label(self.flag).lower()}")
        if self.tier:
            parts.append(f"tier {label(self.tier).lower()}")
        return "; ".join(parts) if parts else "all calls"


def _date(param: str, raw: str) -> date:
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise FilterError(f"the '{param}' filter {raw!r} is not a date (YYYY-MM-DD)") from None
