"""A real, local OpenID Connect provider for the tests, built from Authlib's server parts.

Authorization-code flow with PKCE and client_secret_basic, ID tokens signed with an RSA key
generated per test, discovery and JWKS documents; served over HTTP on 127.0.0.1 by the
standard library's WSGI server in a thread. The "user" who approves is set by the test.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, ClassVar
from urllib.parse import parse_qs
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from authlib.oauth2.rfc6749 import AuthorizationServer, OAuth2Request
from authlib.oauth2.rfc6749.grants import AuthorizationCodeGrant
from authlib.oauth2.rfc6749.requests import BasicOAuth2Payload
from authlib.oauth2.rfc6750 import BearerTokenGenerator
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oidc.core.grants import OpenIDCode
from joserfc.jwk import KeySet, RSAKey

CLIENT_ID = "cswb-test"
CLIENT_SECRET = secrets.token_urlsafe(24)


@dataclass
class Client:
    redirect_uri: str
    client_id: str = CLIENT_ID
    client_secret: str = CLIENT_SECRET

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_allowed_scope(self, scope: str) -> str:
        return " ".join(s for s in scope.split() if s in {"openid", "profile"})

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri == self.redirect_uri

    def check_client_secret(self, client_secret: str) -> bool:
        return secrets.compare_digest(client_secret, self.client_secret)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method == "client_secret_basic"

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code"

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type == "authorization_code"


@dataclass
class Code:
    code: str
    client_id: str
    redirect_uri: str
    scope: str
    user: str
    nonce: str | None
    code_challenge: str | None
    code_challenge_method: str | None
    auth_time: int = field(default_factory=lambda: int(time.time()))

    def get_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope

    def get_nonce(self) -> str | None:
        return self.nonce

    def get_auth_time(self) -> int:
        return self.auth_time

    def get_acr(self) -> None:
        return None

    def get_amr(self) -> None:
        return None


class Request(OAuth2Request):
    def __init__(self, method: str, uri: str, headers: dict[str, str],
                 values: dict[str, str]) -> None:
        super().__init__(method, uri, headers=headers)
        self.payload = BasicOAuth2Payload(values)
        self._values = values

    @property
    def args(self) -> dict[str, str]:
        return self._values

    @property
    def form(self) -> dict[str, str]:
        return self._values


class Grant(AuthorizationCodeGrant):  # type: ignore[misc]
    """The authorization-code grant, keeping its codes on the provider (``self.server``)."""

    TOKEN_ENDPOINT_AUTH_METHODS: ClassVar[list[str]] = ["client_secret_basic"]

    def save_authorization_code(self, code: str, request: Any) -> None:
        data = request.payload.data
        self.server.codes[code] = Code(code, request.client.client_id, data.get("redirect_uri"),
                                       request.scope or "", request.user, data.get("nonce"),
                                       data.get("code_challenge"),
                                       data.get("code_challenge_method"))

    def query_authorization_code(self, code: str, client: Client) -> Code | None:
        found: Code | None = self.server.codes.get(code)
        return found if found and found.client_id == client.client_id else None

    def delete_authorization_code(self, authorization_code: Code) -> None:
        self.server.codes.pop(authorization_code.code, None)

    def authenticate_user(self, authorization_code: Code) -> str:
        return authorization_code.user


class IdToken(OpenIDCode):  # type: ignore[misc]
    """The OpenID Connect extension: signs the ID token with the provider's key."""

    def __init__(self, provider: Provider) -> None:
        super().__init__(require_nonce=True)
        self.provider = provider

    def resolve_client_private_key(self, client: Client) -> RSAKey:
        return self.provider.signing_key

    def get_client_algorithm(self, client: Client) -> str:
        return "RS256"

    def get_encode_header(self, client: Client) -> dict[str, str]:
        return {"alg": "RS256", "kid": "test-1"}

    def get_client_claims(self, client: Client) -> dict[str, Any]:
        return {"iss": self.provider.issuer, "aud": [client.client_id],
                "exp": int(time.time()) + 300}

    def exists_nonce(self, nonce: str, request: Any) -> bool:
        return any(c.nonce == nonce for c in self.provider.codes.values())

    def generate_user_info(self, user: str, scope: str) -> dict[str, str]:
        return {"sub": f"subject-of-{user}", "preferred_username": user}


class Provider(AuthorizationServer):  # type: ignore[misc]
    """The authorization server with its in-memory clients, codes and signing key."""

    def __init__(self, redirect_uri: str) -> None:
        super().__init__(scopes_supported=["openid", "profile"])
        self.client = Client(redirect_uri)
        self.codes: dict[str, Code] = {}
        self.signing_key = RSAKey.generate_key(2048, parameters={"kid": "test-1"})
        self.published_key = self.signing_key
        self.approving_user = "sam.hospital"
        self.issuer = ""
        self.register_grant(Grant, [IdToken(self), CodeChallenge(required=True)])
        self.register_token_generator("default", BearerTokenGenerator(
            lambda *args, **kwargs: secrets.token_urlsafe(32)))

    def query_client(self, client_id: str) -> Client | None:
        return self.client if client_id == self.client.client_id else None

    def save_token(self, token: dict[str, Any], request: Any) -> None:
        return None

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        return None

    def create_oauth2_request(self, request: Request) -> Request:
        return request

    def handle_response(self, status: int, body: Any,
                        headers: Iterable[tuple[str, str]]) -> tuple[int, Any, list[Any]]:
        return status, body, list(headers)

    # --- WSGI ---------------------------------------------------------------
    def __call__(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        path, method = environ["PATH_INFO"], environ["REQUEST_METHOD"]
        values = {k: v[0] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
        if method == "POST":
            size = int(environ.get("CONTENT_LENGTH") or 0)
            body = environ["wsgi.input"].read(size).decode()
            values.update({k: v[0] for k, v in parse_qs(body).items()})
        headers = {k[5:].replace("_", "-").title(): v for k, v in environ.items()
                   if k.startswith("HTTP_")}
        uri = f"{self.issuer}{path}?{environ.get('QUERY_STRING', '')}"
        request = Request(method, uri, headers, values)
        status, body, out = self._route(path, request)
        payload = body if isinstance(body, bytes) else json.dumps(body).encode()
        names = {name.lower() for name, _ in out}
        if "content-type" not in names:
            out.append(("Content-Type", "application/json"))
        start_response(f"{status} X", out)
        return [payload]

    def _route(self, path: str, request: Request) -> tuple[int, Any, list[Any]]:
        if path == "/.well-known/openid-configuration":
            return 200, {"issuer": self.issuer,
                         "authorization_endpoint": f"{self.issuer}/authorize",
                         "token_endpoint": f"{self.issuer}/token",
                         "jwks_uri": f"{self.issuer}/jwks",
                         "response_types_supported": ["code"],
                         "subject_types_supported": ["public"],
                         "id_token_signing_alg_values_supported": ["RS256"]}, []
        if path == "/jwks":
            return 200, KeySet([self.published_key]).as_dict(private=False), []
        if path == "/authorize":
            grant = self.get_consent_grant(request=request, end_user=self.approving_user)
            return self.create_authorization_response(request=request,  # type: ignore[no-any-return]
                                                      grant_user=self.approving_user,
                                                      grant=grant)
        if path == "/token":
            return self.create_token_response(request)  # type: ignore[no-any-return]
        return 404, {"error": "not_found"}, []


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        return None


@dataclass
class RunningProvider:
    provider: Provider
    server: WSGIServer
    issuer: str


def start_provider(redirect_uri: str) -> RunningProvider:
    provider = Provider(redirect_uri)
    server = make_server("127.0.0.1", 0, provider, handler_class=_Quiet)
    provider.issuer = f"http://127.0.0.1:{server.server_port}"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return RunningProvider(provider, server, provider.issuer)
