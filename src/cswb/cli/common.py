"""Helpers shared by the command modules."""

from __future__ import annotations

import typer
from rich.console import Console

from cswb.settings import Settings
from cswb.storage import AnalyticStore, open_analytic_store

console = Console()
err_console = Console(stderr=True)


def settings_of(ctx: typer.Context) -> Settings:
    """The settings loaded by the root callback."""
    settings = ctx.find_root().obj
    if not isinstance(settings, Settings):  # pragma: no cover - the callback always sets it
        raise RuntimeError("settings were not loaded")
    return settings


def store_of(ctx: typer.Context) -> AnalyticStore:
    """The analytic store named by the settings."""
    settings = settings_of(ctx)
    return open_analytic_store(settings.resolved_store_url, settings)
