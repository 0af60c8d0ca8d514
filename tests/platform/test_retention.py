"""Retention purges identifying details of closed cases, once, and keeps the rest."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from cswb.cases import service
from cswb.cli.main import app
from cswb.domain.cases import CaseStatus, Role
from cswb.errors import NotFoundError, PermissionDeniedError
from cswb.security.crypto import Keyring
from cswb.security.principal import SYSTEM, Actor
from cswb.security.retention import run_retention
from cswb.settings import Settings
from cswb.storage.operational.models import CaseIdentity, utcnow
from tests.platform.factories import World, cli_env, open_case_as

ADMIN = Actor(SYSTEM, "test")


def _case_with_identity(world: World, keyring: Keyring, close: bool) -> str:
    case_id = open_case_as(world, "police", status=CaseStatus.AER)
    chair = world.actor("police", Role.TABLE_CHAIR)
    with world.store.session() as session:
        service.set_identity(session, chair, keyring, case_id,
                             service.Identity("Alex Roe", date(2001, 2, 3), "9 Pine Rd"))
        if close:
            version = service.read_case(session, chair, case_id).version
            service.change_status(session, chair, case_id, expected_version=version,
                                  target=CaseStatus.CONCLUDED, conclusion="transferred")
    return case_id


def test_purges_closed_cases_after_the_period_once(world: World,
                                                   platform_settings: Settings) -> None:
    keyring = Keyring.from_settings(platform_settings)
    closed = _case_with_identity(world, keyring, close=True)
    still_open = _case_with_identity(world, keyring, close=False)
    days = platform_settings.retention_case_identity_days
    early = run_retention(world.store, platform_settings, ADMIN,
                          now=utcnow() + timedelta(days=days - 1))
    assert [r.purged for r in early] == [0, 0]
    later = utcnow() + timedelta(days=days, seconds=1)
    due = run_retention(world.store, platform_settings, ADMIN, now=later, dry_run=True)
    assert [(r.due, r.purged) for r in due] == [(1, 0), (0, 0)]
    assert [r.purged for r in run_retention(world.store, platform_settings, ADMIN,
                                            now=later)] == [1, 0]
    assert [r.purged for r in run_retention(world.store, platform_settings, ADMIN,
                                            now=later)] == [0, 0]
    chair = world.actor("police", Role.TABLE_CHAIR, basis="follow-up")
    with world.store.session() as session:
        assert session.scalar(select(func.count()).select_from(CaseIdentity)) == 1
        case = service.read_case(session, chair, closed)
        assert case.identity_purged_at is not None and case.conclusion == "transferred"
        assert service.read_identity(session, chair, keyring, still_open).name == "Alex Roe"
        kinds = [e.kind for e in service.timeline(session, chair, closed)]
    assert kinds[-1] == "identity_purged"
    with pytest.raises(NotFoundError, match="purged by retention"), \
            world.store.session() as session:
        service.read_identity(session, chair, keyring, closed)


def test_only_administrators_run_retention(world: World, platform_settings: Settings) -> None:
    with pytest.raises(PermissionDeniedError):
        run_retention(world.store, platform_settings, world.actor("police", Role.TABLE_CHAIR))


def test_cli_reports_what_it_purged(world: World, platform_settings: Settings) -> None:
    keyring = Keyring.from_settings(platform_settings)
    _case_with_identity(world, keyring, close=True)
    env = {**cli_env(platform_settings), "CSWB_RETENTION_CASE_IDENTITY_DAYS": "0"}
    runner = CliRunner()
    first = runner.invoke(app, ["retention", "run"], env=env)
    assert first.exit_code == 0, first.output
    assert "case identifying details" in first.output and "│ 1 " in first.output
    second = runner.invoke(app, ["retention", "run"], env=env)
    assert "│ 0 " in second.output
