"""Field encryption with a keyring from settings, and keyed hashes for search.

A ciphertext is ``v1:<key id>:<base64(nonce || AES-256-GCM(plaintext))>``. The associated data
binds it to where it belongs (``<table>.<column>:<record id>``), so a ciphertext copied to another
record or column fails to decrypt. Keys come only from the settings (``field_keys``); the
database holds key ids, never keys. See ``docs/adr/0008-field-keys.md``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import unicodedata
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from cswb.errors import ConfigError, CryptoError
from cswb.settings import Settings

FORMAT = "v1"
NONCE_BYTES = 12
KEY_BYTES = 32
DEVELOPMENT_KEY_ID = "dev"
_DEVELOPMENT_SEED = b"cswb development only - never protects real data"


def generate_key() -> str:
    """A new random key, base64 encoded, for ``field_keys``, ``search_key`` or ``secret_key``."""
    return base64.b64encode(os.urandom(KEY_BYTES)).decode("ascii")


def decode_key(name: str, text: str) -> bytes:
    """The 32 bytes of a base64 key; :class:`ConfigError` naming the setting otherwise."""
    try:
        raw = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise ConfigError(f"{name} is not base64 (generate one with `cswb keys generate`)"
                          ) from None
    if len(raw) != KEY_BYTES:
        raise ConfigError(f"{name} must decode to {KEY_BYTES} bytes, not {len(raw)}")
    return raw


DEFAULT_SEARCH_KEY_ID = "s0"
"""The id of the ``search_key`` setting (and of the development search key) in the search
keyring; hashes stored before search keys had ids were made with it."""


@dataclass(frozen=True)
class Keyring:
    """The field keys (id -> key), which one encrypts new values, and the search keys.

    ``search_key`` is the current search key; ``search_keys`` holds every search key by id
    (by default only ``search_key``, as :data:`DEFAULT_SEARCH_KEY_ID`). New keyed hashes use
    the current one; a search computes the hash under each (:meth:`search_hashes`), so it finds
    values hashed under an old key until ``cswb keys rehash`` has recomputed them.
    """

    keys: dict[str, bytes]
    current_id: str
    search_key: bytes
    search_keys: dict[str, bytes] = field(default_factory=dict)
    search_current_id: str = DEFAULT_SEARCH_KEY_ID
    _ciphers: dict[str, AESGCM] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.search_keys:
            object.__setattr__(self, "search_keys", {self.search_current_id: self.search_key})
        elif self.search_keys.get(self.search_current_id) != self.search_key:
            raise ConfigError(f"the current search key {self.search_current_id!r} is not the "
                              "search key of the keyring")

    def _cipher(self, key_id: str) -> AESGCM:
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            cipher = self._ciphers[key_id] = AESGCM(self.keys[key_id])
        return cipher

    @classmethod
    def from_settings(cls, settings: Settings) -> Keyring:
        """The keyring of ``settings``; in development only, a fixed, public key if none."""
        if not settings.field_keys:
            if settings.environment != "development":
                raise ConfigError("field_keys is empty: identifying fields cannot be encrypted")
            dev = hashlib.sha256(_DEVELOPMENT_SEED).digest()
            return cls({DEVELOPMENT_KEY_ID: dev}, DEVELOPMENT_KEY_ID, dev)
        keys = {key_id: decode_key(f"field_keys[{key_id}]", value.get_secret_value())
                for key_id, value in settings.field_keys.items()}
        current = settings.field_key_current or list(keys)[-1]
        if current not in keys:
            raise ConfigError(f"field_key_current names {current!r}, which is not in field_keys")
        search_keys, search_current = _search_keyring(settings)
        return cls(keys, current, search_keys[search_current], search_keys, search_current)

    def encrypt(self, plaintext: str, context: str) -> str:
        """Seal ``plaintext`` with the current key, bound to ``context``."""
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._cipher(self.current_id).encrypt(
            nonce, plaintext.encode("utf-8"), context.encode("utf-8"))
        return f"{FORMAT}:{self.current_id}:{base64.b64encode(nonce + sealed).decode('ascii')}"

    def decrypt(self, ciphertext: str, context: str) -> str:
        """Open a ciphertext; :class:`CryptoError` if its key is unknown or it was altered."""
        key_id, blob = self._parse(ciphertext, context)
        if key_id not in self.keys:
            raise CryptoError(f"{context} was encrypted with key {key_id!r}, which is not in "
                              "the keyring (field_keys)")
        try:
            plain = self._cipher(key_id).decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:],
                                                 context.encode("utf-8"))
        except InvalidTag:
            raise CryptoError(f"{context} does not authenticate with key {key_id!r}: the "
                              "ciphertext was altered, moved, or the key is wrong") from None
        return plain.decode("utf-8")

    @staticmethod
    def key_id_of(ciphertext: str) -> str:
        """The key id a ciphertext names (without decrypting it)."""
        return ciphertext.split(":", 2)[1] if ciphertext.count(":") >= 2 else ""

    def _parse(self, ciphertext: str, context: str) -> tuple[str, bytes]:
        parts = ciphertext.split(":", 2)
        if len(parts) != 3 or parts[0] != FORMAT:
            raise CryptoError(f"{context} is not a cswb ciphertext ({FORMAT}:key:data)")
        try:
            blob = base64.b64decode(parts[2], validate=True)
        except (binascii.Error, ValueError):
            raise CryptoError(f"{context} has a damaged ciphertext (not base64)") from None
        if len(blob) < NONCE_BYTES + 16:
            raise CryptoError(f"{context} has a truncated ciphertext")
        return parts[1], blob

    def search_hash(self, value: str, purpose: str) -> str:
        """Keyed hash (HMAC-SHA256) of a normalised value under the current search key, for
        equality search only."""
        return _keyed_hash(self.search_key, value, purpose)

    def search_hashes(self, value: str, purpose: str) -> list[str]:
        """The keyed hash of a value under every search key (the current one first): what a
        search looks for while a rotation of the search key is under way."""
        others = [key for key_id, key in self.search_keys.items()
                  if key_id != self.search_current_id]
        return [_keyed_hash(key, value, purpose) for key in (self.search_key, *others)]


def _keyed_hash(key: bytes, value: str, purpose: str) -> str:
    normal = " ".join(unicodedata.normalize("NFKC", value).casefold().split())
    return hmac.new(key, f"{purpose}\x1f{normal}".encode(), hashlib.sha256).hexdigest()


def _search_keyring(settings: Settings) -> tuple[dict[str, bytes], str]:
    """The search keys by id (``search_key`` as ``s0``, then ``search_keys``) and the current id."""
    keys: dict[str, bytes] = {}
    if settings.search_key is not None:
        keys[DEFAULT_SEARCH_KEY_ID] = decode_key("search_key",
                                                 settings.search_key.get_secret_value())
    for key_id, value in settings.search_keys.items():
        if key_id in keys:
            raise ConfigError(f"search_keys[{key_id}] takes the id of search_key; name it "
                              "otherwise")
        keys[key_id] = decode_key(f"search_keys[{key_id}]", value.get_secret_value())
    if not keys:
        if settings.environment != "development":
            raise ConfigError("search_key is missing")
        keys[DEFAULT_SEARCH_KEY_ID] = hashlib.sha256(_DEVELOPMENT_SEED + b"search").digest()
    current = settings.search_key_current or \
        (list(settings.search_keys)[-1] if settings.search_keys else DEFAULT_SEARCH_KEY_ID)
    if current not in keys:
        raise ConfigError(f"search_key_current names {current!r}, which is not a search key "
                          "(search_key is s0, others come from search_keys)")
    return keys, current
