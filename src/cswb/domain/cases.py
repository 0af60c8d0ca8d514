"""The minimal case record's vocabularies: statuses and their transition table, agency kinds,
roles. No I/O; the operational store and the services use these.

The statuses follow the four filters of ``SITUATION_TABLES.md``: a case is *presented*
de-identified (filter 2); the table decides it is at acutely elevated risk (*aer*, filter 3:
limited identification) or closes it as *not_aer*; the acting agencies *plan* (filter 4) and the
case is *concluded*. Any change not in :data:`TRANSITIONS` is refused.
"""

from __future__ import annotations

from enum import StrEnum


class CaseStatus(StrEnum):
    PRESENTED = "presented"
    AER = "aer"
    PLANNING = "planning"
    CONCLUDED = "concluded"
    NOT_AER = "not_aer"


TRANSITIONS: dict[CaseStatus, frozenset[CaseStatus]] = {
    CaseStatus.PRESENTED: frozenset({CaseStatus.AER, CaseStatus.NOT_AER}),
    CaseStatus.AER: frozenset({CaseStatus.PLANNING, CaseStatus.CONCLUDED}),
    CaseStatus.PLANNING: frozenset({CaseStatus.CONCLUDED}),
    CaseStatus.CONCLUDED: frozenset(),
    CaseStatus.NOT_AER: frozenset(),
}
"""Allowed status changes: from -> the statuses it may move to."""

CLOSED_STATUSES = frozenset({CaseStatus.CONCLUDED, CaseStatus.NOT_AER})
IDENTIFIABLE_STATUSES = frozenset({CaseStatus.AER, CaseStatus.PLANNING})
"""Identifying details may be entered only after the AER decision and before closure."""


class SubjectType(StrEnum):
    PERSON = "person"
    FAMILY = "family"
    GROUP = "group"
    PLACE = "place"


class AgencyKind(StrEnum):
    POLICE = "police"
    HEALTH = "health"
    MENTAL_HEALTH_ADDICTIONS = "mental_health_addictions"
    HOUSING = "housing"
    CHILD_WELFARE = "child_welfare"
    SCHOOL_BOARD = "school_board"
    INCOME_SUPPORT = "income_support"
    COMMUNITY_AGENCY = "community_agency"
    MUNICIPALITY = "municipality"


class Role(StrEnum):
    ADMINISTRATOR = "administrator"
    TABLE_CHAIR = "table_chair"
    AGENCY_REPRESENTATIVE = "agency_representative"
    ANALYST = "analyst"
    NAVIGATOR = "navigator"
    PUBLIC = "public"


class InvolvementRole(StrEnum):
    ORIGINATING = "originating"
    LEAD = "lead"
    ASSISTING = "assisting"


IDENTITY_FIELDS: tuple[str, ...] = ("name", "date_of_birth", "address")
"""The identifying details of a case, each stored encrypted."""


def can_transition(current: CaseStatus, target: CaseStatus) -> bool:
    """True when the transition table allows ``current`` -> ``target``."""
    return target in TRANSITIONS[current]
