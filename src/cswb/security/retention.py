"""Retention: identifying details are purged a configurable time after a record closes.

Each record type has a rule (:data:`RULES`); a rule deletes the identifying part and leaves the
de-identified record, with a timeline event and an audit entry per record. Running again purges
nothing new (idempotent). Later record types (referrals, survey contacts) add their rule here.
The linkage zone's values, in a database of their own, follow
(:mod:`cswb.linkage.retention`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from cswb.audit import record
from cswb.domain.cases import IDENTITY_FIELDS
from cswb.linkage.retention import purge_linkage_values
from cswb.security.policy import Action, authorize
from cswb.security.principal import Actor
from cswb.settings import Settings
from cswb.storage.operational import OperationalStore
from cswb.storage.operational.models import Case, CaseEvent, CaseIdentity, utcnow

BATCH = 500


@dataclass(frozen=True)
class PurgeResult:
    record_type: str
    retention_days: int
    purged: int
    due: int


@dataclass(frozen=True)
class RetentionRule:
    record_type: str
    days: Callable[[Settings], int]
    purge: Callable[[Session, Actor, datetime, datetime, bool], int]


def _purge_case_identities(session: Session, actor: Actor, cutoff: datetime, now: datetime,
                           dry_run: bool) -> int:
    due = session.scalars(
        select(Case).join(CaseIdentity, CaseIdentity.case_id == Case.id)
        .where(Case.closed_at.is_not(None), Case.closed_at <= cutoff)
        .order_by(Case.closed_at, Case.id).limit(BATCH).with_for_update(of=Case)).all()
    if dry_run:
        return len(due)
    for case in due:
        session.execute(delete(CaseIdentity).where(CaseIdentity.case_id == case.id))
        case.identity_purged_at = case.updated_at = now
        session.add(CaseEvent(case_id=case.id, actor_id=None, kind="identity_purged",
                              detail='{"rule": "case_identity"}', at=now))
        record(session, actor, "retention.purge", "case", case.id, fields=IDENTITY_FIELDS)
    return len(due)


RULES: tuple[RetentionRule, ...] = (
    RetentionRule("case identifying details", lambda s: s.retention_case_identity_days,
                  _purge_case_identities),
)


def run_retention(store: OperationalStore, settings: Settings, actor: Actor, *,
                  now: datetime | None = None, dry_run: bool = False) -> list[PurgeResult]:
    """Apply every rule; return what was purged (or, with ``dry_run``, what is due)."""
    authorize(actor.principal, Action.RETENTION_RUN)
    now = now or utcnow()
    results = []
    for rule in RULES:
        days = rule.days(settings)
        cutoff = now - timedelta(days=days)
        total = 0
        while True:
            with store.session() as session:
                count = rule.purge(session, actor, cutoff, now, dry_run)
            total += count
            if dry_run or count < BATCH:
                break
        results.append(PurgeResult(rule.record_type, days, 0 if dry_run else total,
                                   total if dry_run else 0))
    results.append(_linkage_values(store, settings, actor, now, dry_run))
    return results


def _linkage_values(store: OperationalStore, settings: Settings, actor: Actor, now: datetime,
                    dry_run: bool) -> PurgeResult:
    """The linkage zone's rule (another database than the operational store's rules)."""
    days = settings.retention_linkage_days
    count = purge_linkage_values(settings, store, actor, now - timedelta(days=days), dry_run)
    return PurgeResult("linkage values", days, 0 if dry_run else count,
                       count if dry_run else 0)
