"""Shared fixtures. Services (PostgreSQL, Redis, Chromium, a Celery worker) are used for real
when present; a test that needs an absent one skips with the reason, or fails when
REQUIRE_SERVICES=1 (as in CI)."""

import os
import time
import types

import pytest

# Playwright's sync API runs an event loop in the test thread; Django's live server then sees
# an "async context". The flag tells Django that this is deliberate.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

REQUIRE_SERVICES = os.environ.get("REQUIRE_SERVICES") == "1"


def require(available: bool, reason: str) -> None:
    """Skip (or, under REQUIRE_SERVICES=1, fail) when a service a test needs is absent."""
    if available:
        return
    if REQUIRE_SERVICES:
        pytest.fail(f"{reason} (REQUIRE_SERVICES=1 demands it)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(autouse=True, scope="session")
def _tasks_in_process():
    """A test's tasks run in-process, never through the broker of the machine running the
    tests: a worker of its own would take them and look for their rows in another database.
    The integration tests point Celery at a Redis of their own (the ``broker`` fixture)."""
    from portal.celery import app

    saved = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = saved


@pytest.fixture(scope="session")
def signing_key_file(tmp_path_factory):
    from licensing import signing

    path = tmp_path_factory.mktemp("keys") / "signing-key.pem"
    signing.create_key_file(path)
    return path


@pytest.fixture(autouse=True)
def _signing_key(signing_key_file, settings):
    settings.LICENSE_SIGNING_KEY_FILE = signing_key_file
    # Which keys this process has kept in the database: each test's database starts without.
    from licensing import signing

    signing._recorded.clear()


@pytest.fixture(autouse=True)
def _empty_cache():
    # Rate-limit counters must not leak from one test into the next. (CI keeps the cache in
    # its own Redis database, CACHE_URL, so this never touches the broker's queues.)
    from django.core.cache import cache

    cache.clear()


@pytest.fixture(autouse=True)
def _rate_limit_clock_stands_still(monkeypatch):
    """The rate limits count in fixed windows of the clock: a test running across a window's
    end (every 15 minutes) would see its counts vanish half-way, and one started in a window's
    last minute would read "1 minute" left. Their clock stands still, 5 minutes into the
    quarter of an hour: at least 10 minutes left of every window (15 minutes, an hour)."""
    from licensing import throttle

    now = int(time.time()) // 900 * 900 + 300
    monkeypatch.setattr(throttle, "time", types.SimpleNamespace(time=lambda: now))


@pytest.fixture
def keyring(signing_key_file):
    from licensing import signing

    return signing.public_keyring()
