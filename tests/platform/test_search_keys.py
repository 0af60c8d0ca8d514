"""Search-key rotation: a keyring of search keys with ids, searches under every key, and a
rehash that recomputes stored hashes while searches keep finding every record."""

from __future__ import annotations

import json
import threading
from datetime import date

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from cswb.cases import service
from cswb.cli.main import app
from cswb.domain.cases import CaseStatus, Role
from cswb.errors import ConfigError, PermissionDeniedError
from cswb.security.crypto import DEFAULT_SEARCH_KEY_ID, Keyring, generate_key
from cswb.security.keys import rehash, search_key_usage
from cswb.security.principal import SYSTEM, Actor
from cswb.settings import Settings, load_settings
from cswb.storage.operational.models import AuditEntry
from tests.platform.factories import World, cli_env, open_case_as

ADMIN = Actor(SYSTEM, "test")


def _with_new_search_key(settings: Settings, current: str | None = "s1") -> Settings:
    return settings.model_copy(update={
        "search_keys": load_settings(search_keys={"s1": generate_key()}).search_keys,
        "search_key_current": current})


def test_search_key_is_s0_and_search_keys_join_it() -> None:
    old, new = generate_key(), generate_key()
    alone = Keyring.from_settings(load_settings(field_keys={"k1": generate_key()},
                                                search_key=old))
    assert alone.search_current_id == DEFAULT_SEARCH_KEY_ID == "s0"
    both = Keyring.from_settings(load_settings(field_keys={"k1": generate_key()},
                                               search_key=old, search_keys={"s1": new}))
    assert both.search_current_id == "s1" and set(both.search_keys) == {"s0", "s1"}
    assert both.search_hashes("Alex Roe", "name") == [both.search_hash("Alex Roe", "name"),
                                                      alone.search_hash("Alex Roe", "name")]
    assert both.search_hash("alex  ROE", "name") != alone.search_hash("alex roe", "name")
    kept_old = Keyring.from_settings(load_settings(
        field_keys={"k1": generate_key()}, search_key=old, search_keys={"s1": new},
        search_key_current="s0"))
    assert kept_old.search_hash("x", "name") == alone.search_hash("x", "name")


def test_search_key_mistakes_are_named() -> None:
    with pytest.raises(ConfigError, match="search_key_current names 's9'"):
        Keyring.from_settings(load_settings(field_keys={"k1": generate_key()},
                                            search_key=generate_key(), search_key_current="s9"))
    with pytest.raises(ConfigError, match="takes the id of search_key"):
        Keyring.from_settings(load_settings(field_keys={"k1": generate_key()},
                                            search_key=generate_key(),
                                            search_keys={"s0": generate_key()}))
    with pytest.raises(ConfigError, match=r"search_keys\[s1\] must decode to 32 bytes"):
        Keyring.from_settings(load_settings(field_keys={"k1": generate_key()},
                                            search_keys={"s1": "c2hvcnQ="}))
    # once search_key is retired, search_keys alone is enough outside development
    retired = load_settings(environment="production", field_keys={"k1": generate_key()},
                            search_keys={"s1": generate_key()}, secret_key=generate_key())
    assert Keyring.from_settings(retired).search_current_id == "s1"
    with pytest.raises(ConfigError, match="search_key is missing"):
        load_settings(environment="production", field_keys={"k1": generate_key()},
                      secret_key=generate_key())


def _identities(world: World, ring: Keyring, count: int) -> dict[str, str]:
    names = {}
    chair = world.actor("police", Role.TABLE_CHAIR)
    for i in range(count):
        case_id = open_case_as(world, "police", status=CaseStatus.AER)
        with world.store.session() as session:
            service.set_identity(session, chair, ring, case_id, service.Identity(
                f"Person {i}", date(1980, 1, 1 + i % 28), f"{i} Elm Rd"))
        names[case_id] = f"Person {i}"
    return names


def _find(world: World, ring: Keyring, name: str) -> list[str]:
    chair = world.actor("police", Role.TABLE_CHAIR, "check")
    with world.store.session() as session:
        return service.find_by_name(session, chair, ring, name)


def test_rehash_while_searches_keep_finding(world: World, platform_settings: Settings) -> None:
    old = Keyring.from_settings(platform_settings)
    names = _identities(world, old, 40)
    assert search_key_usage(world.store) == {"s0": 40}
    both = Keyring.from_settings(_with_new_search_key(platform_settings))
    failures: list[BaseException] = []
    searches = 0
    done = threading.Event()

    def searcher() -> None:
        nonlocal searches
        while not done.is_set():
            try:
                for case_id, name in list(names.items())[::7]:
                    assert _find(world, both, name.upper()) == [case_id]
                searches += 1
            except BaseException as exc:  # report in the main thread
                failures.append(exc)
                return

    thread = threading.Thread(target=searcher)
    thread.start()
    try:
        report = rehash(world.store, both, ADMIN, batch_size=3)
    finally:
        done.set()
        thread.join()
    assert not failures, failures[0]
    assert searches > 0
    assert (report.current_search_key, report.rehashed, report.batches) == ("s1", 40, 14)
    assert search_key_usage(world.store) == {"s1": 40}
    assert rehash(world.store, both, ADMIN).rehashed == 0  # idempotent
    only_new = Keyring(both.keys, both.current_id, both.search_keys["s1"],
                       {"s1": both.search_keys["s1"]}, "s1")
    some_case, some_name = next(iter(names.items()))
    assert _find(world, only_new, some_name) == [some_case]
    assert _find(world, old, some_name) == []  # the old key finds nothing any more
    with world.store.sessions() as session:
        actions = session.scalars(select(AuditEntry.action)
                                  .where(AuditEntry.action == "keys.rehash")).all()
    assert len(actions) == 14


def test_new_identities_are_hashed_under_the_current_search_key(
        world: World, platform_settings: Settings) -> None:
    both = Keyring.from_settings(_with_new_search_key(platform_settings))
    _identities(world, both, 2)
    assert search_key_usage(world.store) == {"s1": 2}
    assert rehash(world.store, both, ADMIN).rehashed == 0


def test_only_administrators_rehash(world: World, platform_settings: Settings) -> None:
    with pytest.raises(PermissionDeniedError):
        rehash(world.store, Keyring.from_settings(platform_settings),
               world.actor("police", Role.TABLE_CHAIR))


def test_cli_rehash_and_status(world: World, platform_settings: Settings) -> None:
    _identities(world, Keyring.from_settings(platform_settings), 3)
    env = {**cli_env(platform_settings),
           "CSWB_SEARCH_KEYS": json.dumps({"s1": generate_key()})}
    runner = CliRunner()
    before = runner.invoke(app, ["keys", "status"], env=env)
    assert before.exit_code == 0, before.output
    assert "search keys" in before.output
    first = runner.invoke(app, ["keys", "rehash", "--batch-size", "2"], env=env)
    assert first.exit_code == 0, first.output
    assert "Rehashed 3 case records under search key 's1' in 2 batches." in first.output
    again = runner.invoke(app, ["keys", "rehash"], env=env)
    assert "Rehashed 0 case records" in again.output
    assert search_key_usage(world.store) == {"s1": 3}
