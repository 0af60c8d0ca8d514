"""Identifying values made fit for the linkage zone: normalised, keyed-hashed, encrypted.

A value's keyed hash (HMAC-SHA256 with the keyring's ``search_key``) is computed over its
normalised form with the kind as purpose label, so the same phone written ``(316) 555-0142``
in one export and ``316-555-0142`` in another hashes the same, in any column of any source,
while a phone and a name never collide. The value itself is sealed with the platform's field
encryption, bound to its source, record and column (:func:`context`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from cswb.errors import LinkageError
from cswb.ingest.mapping import LinkageKind
from cswb.security.crypto import Keyring
from cswb.settings import Settings

_NOT_DIGIT = re.compile(r"\D+")

KEYRING_HELP = ("generate keys with `cswb keys generate` (twice) and set CSWB_FIELD_KEYS "
                "(e.g. '{\"k1\": \"<key>\"}') and CSWB_SEARCH_KEY, or field_keys and search_key "
                "in the settings file")


def linkage_keyring(settings: Settings) -> Keyring:
    """The keyring sealing linkage values; refused, in every environment, unless configured.

    The platform's development keyring is public (it lets the demo run); identifying values
    sealed with it would be readable by anyone, so the linkage zone never uses it.
    """
    has_search_key = settings.search_key is not None or bool(settings.search_keys)
    missing = [name for name, given in (("field_keys", bool(settings.field_keys)),
                                        ("search_key", has_search_key))
               if not given]
    if missing:
        raise LinkageError(f"the linkage zone needs a keyring of its own, but "
                           f"{' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} "
                           f"not set (the public development keyring never seals "
                           f"identifiers): {KEYRING_HELP}")
    return Keyring.from_settings(settings)


def normalise(value: str, kind: LinkageKind) -> str:
    """The form hashed for matching: digits of a phone; other kinds are folded by the hash."""
    if kind == "phone":
        return _NOT_DIGIT.sub("", value)
    return value


def purpose(kind: LinkageKind) -> str:
    """The purpose label of a kind's keyed hashes (a phone never matches a name)."""
    return f"linkage.{kind}"


def value_hash(keyring: Keyring, value: str, kind: LinkageKind) -> str | None:
    """The keyed hash the linkage zone keeps for ``value`` (None if nothing is left of it)."""
    normal = normalise(value, kind)
    if not normal.strip():
        return None
    return keyring.search_hash(normal, purpose(kind))


def value_hashes(keyring: Keyring, value: str, kind: LinkageKind) -> list[str]:
    """The value's keyed hash under every search key, the current one first: what to look
    for (:meth:`~cswb.linkage.store.LinkageStore.records_with`) while a rehash is under way."""
    normal = normalise(value, kind)
    if not normal.strip():
        return []
    return keyring.search_hashes(normal, purpose(kind))


def context(source: str, record_id: str, column: str) -> str:
    """Associated data binding a sealed value to its source, record and column."""
    return f"linkage.{column}:{source}:{record_id}"


def hashes(keyring: Keyring, values: Iterable[str], kind: LinkageKind) -> list[str | None]:
    """Keyed hashes of ``values``, each distinct value hashed once."""
    seen: dict[str, str | None] = {}
    out = []
    for value in values:
        if value not in seen:
            seen[value] = value_hash(keyring, value, kind)
        out.append(seen[value])
    return out
