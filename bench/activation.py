"""The full activation (its final POST: look-up, lock, signing and every write) against the
floor: a bare Django view that inserts one row. Both through the same server and client, in
interleaved rounds, in one run:

- over HTTP, to the portal served by gunicorn with the deployment's own configuration
  (``portal/gunicorn.conf.py``, persistent database connections as in ``.env.example``),
  from a keep-alive client that logs in and sends the CSRF token like a browser, and after
  each timed request sends an untimed one that waits for the server's after-response work
  (publishing the e-mail task);
- in-process, through Django's test client (no HTTP): the framework's share alone.

    python bench/activation.py [--rounds 300]

Uses DATABASE_URL when set (PostgreSQL, a throw-away test database), else a throw-away
SQLite file; and REDIS_URL when set (production's broker and cache), else memory. Prints
medians and ratios; record them in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from http.client import HTTPConnection
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import urlencode, urlsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
WORK = Path(tempfile.mkdtemp(prefix="bench-activation-"))
if not os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://")):
    # Never a developer's own SQLite file: a throw-away one.
    os.environ["DATABASE_URL"] = f"sqlite:///{WORK / 'bench.sqlite3'}"
os.environ["DJANGO_SETTINGS_MODULE"] = "bench.settings"
os.environ["DATABASE_CONN_MAX_AGE"] = "60"
os.environ["LICENSE_SIGNING_KEY_FILE"] = str(WORK / "signing-key.pem")

import django  # noqa: E402

django.setup()

from celery import current_app  # noqa: E402
from django.conf import settings  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402

import tmslicense  # noqa: E402
from licensing import signing  # noqa: E402
from licensing.models import Activation, License, Membership, Organization  # noqa: E402

STEP = "activate_license_view-current_step"
PASSWORD = "bench-password-not-secret"


class Browser:
    """A keep-alive HTTP client that keeps cookies and sends the CSRF token like a browser."""

    def __init__(self, port: int):
        self.conn = HTTPConnection("127.0.0.1", port, timeout=30)
        self.cookies: dict[str, str] = {}

    def request(self, method: str, path: str, form: dict | None = None) -> tuple[int, bytes, str]:
        headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())}
        body = None
        if form is not None:
            body = urlencode({"csrfmiddlewaretoken": self.cookies["csrftoken"], **form})
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        self.conn.request(method, path, body, headers)
        response = self.conn.getresponse()
        content = response.read()
        for header in response.headers.get_all("Set-Cookie") or ():
            for name, morsel in SimpleCookie(header).items():
                if morsel["max-age"] == "0":
                    self.cookies.pop(name, None)
                else:
                    self.cookies[name] = morsel.value
        # A browser shows the "activated" message on the next page, which empties the
        # messages cookie; without that it would grow with every round.
        self.cookies.pop("messages", None)
        return response.status, content, response.getheader("Location", "")

    def post(self, path: str, form: dict) -> tuple[int, str, bytes]:
        status, content, location = self.request("POST", path, form)
        return status, location, content

    def settle(self) -> None:
        """Wait, untimed, until the server has finished what it does after a response (the
        e-mail task is published then), so that the next timed request does not wait for it."""
        status, *_ = self.request("GET", "/keyring.json")
        assert status == 200, status

    def login(self, username: str) -> None:
        status, page, _ = self.request("GET", "/accounts/login/")
        assert status == 200 and "csrftoken" in self.cookies, status
        assert re.search(rb'name="csrfmiddlewaretoken"', page)
        status, *_ = self.post("/accounts/login/", {"username": username, "password": PASSWORD})
        assert status == 302, f"login failed: {status}"


class InProcess:
    """Django's test client: the same requests without HTTP (it skips the CSRF check)."""

    def __init__(self, user):
        self.client = Client(HTTP_HOST="127.0.0.1")
        self.client.force_login(user)

    def post(self, path: str, form: dict) -> tuple[int, str, bytes]:
        response = self.client.post(path, form)
        self.client.cookies.pop("messages", None)
        return response.status_code, response.get("Location", ""), response.content

    def settle(self) -> None:
        """Nothing to wait for: the test client closes the response (and publishes the e-mail
        task) before it returns."""


def start_server(database_url: str) -> tuple[subprocess.Popen, int]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "GUNICORN_BIND": f"127.0.0.1:{port}",
        "WEB_CONCURRENCY": "1",  # one client, one request at a time: one warm process
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "portal.wsgi:application"]
        + ["-c", "portal/gunicorn.conf.py"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,  # the access log
        stderr=open(WORK / "gunicorn.log", "wb"),  # noqa: SIM115 - lives as long as the server
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return server, port
        except OSError:
            assert server.poll() is None, (WORK / "gunicorn.log").read_text()
            time.sleep(0.1)
    server.kill()
    raise SystemExit("gunicorn did not start; see " + str(WORK / "gunicorn.log"))


def scenarios(client, numbers):
    """Callables that each make one measured request and return its duration."""

    def timed(path, form):
        start = time.perf_counter()
        status, location, _ = client.post(path, form)
        elapsed = time.perf_counter() - start
        assert status == 302 and location.startswith("/licenses/"), f"{path}: {status} {location}"
        client.settle()
        return elapsed

    def standard():
        number, installation_id = next(numbers["standard"])
        form = {STEP: "license", "license-license_number": number}
        return timed("/activate/", {**form, "license-installation_id": installation_id})

    def mirrored():
        number, (primary, secondary) = next(numbers["mirrored"])
        step1 = {STEP: "license", "license-license_number": number}
        status, _, page = client.post("/activate/", {**step1, "license-installation_id": primary})
        assert status == 200, status
        run = re.search(rb'name="wizard_run" value="(\w+)"', page).group(1).decode()
        step2 = {
            STEP: "mirrored",
            "wizard_run": run,
            "mirrored-mirrored_installation_id": secondary,
        }
        return timed("/activate/", step2)

    def floor():
        return timed("/bench/floor/", {})

    return {"standard": standard, "mirrored": mirrored, "floor": floor}


def measure(runs: dict, rounds: int, warmup: int = 20) -> dict[str, float]:
    """Median milliseconds of each scenario, run in interleaved rounds after a warm-up."""
    for _ in range(warmup):
        for run in runs.values():
            run()
    times = {name: [] for name in runs}
    for _ in range(rounds):
        for name, run in runs.items():
            times[name].append(run())
    return {name: statistics.median(values) * 1e3 for name, values in times.items()}


def make_data(per_kind: int):
    """A customer and ``per_kind`` unactivated licenses of each kind, with fresh IDs."""
    user = get_user_model().objects.create_user("bench", "bench@example.com", PASSWORD)
    org = Organization.objects.create(name="Bench Plant")
    Membership.objects.create(user=user, organization=org)
    licenses = {
        kind: License.objects.bulk_create(
            License(
                number=tmslicense.new_license_number(),
                organization=org,
                kind=kind,
                seats=10,
                maintenance_end="2030-01-01",
            )
            for _ in range(per_kind)
        )
        for kind in ("standard", "mirrored")
    }
    new_id = tmslicense.new_installation_id
    return user, {
        "standard": iter([(lic.number, new_id()) for lic in licenses["standard"]]),
        "mirrored": iter([(lic.number, (new_id(), new_id())) for lic in licenses["mirrored"]]),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=300)
    rounds = parser.parse_args().rounds

    database_url = os.environ["DATABASE_URL"]
    old_name = server = None
    try:
        if connection.vendor == "postgresql":
            old_name = connection.settings_dict["NAME"]
            test_name = connection.creation.create_test_db(verbosity=0, autoclobber=True)
            database_url = urlsplit(database_url)._replace(path=f"/{test_name}").geturl()
        else:
            call_command("migrate", verbosity=0)
        signing.create_key_file(Path(os.environ["LICENSE_SIGNING_KEY_FILE"]))
        user, numbers = make_data(per_kind=2 * (rounds + 20))  # both clients
        server, port = start_server(database_url)
        browser = Browser(port)
        browser.login(user.username)
        results = {
            "HTTP, gunicorn": measure(scenarios(browser, numbers), rounds),
            "in-process": measure(scenarios(InProcess(user), numbers), rounds),
        }
        # Every timed activation made one: nothing was refused or skipped.
        assert Activation.objects.count() == 2 * 2 * (rounds + 20)
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
        if settings.REDIS_URL:  # the run's queue, with the tasks nobody took
            with current_app.connection_for_write() as broker:
                queue = current_app.amqp.queues[settings.CELERY_TASK_DEFAULT_QUEUE]
                queue = queue(broker.default_channel)
                queue.declare()  # makes the binding known to this connection, to be deleted
                queue.delete()
        connection.close()
        if old_name:
            connection.creation.destroy_test_db(old_name, verbosity=0)
        shutil.rmtree(WORK, ignore_errors=True)  # the SQLite file and the signing key

    redis = "Redis" if settings.REDIS_URL else "in memory"
    print(f"database: {connection.vendor}, broker and cache: {redis}, rounds: {rounds}, ms")
    print(f"{'through':16} {'floor':>7} {'standard':>9} {'ratio':>6} {'mirrored':>9} {'ratio':>6}")
    for through, ms in results.items():
        print(
            f"{through:16} {ms['floor']:7.2f} {ms['standard']:9.2f} "
            f"{ms['standard'] / ms['floor']:5.2f}x {ms['mirrored']:9.2f} "
            f"{ms['mirrored'] / ms['floor']:5.2f}x"
        )
    print("goal: an activation (its final POST) costs at most 2x the floor")


if __name__ == "__main__":
    main()
