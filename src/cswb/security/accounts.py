"""Agencies, users, passwords, sessions and bearer tokens.

Passwords are hashed with argon2id (argon2-cffi) and checked only at login. A login issues a
random token ``cswb_<prefix>_<secret>``; the database keeps the prefix and the SHA-256 of the
secret, so a stolen database yields no usable token. Checking a token is a look-up by prefix
and one hash comparison, and the result is cached for ``token_cache_seconds``.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from cswb.audit import record
from cswb.domain.cases import AgencyKind, Role
from cswb.errors import AuthenticationError, InvalidInputError, NotFoundError
from cswb.security.policy import Action, authorize
from cswb.security.principal import Actor, Principal
from cswb.security.revocation import raise_revocation_epoch
from cswb.settings import Settings
from cswb.storage.operational import OperationalStore
from cswb.storage.operational.models import Agency, AuthToken, User, utcnow

TOKEN_SCHEME = "cswb"
MIN_PASSWORD = 12
_hasher = PasswordHasher()
_DUMMY_HASH = _hasher.hash("not a real password, used to time unknown users alike")


def create_agency(session: Session, code: str, name: str, kind: AgencyKind) -> Agency:
    """Register a member agency."""
    if session.scalars(select(Agency).where(Agency.code == code)).first() is not None:
        raise InvalidInputError(f"agency {code!r} already exists")
    agency = Agency(code=code, name=name, kind=kind.value)
    session.add(agency)
    session.flush()
    return agency


def agency_by_code(session: Session, code: str) -> Agency:
    agency = session.scalars(select(Agency).where(Agency.code == code)).one_or_none()
    if agency is None:
        raise NotFoundError(f"no agency with code {code!r}")
    return agency


def create_user(session: Session, actor: Actor, username: str, *, agency_code: str, role: Role,
                password: str | None = None) -> User:
    """Create an account (local password, or none for an identity-provider login)."""
    authorize(actor.principal, Action.USERS_MANAGE)
    if password is not None and len(password) < MIN_PASSWORD:
        raise InvalidInputError(f"a password needs at least {MIN_PASSWORD} characters")
    if session.scalars(select(User).where(User.username == username)).first() is not None:
        raise InvalidInputError(f"user {username!r} already exists")
    user = User(username=username, agency_id=agency_by_code(session, agency_code).id,
                role=role.value, password_hash=_hasher.hash(password) if password else None,
                disabled=False, failed_logins=0)
    session.add(user)
    session.flush()
    record(session, actor, "user.create", "user", str(user.id), fields=("role",))
    return user


def list_users(session: Session, actor: Actor) -> Sequence[User]:
    authorize(actor.principal, Action.USERS_MANAGE)
    return session.scalars(select(User).order_by(User.username)).all()


def disable_user(session: Session, actor: Actor, username: str) -> User:
    """Disable an account and revoke its sessions and tokens."""
    authorize(actor.principal, Action.USERS_MANAGE)
    user = session.scalars(select(User).where(User.username == username)).one_or_none()
    if user is None:
        raise NotFoundError(f"no user {username!r}")
    user.disabled = True
    session.execute(update(AuthToken).where(AuthToken.user_id == user.id,
                                            AuthToken.revoked_at.is_(None))
                    .values(revoked_at=utcnow()))
    raise_revocation_epoch(session)
    record(session, actor, "user.disable", "user", str(user.id))
    return user


def principal_of(user: User) -> Principal:
    return Principal(user.id, user.username, user.agency_id, user.agency.code, Role(user.role))


@dataclass(frozen=True)
class LoginResult:
    user: User | None
    problem: str | None = None


def check_password(session: Session, settings: Settings, username: str, password: str,
                   source: str = "") -> LoginResult:
    """Check a login; count failures and lock the account after too many.

    The caller commits the session whatever the result (failure counts must stick).
    """
    user = session.scalars(select(User).where(User.username == username)
                           .with_for_update(of=User)).one_or_none()
    now = utcnow()
    if user is None or user.password_hash is None:
        _verify(_DUMMY_HASH, password)
        return _failed(session, None, username, source, "unknown user or password")
    if user.disabled:
        return _failed(session, user, username, source, "account disabled")
    if user.locked_until is not None and user.locked_until > now:
        return _failed(session, user, username, source, "account locked after repeated "
                       "failures; try again later")
    if not _verify(user.password_hash, password):
        user.failed_logins += 1
        if user.failed_logins >= settings.login_max_failures:
            user.locked_until = now + timedelta(seconds=settings.login_lockout_seconds)
            user.failed_logins = 0
        return _failed(session, user, username, source, "unknown user or password")
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
    user.failed_logins, user.locked_until = 0, None
    record(session, Actor(principal_of(user), source), "auth.login", "user", str(user.id))
    return LoginResult(user)


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def _failed(session: Session, user: User | None, username: str, source: str,
            problem: str) -> LoginResult:
    who = Principal(user.id if user else None, user.username if user else "(unknown user)",
                    user.agency_id if user else None, None, Role.PUBLIC)
    record(session, Actor(who, source), "auth.login", "user", str(user.id) if user else None,
           outcome="denied")
    return LoginResult(None, problem)


def issue_token(session: Session, user: User, kind: str, settings: Settings) -> str:
    """A new session (``kind='session'``) or bearer (``'bearer'``) token for ``user``."""
    prefix, secret = secrets.token_hex(6), secrets.token_urlsafe(32)
    session.add(AuthToken(user_id=user.id, prefix=prefix, token_hash=_digest(secret), kind=kind,
                          expires_at=utcnow() + timedelta(hours=settings.session_hours)))
    session.flush()
    return f"{TOKEN_SCHEME}_{prefix}_{secret}"


def revoke_token(session: Session, token: str) -> None:
    prefix, _secret = _split(token)
    session.execute(update(AuthToken).where(AuthToken.prefix == prefix)
                    .values(revoked_at=utcnow()))
    raise_revocation_epoch(session)


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("ascii")).hexdigest()


def _split(token: str) -> tuple[str, str]:
    parts = token.split("_", 2)
    if len(parts) != 3 or parts[0] != TOKEN_SCHEME or len(parts[1]) != 12 or not parts[2]:
        raise AuthenticationError("the token is not a cswb token")
    return parts[1], parts[2]


class TokenVerifier:
    """Checks session and bearer tokens; a verified token is cached for a short while."""

    def __init__(self, store: OperationalStore, cache_seconds: float) -> None:
        self.store = store
        self.cache_seconds = cache_seconds
        self._cache: dict[str, tuple[Principal, float, datetime]] = {}
        self._lock = threading.Lock()
        self._generation = 0  # moved by forget_all: a look-up begun before is not cached

    def verify(self, token: str) -> Principal:
        """The principal of a valid token; :class:`AuthenticationError` otherwise."""
        prefix, secret = _split(token)
        key = _digest(token)
        now = time.monotonic()
        with self._lock:
            generation = self._generation
        principal = self.cached(token)
        if principal is not None:
            return principal
        principal, expires = self._look_up(prefix, secret)
        with self._lock:
            if len(self._cache) > 10_000:
                self._cache.clear()
            if generation == self._generation:
                self._cache[key] = (principal, now + self.cache_seconds, expires)
        return principal

    def cached(self, token: str) -> Principal | None:
        """The principal of ``token`` if it was verified less than ``cache_seconds`` ago and
        has not expired since; None means "ask :meth:`verify`" (no database access here)."""
        with self._lock:
            cached = self._cache.get(_digest(token))
        if cached and cached[1] > time.monotonic() and cached[2] > utcnow():
            return cached[0]
        return None

    def forget(self, token: str) -> None:
        with self._lock:
            self._cache.pop(_digest(token), None)

    def forget_all(self) -> None:
        """Empty the cache (a revocation happened somewhere)."""
        with self._lock:
            self._cache.clear()
            self._generation += 1

    def _look_up(self, prefix: str, secret: str) -> tuple[Principal, datetime]:
        with self.store.sessions() as session:
            found = session.execute(select(AuthToken, User).join(User)
                                    .where(AuthToken.prefix == prefix)).one_or_none()
            if found is None:
                raise AuthenticationError("unknown or expired token; log in again")
            token, user = found
            if not hmac.compare_digest(token.token_hash, _digest(secret)) \
                    or token.revoked_at is not None or token.expires_at <= utcnow() \
                    or user.disabled:
                raise AuthenticationError("unknown or expired token; log in again")
            return principal_of(user), token.expires_at
