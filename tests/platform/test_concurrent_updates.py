"""Many clients editing the same cases over real HTTP: no lost update, conflicts reported."""

from __future__ import annotations

import threading
from pathlib import Path

import httpx

from cswb.api import create_app
from cswb.domain.cases import Role
from cswb.settings import Settings
from tests.platform.factories import World, bearer, open_case_as, token_for
from tests.platform.live_server import live_server

CLIENTS = 12
EDITS_PER_CLIENT = 15


def test_no_lost_update_under_concurrent_edits(world: World, platform_settings: Settings,
                                               tmp_path: Path) -> None:
    cases = [open_case_as(world, "police") for _ in range(3)]
    tokens = [token_for(world, "police", role, platform_settings)
              for role in (Role.TABLE_CHAIR, Role.AGENCY_REPRESENTATIVE)]
    settings = platform_settings.model_copy(
        update={"store_url": f"duckdb:///{(tmp_path / 'store').as_posix()}"})
    applied: list[tuple[str, str]] = []
    conflicts: list[int] = []
    unexpected: list[str] = []
    lock = threading.Lock()

    def client(n: int, base: str) -> None:
        headers = bearer(tokens[n % 2])
        with httpx.Client(base_url=base, headers=headers, timeout=30) as http:
            for i in range(EDITS_PER_CLIENT):
                case_id = cases[(n + i) % len(cases)]
                current = http.get(f"/api/v1/cases/{case_id}").json()
                mark = f"c{n}e{i}"
                response = http.patch(f"/api/v1/cases/{case_id}", json={
                    "version": current["version"], "summary": f"{current['summary']} {mark}"})
                with lock:
                    if response.status_code == 200:
                        applied.append((case_id, mark))
                    elif response.status_code == 409:
                        conflicts.append(n)
                        assert response.json()["error"]["code"] == "conflict"
                    else:
                        unexpected.append(f"{response.status_code} {response.text}")

    with live_server(create_app(settings)) as base:
        threads = [threading.Thread(target=client, args=(n, base)) for n in range(CLIENTS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        with httpx.Client(base_url=base, headers=bearer(tokens[0])) as http:
            final = {c: http.get(f"/api/v1/cases/{c}").json() for c in cases}
    assert not unexpected, unexpected[:3]
    assert len(applied) + len(conflicts) == CLIENTS * EDITS_PER_CLIENT
    for case_id, case in final.items():
        marks = case["summary"].split()[4:]  # after "repeated crises at home"
        expected = [m for c, m in applied if c == case_id]
        assert sorted(marks) == sorted(expected), "an acknowledged edit was lost"
        assert case["version"] == 1 + len(expected)  # version 1 when opened, +1 per edit
