"""Costs of the platform's key rotation and cross-process security checks.

    python benchmarks/keys.py [--values 20000] [--verifies 100000] [--logins 50]

Measured in this process, one after the other, on SQLite stores in a temporary folder:

(1) token verification from the cache: ``TokenVerifier`` (baseline, per-process cache only)
    vs ``WatchedTokenVerifier`` (the same plus the revocation counter read at most once a
    second);
(2) a login's rate-limit check in the shared store (``SharedRateLimiter.allow``) vs the
    argon2 password check every login already does (baseline);
(3) the linkage zone: re-sealing values under a new field key (``cswb keys rotate``,
    baseline) vs recomputing their keyed hashes under a new search key (``cswb keys
    rehash``).

Prints CPU seconds (process time) and wall seconds of each, per operation, the ratio to its
baseline, and the machine's load average before and after.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from cswb.domain.cases import AgencyKind, Role
from cswb.linkage.keys import rehash_values, rotate_values
from cswb.linkage.store import open_linkage_store
from cswb.linkage.values import context, value_hash
from cswb.security.accounts import (
    PasswordHasher,
    TokenVerifier,
    create_agency,
    create_user,
    issue_token,
)
from cswb.security.crypto import Keyring, generate_key
from cswb.security.limits import SharedRateLimiter
from cswb.security.principal import SYSTEM, Actor
from cswb.security.runtime import WatchedTokenVerifier
from cswb.settings import Settings, load_settings
from cswb.storage.operational import open_operational_store


def timed(work: Callable[[], object]) -> tuple[float, float]:
    """(CPU seconds, wall seconds) of ``work()``."""
    cpu, wall = time.process_time(), time.perf_counter()
    work()
    return time.process_time() - cpu, time.perf_counter() - wall


def line(name: str, count: int, unit: str, cost: tuple[float, float],
         baseline: tuple[float, float] | None = None) -> None:
    cpu, wall = cost
    text = (f"  {name:<44} {count:>8,} {unit}: CPU {cpu:7.3f} s ({cpu / count * 1e6:9.1f} µs "
            f"each), wall {wall:7.3f} s")
    if baseline is not None:
        text += f"  ratio CPU {cpu / baseline[0]:.2f}, wall {wall / baseline[1]:.2f}"
    print(text)


def tokens(settings: Settings, verifies: int) -> None:
    store = open_operational_store(settings)
    store.upgrade()
    with store.session() as session:
        create_agency(session, "police", "Police", AgencyKind.POLICE)
        user = create_user(session, Actor(SYSTEM, "bench"), "bench.chair",
                           agency_code="police", role=Role.TABLE_CHAIR)
        token = issue_token(session, user, "bearer", settings)
    plain = TokenVerifier(store, 300)
    watched = WatchedTokenVerifier(store, 300, 1.0)
    for verifier in (plain, watched):
        verifier.verify(token)  # fill the cache

    def run(verifier: TokenVerifier) -> Callable[[], None]:
        return lambda: [verifier.verify(token) for _ in range(verifies)] and None

    base = timed(run(plain))
    print("(1) token verification, cached")
    line("TokenVerifier (baseline)", verifies, "verifies", base)
    line("WatchedTokenVerifier (counter read <= 1/s)", verifies, "verifies",
         timed(run(watched)), base)
    store.dispose()


def logins(settings: Settings, count: int) -> None:
    store = open_operational_store(settings)
    limiter = SharedRateLimiter(store, limit=count * 2, key=b"k" * 32)
    hasher = PasswordHasher()
    stored = hasher.hash("correct horse battery staple")
    base = timed(lambda: [hasher.verify(stored, "correct horse battery staple")
                          for _ in range(count)])
    print("(2) login: rate-limit check in the shared store vs the password check")
    line("argon2 password check (baseline)", count, "logins", base)
    line("SharedRateLimiter.allow (SQLite)", count, "logins",
         timed(lambda: [limiter.allow(f"198.51.100.{i % 50}") for i in range(count)]), base)
    store.dispose()


def linkage(settings: Settings, values: int) -> None:
    ring = Keyring.from_settings(settings)
    store = open_linkage_store(settings)
    rows = []
    for i in range(values):
        phone, rid = f"316-555-{i % 9000:04d}", f"R{i}"
        rows.append(("cad", rid, "Caller Phone", "phone", value_hash(ring, phone, "phone"),
                     ring.encrypt(phone, context("cad", rid, "Caller Phone")), ring.current_id,
                     "b1", ring.search_current_id))
    store.write_pending([rows[i:i + 5000] for i in range(0, values, 5000)])
    store.commit_batch("b1")
    new = Keyring.from_settings(settings.model_copy(update={
        "field_keys": {**settings.field_keys, **load_settings(
            field_keys={"k2": generate_key()}).field_keys},
        "field_key_current": "k2",
        "search_keys": load_settings(search_keys={"s1": generate_key()}).search_keys}))
    print("(3) linkage values: re-seal under a new field key vs rehash under a new search key")
    base = timed(lambda: rotate_values(store, new))
    line("cswb keys rotate, linkage values (baseline)", values, "values", base)
    line("cswb keys rehash, linkage values", values, "values",
         timed(lambda: rehash_values(store, new)), base)
    store.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--values", type=int, default=20_000)
    parser.add_argument("--verifies", type=int, default=100_000)
    parser.add_argument("--logins", type=int, default=50)
    args = parser.parse_args()
    print(f"load average before: {' '.join(f'{v:.2f}' for v in os.getloadavg())} "
          f"({os.cpu_count()} cores)")
    with tempfile.TemporaryDirectory() as folder:
        settings = load_settings(environment="test", data_dir=Path(folder),
                                 field_keys={"k1": generate_key()}, search_key=generate_key(),
                                 secret_key=generate_key())
        tokens(settings, args.verifies)
        logins(settings, args.logins)
        linkage(settings, args.values)
    print(f"load average after: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
