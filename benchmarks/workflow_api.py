"""Workflow API benchmark: case reads and writes through the real API vs a bare endpoint.

    python benchmarks/workflow_api.py [--seconds 20] [--clients 20] [--cases 200]

On PostgreSQL (127.0.0.1:5432; ``--admin-url`` to change) it creates a scratch database, seeds
agencies, users and cases with encrypted identifying details, then runs the same closed-loop
load — ``--clients`` concurrent clients without think time, 80% reads and 20% writes of random
cases, for ``--seconds`` — against two servers, each a separate uvicorn process on 127.0.0.1:

(a) **cswb**: the real API with bearer-token authentication, the authorisation policy, audit
    entries (reads of identifying details included, sealed by the server's sealer) and field
    decryption. Reads alternate ``GET /cases/{id}`` and ``GET /cases/{id}/identity``; writes
    are ``PATCH /cases/{id}`` with the version last read (409 = an expected conflict).
(b) **bare**: a FastAPI endpoint doing the same database work with plain SQL (read the case,
    its agencies and its identity row; update the summary with a version check), no
    authentication, authorisation, audit or decryption.

It prints requests/s, p50, p95, errors and conflicts for both, and the ratio of the p95s.
Targets (issue 5): p95 under 100 ms, at most 2x the bare p95, no errors but conflicts.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from pydantic import BaseModel

TARGET_P95_MS = 100.0
TARGET_RATIO = 2.0
HERE = Path(__file__).resolve().parent


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--cases", type=int, default=200)
    parser.add_argument("--admin-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    parser.add_argument("--child", choices=["real", "bare"], help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


# -- the two servers ---------------------------------------------------------------------------


class Edit(BaseModel):
    """Body of the bare endpoint's write."""

    version: int
    summary: str


def bare_app(url: str) -> object:
    """The same database work as the real routes, with plain SQL and nothing else."""
    from fastapi import FastAPI
    from fastapi.responses import JSONResponse
    from sqlalchemy import create_engine, text

    engine = create_engine(url, pool_size=20, max_overflow=20)
    app = FastAPI()

    @app.get("/bare/cases/{case_id}")
    def read(case_id: str) -> dict[str, object]:
        with engine.begin() as con:
            row = con.execute(text("SELECT id, status, summary, version FROM cases "
                                   "WHERE id = :id"), {"id": case_id}).one()
            agencies = con.execute(text("SELECT agency_id, involvement FROM case_agencies "
                                        "WHERE case_id = :id"), {"id": case_id}).all()
            identity = con.execute(text("SELECT name_ct, date_of_birth_ct, address_ct FROM "
                                        "case_identities WHERE case_id = :id"),
                                   {"id": case_id}).one_or_none()
        return {"id": row.id, "status": row.status, "summary": row.summary,
                "version": row.version, "agencies": [list(a) for a in agencies],
                "identity": list(identity) if identity else None}

    @app.patch("/bare/cases/{case_id}", response_model=None)
    def write(case_id: str, edit: Edit) -> object:
        with engine.begin() as con:
            updated = con.execute(text(
                "UPDATE cases SET summary = :s, version = version + 1, updated_at = now() "
                "WHERE id = :id AND version = :v RETURNING version"),
                {"s": edit.summary, "id": case_id, "v": edit.version}).one_or_none()
        if updated is None:
            return JSONResponse({"error": "conflict"}, status_code=409)
        return {"id": case_id, "version": updated[0]}

    return app


def run_child(args: argparse.Namespace) -> None:
    import uvicorn

    if args.child == "bare":
        app = bare_app(os.environ["CSWB_OPERATIONAL_URL"])
    else:
        from cswb.api import create_app
        from cswb.settings import load_settings

        app = create_app(load_settings())
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="error", access_log=False)  # type: ignore[arg-type]


# -- setup -------------------------------------------------------------------------------------


def create_database(admin_url: str) -> str:
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    name = f"cswb_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as con:
        con.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return make_url(admin_url).set(database=name).render_as_string(hide_password=False)


def drop_database(admin_url: str, url: str) -> None:
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as con:
        con.execute(text(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)'))
    admin.dispose()


def environment(url: str, workdir: Path) -> dict[str, str]:
    from cswb.security.crypto import generate_key

    return {"CSWB_ENVIRONMENT": "test", "CSWB_OPERATIONAL_URL": url,
            "CSWB_DATA_DIR": str(workdir), "CSWB_FIELD_KEYS": json.dumps({"k1": generate_key()}),
            "CSWB_SEARCH_KEY": generate_key(), "CSWB_SECRET_KEY": generate_key(),
            "CSWB_LOG_LEVEL": "ERROR"}


def seed(env: dict[str, str], cases: int, clients: int) -> tuple[list[str], list[str]]:
    """Agencies, users, cases with identities; return the case ids and one token per client."""
    from cswb.cases import service
    from cswb.domain.cases import AgencyKind, CaseStatus, Role, SubjectType
    from cswb.security import accounts
    from cswb.security.crypto import Keyring
    from cswb.security.principal import SYSTEM, Actor
    from cswb.settings import load_settings
    from cswb.storage.operational import open_operational_store

    saved = dict(os.environ)
    os.environ.update(env)
    try:
        settings = load_settings()
    finally:
        os.environ.clear()
        os.environ.update(saved)
    store = open_operational_store(settings)
    store.upgrade()
    keyring = Keyring.from_settings(settings)
    admin = Actor(SYSTEM, "benchmark")
    with store.session() as session:
        accounts.create_agency(session, "police", "Riverton Police", AgencyKind.POLICE)
        accounts.create_agency(session, "housing", "Riverton Housing", AgencyKind.HOUSING)
        users = [accounts.create_user(session, admin, f"rep{i}", agency_code="police",
                                      role=Role.TABLE_CHAIR if i == 0
                                      else Role.AGENCY_REPRESENTATIVE) for i in range(4)]
        tokens = [accounts.issue_token(session, users[i % 4], "bearer", settings)
                  for i in range(clients)]
        chair = Actor(accounts.principal_of(users[0]), "benchmark")
    ids = []
    for i in range(cases):
        with store.session() as session:
            case = service.open_case(session, chair, SubjectType.PERSON, "repeated crises")
            service.change_status(session, chair, case.id, expected_version=case.version,
                                  target=CaseStatus.AER)
            service.set_identity(session, chair, keyring, case.id, service.Identity(
                f"Person {i}", date(1970 + i % 40, 1 + i % 12, 1 + i % 28), f"{i} Elm Rd"))
            ids.append(case.id)
    store.dispose()
    return ids, tokens


# -- load --------------------------------------------------------------------------------------


@dataclass
class Tally:
    latencies: list[float] = field(default_factory=list)
    by_kind: dict[str, list[float]] = field(default_factory=dict)
    server_cpu: float = 0.0
    database_cpu: float = 0.0
    errors: int = 0
    conflicts: int = 0
    error_kinds: dict[str, int] = field(default_factory=dict)


async def client_loop(base: str, paths: dict[str, str], token: str | None, cases: list[str], *,
                      deadline: float, tally: Tally, rng: random.Random) -> None:
    import httpx

    headers = {"Authorization": f"Bearer {token}", "X-Access-Basis": "benchmark"} \
        if token else {}
    versions: dict[str, int] = {}
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=30) as http:
        n = 0
        while time.monotonic() < deadline:
            case_id = rng.choice(cases)
            n += 1
            started = time.perf_counter()
            if rng.random() < 0.8:
                kind = "read" if n % 2 or "identity" not in paths else "identity"
                response = await http.get(paths[kind].format(id=case_id))
                if response.status_code == 200 and "version" in response.json():
                    versions[case_id] = response.json()["version"]
            else:
                kind = "write"
                response = await http.patch(paths["write"].format(id=case_id), json={
                    "version": versions.get(case_id, 2), "summary": f"edit {n}"})
                if response.status_code == 200:
                    versions[case_id] = response.json()["version"]
            tally.latencies.append(time.perf_counter() - started)
            tally.by_kind.setdefault(kind, []).append(tally.latencies[-1])
            if response.status_code == 409:
                tally.conflicts += 1
                versions.pop(case_id, None)
            elif response.status_code >= 400:
                tally.errors += 1
                key = str(response.status_code)
                tally.error_kinds[key] = tally.error_kinds.get(key, 0) + 1


async def run_load(base: str, paths: dict[str, str], tokens: list[str | None],
                   cases: list[str], seconds: float) -> tuple[Tally, float]:
    tally = Tally()
    started = time.monotonic()
    deadline = started + seconds
    await asyncio.gather(*(client_loop(base, paths, token, cases, deadline=deadline, tally=tally,
                                       rng=random.Random(i)) for i, token in enumerate(tokens)))
    return tally, time.monotonic() - started


def start_server(kind: str, env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    import httpx

    process = subprocess.Popen([sys.executable, __file__, "--child", kind, "--port", str(port)],
                               env={**os.environ, **env})
    probe = "/api/v1/health" if kind == "real" else "/docs"
    for _ in range(300):
        try:
            if httpx.get(f"http://127.0.0.1:{port}{probe}").status_code == 200:
                return process
        except httpx.HTTPError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"the {kind} server did not start")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def database_cpu(url: str) -> dict[int, float]:
    """CPU seconds so far of each PostgreSQL backend serving the benchmark's database.

    Backends are read from ``pg_stat_activity`` (PostgreSQL runs on this machine); a backend
    that exited during the run is not counted, so this is a lower bound.
    """
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url
    from sqlalchemy.pool import NullPool

    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as con:
            own = con.execute(text("SELECT pg_backend_pid()")).scalar_one()
            pids = con.execute(text("SELECT pid FROM pg_stat_activity WHERE datname = :db"),
                               {"db": make_url(url).database}).scalars().all()
    finally:
        engine.dispose()
    seconds = {}
    for pid in pids:
        if pid != own:
            try:
                seconds[pid] = cpu_seconds(pid)
            except (FileNotFoundError, ProcessLookupError, PermissionError):
                continue
    return seconds


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000 if ordered else 0.0


def report(name: str, tally: Tally, elapsed: float) -> float:
    p95 = percentile(tally.latencies, 0.95)
    print(f"{name:5} {len(tally.latencies) / elapsed:8.0f} req/s   p50 "
          f"{percentile(tally.latencies, 0.5):6.1f} ms   p95 {p95:6.1f} ms   "
          f"errors {tally.errors} {tally.error_kinds or ''}  conflicts {tally.conflicts}  "
          f"({len(tally.latencies):,} requests in {elapsed:.1f} s; server CPU "
          f"{tally.server_cpu / max(1, len(tally.latencies)) * 1000:.2f} ms/request, "
          f"database CPU {tally.database_cpu / max(1, len(tally.latencies)) * 1000:.2f} "
          "ms/request)")
    print("      p95 by request: " + ", ".join(
        f"{kind} {percentile(values, 0.95):.1f} ms ({len(values):,})"
        for kind, values in sorted(tally.by_kind.items())))
    return p95


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.child:
        run_child(args)
        return
    url = create_database(args.admin_url)
    workdir = Path(tempfile.mkdtemp(prefix="cswb-bench-"))
    env = environment(url, workdir)
    try:
        cases, tokens = seed(env, args.cases, args.clients)
        print(f"PostgreSQL scratch database, {len(cases)} cases, {args.clients} clients, "
              f"{args.seconds:.0f} s per run, 80% reads / 20% writes; load average "
              f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores before the runs")
        results = {}
        for kind, paths, client_tokens in (
            ("bare", {"read": "/bare/cases/{id}", "write": "/bare/cases/{id}"},
             [None] * args.clients),
            ("cswb", {"read": "/api/v1/cases/{id}", "identity": "/api/v1/cases/{id}/identity",
                      "write": "/api/v1/cases/{id}"}, tokens),
        ):
            server = start_server("real" if kind == "cswb" else "bare", env, 8931)
            try:
                cpu_before, db_before = cpu_seconds(server.pid), database_cpu(url)
                tally, elapsed = asyncio.run(run_load("http://127.0.0.1:8931", paths,
                                                      list(client_tokens), cases, args.seconds))
                tally.server_cpu = cpu_seconds(server.pid) - cpu_before
                tally.database_cpu = sum(now - db_before.get(pid, 0.0)
                                         for pid, now in database_cpu(url).items())
            finally:
                server.terminate()
                server.wait(timeout=30)
            results[kind] = (tally, elapsed)
        bare_p95 = report("bare", *results["bare"])
        ours_p95 = report("cswb", *results["cswb"])
        ratio = ours_p95 / bare_p95 if bare_p95 else float("inf")
        cpu = [t.server_cpu / max(1, len(t.latencies)) for t in (results["cswb"][0],
                                                                 results["bare"][0])]
        print(f"server CPU per request cswb/bare: {cpu[0] / cpu[1]:.2f} (the machine's load "
              f"average was {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")
        print(f"p95 ratio cswb/bare: {ratio:.2f} (target <= {TARGET_RATIO}); "
              f"cswb p95 {ours_p95:.1f} ms (target < {TARGET_P95_MS:.0f} ms); "
              f"errors other than conflicts: {results['cswb'][0].errors} (target 0)")
    finally:
        drop_database(args.admin_url, url)


if __name__ == "__main__":
    main()
