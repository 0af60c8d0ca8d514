"""What a running server needs from the platform: store, keyring, token checks (with the
revocation watch), login rate limits shared across processes and the audit sealer, built
once per app from the settings."""

from __future__ import annotations

import threading

from cswb.audit import seal_pending
from cswb.logging import get_logger
from cswb.security.accounts import TokenVerifier
from cswb.security.crypto import Keyring
from cswb.security.limits import SharedRateLimiter
from cswb.security.oidc import OidcClient
from cswb.security.principal import Principal
from cswb.security.revocation import RevocationWatch
from cswb.settings import Settings
from cswb.storage.operational import OperationalStore, open_operational_store

log = get_logger("security")


class WatchedTokenVerifier(TokenVerifier):
    """A token verifier whose cache is emptied when a revocation happened in any process."""

    def __init__(self, store: OperationalStore, cache_seconds: float,
                 check_seconds: float) -> None:
        super().__init__(store, cache_seconds)
        self.watch = RevocationWatch(store, check_seconds, self.forget_all)

    def verify(self, token: str) -> Principal:
        self.watch.check()
        return super().verify(token)

    def cached(self, token: str) -> Principal | None:
        # a cached answer only while the counter was read recently; else verify() reads it
        if self.watch.due():
            return None
        return super().cached(token)


class AuditSealer:
    """A background thread chaining new audit entries every ``interval`` seconds."""

    def __init__(self, store: OperationalStore, interval: float) -> None:
        self.store, self.interval = store, interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="cswb-audit-sealer", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        seal_pending(self.store)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                seal_pending(self.store, wait=False)
            except Exception as exc:  # the next round retries; the failure is logged
                log.error("audit sealer failed: %s", exc.__class__.__name__)


class Platform:
    """The operational platform of one app."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.store = open_operational_store(settings, pool_size=20)
        self.keyring = Keyring.from_settings(settings)
        self.sealer = AuditSealer(self.store, settings.audit_seal_seconds)
        secret = settings.secret_key
        self.csrf_key = secret.get_secret_value().encode() if secret else self.keyring.search_key
        self.login_limiter = SharedRateLimiter(self.store, settings.login_rate_per_minute,
                                               key=self.csrf_key)
        self.tokens = WatchedTokenVerifier(self.store, settings.token_cache_seconds,
                                           settings.token_revocation_check_seconds)
        self.oidc: OidcClient | None = None

    def start(self) -> None:
        """Bring the schema to the latest migration and start the sealer."""
        self.store.upgrade()
        self.sealer.start()

    def stop(self) -> None:
        self.sealer.stop()
        self.store.dispose()
