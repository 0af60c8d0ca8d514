"""``cswb audit``: seal pending entries into the chain and verify it."""

from __future__ import annotations

from typing import Annotated

import typer

from cswb.audit import seal_pending, verify
from cswb.cli.common import console
from cswb.cli.operational import cli_actor, operational_of
from cswb.errors import AuditChainError
from cswb.security.policy import Action, authorize

audit_app = typer.Typer(help="The tamper-evident audit log.", no_args_is_help=True)


@audit_app.command("seal")
def seal(ctx: typer.Context) -> None:
    """Chain every committed entry not yet chained (the server does this continuously)."""
    authorize(cli_actor("seal").principal, Action.AUDIT_VERIFY)
    sealed = seal_pending(operational_of(ctx))
    console.print(f"Sealed {sealed:,} entries.")


@audit_app.command("verify")
def verify_command(
    ctx: typer.Context,
    seal_first: Annotated[bool, typer.Option("--seal/--no-seal", help="Seal pending entries "
                                             "before verifying.")] = False,
) -> None:
    """Check the whole chain; exit with status 12 and say where it breaks if it does."""
    authorize(cli_actor("verify").principal, Action.AUDIT_VERIFY)
    store = operational_of(ctx)
    if seal_first:
        seal_pending(store)
    report = verify(store)
    console.print(f"Checked {report.checked:,} chained entries (head at position "
                  f"{report.head_seq:,}); {report.unsealed:,} awaiting sealing.")
    for problem in report.breaks[:50]:
        console.print(f"[red]broken[/red] at {problem}")
    if report.stale_unsealed:
        console.print(f"[red]{report.stale_unsealed:,} entries have waited more than 10 minutes "
                      "to be sealed[/red]: is the sealer running (`cswb audit seal`)?")
    if not report.intact:
        raise AuditChainError(f"the audit chain is broken in {len(report.breaks)} place(s)"
                              + (f"; first at {report.breaks[0]}" if report.breaks else ""))
    console.print("[green]The audit chain is intact.[/green] Keep a copy of its head where the "
                  f"database's administrators cannot write: {report.head_seq}:{report.head_hash}")


def register(app: typer.Typer) -> None:
    app.add_typer(audit_app, name="audit")
