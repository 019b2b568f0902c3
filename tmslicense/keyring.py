"""Trusted public keys by key id, so the license site can rotate its signing key."""

from __future__ import annotations

import base64
import binascii
import json
import os
from collections.abc import Iterable, Iterator, Mapping

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from .model import FileData, decode_text, strict_json, text_or_bytes

__all__ = ["Keyring", "KeyringError", "key_id"]


class KeyringError(ValueError):
    """The keyring file cannot be read."""


def _raw(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes_raw()


def key_id(key: Ed25519PublicKey | Ed25519PrivateKey) -> str:
    """The key id of a key pair: 16 hex digits of SHA-256 over the raw public key.

    >>> key_id(Ed25519PrivateKey.generate())  # doctest: +SKIP
    '3f9c0a61d2e4b7a8'
    """
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    digest = hashes.Hash(hashes.SHA256())
    digest.update(_raw(public))
    return digest.finalize().hex()[:16]


MAX_KEYRING = 64 * 1024  # bytes: a keyring of hundreds of keys; a device (/dev/zero) has no end

_DECODER = strict_json(lambda problem: KeyringError(f"The keyring is not valid: {problem}."))


def _entry_key(number: int, entry) -> Ed25519PublicKey | None:
    """The public key of the keyring's ``number``th entry, checked; None for a key of
    another algorithm, which this version cannot use (a later site may list one beside its
    ed25519 keys: it must not void them)."""
    if type(entry) is not dict:
        raise KeyringError(f"Keyring entry {number} is not an object.")
    kid = entry.get("kid")
    shown = f" ({kid})" if isinstance(kid, str) and kid.isascii() and kid.isalnum() else ""
    name = f"Keyring entry {number}{shown}"
    if type(entry.get("alg")) is not str:
        raise KeyringError(f"{name} names no algorithm (alg).")
    if entry["alg"] != "ed25519":
        return None
    if type(entry.get("public_key")) is not str:
        raise KeyringError(f"{name} has no public_key text.")
    try:
        key = Ed25519PublicKey.from_public_bytes(
            base64.b64decode(entry["public_key"], validate=True)
        )
    except (ValueError, binascii.Error):
        raise KeyringError(f"{name}: its public_key is not 32 bytes in base64.") from None
    if "kid" in entry and entry["kid"] != key_id(key):
        raise KeyringError(f"{name} does not match its public key.")
    return key


class Keyring(Mapping[str, Ed25519PublicKey]):
    """An immutable set of trusted Ed25519 public keys, looked up by ``kid``.

    The file form (also served by the portal at ``/keyring.json``)::

        {"keys": [{"kid": "3f9c0a61d2e4b7a8", "alg": "ed25519", "public_key": "<base64 32 bytes>"}]}

    >>> ring = Keyring([private_key.public_key()])  # doctest: +SKIP
    >>> Keyring.from_json(ring.to_json()) == ring  # doctest: +SKIP
    True
    """

    def __init__(self, keys: Iterable[Ed25519PublicKey] | Mapping[str, Ed25519PublicKey] = ()):
        # A mapping (another keyring, say) gives its keys, each under the kid made from it.
        keys = list(keys.values() if isinstance(keys, Mapping) else keys)
        wrong = next((k for k in keys if not isinstance(k, Ed25519PublicKey)), None)
        if wrong is not None:
            hint = ": give its public_key()" if isinstance(wrong, Ed25519PrivateKey) else ""
            raise TypeError(
                f"a keyring holds Ed25519 public keys, not {type(wrong).__name__}{hint}"
            )
        self._keys = {key_id(k): k for k in keys}

    def __getitem__(self, kid: str) -> Ed25519PublicKey:
        return self._keys[kid]

    def get(self, kid, default=None):
        return self._keys.get(kid, default)

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys)

    def __len__(self) -> int:
        return len(self._keys)

    def __eq__(self, other) -> bool:
        if not isinstance(other, Keyring):
            return NotImplemented
        return {k: _raw(v) for k, v in self._keys.items()} == {
            k: _raw(v) for k, v in other._keys.items()
        }

    __hash__ = None

    def to_json(self) -> str:
        keys = [
            {"kid": kid, "alg": "ed25519", "public_key": base64.b64encode(_raw(k)).decode()}
            for kid, k in sorted(self._keys.items())
        ]
        return json.dumps({"keys": keys}, indent=2) + "\n"

    @classmethod
    def from_json(cls, text: FileData) -> Keyring:
        """Parse the file form; anything else, an empty list of keys included, is refused with
        a :class:`KeyringError` that says what is wrong."""
        text = text_or_bytes(text)
        if (
            len(text) > MAX_KEYRING // 4
            and len(text.encode() if isinstance(text, str) else text) > MAX_KEYRING
        ):
            raise KeyringError(
                f"The keyring is larger than {MAX_KEYRING:,} bytes: it is no keyring."
            )
        try:
            if isinstance(text, bytes):
                text = decode_text(text)
            data = _DECODER.decode(text.removeprefix("\ufeff"))  # an editor's byte-order mark
        except KeyringError:
            raise
        except (ValueError, RecursionError):
            raise KeyringError("The keyring is not valid JSON.") from None
        if type(data) is not dict or type(data.get("keys")) is not list:
            raise KeyringError('The keyring must be a JSON object with a list of "keys".')
        keys = [_entry_key(number, entry) for number, entry in enumerate(data["keys"], 1)]
        if not any(keys):
            raise KeyringError(
                "The keyring lists no ed25519 key, so no license file could be trusted."
            )
        return cls(key for key in keys if key is not None)

    @classmethod
    def load(cls, path: str | os.PathLike) -> Keyring:
        """Read a keyring file; raises :class:`KeyringError` with the path in the message."""
        try:
            with open(path, "rb") as handle:
                data = handle.read(MAX_KEYRING + 1)  # a device (/dev/zero) has no end
            text = data if len(data) > MAX_KEYRING else decode_text(data)  # refused below
        except OSError as error:
            raise KeyringError(f"Cannot read the keyring {path}: {error.strerror}.") from None
        except UnicodeDecodeError:
            raise KeyringError(
                f"The keyring {path} is not a text file (JSON, in UTF-8 or UTF-16)."
            ) from None
        try:
            return cls.from_json(text)
        except KeyringError as error:
            raise KeyringError(f"{path}: {error}") from None
