"""Controlled vocabularies of the canonical call record."""

from __future__ import annotations

from enum import StrEnum


class Origin(StrEnum):
    """How a call reached the agency."""

    EMERGENCY_911 = "911"
    PHONE = "phone"
    OFFICER_INITIATED = "officer_initiated"
    OTHER = "other"
    UNKNOWN = "unknown"


class Precision(StrEnum):
    """The finest unit a source publishes for a timestamp."""

    SECOND = "second"
    MINUTE = "minute"
    HOUR = "hour"
    DAY = "day"


class DispositionGroup(StrEnum):
    """What came of a call, grouped across agencies' disposition codes."""

    ARREST = "arrest"
    CITATION = "citation"
    REPORT = "report"
    WARNING = "warning"
    SERVICE_RENDERED = "service_rendered"
    REFERRAL = "referral"
    TRANSPORT = "transport"
    NO_ACTION = "no_action"
    UNFOUNDED = "unfounded"
    UNABLE_TO_LOCATE = "unable_to_locate"
    CANCELLED = "cancelled"
    PENDING = "pending"
    OTHER = "other"
    UNKNOWN = "unknown"


PRIORITY_LEVELS: dict[int, str] = {
    1: "emergency: immediate threat to life or safety",
    2: "urgent: respond as soon as possible",
    3: "routine: respond when a unit is free",
    4: "non-urgent: scheduled, reported by phone or online, or informational",
}
"""Normalised priority scale (1 most urgent); null where the source gives none."""


TIMESTAMP_FIELDS: tuple[str, ...] = ("received_at", "dispatched_at", "arrived_at", "cleared_at")
"""The four call timestamps, in the order a call moves through them."""
