"""The "What was loaded" page: sources, batches, calls per month and top call types."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from cswb.api import loaded
from cswb.api.deps import Cursor
from cswb.errors import NotFoundError
from cswb.web.chart import month_bar_chart

router = APIRouter(include_in_schema=False)


@router.get("/loaded", response_class=HTMLResponse)
def what_was_loaded(
    request: Request,
    cur: Cursor,
    source: Annotated[str | None, Query(max_length=200)] = None,
) -> HTMLResponse:
    """The page; a friendly invitation to ingest when the store is empty."""
    source = source or None
    if source is not None and not loaded.source_exists(cur, source):
        raise NotFoundError("no source has that name; the page without ?source= lists them")
    view = loaded.overview(cur, source)
    templates = request.app.state.templates
    if view.empty:
        return templates.TemplateResponse(request, "empty.html", {})
    context = {"view": view, "chart": month_bar_chart(view.summary.months), "selected": source}
    return templates.TemplateResponse(request, "loaded.html", context)
