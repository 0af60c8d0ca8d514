"""Field encryption: tampering, wrong and missing keys, rotation while reads go on."""

from __future__ import annotations

import threading
from datetime import date
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import text

from cswb.cases import service
from cswb.domain.cases import CaseStatus, Role
from cswb.errors import ConfigError, CryptoError
from cswb.security.crypto import Keyring, generate_key
from cswb.security.keys import key_usage, rotate
from cswb.security.principal import SYSTEM, Actor
from cswb.settings import Settings, load_settings
from cswb.storage.operational.models import CaseIdentity
from tests.platform.factories import World, fresh_keys, open_case_as

CONTEXT = "case_identities.name:abc"


def keyring(**overrides: Any) -> Keyring:
    return Keyring.from_settings(load_settings(environment="test", **{**fresh_keys(),
                                                                       **overrides}))


@given(st.text(max_size=200))
def test_round_trip_any_text(value: str) -> None:
    ring = _RING
    assert ring.decrypt(ring.encrypt(value, CONTEXT), CONTEXT) == value


_RING = keyring()


def test_ciphertext_is_fresh_and_names_its_key() -> None:
    first, second = _RING.encrypt("Jordan", CONTEXT), _RING.encrypt("Jordan", CONTEXT)
    assert first != second and first.startswith("v1:k1:")
    assert Keyring.key_id_of(first) == "k1"


@pytest.mark.parametrize("position", [10, 20, -1])
def test_altered_ciphertext_is_refused(position: int) -> None:
    sealed = _RING.encrypt("Jordan Example", CONTEXT)
    flipped = "A" if sealed[position] != "A" else "B"
    altered = sealed[:position] + flipped + sealed[position + 1:] if position != -1 \
        else sealed[:-2] + ("AA" if not sealed.endswith("AA") else "BB")
    with pytest.raises(CryptoError, match=r"altered|damaged|truncated"):
        _RING.decrypt(altered, CONTEXT)


def test_ciphertext_moved_to_another_record_is_refused() -> None:
    sealed = _RING.encrypt("Jordan Example", CONTEXT)
    with pytest.raises(CryptoError, match="altered, moved"):
        _RING.decrypt(sealed, "case_identities.name:another-case")


def test_wrong_key_and_unknown_key_are_refused() -> None:
    sealed = _RING.encrypt("Jordan Example", CONTEXT)
    impostor = keyring()  # also calls its key k1, but it is another key
    with pytest.raises(CryptoError, match="key is wrong"):
        impostor.decrypt(sealed, CONTEXT)
    with pytest.raises(CryptoError, match="key 'k1', which is not in the keyring"):
        keyring(field_keys={"k2": generate_key()}).decrypt(sealed, CONTEXT)
    with pytest.raises(CryptoError, match="not a cswb ciphertext"):
        _RING.decrypt("Jordan Example", CONTEXT)


def test_search_hash_is_keyed_and_normalised() -> None:
    other = keyring()
    assert _RING.search_hash("Jordan  EXAMPLE ", "name") == _RING.search_hash("jordan example",
                                                                               "name")
    assert _RING.search_hash("Jordan", "name") != other.search_hash("Jordan", "name")
    assert _RING.search_hash("Jordan", "name") != _RING.search_hash("Jordan", "address")


@pytest.mark.parametrize("environment", ["test", "production"])
def test_outside_development_placeholder_or_missing_secrets_refuse_to_start(
        environment: str) -> None:
    with pytest.raises(ConfigError, match="field_keys is empty"):
        load_settings(environment=environment, search_key=generate_key(),
                      secret_key=generate_key())
    with pytest.raises(ConfigError, match=r"field_keys\[k1\] is a placeholder"):
        load_settings(environment=environment, **{**fresh_keys(),
                                                   "field_keys": {"k1": "change-me"}})
    with pytest.raises(ConfigError, match="secret_key is missing or a placeholder"):
        load_settings(environment=environment, **{**fresh_keys(),
                                                   "secret_key": "x" * 44})
    load_settings(environment=environment, **fresh_keys())


def test_development_has_a_fixed_public_key_and_bad_keys_are_named() -> None:
    assert Keyring.from_settings(load_settings()).current_id == "dev"
    with pytest.raises(ConfigError, match=r"field_keys\[k1\] is not base64"):
        Keyring.from_settings(load_settings(field_keys={"k1": "not base64!"}))
    with pytest.raises(ConfigError, match="must decode to 32 bytes"):
        Keyring.from_settings(load_settings(field_keys={"k1": "c2hvcnQ="}))
    with pytest.raises(ConfigError, match="field_key_current names 'k9'"):
        Keyring.from_settings(load_settings(field_keys={"k1": generate_key()},
                                            field_key_current="k9"))


def _identities(world: World, ring: Keyring, count: int) -> dict[str, service.Identity]:
    expected = {}
    for i in range(count):
        case_id = open_case_as(world, "police", status=CaseStatus.AER)
        details = service.Identity(f"Person {i}", date(1980, 1, 1 + i % 28), f"{i} Elm Rd")
        with world.store.session() as session:
            service.set_identity(session, world.actor("police", Role.TABLE_CHAIR), ring,
                                 case_id, details)
        expected[case_id] = details
    return expected


def _read_all(world: World, ring: Keyring) -> dict[str, service.Identity]:
    with world.store.sessions() as session:
        return {row.case_id: service.open_identity(row, ring)
                for row in session.query(CaseIdentity).all()}


def test_rotation_while_reads_keep_succeeding(world: World,
                                              platform_settings: Settings) -> None:
    old = Keyring.from_settings(platform_settings)
    expected = _identities(world, old, 40)
    new_key = generate_key()
    both = Keyring({**old.keys, "k2": Keyring.from_settings(load_settings(
        environment="test", **{**fresh_keys(), "field_keys": {"k2": new_key}})).keys["k2"]},
        "k2", old.search_key)
    failures: list[BaseException] = []
    reads = 0
    done = threading.Event()

    def reader() -> None:
        nonlocal reads
        while not done.is_set():
            try:
                assert _read_all(world, both) == expected
                reads += 1
            except BaseException as exc:  # report in the main thread
                failures.append(exc)
                return

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        report = rotate(world.store, both, Actor(SYSTEM, "test"), batch_size=3)
    finally:
        done.set()
        thread.join()
    assert not failures, failures[0]
    assert reads > 0
    assert (report.re_encrypted, report.batches) == (40, 14)
    assert key_usage(world.store) == {"k2": 40}
    only_new = Keyring({"k2": both.keys["k2"]}, "k2", old.search_key)
    assert _read_all(world, only_new) == expected
    assert rotate(world.store, both, Actor(SYSTEM, "test")).re_encrypted == 0
    with world.store.session() as session:
        found = service.find_by_name(session, world.actor("police", Role.TABLE_CHAIR,
                                                          "check"), only_new, "person 7")
    assert len(found) == 1
    with pytest.raises(CryptoError, match="key 'k2'"):
        _read_all(world, old)


def test_altered_ciphertext_in_the_database_is_refused(world: World,
                                                       platform_settings: Settings) -> None:
    ring = Keyring.from_settings(platform_settings)
    (case_id,) = _identities(world, ring, 1)
    (other_id,) = _identities(world, ring, 1)
    with world.store.engine.begin() as connection:
        connection.execute(text("UPDATE case_identities SET name_ct = (SELECT name_ct FROM "
                                "case_identities WHERE case_id = :other) WHERE case_id = :id"),
                           {"other": other_id, "id": case_id})
    chair = world.actor("police", Role.TABLE_CHAIR, basis="visit")
    with pytest.raises(CryptoError, match="name:" + case_id), world.store.session() as session:
        service.read_identity(session, chair, ring, case_id)
