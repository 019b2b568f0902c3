"""A hung Redis (it takes connections and answers nothing: a full disk, a stopped VM, a
network that drops packets) must not hold the site's threads: /healthz reports it without
piling up checks, and log-in goes on without the rate limits (they fail open)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading

import pytest

from licensing import health
from tests.integration.conftest import ROOT
from tests.licensing.test_concurrency import at_once


class HungServer:
    """Accepts TCP connections, reads nothing, answers nothing (or with ``close_at_once``
    closes them); counts the connections."""

    close_at_once = False

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.url = f"redis://127.0.0.1:{self.sock.getsockname()[1]}/0"
        self.connections: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections.append(conn)
            if self.close_at_once:
                conn.close()

    def close(self):
        self.sock.close()
        for conn in self.connections:
            conn.close()


@pytest.fixture
def hung():
    server = HungServer()
    yield server
    server.close()


@pytest.fixture
def hung_broker(hung):
    from portal.celery import app

    saved = {k: app.conf[k] for k in ("broker_url", "task_always_eager")}
    app.conf.update(broker_url=hung.url, task_always_eager=False)
    app._pool = None
    health._broker_failure.update(at=-health.FAILURE_KEPT, answer="")
    yield hung
    app.conf.update(saved)
    app._pool = None
    health._broker_failure.update(at=-health.FAILURE_KEPT, answer="")


def test_healthz_checks_a_hung_broker_once_for_simultaneous_callers(hung_broker, client, db):
    answers = []
    at_once(6, lambda: answers.append(health._broker()))
    assert len(answers) == 6 and all(a.startswith("error") for a in answers), answers
    # One check connected, once; the other callers waited for its answer instead of each
    # holding a thread on their own.
    checked = len(hung_broker.connections)
    assert checked == 1

    response = client.get("/healthz")
    assert response.status_code == 200 and response.json()["status"] == "degraded"
    assert len(hung_broker.connections) == checked  # the failure, given again

    health._broker_failure["at"] -= health.FAILURE_KEPT  # a few seconds later
    assert client.get("/healthz").json()["status"] == "degraded"
    assert len(hung_broker.connections) > checked  # asked again


def test_healthz_waits_for_a_hung_broker_its_own_short_timeouts(hung_broker, monkeypatch):
    from portal.celery import app

    opened = []
    connection_for_write = app.connection_for_write

    def recorded(**kwargs):
        opened.append(connection_for_write(**kwargs))
        return opened[-1]

    monkeypatch.setattr(app, "connection_for_write", recorded)
    assert health._broker().startswith("error")
    options = opened[0].transport_options
    # Not the 5 s socket timeout that publishing tasks allows (settings).
    assert options["socket_timeout"] == options["socket_connect_timeout"] == 1


def test_healthz_asks_a_broker_that_drops_connections_once(hung_broker):
    # Redis restarting or out of connections: each connection closed at once. One try, not a
    # second one 2 s later (kombu's default), and the failure is answered.
    hung_broker.close_at_once = True
    assert health._broker() == "error: OperationalError"
    assert len(hung_broker.connections) == 1


LOGIN = """
from django.contrib.auth import get_user_model
from django.test import Client
get_user_model().objects.create_user("plant", "plant@example.com", "pw-0-plant-7")
client = Client()
response = client.post("/accounts/login/", {"username": "plant", "password": "pw-0-plant-7"})
from django.core.cache import cache
pool = cache._cache.get_client().connection_pool.connection_kwargs
print(pool["socket_timeout"], pool["socket_connect_timeout"])
print(response.status_code, response.headers.get("Location"))
"""


def test_log_in_works_with_the_rate_limit_cache_hung(hung, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "PYTEST"))}
    env.update(
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
        VAR_DIR=str(tmp_path),
        CACHE_URL=hung.url,
        REDIS_URL="",
        ALLOWED_HOSTS="testserver",
    )
    manage = [sys.executable, "manage.py"]
    subprocess.run([*manage, "migrate", "-v0"], cwd=ROOT, env=env, check=True, timeout=120)
    result = subprocess.run(
        [*manage, "shell", "-c", LOGIN],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-2:] == ["1 1", "302 /licenses/"]  # 1 s, not 5 s
    assert hung.connections  # the limits were asked, and failed open
    assert "rate-limit cache unreachable" in result.stderr
