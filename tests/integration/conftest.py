"""Real processes for integration tests: a Redis server of the test's own (so it can be stopped
and started), an SMTP sink on loopback, and Celery worker processes."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from email import message_from_bytes
from email.message import Message
from pathlib import Path

import pytest

from tests.conftest import require

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(condition, timeout: float, what: str, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


class RedisServer:
    def __init__(self, workdir: Path):
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.workdir = workdir
        self.process = None

    def start(self):
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.workdir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for(self._ping, 10, "redis-server to answer")

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)

    def _ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False


class SmtpSink:
    """Accepts mail on loopback. While ``stall`` is set, a delivery hangs in DATA and is then
    refused with 451 (as a server that times out), so it is not counted as delivered."""

    def __init__(self):
        from aiosmtpd.controller import Controller

        self.messages: list[Message] = []
        self.stall = threading.Event()
        self.stalled = threading.Event()
        self.release = threading.Event()
        self.port = free_port()
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port)

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's name
        if self.stall.is_set():
            self.stalled.set()
            while not self.release.is_set():
                await asyncio.sleep(0.05)
            return "451 4.3.0 Try again later"
        self.messages.append(message_from_bytes(envelope.content))
        return "250 OK"


class Worker:
    def __init__(self, env: dict, log: Path):
        self.env = env
        self.log = log
        self.process = None

    def start(self):
        self.log.write_text("")
        handle = open(self.log, "a")  # noqa: SIM115 - closed with the process
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "portal",
                "worker",
                "--pool=solo",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
                "--loglevel=INFO",
            ],
            cwd=ROOT,
            env=self.env,
            stdout=handle,
            stderr=subprocess.STDOUT,
        )
        handle.close()
        wait_for(
            lambda: "ready." in self.log.read_text() or self.process.poll() is not None,
            60,
            "the Celery worker to be ready",
        )
        assert self.process.poll() is None, self.log.read_text()

    def kill(self):
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture
def postgres_db(transactional_db):
    from django.db import connection

    require(
        connection.vendor == "postgresql",
        "a worker process shares the test database only on PostgreSQL: set DATABASE_URL",
    )
    s = connection.settings_dict
    return f"postgresql://{s['USER']}:{s['PASSWORD']}@{s['HOST']}:{s['PORT']}/{s['NAME']}"


@pytest.fixture
def redis_server(tmp_path):
    require(shutil.which("redis-server") is not None, "redis-server is not installed")
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def smtp_sink():
    sink = SmtpSink()
    sink.controller.start()
    yield sink
    sink.release.set()
    sink.controller.stop()


@pytest.fixture
def broker(redis_server):
    """Point this process's Celery app at the test's Redis, no longer running tasks inline."""
    from portal.celery import app

    def reset_pools():
        # Celery caches its broker connections and producers; drop them with the URL.
        app._pool = None
        app.amqp._producer_pool = None

    saved = {k: app.conf[k] for k in ("broker_url", "task_always_eager")}
    app.conf.update(broker_url=redis_server.url, task_always_eager=False)
    reset_pools()
    yield redis_server
    app.conf.update(saved)
    reset_pools()


@pytest.fixture
def worker_env(postgres_db, broker, smtp_sink, signing_key_file):
    env = {k: v for k, v in os.environ.items() if k not in {"CACHE_URL", "EMAIL_BACKEND"}}
    env.update(
        DATABASE_URL=postgres_db,
        REDIS_URL=broker.url,
        EMAIL_HOST="127.0.0.1",
        EMAIL_PORT=str(smtp_sink.port),
        EMAIL_TIMEOUT="60",
        LICENSE_SIGNING_KEY_FILE=str(signing_key_file),
        DJANGO_SETTINGS_MODULE="portal.settings",
    )
    return env


@pytest.fixture
def make_worker(worker_env, tmp_path):
    workers = []

    def make() -> Worker:
        worker = Worker(worker_env, tmp_path / f"worker{len(workers)}.log")
        workers.append(worker)
        worker.start()
        return worker

    yield make
    for worker in workers:
        worker.stop()
