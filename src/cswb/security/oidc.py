"""OpenID Connect login for agencies with their own identity provider (authorization code
flow with PKCE, Authlib as the OAuth client, joserfc for the ID token).

1. :meth:`OidcClient.begin`: discovery, then a redirect to the provider with ``state``, ``nonce``
   and a PKCE challenge; these travel in a short-lived cookie signed with ``secret_key``.
2. :meth:`OidcClient.finish`: the callback's ``state`` must match the cookie; the code is
   exchanged at the token endpoint; the ID token's signature is checked against the provider's
   published keys, and its issuer, audience, expiry and nonce against what was sent.
3. :func:`user_for_identity`: the identity is an account only if an administrator created it
   (``cswb users create --identity-provider``) in the agency of that provider.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import urlparse

import httpx
from sqlalchemy import select
from sqlalchemy.orm import Session

from cswb.errors import AuthenticationError, ConfigError
from cswb.settings import Settings
from cswb.storage.operational.models import Agency, User

STATE_TTL = 600
ALGORITHMS = ["RS256", "ES256", "PS256"]


@dataclass(frozen=True)
class OidcIdentity:
    issuer: str
    subject: str
    username: str | None


@dataclass(frozen=True)
class LoginStart:
    redirect_url: str
    state_cookie: str


class OidcClient:
    """The relying party: cswb, registered with one agency's provider."""

    def __init__(self, settings: Settings, signing_key: bytes,
                 http: httpx.Client | None = None) -> None:
        missing = [name for name in ("oidc_issuer", "oidc_client_id", "oidc_client_secret",
                                     "oidc_redirect_url", "oidc_agency")
                   if getattr(settings, name) is None]
        if missing:
            raise ConfigError("OpenID Connect login needs " + ", ".join(missing))
        assert settings.oidc_issuer and settings.oidc_client_secret
        self.issuer = settings.oidc_issuer.rstrip("/")
        _require_https(self.issuer, settings)
        self.client_id = str(settings.oidc_client_id)
        self.client_secret = settings.oidc_client_secret.get_secret_value()
        self.redirect_url = str(settings.oidc_redirect_url)
        self.agency = str(settings.oidc_agency)
        self._signing_key = signing_key
        self._http = http or httpx.Client(timeout=10)
        self._metadata: dict[str, Any] | None = None

    def metadata(self) -> dict[str, Any]:
        """The provider's discovery document (fetched once)."""
        if self._metadata is None:
            document = self._get_json(f"{self.issuer}/.well-known/openid-configuration")
            if document.get("issuer", "").rstrip("/") != self.issuer:
                raise AuthenticationError("the identity provider's discovery document names "
                                          "another issuer")
            self._metadata = document
        return self._metadata

    def begin(self) -> LoginStart:
        """Where to send the browser, and the signed cookie to set."""
        from authlib.integrations.httpx_client import OAuth2Client

        state, nonce = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
        verifier = secrets.token_urlsafe(48)
        oauth = OAuth2Client(self.client_id, self.client_secret, scope="openid profile",
                             redirect_uri=self.redirect_url, code_challenge_method="S256")
        url, _ = oauth.create_authorization_url(
            self.metadata()["authorization_endpoint"], state=state, nonce=nonce,
            code_verifier=verifier)
        cookie = self._sign({"state": state, "nonce": nonce, "verifier": verifier,
                             "expires": int(time.time()) + STATE_TTL})
        return LoginStart(url, cookie)

    def finish(self, code: str, state: str, state_cookie: str | None) -> OidcIdentity:
        """Exchange the code and validate the ID token; :class:`AuthenticationError` if not."""
        from authlib.integrations.httpx_client import OAuth2Client
        from authlib.oauth2.rfc6749.errors import OAuth2Error

        started = self._unsign(state_cookie)
        if not hmac.compare_digest(started["state"], state):
            raise AuthenticationError("the login's state does not match; start again")
        oauth = OAuth2Client(self.client_id, self.client_secret, redirect_uri=self.redirect_url,
                             token_endpoint_auth_method="client_secret_basic")
        try:
            token = oauth.fetch_token(self.metadata()["token_endpoint"], code=code,
                                      code_verifier=started["verifier"],
                                      grant_type="authorization_code")
        except (OAuth2Error, httpx.HTTPError) as exc:
            raise AuthenticationError(f"the identity provider refused the code "
                                      f"({exc.__class__.__name__})") from None
        id_token = token.get("id_token")
        if not id_token:
            raise AuthenticationError("the identity provider returned no ID token")
        claims = self.validate_id_token(id_token, started["nonce"])
        return OidcIdentity(str(claims["iss"]), str(claims["sub"]),
                            claims.get("preferred_username"))

    def validate_id_token(self, id_token: str, nonce: str) -> dict[str, Any]:
        """Signature against the provider's keys; issuer, audience, expiry and nonce."""
        from joserfc import jwt
        from joserfc.errors import JoseError
        from joserfc.jwk import KeySet

        keys = KeySet.import_key_set(cast("Any", self._get_json(self.metadata()["jwks_uri"])))
        try:
            decoded = jwt.decode(id_token, keys, algorithms=ALGORITHMS)
            jwt.JWTClaimsRegistry(
                iss={"essential": True, "value": self.issuer},
                aud={"essential": True, "value": self.client_id},
                sub={"essential": True}, exp={"essential": True},
                nonce={"essential": True, "value": nonce}, leeway=60,
            ).validate(decoded.claims)
        except (JoseError, ValueError) as exc:
            raise AuthenticationError(f"the ID token is not valid ({exc.__class__.__name__})"
                                      ) from None
        return dict(decoded.claims)

    def _get_json(self, url: str) -> dict[str, Any]:
        try:
            response = self._http.get(url)
            response.raise_for_status()
            document = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise AuthenticationError(f"the identity provider cannot be reached "
                                      f"({exc.__class__.__name__})") from None
        if not isinstance(document, dict):
            raise AuthenticationError("the identity provider answered with something else")
        return document

    def _sign(self, payload: dict[str, Any]) -> str:
        body = base64.urlsafe_b64encode(json.dumps(payload).encode()).decode()
        return f"{body}.{self._mac(body)}"

    def _unsign(self, cookie: str | None) -> dict[str, Any]:
        body, _, mac = (cookie or "").rpartition(".")
        if not body or not hmac.compare_digest(mac, self._mac(body)):
            raise AuthenticationError("the login was not started here, or its cookie was "
                                      "altered; start again")
        payload: dict[str, Any] = json.loads(base64.urlsafe_b64decode(body))
        if payload.get("expires", 0) < time.time():
            raise AuthenticationError("the login took too long; start again")
        return payload

    def _mac(self, body: str) -> str:
        return hmac.new(self._signing_key, b"oidc\x1f" + body.encode(),
                        hashlib.sha256).hexdigest()


def _require_https(url: str, settings: Settings) -> None:
    parsed = urlparse(url)
    local = parsed.hostname in {"127.0.0.1", "localhost", "::1"}
    if parsed.scheme != "https" and not (local and settings.environment != "production"):
        raise ConfigError("oidc_issuer must be an https URL")


def user_for_identity(session: Session, identity: OidcIdentity, agency_code: str) -> User:
    """The account of this identity: linked already, or created for it by an administrator."""
    user = session.scalars(select(User).where(User.oidc_issuer == identity.issuer,
                                              User.oidc_subject == identity.subject)
                           ).one_or_none()
    if user is None and identity.username:
        user = session.scalars(
            select(User).join(Agency).where(User.username == identity.username,
                                            Agency.code == agency_code,
                                            User.password_hash.is_(None),
                                            User.oidc_subject.is_(None))).one_or_none()
        if user is not None:
            user.oidc_issuer, user.oidc_subject = identity.issuer, identity.subject
    if user is None or user.disabled:
        raise AuthenticationError("no active cswb account for this identity; ask an "
                                  "administrator to create one")
    return user
