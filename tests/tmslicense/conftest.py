"""Fixtures for tmslicense: real keys, real IDs, files signed for them. No Django."""

import errno
import os
from datetime import UTC, date, datetime, timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

import tmslicense

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="session")
def private_key():
    return Ed25519PrivateKey.generate()


@pytest.fixture(scope="session")
def kid(private_key):
    return tmslicense.key_id(private_key)


@pytest.fixture(scope="session")
def keyring(private_key):
    return tmslicense.Keyring([private_key.public_key()])


@pytest.fixture
def make_license():
    def make(kind="mirrored", ids=None, **overrides):
        kind = tmslicense.Kind(kind)
        count = len(kind.server_roles)
        values = dict(
            serial="0123456789ABCDEF",
            license_number=tmslicense.new_license_number(),
            kind=kind,
            installation_ids=ids or [tmslicense.new_installation_id() for _ in range(count)],
            product="ThinManager",
            edition="Premium",
            seats=25,
            features=["relevance", "multimonitor"],
            customer="Acme Packaging",
            issued_at=NOW,
            maintenance_end=date(2027, 11, 30),
            expires_at=None,
        )
        values.update(overrides)
        return tmslicense.License.create(**values)

    return make


@pytest.fixture
def sign(private_key, kid):
    def sign(lic):
        return tmslicense.sign_license(lic, private_key, kid)

    return sign


@pytest.fixture
def unreadable(monkeypatch):
    """Make a folder one this account may not list, as a folder owned by root with mode 700
    is to a service account (the tests run as root, who may list any)."""

    def make(folder):
        for name in ("scandir", "listdir"):
            real = getattr(os, name)

            def refused(path=".", real=real):
                if os.fspath(path) == os.fspath(folder):
                    raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(folder))
                return real(path)

            monkeypatch.setattr(os, name, refused)

    return make


@pytest.fixture
def unreadable_file(monkeypatch):
    """Make a file one this account may not read (or, given another errno, cannot read), as
    a file root stored with mode 600 (``sudo`` with umask 077) is to a service account."""

    def make(path, code=errno.EACCES):
        def refused(file, *args, real=open, **kwargs):
            if isinstance(file, str | os.PathLike) and os.fspath(file) == os.fspath(path):
                raise OSError(code, os.strerror(code), str(path))  # PermissionError for EACCES
            return real(file, *args, **kwargs)

        monkeypatch.setattr(tmslicense.store, "open", refused, raising=False)

    return make


def later(days):
    return NOW + timedelta(days=days)
