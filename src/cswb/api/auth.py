"""``/api/v1/auth`` (login, logout, who am I) and ``/api/v1/users`` (administrators)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response, status

from cswb.api.case_models import LoginIn, MeOut, TokenOut, UserIn, UserListOut, UserOut
from cswb.api.errors import error_response
from cswb.api.models import ErrorResponse
from cswb.api.security import CurrentActor, PlatformDep, client_address
from cswb.errors import AuthenticationError
from cswb.security import accounts
from cswb.security.runtime import Platform
from cswb.storage.operational.models import User

_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse, "description": text} for code, text in (
        (400, "Invalid input."), (401, "Unknown user or password, locked or disabled account."),
        (403, "Your role may not do this."), (413, "Request too large."),
        (422, "Invalid parameters."), (429, "Too many login attempts from your address."))}

router = APIRouter(prefix="/api/v1", tags=["accounts"], responses=_ERRORS)


def login_user(platform: Platform, username: str, password: str, source: str,
               kind: str) -> str:
    """Check a password (counting failures) and issue a token of ``kind``."""
    with platform.store.session() as session:
        result = accounts.check_password(session, platform.settings, username, password, source)
        token = accounts.issue_token(session, result.user, kind, platform.settings) \
            if result.user is not None else None
    if token is None:
        raise AuthenticationError(f"login refused: {result.problem}")
    return token


@router.post("/auth/login")
def login(body: LoginIn, request: Request, platform: PlatformDep) -> Any:
    """Exchange a username and password for a bearer token."""
    source = client_address(request)
    if not platform.login_limiter.allow(source):
        return error_response(429, "too_many_requests", "too many login attempts from your "
                              "address; wait a minute", headers={"Retry-After": "60"})
    token = login_user(platform, body.username, body.password, source, "bearer")
    return TokenOut(token=token, expires_in=int(platform.settings.session_hours * 3600))


@router.post("/auth/logout", status_code=status.HTTP_204_NO_CONTENT)
def logout(request: Request, actor: CurrentActor, platform: PlatformDep) -> Response:
    """Revoke the token (or session) this request was made with."""
    token = request.headers.get("authorization", "").partition(" ")[2] \
        or request.cookies.get("cswb_session", "")
    with platform.store.session() as session:
        accounts.revoke_token(session, token)
    platform.tokens.forget(token)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/auth/me")
def me(actor: CurrentActor) -> MeOut:
    principal = actor.principal
    return MeOut(username=principal.username, agency=principal.agency_code, role=principal.role)


@router.get("/users")
def list_users(actor: CurrentActor, platform: PlatformDep) -> UserListOut:
    with platform.store.session() as session:
        return UserListOut(users=[_user_out(u) for u in accounts.list_users(session, actor)])


@router.post("/users", status_code=status.HTTP_201_CREATED)
def create_user(body: UserIn, actor: CurrentActor, platform: PlatformDep) -> UserOut:
    with platform.store.session() as session:
        return _user_out(accounts.create_user(session, actor, body.username,
                                              agency_code=body.agency, role=body.role,
                                              password=body.password))


def _user_out(user: User) -> UserOut:
    return UserOut(username=user.username, agency=user.agency.code, role=user.role,
                   disabled=user.disabled,
                   login="password" if user.password_hash else "identity_provider")
