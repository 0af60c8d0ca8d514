"""Services of the case record (see the package docstring)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import Any

from sqlalchemy import Row, bindparam, insert, select, update
from sqlalchemy.orm import Session, joinedload

from cswb.audit import record
from cswb.domain.cases import (
    CLOSED_STATUSES,
    IDENTIFIABLE_STATUSES,
    IDENTITY_FIELDS,
    CaseStatus,
    InvolvementRole,
    SubjectType,
    can_transition,
)
from cswb.errors import (
    ConflictError,
    InvalidInputError,
    InvalidTransitionError,
    NotFoundError,
)
from cswb.security.crypto import Keyring
from cswb.security.policy import Action, authorize, is_allowed
from cswb.security.principal import Actor
from cswb.storage.operational.models import (
    Agency,
    Case,
    CaseAgency,
    CaseEvent,
    CaseIdentity,
    utcnow,
)

MAX_SUMMARY = 2000
MAX_NOTE = 4000


@dataclass(frozen=True)
class Identity:
    """Decrypted identifying details of a case (never logged, never listed)."""

    name: str | None
    date_of_birth: date | None
    address: str | None


@dataclass(frozen=True)
class CaseLink:
    """An agency's involvement in a case, as read on the hot paths."""

    agency_id: int
    agency_code: str
    involvement: str
    joined_at: datetime
    left_at: datetime | None


@dataclass(frozen=True)
class CaseRecord:
    """A de-identified case read with Core SQL (the ORM :class:`Case` has the same fields).

    The most frequent requests (read, read identifying details, edit the summary) load one of
    these with one query joining the case, its agencies and, when asked, its identity row,
    instead of building ORM objects.
    """

    id: str
    status: str
    subject_type: str
    summary: str
    opened_at: datetime
    closed_at: datetime | None
    conclusion: str | None
    identity_purged_at: datetime | None
    updated_at: datetime
    version: int
    agencies: tuple[CaseLink, ...]

    @classmethod
    def of_rows(cls, rows: Sequence[Row[Any]]) -> CaseRecord:
        """From the rows of :data:`_CASE_ROWS` (one per involved agency, the case repeated)."""
        first = rows[0]
        links = tuple(CaseLink(r.agency_id, r.agency_code, r.involvement, r.joined_at,
                               r.left_at) for r in rows if r.agency_id is not None)
        return cls(first.id, first.status, first.subject_type, first.summary, first.opened_at,
                   first.closed_at, first.conclusion, first.identity_purged_at,
                   first.updated_at, first.version, links)

    @classmethod
    def of_case(cls, case: Case) -> CaseRecord:
        """The same view of an ORM case (its agencies loaded)."""
        links = tuple(CaseLink(a.agency_id, a.agency.code, a.involvement, a.joined_at,
                               a.left_at) for a in case.agencies)
        return cls(case.id, case.status, case.subject_type, case.summary, case.opened_at,
                   case.closed_at, case.conclusion, case.identity_purged_at, case.updated_at,
                   case.version, links)

    def active_agencies(self) -> list[int]:
        return [link.agency_id for link in self.agencies if link.left_at is None]


_TABLES = Case.metadata.tables
_CASES, _LINKS, _AGENCIES = _TABLES["cases"], _TABLES["case_agencies"], _TABLES["agencies"]
_IDENTITIES, _EVENTS = _TABLES["case_identities"], _TABLES["case_events"]
_CASE_ROWS = (
    select(_CASES.c.id, _CASES.c.status, _CASES.c.subject_type, _CASES.c.summary,
           _CASES.c.opened_at, _CASES.c.closed_at, _CASES.c.conclusion,
           _CASES.c.identity_purged_at, _CASES.c.updated_at, _CASES.c.version,
           _LINKS.c.agency_id, _AGENCIES.c.code.label("agency_code"), _LINKS.c.involvement,
           _LINKS.c.joined_at, _LINKS.c.left_at)
    .select_from(_CASES.outerjoin(_LINKS, _LINKS.c.case_id == _CASES.c.id)
                 .outerjoin(_AGENCIES, _AGENCIES.c.id == _LINKS.c.agency_id))
    .where(_CASES.c.id == bindparam("case_id"))
    .order_by(_LINKS.c.joined_at, _LINKS.c.agency_id))
"""The case and its agencies in one round trip."""
_CASE_ROWS_FOR_UPDATE = _CASE_ROWS.with_for_update(of=_CASES)
_CASE_AND_IDENTITY_ROWS = (
    _CASE_ROWS.add_columns(_IDENTITIES.c.case_id.label("identity_of"), _IDENTITIES.c.name_ct,
                           _IDENTITIES.c.date_of_birth_ct, _IDENTITIES.c.address_ct)
    .outerjoin_from(_CASES, _IDENTITIES, _IDENTITIES.c.case_id == _CASES.c.id))
"""The same, with the identity row's ciphertexts (still one round trip)."""
_EDIT_SUMMARY = (update(_CASES)
                 .where(_CASES.c.id == bindparam("case_id"),
                        _CASES.c.version == bindparam("expected"))
                 .values(summary=bindparam("summary"), updated_at=bindparam("now"),
                         version=_CASES.c.version + 1))
_INSERT_EVENT = insert(_EVENTS)


def load_case_record(session: Session, actor: Actor, case_id: str, action: Action,
                     *, for_update: bool = False) -> CaseRecord:
    """:func:`load_case` with one Core query and no ORM objects (same policy, same errors)."""
    return _load_record(session, actor, case_id, action,
                        _CASE_ROWS_FOR_UPDATE if for_update else _CASE_ROWS)[0]


def _load_record(session: Session, actor: Actor, case_id: str, action: Action,
                 query: Any) -> tuple[CaseRecord, Row[Any] | None]:
    authorize(actor.principal, action, _any_agency(actor))
    rows = session.connection().execute(query, {"case_id": case_id}).all()
    case = CaseRecord.of_rows(rows) if rows else None
    if case is None or not is_allowed(actor.principal, action, case.active_agencies()):
        raise NotFoundError(f"no case {case_id} visible to you")
    return case, rows[0]


def active_agencies(case: Case) -> list[int]:
    """Ids of the agencies involved in ``case`` that have not left it."""
    return [link.agency_id for link in case.agencies if link.left_at is None]


def load_case(session: Session, actor: Actor, case_id: str, action: Action,
              *, for_update: bool = False) -> Case:
    """The case, if ``actor`` may do ``action`` on it.

    A role that never may do ``action`` gets a permission error; a user of an agency not
    involved gets "not found", so the case's existence does not leak.
    """
    authorize(actor.principal, action, _any_agency(actor))
    query = select(Case).where(Case.id == case_id).options(joinedload(Case.agencies))
    if for_update:
        query = query.with_for_update(of=Case)
    case = session.scalars(query).unique().one_or_none()
    if case is None or not is_allowed(actor.principal, action, active_agencies(case)):
        raise NotFoundError(f"no case {case_id} visible to you")
    return case


def _any_agency(actor: Actor) -> list[int] | None:
    """For the role check alone: treat the actor's own agency as involved."""
    agency = actor.principal.agency_id
    return [agency] if agency is not None else None


def open_case(session: Session, actor: Actor, subject_type: SubjectType,
              summary: str = "") -> Case:
    """Open a case presented by the actor's agency (status ``presented``)."""
    authorize(actor.principal, Action.CASE_CREATE)
    agency_id = actor.principal.agency_id
    if agency_id is None:
        raise InvalidInputError("a case must be opened by a user of an agency")
    case = Case(id=uuid.uuid4().hex, status=CaseStatus.PRESENTED.value,
                subject_type=subject_type.value, summary=_text(summary, "summary", MAX_SUMMARY),
                originating_agency_id=agency_id)
    case.agencies.append(CaseAgency(agency_id=agency_id,
                                    involvement=InvolvementRole.ORIGINATING.value))
    session.add(case)
    session.flush()
    _event(session, actor, case, "opened", {"status": case.status})
    record(session, actor, Action.CASE_CREATE.value, "case", case.id)
    return case


def list_cases(session: Session, actor: Actor, status: CaseStatus | None = None,
               limit: int = 100) -> Sequence[Case]:
    """Cases the actor's agency is involved in, newest first."""
    authorize(actor.principal, Action.CASE_LIST)
    query = (select(Case).join(CaseAgency)
             .where(CaseAgency.agency_id == actor.principal.agency_id,
                    CaseAgency.left_at.is_(None))
             .order_by(Case.opened_at.desc(), Case.id).limit(limit))
    if status is not None:
        query = query.where(Case.status == status.value)
    cases = session.scalars(query).all()
    record(session, actor, Action.CASE_LIST.value, "case", None)
    return cases


def read_case(session: Session, actor: Actor, case_id: str) -> CaseRecord:
    """One case, de-identified (its identifying details are read separately)."""
    case = load_case_record(session, actor, case_id, Action.CASE_READ)
    record(session, actor, Action.CASE_READ.value, "case", case.id)
    return case


def timeline(session: Session, actor: Actor, case_id: str) -> Sequence[CaseEvent]:
    """The case's events in order."""
    case = load_case(session, actor, case_id, Action.CASE_READ)
    record(session, actor, "case.timeline", "case", case.id)
    return session.scalars(select(CaseEvent).where(CaseEvent.case_id == case.id)
                           .order_by(CaseEvent.id)).all()


def change_status(session: Session, actor: Actor, case_id: str, *, expected_version: int,
                  target: CaseStatus, conclusion: str | None = None) -> Case:
    """Move a case along the transition table; anything else is refused."""
    case = load_case(session, actor, case_id, Action.CASE_UPDATE, for_update=True)
    _expect_version(case, expected_version)
    current = CaseStatus(case.status)
    if not can_transition(current, target):
        raise InvalidTransitionError(f"case {case.id} cannot go from {current.value} to "
                                     f"{target.value}")
    case.status = target.value
    case.updated_at = utcnow()
    if target in CLOSED_STATUSES:
        case.closed_at = case.updated_at
        case.conclusion = _text(conclusion or target.value, "conclusion", 40)
    _event(session, actor, case, "status_changed", {"from": current.value, "to": target.value})
    record(session, actor, Action.CASE_UPDATE.value, "case", case.id, fields=("status",))
    session.flush()
    return case


def edit_summary(session: Session, actor: Actor, case_id: str, *, expected_version: int,
                 summary: str) -> CaseRecord:
    """Replace the de-identified summary (optimistic: the version read must be current).

    Core statements on the locked row: the UPDATE repeats the version check, as the ORM's
    version counter does, so a concurrent change can never be overwritten.
    """
    case = load_case_record(session, actor, case_id, Action.CASE_UPDATE, for_update=True)
    _expect_version(case, expected_version)
    summary = _text(summary, "summary", MAX_SUMMARY)
    now = utcnow()
    connection = session.connection()
    changed = connection.execute(_EDIT_SUMMARY, {"case_id": case.id, "expected": case.version,
                                                 "summary": summary, "now": now}).rowcount
    if changed != 1:
        raise ConflictError(f"case {case.id} changed while it was being edited; reload it")
    connection.execute(_INSERT_EVENT, _event_values(actor, case.id, "summary_edited", {}, now))
    record(session, actor, Action.CASE_UPDATE.value, "case", case.id, fields=("summary",))
    return replace(case, summary=summary, updated_at=now, version=case.version + 1)


def involve_agency(session: Session, actor: Actor, case_id: str, *, expected_version: int,
                   agency_code: str, involvement: InvolvementRole) -> Case:
    """Bring an agency into the case (or back into it)."""
    case = load_case(session, actor, case_id, Action.CASE_INVOLVE, for_update=True)
    _expect_version(case, expected_version)
    agency = session.scalars(select(Agency).where(Agency.code == agency_code)).one_or_none()
    if agency is None:
        raise NotFoundError(f"no agency with code {agency_code!r}")
    link = next((a for a in case.agencies if a.agency_id == agency.id), None)
    if link is None:
        case.agencies.append(CaseAgency(agency_id=agency.id, involvement=involvement.value))
    else:
        link.left_at, link.involvement = None, involvement.value
    case.updated_at = utcnow()
    _event(session, actor, case, "agency_involved", {"agency": agency.code,
                                                      "involvement": involvement.value})
    record(session, actor, Action.CASE_INVOLVE.value, "case", case.id, fields=("agencies",))
    session.flush()
    return case


def withdraw_agency(session: Session, actor: Actor, case_id: str, *, expected_version: int,
                    agency_code: str) -> Case:
    """An agency leaves the case: its users lose access at once."""
    case = load_case(session, actor, case_id, Action.CASE_INVOLVE, for_update=True)
    _expect_version(case, expected_version)
    link = next((a for a in case.agencies if a.left_at is None
                 and _agency_code(session, a.agency_id) == agency_code), None)
    if link is None:
        raise NotFoundError(f"agency {agency_code!r} is not involved in case {case.id}")
    link.left_at = case.updated_at = utcnow()
    _event(session, actor, case, "agency_withdrawn", {"agency": agency_code})
    record(session, actor, Action.CASE_INVOLVE.value, "case", case.id, fields=("agencies",))
    session.flush()
    return case


def add_note(session: Session, actor: Actor, case_id: str, note: str) -> CaseEvent:
    """Append a de-identified note to the timeline (no version check: notes never conflict)."""
    case = load_case(session, actor, case_id, Action.CASE_NOTE)
    event = _event(session, actor, case, "note", {"note": _text(note, "note", MAX_NOTE)})
    record(session, actor, Action.CASE_NOTE.value, "case", case.id, fields=("timeline",))
    session.flush()
    return event


def set_identity(session: Session, actor: Actor, keyring: Keyring, case_id: str,
                 details: Identity) -> CaseIdentity:
    """Record the identifying details (only after the AER decision), encrypted field by field."""
    case = load_case(session, actor, case_id, Action.IDENTITY_WRITE, for_update=True)
    if CaseStatus(case.status) not in IDENTIFIABLE_STATUSES:
        raise InvalidTransitionError(f"identifying details may be entered only while a case is "
                                     f"aer or planning; case {case.id} is {case.status}")
    identity = session.get(CaseIdentity, case.id) or CaseIdentity(case_id=case.id)
    seal_identity(identity, keyring, details)
    identity.updated_at = utcnow()
    session.add(identity)
    case.identity_purged_at = None
    _event(session, actor, case, "identity_recorded", {"fields": _present(details)})
    record(session, actor, Action.IDENTITY_WRITE.value, "case", case.id, fields=_present(details))
    session.flush()
    return identity


def seal_identity(identity: CaseIdentity, keyring: Keyring, details: Identity) -> None:
    """Encrypt ``details`` into ``identity`` with the current key (and its search hash)."""
    dob = details.date_of_birth.isoformat() if details.date_of_birth else None
    for name, value in (("name", details.name), ("date_of_birth", dob),
                        ("address", details.address)):
        sealed = keyring.encrypt(value, field_context(name, identity.case_id)) \
            if value is not None else None
        setattr(identity, f"{name}_ct", sealed)
    identity.name_search = keyring.search_hash(details.name, "name") if details.name else None
    identity.search_key_id = keyring.search_current_id if details.name else None
    identity.key_id = keyring.current_id


def open_identity(identity: CaseIdentity, keyring: Keyring) -> Identity:
    """Decrypt the identifying details of ``identity``."""
    return _decrypt(identity, identity.case_id, keyring)


def _decrypt(sealed: Any, case_id: str, keyring: Keyring) -> Identity:
    """Open the ``*_ct`` attributes of ``sealed`` (an identity or a row), bound to ``case_id``."""
    values: dict[str, str | None] = {}
    for name in IDENTITY_FIELDS:
        ciphertext = getattr(sealed, f"{name}_ct")
        values[name] = keyring.decrypt(ciphertext, field_context(name, case_id)) \
            if ciphertext is not None else None
    dob = values["date_of_birth"]
    return Identity(values["name"], date.fromisoformat(dob) if dob else None, values["address"])


def field_context(field_name: str, case_id: str) -> str:
    """Associated data binding a ciphertext to its column and case."""
    return f"case_identities.{field_name}:{case_id}"


def read_identity(session: Session, actor: Actor, keyring: Keyring, case_id: str) -> Identity:
    """Decrypt a case's identifying details; the read is audited with the stated basis."""
    if not actor.basis.strip():
        raise InvalidInputError("state the basis for reading identifying details (basis)")
    case, sealed = _load_record(session, actor, case_id, Action.IDENTITY_READ,
                                _CASE_AND_IDENTITY_ROWS)
    if sealed is None or sealed.identity_of is None:
        raise NotFoundError(f"case {case.id} has no identifying details"
                            + (" (purged by retention)" if case.identity_purged_at else ""))
    details = _decrypt(sealed, case.id, keyring)
    record(session, actor, Action.IDENTITY_READ.value, "case", case.id, fields=_present(details))
    return details


def find_by_name(session: Session, actor: Actor, keyring: Keyring, name: str) -> list[str]:
    """Ids of visible cases whose subject has exactly this name (keyed-hash search)."""
    authorize(actor.principal, Action.IDENTITY_SEARCH)
    if not actor.basis.strip():
        raise InvalidInputError("state the basis for searching identifying details (basis)")
    digests = keyring.search_hashes(name, "name")  # every search key: a rehash may be running
    ids = session.scalars(
        select(CaseIdentity.case_id).join(CaseAgency, CaseAgency.case_id == CaseIdentity.case_id)
        .where(CaseIdentity.name_search.in_(digests),
               CaseAgency.agency_id == actor.principal.agency_id,
               CaseAgency.left_at.is_(None))).all()
    record(session, actor, Action.IDENTITY_SEARCH.value, "case", None, fields=("name",))
    return list(ids)


def _present(details: Identity) -> tuple[str, ...]:
    return tuple(name for name in IDENTITY_FIELDS if getattr(details, name) is not None)


def _expect_version(case: Case | CaseRecord, expected: int) -> None:
    if case.version != expected:
        raise ConflictError(f"case {case.id} is at version {case.version}, not {expected}: "
                            "someone changed it since you read it; reload and try again")


def _event(session: Session, actor: Actor, case: Case, kind: str,
           detail: dict[str, object]) -> CaseEvent:
    event = CaseEvent(**_event_values(actor, case.id, kind, detail, utcnow()))
    session.add(event)
    return event


def _event_values(actor: Actor, case_id: str, kind: str, detail: dict[str, object],
                  at: datetime) -> dict[str, Any]:
    return {"case_id": case_id, "actor_id": actor.principal.user_id, "kind": kind,
            "detail": json.dumps(detail, sort_keys=True), "at": at}


def _agency_code(session: Session, agency_id: int) -> str | None:
    agency = session.get(Agency, agency_id)
    return agency.code if agency else None


def _text(value: str, name: str, limit: int) -> str:
    if len(value) > limit:
        raise InvalidInputError(f"{name} is longer than {limit} characters")
    return value

