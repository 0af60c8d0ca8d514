"""Helpers of the platform commands: the operational store and the CLI's audited actor."""

from __future__ import annotations

import getpass

import typer

from cswb.cli.common import settings_of
from cswb.security.principal import SYSTEM, Actor, Principal
from cswb.storage.operational import OperationalStore, open_operational_store


def operational_of(ctx: typer.Context, *, migrated: bool = True) -> OperationalStore:
    """The operational store named by the settings (checked to be at the latest schema)."""
    store = open_operational_store(settings_of(ctx), pool_size=2)
    if migrated:
        store.require_current()
    return store


def cli_actor(basis: str) -> Actor:
    """The administrator running a CLI command, audited under the operating-system account."""
    who = Principal(None, f"cli:{getpass.getuser()}", None, None, SYSTEM.role)
    return Actor(who, source="cli", basis=basis)
