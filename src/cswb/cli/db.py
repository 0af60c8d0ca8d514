"""``cswb db``: create and upgrade the operational store's schema (Alembic migrations)."""

from __future__ import annotations

import typer

from cswb.cli.common import console
from cswb.cli.operational import operational_of
from cswb.storage.operational.engine import HEAD_REVISION

db_app = typer.Typer(help="Operational store schema (cases, accounts, audit).",
                     no_args_is_help=True)


@db_app.command("upgrade")
def upgrade(ctx: typer.Context) -> None:
    """Create the schema or bring it to the latest migration (safe to repeat)."""
    store = operational_of(ctx, migrated=False)
    before = store.current_revision()
    store.upgrade()
    console.print(f"{store.safe_url}: schema {before or '(empty)'} -> {HEAD_REVISION}")


@db_app.command("status")
def status(ctx: typer.Context) -> None:
    """The schema revision of the operational store."""
    store = operational_of(ctx, migrated=False)
    revision = store.current_revision()
    state = "current" if revision == HEAD_REVISION else "needs `cswb db upgrade`"
    console.print(f"{store.safe_url}: schema {revision or '(empty)'} ({state})")


def register(app: typer.Typer) -> None:
    app.add_typer(db_app, name="db")
