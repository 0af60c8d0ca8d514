"""The one JSON error shape, the exception handlers that produce it, and security headers.

Every failure answers ``{"error": {"code": ..., "message": ..., "status": ...}}``: unknown paths
and methods, invalid parameters (422, listing the parameters and what is wrong, never their
values), cswb's own errors (by their ``code``) and bugs (500, a generic message; the details go
to the log only).
"""

from __future__ import annotations

import logging
import traceback
from http import HTTPStatus
from typing import Any

import duckdb
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cswb.api.models import ErrorBody, ErrorDetail, ErrorResponse
from cswb.errors import CswbError
from cswb.logging import get_logger

log = get_logger("api")

STATUS_BY_CODE: dict[str, int] = {
    "not_found": 404,
    "mapping_error": 400,
    "source_file_error": 400,
    "config_error": 500,
    "portal_error": 502,
    "store_error": 503,
    "analytics_error": 400,
    "conflict": 409,
    "invalid_transition": 409,
    "unauthenticated": 401,
    "forbidden": 403,
    "invalid_input": 400,
    "crypto_error": 500,
    "audit_chain_broken": 500,
    "no_classified_calls": 409,
    "policy_error": 500,
}
"""HTTP status of each :class:`CswbError` code (others: 500)."""

_HTTP_CODES = {404: "not_found", 405: "method_not_allowed"}
_HTTP_MESSAGES = {
    404: "there is nothing at this address; the API is described at /api/v1/docs",
    405: "this address does not accept that method",
}
INTERNAL_MESSAGE = "an unexpected error occurred; it has been logged for the administrators"


def error_response(status: int, code: str, message: str,
                   details: list[ErrorDetail] | None = None,
                   headers: dict[str, str] | None = None) -> JSONResponse:
    """A response in the one error shape."""
    body = ErrorResponse(error=ErrorBody(code=code, message=message, status=status,
                                         details=details))
    return JSONResponse(body.model_dump(exclude_none=True), status_code=status, headers=headers)


def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    status = exc.status_code
    message = _HTTP_MESSAGES.get(status) or (
        exc.detail if isinstance(exc.detail, str) else _phrase(status))
    return error_response(status, _HTTP_CODES.get(status, "http_error"), message,
                          headers=getattr(exc, "headers", None))


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase.lower()
    except ValueError:
        return "error"


def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    details = [_detail(err) for err in exc.errors()]
    names = ", ".join(sorted({d.parameter for d in details}))
    return error_response(422, "invalid_request", f"invalid parameters: {names}", details)


def _detail(err: dict[str, Any]) -> ErrorDetail:
    """One validation problem, without the value that was sent (``input`` is left out)."""
    loc = [str(part) for part in err.get("loc", ())]
    location = loc[0] if loc else "request"
    parameter = ".".join(loc[1:]) or location
    return ErrorDetail(location=location, parameter=parameter, problem=str(err.get("msg", "")))


def _cswb_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, CswbError)
    status = STATUS_BY_CODE.get(exc.code, 500)
    log.log(logging.WARNING if status >= 500 else logging.INFO,
            "%s on %s %s: %s", exc.code, request.method, request.url.path, exc)
    return error_response(status, exc.code, str(exc))


def _duckdb_io_error(request: Request, exc: Exception) -> JSONResponse:
    log.error("store read failed on %s %s: %s", request.method, request.url.path, exc)
    return error_response(503, "store_error",
                          "a file of the analytic store cannot be read; try again shortly")


def install_error_handlers(app: FastAPI) -> None:
    """Route every kind of failure to the one error shape."""
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(CswbError, _cswb_error)
    app.add_exception_handler(duckdb.IOException, _duckdb_io_error)


PAGE_CSP = ("default-src 'none'; style-src 'self'; img-src 'self'; base-uri 'none'; "
            "form-action 'self'; frame-ancestors 'none'")
"""The pages are server-rendered HTML with one stylesheet and inline SVG: no script at all."""

DOCS_CSP = ("default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
            "img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; "
            "frame-ancestors 'none'")
"""Swagger UI (served from this server) sets inline styles and data: images."""

CHART_CSP = ("default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
             "img-src 'self' data:; base-uri 'none'; form-action 'self'; "
             "frame-ancestors 'none'")
"""Dashboard pages: plotly.js (served from this server) styles the charts it draws inline."""

SECURITY_HEADERS: dict[str, str] = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}


class GuardMiddleware:
    """Outermost layer: security headers on every response, and a JSON 500 for any bug.

    Starlette's own last-resort handler re-raises the exception after answering; this layer
    answers in the error shape, logs the exception once, and keeps the server quiet otherwise.
    """

    def __init__(self, app: ASGIApp, docs_path: str,
                 chart_paths: frozenset[str] = frozenset()) -> None:
        self.app = app
        self.docs_path = docs_path
        self.chart_paths = chart_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        csp = (DOCS_CSP if scope["path"] == self.docs_path
               else CHART_CSP if scope["path"] in self.chart_paths else PAGE_CSP)
        started = False

        async def send_with_headers(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    headers[name] = value
                headers["Content-Security-Policy"] = csp
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        except Exception:
            # The traceback goes into the message (not exc_info) so the log's privacy filter
            # scrubs it too: an exception's text may quote a value from the data.
            log.error("unexpected error on %s %s\n%s", scope.get("method"), scope["path"],
                      traceback.format_exc().rstrip())
            if started:
                raise
            await error_response(500, "internal_error", INTERNAL_MESSAGE)(
                scope, receive, send_with_headers)
