"""``cswb agencies`` and ``cswb users``: member agencies and the accounts of their staff."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table
from sqlalchemy import select

from cswb.cli.common import console
from cswb.cli.operational import cli_actor, operational_of
from cswb.domain.cases import AgencyKind, Role
from cswb.security.accounts import create_agency, create_user, disable_user, list_users
from cswb.security.policy import Action, authorize
from cswb.storage.operational.models import Agency, utcnow

agencies_app = typer.Typer(help="Member agencies.", no_args_is_help=True)
users_app = typer.Typer(help="User accounts.", no_args_is_help=True)


@agencies_app.command("add")
def add_agency(
    ctx: typer.Context,
    code: Annotated[str, typer.Argument(help="Short code, e.g. riverton-police.")],
    name: Annotated[str, typer.Option(help="Full name.")],
    kind: Annotated[AgencyKind, typer.Option(help="Kind of organisation.")],
) -> None:
    """Register a member agency."""
    authorize(cli_actor("agency").principal, Action.USERS_MANAGE)
    with operational_of(ctx).session() as session:
        create_agency(session, code, name, kind)
    console.print(f"Agency {code} added.")


@agencies_app.command("list")
def agencies(ctx: typer.Context) -> None:
    """Member agencies."""
    authorize(cli_actor("agency").principal, Action.USERS_MANAGE)
    table = Table("code", "name", "kind")
    with operational_of(ctx).sessions() as session:
        for agency in session.scalars(select(Agency).order_by(Agency.code)):
            table.add_row(agency.code, agency.name, agency.kind)
    console.print(table)


@users_app.command("create")
def create(
    ctx: typer.Context,
    username: Annotated[str, typer.Argument(help="Login name.")],
    agency: Annotated[str, typer.Option(help="Code of the user's agency.")],
    role: Annotated[Role, typer.Option(help="The user's role.")],
    identity_provider: Annotated[bool, typer.Option(
        "--identity-provider", help="No local password: the user logs in through the "
        "agency's OpenID Connect provider.")] = False,
) -> None:
    """Create an account; asks for the password (at least 12 characters) twice."""
    password = None if identity_provider else typer.prompt(
        "Password", hide_input=True, confirmation_prompt=True)
    with operational_of(ctx).session() as session:
        create_user(session, cli_actor("account administration"), username,
                    agency_code=agency, role=role, password=password)
    console.print(f"User {username} ({role.value}, {agency}) created.")


@users_app.command("list")
def list_command(ctx: typer.Context) -> None:
    """Accounts with their agency, role and state."""
    table = Table("username", "agency", "role", "login", "state")
    with operational_of(ctx).sessions() as session:
        for user in list_users(session, cli_actor("account administration")):
            locked = user.locked_until is not None and user.locked_until > utcnow()
            state = "disabled" if user.disabled else ("locked" if locked else "active")
            login = "identity provider" if user.password_hash is None else "password"
            table.add_row(user.username, user.agency.code, user.role, login, state)
    console.print(table)


@users_app.command("disable")
def disable(
    ctx: typer.Context,
    username: Annotated[str, typer.Argument(help="Login name.")],
) -> None:
    """Disable an account and revoke its sessions and tokens at once."""
    with operational_of(ctx).session() as session:
        disable_user(session, cli_actor("account administration"), username)
    console.print(f"User {username} disabled; its sessions and tokens are revoked.")


def register(app: typer.Typer) -> None:
    app.add_typer(agencies_app, name="agencies")
    app.add_typer(users_app, name="users")
