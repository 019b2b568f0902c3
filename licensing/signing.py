"""The portal's signing key: read from the PEM file named by LICENSE_SIGNING_KEY_FILE.

The private key stays in this module: it is never logged, never put in an exception message,
never served. Everything else only gets the public keyring.
"""

from __future__ import annotations

import base64
import os
from collections import Counter
from functools import lru_cache
from pathlib import Path

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction

import tmslicense


def sign(lic: tmslicense.License) -> tuple[str, str]:
    """Sign a license; returns (license file text, key id). The key's public half is kept
    (SigningKey) once the first file it signs is."""
    key, kid = _signing_key(*_key_file_identity())
    if kid not in _recorded:
        # After the file's transaction, in one of its own: inside it, the new row would hold
        # up every other file signed meanwhile (the same row) until that transaction ends.
        transaction.on_commit(lambda: _record(key.public_key(), kid), robust=True)
    return tmslicense.sign_license(lic, key, kid), kid


_recorded: set[str] = set()  # the keys this process knows are kept


def _record(public: Ed25519PublicKey, kid: str) -> None:
    from .models import SigningKey

    SigningKey.objects.bulk_create([key_row(SigningKey, public)], ignore_conflicts=True)
    _recorded.add(kid)


def key_row(model, public: Ed25519PublicKey):
    """A SigningKey row (``model``: the model, or a migration's) of a public key."""
    raw = base64.b64encode(public.public_bytes_raw()).decode("ascii")
    return model(kid=tmslicense.key_id(public), public_key=raw)


def sign_revoked(serials) -> str:
    """The signed list of revoked serials that a TMS adds to its own (``/revoked.txt``)."""
    key, kid = _signing_key(*_key_file_identity())
    title = f"Revoked TMS license files (serials), {settings.SITE_NAME}"
    return tmslicense.sign_revoked_list(serials, key, kid, title=title)


def current_kid() -> str:
    return _signing_key(*_key_file_identity())[1]


def public_keyring() -> tmslicense.Keyring:
    """The keys a TMS should trust: the current one, any kept after a rotation, and each that
    signed a file still in use (its key file retired, replaced or lost since)."""
    from .models import Activation, SigningKey

    in_use = SigningKey.objects.filter(kid__in=Activation.objects.live().values("kid"))
    keys = [Ed25519PublicKey.from_public_bytes(base64.b64decode(k.public_key)) for k in in_use]
    try:
        served = served_keys()
    except ImproperlyConfigured:
        # No key file to read now (check --deploy and /healthz say so): the servers still get
        # the kept keys and those of the files in use, which need no private key.
        served = _kept_keys()
    return tmslicense.Keyring([*served, *keys])


def served_keys() -> list[Ed25519PublicKey]:
    """The current key's public half, and the keys kept after a rotation."""
    key, _ = _signing_key(*_key_file_identity())
    return [key.public_key(), *_kept_keys()]


def _kept_keys() -> list[Ed25519PublicKey]:
    if not settings.LICENSE_EXTRA_KEYRING_FILE:
        return []
    return list(tmslicense.Keyring.load(settings.LICENSE_EXTRA_KEYRING_FILE).values())


def unlisted_keys() -> Counter:
    """The keys of files in use that the keyring does not list (signed before the site kept
    each key's public half, by a key no longer served), with how many files each."""
    from django.db.models import Count

    from .models import Activation

    listed = public_keyring()
    files = Activation.objects.live().values("kid").annotate(files=Count("pk")).order_by()
    return Counter({f["kid"]: f["files"] for f in files if f["kid"] not in listed})


def problem(*, key_only: bool = False) -> str | None:
    """Why the portal cannot sign (its key file missing, unreadable or no Ed25519 key) or,
    unless ``key_only``, serve its keyring (a kept keyring that does not load), naming the
    file; None when it can."""
    try:
        current_kid() if key_only else served_keys()
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
