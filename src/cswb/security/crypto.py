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


@dataclass(frozen=True)
class Keyring:
    """The field keys (id -> key), which one encrypts new values, and the search key."""

    keys: dict[str, bytes]
    current_id: str
    search_key: bytes
    _ciphers: dict[str, AESGCM] = field(default_factory=dict, repr=False, compare=False)

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
        search = settings.search_key
        if search is None:
            if settings.environment != "development":
                raise ConfigError("search_key is missing")
            search_key = hashlib.sha256(_DEVELOPMENT_SEED + b"search").digest()
        else:
            search_key = decode_key("search_key", search.get_secret_value())
        return cls(keys, current, search_key)

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
        """Keyed hash (HMAC-SHA256) of a normalised value, for equality search only."""
        normal = " ".join(unicodedata.normalize("NFKC", value).casefold().split())
        return hmac.new(self.search_key, f"{purpose}\x1f{normal}".encode(),
                        hashlib.sha256).hexdigest()
