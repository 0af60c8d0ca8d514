"""Who is calling: bearer tokens (API) and session cookies (web), CSRF, request size limits.

Every platform route depends on :func:`current_actor`; there is no route that reads a case
without it. Authorisation itself is :mod:`cswb.security.policy`, applied by the services.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Annotated

from fastapi import Depends, Header, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cswb.api.errors import error_response
from cswb.audit import record
from cswb.errors import AuthenticationError, NotFoundError, PermissionDeniedError
from cswb.security.principal import Actor
from cswb.security.runtime import Platform

SESSION_COOKIE = "cswb_session"
CSRF_HEADER = "X-CSRF-Token"
BASIS_HEADER = "X-Access-Basis"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def platform_of(request: Request) -> Platform:
    platform: Platform = request.app.state.platform
    return platform


async def _platform(request: Request) -> Platform:
    # A coroutine, so FastAPI resolves it on the event loop: a plain function dependency would
    # cost a hop to the thread pool (and back) on every request.
    return platform_of(request)


PlatformDep = Annotated[Platform, Depends(_platform)]


def client_address(request: Request) -> str:
    return request.client.host if request.client else ""


def csrf_token(platform: Platform, session_token: str) -> str:
    """The CSRF token of a web session: an HMAC of the session token under ``secret_key``."""
    return hmac.new(platform.csrf_key, b"csrf\x1f" + session_token.encode(),
                    hashlib.sha256).hexdigest()


def session_token_of(request: Request) -> str | None:
    return request.cookies.get(SESSION_COOKIE)


async def current_actor(request: Request, platform: PlatformDep,
                        basis: Annotated[str | None, Header(
                            alias=BASIS_HEADER, max_length=200,
                            description="Why you need this access (required to read "
                            "identifying details; recorded in the audit log).")] = None) -> Actor:
    """The authenticated caller, from ``Authorization: Bearer`` or the session cookie.

    A coroutine: a token verified in the last ``token_cache_seconds`` is answered from the
    verifier's cache on the event loop; only a look-up in the database goes to the thread pool.
    """
    token = _token_of(request, platform)
    principal = platform.tokens.cached(token)
    if principal is None:
        principal = await run_in_threadpool(platform.tokens.verify, token)
    actor = Actor(principal, client_address(request), basis or "")
    request.state.actor = actor
    return actor


def _token_of(request: Request, platform: Platform) -> str:
    """The bearer token or session cookie sent (CSRF-checked for a cookie on a change)."""
    authorization = request.headers.get("authorization", "")
    if authorization:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise AuthenticationError("use Authorization: Bearer <token>")
        return token.strip()
    token = session_token_of(request) or ""
    if not token:
        raise AuthenticationError("log in first (POST /api/v1/auth/login)")
    if request.method not in SAFE_METHODS:
        sent = request.headers.get(CSRF_HEADER, "")
        if not hmac.compare_digest(sent, csrf_token(platform, token)):
            raise PermissionDeniedError(f"a cookie session must send the {CSRF_HEADER} "
                                        "header with every change")
    return token.strip()


CurrentActor = Annotated[Actor, Depends(current_actor)]


async def optional_actor(request: Request, platform: PlatformDep) -> Actor | None:
    """The caller when they sent a token or session cookie (checked as for
    :func:`current_actor`: a bad one is refused, never taken as anonymous), else None."""
    if not request.headers.get("authorization") and not session_token_of(request):
        return None
    return await current_actor(request, platform)


OptionalActor = Annotated[Actor | None, Depends(optional_actor)]


def audit_refusal(request: Request, exc: Exception) -> JSONResponse:
    """Answer a refusal in the error shape, and audit it when the caller is known.

    A refused attempt (a role that may not, or a case of an agency not involved) rolls back the
    request's own transaction, so it is recorded here in a transaction of its own.
    """
    assert isinstance(exc, PermissionDeniedError | NotFoundError)
    actor: Actor | None = getattr(request.state, "actor", None)
    route = request.scope.get("route")
    if actor is not None and route is not None:
        outcome = "denied" if isinstance(exc, PermissionDeniedError) else "not_found"
        with platform_of(request).store.session() as session:
            record(session, actor, f"{request.method} {getattr(route, 'path', '')}"[:60],
                   "request", request.path_params.get("case_id"), outcome=outcome)
    status = 403 if isinstance(exc, PermissionDeniedError) else 404
    return error_response(status, exc.code, str(exc))


def unauthenticated(request: Request, exc: Exception) -> JSONResponse:
    """401 in the error shape, telling the client which scheme to use."""
    assert isinstance(exc, AuthenticationError)
    return error_response(401, exc.code, str(exc), headers={"WWW-Authenticate": "Bearer"})


class BodyLimitMiddleware:
    """Refuse request bodies larger than ``limit`` bytes with 413 (declared or streamed)."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.limit):
            await self._too_large(scope, receive, send)
            return
        if scope.get("method") in SAFE_METHODS:
            await self.app(scope, receive, send)
            return
        # Read the whole body first (it is small by definition) so an oversized stream is
        # refused before any handler sees it, then replay it.
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                await self.app(scope, receive, send)  # disconnect: let the app see it
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limit:
                await self._too_large(scope, receive, send)
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        await error_response(413, "request_too_large", f"the request body is larger than "
                             f"{self.limit:,} bytes")(scope, receive, send)
