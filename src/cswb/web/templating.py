"""The Jinja2 environment of the pages: autoescaped, strict about undefined names."""

from __future__ import annotations

from pathlib import Path

from fastapi.templating import Jinja2Templates
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from cswb import __version__
from cswb.web.chart import month_label

STATIC_DIR = Path(__file__).parent / "static"


def number(value: int | float | None) -> str:
    """A count with thousands separators (``-`` when missing)."""
    return "-" if value is None else f"{value:,}"


def build_templates() -> Jinja2Templates:
    """Templates of ``cswb/web/templates`` with cswb's filters and globals."""
    env = Environment(
        loader=PackageLoader("cswb.web", "templates"),
        autoescape=select_autoescape(["html", "svg"], default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["number"] = number
    env.filters["month_label"] = month_label
    env.globals["version"] = __version__
    return Jinja2Templates(env=env)
