"""The portal's signing key: read from the PEM file named by LICENSE_SIGNING_KEY_FILE.

The private key stays in this module: it is never logged, never put in an exception message,
never served. Everything else only gets the public keyring.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

import tmslicense


def sign(lic: tmslicense.License) -> tuple[str, str]:
    """Sign a license; returns (license file text, key id)."""
    key, kid = _signing_key(*_key_file_identity())
    return tmslicense.sign_license(lic, key, kid), kid


def sign_revoked(serials) -> str:
    """The signed list of revoked serials that a TMS adds to its own (``/revoked.txt``)."""
    key, kid = _signing_key(*_key_file_identity())
    title = f"Revoked TMS license files (serials), {settings.SITE_NAME}"
    return tmslicense.sign_revoked_list(serials, key, kid, title=title)


def current_kid() -> str:
    return _signing_key(*_key_file_identity())[1]


def public_keyring() -> tmslicense.Keyring:
    """The keys a TMS should trust: the current one plus any kept after a rotation."""
    key, _ = _signing_key(*_key_file_identity())
    keys = [key.public_key()]
    if settings.LICENSE_EXTRA_KEYRING_FILE:
        extra = tmslicense.Keyring.load(settings.LICENSE_EXTRA_KEYRING_FILE)
        keys.extend(extra.values())
    return tmslicense.Keyring(keys)


def problem(*, key_only: bool = False) -> str | None:
    """Why the portal cannot sign (its key file missing, unreadable or no Ed25519 key) or,
    unless ``key_only``, serve its keyring (a kept keyring that does not load), naming the
    file; None when it can."""
    try:
        current_kid() if key_only else public_keyring()
    except (ImproperlyConfigured, OSError, tmslicense.KeyringError) as error:
        return str(error)
    return None


def create_key_file(path: Path) -> Ed25519PrivateKey:
    """Write a new private key to ``path`` (owner-readable only); refuses to overwrite."""
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)
    return key


def _key_file_identity() -> tuple[str, int, int]:
    """The key file's path, inode and inode change time: any change to the file (replaced,
    written, its mode changed) changes them, even with its modification time kept (a
    restore, `cp -p`)."""
    path = Path(settings.LICENSE_SIGNING_KEY_FILE)
    try:
        found = path.stat()
        return str(path), found.st_ino, found.st_ctime_ns
    except OSError:
        raise ImproperlyConfigured(
            f"LICENSE_SIGNING_KEY_FILE: no signing key at {path}. "
            "Create one with: python manage.py create_signing_key"
        ) from None


@lru_cache(maxsize=4)
def _signing_key(path: str, inode: int, changed: int) -> tuple[Ed25519PrivateKey, str]:
    # Cached per file as it is (_key_file_identity): replacing it rotates the key without a
    # restart.
    try:
        key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
    except (OSError, ValueError, TypeError, UnsupportedAlgorithm):  # last: a curve unknown here
        raise ImproperlyConfigured(
            f"LICENSE_SIGNING_KEY_FILE: {path} is not a readable, unencrypted PEM private key."
        ) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ImproperlyConfigured(f"LICENSE_SIGNING_KEY_FILE: {path} is not an Ed25519 key.")
    return key, tmslicense.key_id(key)
