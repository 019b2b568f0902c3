"""PostgreSQL going away: a restart does not turn kept connections into errors, and a host
that stops answering does not hold the site's threads (portal/settings.py's options)."""

from __future__ import annotations

import socket
import threading

import pytest
from django.db import OperationalError, connection, connections

from tests.conftest import require

pytestmark = pytest.mark.services


@pytest.fixture
def postgres(transactional_db):
    require(connection.vendor == "postgresql", "PostgreSQL is not configured: set DATABASE_URL")


def test_a_kept_connection_that_the_server_closed_is_replaced(postgres, monkeypatch):
    # As in production (DATABASE_CONN_MAX_AGE): the connection outlives its request.
    monkeypatch.setitem(connection.settings_dict, "CONN_MAX_AGE", 60)
    connection.close()
    connection.ensure_connection()
    pid = connection.connection.info.backend_pid
    with connections.create_connection("default").cursor() as other:
        other.execute("SELECT pg_terminate_backend(%s)", [pid])  # as a restart does
    connection.close_if_unusable_or_obsolete()  # what Django does as each request starts
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        assert cursor.fetchone()[0] != pid


def test_statements_are_cancelled_after_the_configured_time(postgres, settings):
    with connection.cursor() as cursor:
        cursor.execute("SHOW statement_timeout")
        seconds = settings.DATABASE_STATEMENT_TIMEOUT
        assert cursor.fetchone()[0] == (f"{seconds}s" if seconds else "0")


def test_a_database_host_that_answers_nothing_is_given_up_on(postgres):
    # Takes the connection and never answers: a stopped VM, a network dropping packets.
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(4)
    port = silent.getsockname()[1]
    wrapper = connections.create_connection("default")
    wrapper.settings_dict = {**wrapper.settings_dict, "HOST": "127.0.0.1", "PORT": port}
    outcome = []

    def connect():
        try:
            wrapper.ensure_connection()
            outcome.append("connected")
        except OperationalError as error:
            outcome.append(error)

    thread = threading.Thread(target=connect, daemon=True)
    thread.start()
    thread.join(timeout=60)  # far above the connect timeout: without one it waits for ever
    silent.close()
    assert outcome and isinstance(outcome[0], OperationalError), outcome
