"""``/api/v1/docs``: Swagger UI served from this server (no CDN), or a plain reference page.

Swagger UI's files come from the ``fastapi-offline`` package when it is installed; without it
the page lists the operations of the OpenAPI document, server-rendered.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from cswb.api.routes import API_PREFIX

DOCS_PATH = f"{API_PREFIX}/docs"
OPENAPI_PATH = f"{API_PREFIX}/openapi.json"
SWAGGER_ASSETS_PATH = "/static/swagger-ui"

router = APIRouter(include_in_schema=False)


@dataclass(frozen=True)
class Parameter:
    name: str
    location: str
    required: bool
    description: str


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    summary: str
    description: str
    parameters: list[Parameter]


def swagger_assets() -> Path | None:
    """The folder holding ``swagger-ui-bundle.js`` and ``swagger-ui.css``, if installed."""
    spec = importlib.util.find_spec("fastapi_offline")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations))) / "static"
    return folder if (folder / "swagger-ui-bundle.js").is_file() else None


def operations(openapi: dict[str, Any]) -> list[Operation]:
    """The operations of an OpenAPI document, in document order."""
    found = []
    for path, methods in openapi.get("paths", {}).items():
        for method, op in methods.items():
            params = [Parameter(p["name"], p.get("in", ""), bool(p.get("required")),
                                p.get("description") or p.get("schema", {}).get("description", ""))
                      for p in op.get("parameters", [])]
            found.append(Operation(method.upper(), path, op.get("summary", ""),
                                   op.get("description", ""), params))
    return found


@router.get(DOCS_PATH, response_class=HTMLResponse)
def api_docs(request: Request) -> HTMLResponse:
    """Interactive documentation when Swagger UI is available, else the reference page."""
    templates = request.app.state.templates
    if request.app.state.swagger_assets is not None:
        return templates.TemplateResponse(request, "api_docs.html", {"openapi_url": OPENAPI_PATH})
    return templates.TemplateResponse(request, "api_reference.html", {
        "openapi_url": OPENAPI_PATH, "operations": operations(request.app.openapi())})
