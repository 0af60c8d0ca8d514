"""Web login (password form or the agency's identity provider), logout and "My cases".

Forms carry a CSRF token: before login, a random value in a cookie and the form (double
submit); after login, an HMAC of the session token (:func:`cswb.api.security.csrf_token`).
Session cookies are HttpOnly and SameSite=Strict.
"""

from __future__ import annotations

import hmac
import secrets
from typing import Annotated
from urllib.parse import parse_qs

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from cswb.api.auth import login_user
from cswb.api.security import (
    SESSION_COOKIE,
    client_address,
    csrf_token,
    platform_of,
    session_token_of,
)
from cswb.cases import service
from cswb.errors import AuthenticationError, PermissionDeniedError
from cswb.security import accounts
from cswb.security.oidc import OidcClient, user_for_identity
from cswb.security.principal import Actor
from cswb.security.runtime import Platform

router = APIRouter(include_in_schema=False)

LOGIN_CSRF_COOKIE = "cswb_login_csrf"
OIDC_COOKIE = "cswb_oidc"


async def _form(request: Request) -> dict[str, str]:
    body = (await request.body()).decode("utf-8", errors="replace")
    return {key: values[0] for key, values in parse_qs(body).items()}


def _secure(request: Request, platform: Platform) -> bool:
    return request.url.scheme == "https" or platform.settings.environment == "production"


def _login_page(request: Request, message: str | None = None, status: int = 200) -> Response:
    platform = platform_of(request)
    token = secrets.token_urlsafe(24)
    response = request.app.state.templates.TemplateResponse(
        request, "login.html", {"active": "cases", "csrf": token, "message": message,
                                "oidc": platform.settings.oidc_issuer is not None},
        status_code=status)
    response.set_cookie(LOGIN_CSRF_COOKIE, token, httponly=True, samesite="strict",
                        secure=_secure(request, platform), max_age=3600)
    return response


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request) -> Response:
    return _login_page(request)


@router.post("/login")
async def login(request: Request) -> Response:
    platform = platform_of(request)
    form = await _form(request)
    expected = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not expected or not hmac.compare_digest(form.get("csrf_token", ""), expected):
        raise PermissionDeniedError("the login form expired or did not come from this site; "
                                    "reload it")
    if not platform.login_limiter.allow(client_address(request)):
        return _login_page(request, "Too many attempts from your address; wait a minute.", 429)
    try:
        token = login_user(platform, form.get("username", "")[:120],
                           form.get("password", "")[:1000], client_address(request), "session")
    except AuthenticationError as exc:
        return _login_page(request, str(exc).removeprefix("login refused: ").capitalize()
                           + ".", 401)
    return _signed_in(request, platform, token)


def _signed_in(request: Request, platform: Platform, token: str) -> Response:
    response = RedirectResponse("/cases", status_code=303)
    response.set_cookie(SESSION_COOKIE, token, httponly=True, samesite="strict",
                        secure=_secure(request, platform),
                        max_age=int(platform.settings.session_hours * 3600))
    response.delete_cookie(LOGIN_CSRF_COOKIE)
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    platform = platform_of(request)
    token = session_token_of(request)
    form = await _form(request)
    if token and not hmac.compare_digest(form.get("csrf_token", ""),
                                         csrf_token(platform, token)):
        raise PermissionDeniedError("the logout form did not come from this site")
    if token:
        with platform.store.session() as session:
            accounts.revoke_token(session, token)
        platform.tokens.forget(token)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE)
    return response


@router.get("/cases", response_class=HTMLResponse)
def my_cases(request: Request) -> Response:
    """Cases of the signed-in user's agency (de-identified)."""
    platform = platform_of(request)
    token = session_token_of(request)
    try:
        principal = platform.tokens.verify(token or "")
    except AuthenticationError:
        return RedirectResponse("/login", status_code=303)
    actor = Actor(principal, client_address(request))
    with platform.store.session() as session:
        cases = service.list_cases(session, actor) if _may_list(actor) else []
        rows = [{"id": c.id, "status": c.status, "subject_type": c.subject_type,
                 "opened_at": c.opened_at, "version": c.version} for c in cases]
    return request.app.state.templates.TemplateResponse(
        request, "cases.html", {"active": "cases", "cases": rows, "user": principal,
                                "csrf": csrf_token(platform, token or "")})


def _may_list(actor: Actor) -> bool:
    from cswb.security.policy import Action, is_allowed

    return is_allowed(actor.principal, Action.CASE_LIST)


def _oidc(platform: Platform) -> OidcClient:
    client: OidcClient | None = getattr(platform, "oidc", None)
    if client is None:
        client = OidcClient(platform.settings, platform.csrf_key)
        platform.oidc = client
    return client


@router.get("/auth/oidc/login")
def oidc_login(request: Request) -> Response:
    """Send the browser to the agency's identity provider."""
    platform = platform_of(request)
    start = _oidc(platform).begin()
    response = RedirectResponse(start.redirect_url, status_code=303)
    response.set_cookie(OIDC_COOKIE, start.state_cookie, httponly=True, samesite="lax",
                        secure=_secure(request, platform), max_age=600)
    return response


@router.get("/auth/oidc/callback")
def oidc_callback(request: Request, code: Annotated[str, Query(max_length=2000)],
                  state: Annotated[str, Query(max_length=200)]) -> Response:
    """The provider's redirect back: validate, find the account, open a session."""
    platform = platform_of(request)
    identity = _oidc(platform).finish(code, state, request.cookies.get(OIDC_COOKIE))
    with platform.store.session() as session:
        user = user_for_identity(session, identity, _oidc(platform).agency)
        from cswb.audit import record

        record(session, Actor(accounts.principal_of(user), client_address(request),
                              "identity provider"), "auth.login", "user", str(user.id))
        token = accounts.issue_token(session, user, "session", platform.settings)
    response = _signed_in(request, platform, token)
    response.delete_cookie(OIDC_COOKIE)
    return response
