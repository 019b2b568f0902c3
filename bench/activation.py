"""The full activation (the final POST: look-up, lock, signing and every write) against the
floor: a bare Django view that inserts one row, both through the same middleware stack,
database and test client, measured in interleaved rounds in one run.

    python bench/activation.py [--rounds 400]

Uses DATABASE_URL when set (PostgreSQL), else a throw-away SQLite file. Prints medians and
the ratio; record them in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
WORK = Path(tempfile.mkdtemp(prefix="bench-activation-"))
os.environ.setdefault("DATABASE_URL", f"sqlite:///{WORK / 'bench.sqlite3'}")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
os.environ["LICENSE_SIGNING_KEY_FILE"] = str(WORK / "signing-key.pem")
os.environ["EMAIL_BACKEND"] = "django.core.mail.backends.locmem.EmailBackend"
os.environ["ALLOWED_HOSTS"] = "testserver"

import django  # noqa: E402

django.setup()

from django.contrib.auth.decorators import login_required  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.http import HttpResponseRedirect  # noqa: E402
from django.test import Client, override_settings  # noqa: E402
from django.urls import include, path  # noqa: E402
from django.views.decorators.http import require_POST  # noqa: E402

import tmslicense  # noqa: E402
from licensing import signing  # noqa: E402
from licensing.models import AuditEvent, License, Membership, Organization  # noqa: E402
from portal.celery import app  # noqa: E402


@login_required
@require_POST
def floor(request):
    """The floor: an authenticated POST that inserts one row and redirects."""
    AuditEvent.objects.create(actor=request.user, action="bench", object_repr="floor")
    return HttpResponseRedirect("/licenses/")


urlpatterns = [path("bench/floor/", floor), path("", include("portal.urls"))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=400)
    rounds = parser.parse_args().rounds

    # Publishing a task is part of an activation; an in-memory broker stands in for Redis.
    app.conf.update(task_always_eager=False, broker_url="memory://")
    old_db = None
    if connection.vendor == "postgresql":
        old_db = connection.creation.create_test_db(verbosity=0)
    else:
        call_command("migrate", verbosity=0)
    signing.create_key_file(Path(os.environ["LICENSE_SIGNING_KEY_FILE"]))

    from django.contrib.auth import get_user_model

    user = get_user_model().objects.create_user("bench", "bench@example.com", "x")
    org = Organization.objects.create(name="Bench Plant")
    Membership.objects.create(user=user, organization=org)
    licenses = [
        License(
            number=tmslicense.new_license_number(),
            organization=org,
            kind="standard",
            seats=10,
            maintenance_end="2030-01-01",
        )
        for _ in range(rounds + 20)
    ]
    License.objects.bulk_create(licenses)
    numbers = iter(lic.number for lic in licenses)
    ids = [tmslicense.new_installation_id() for _ in range(rounds + 20)]

    client = Client()
    client.force_login(user)
    step = "activate_license_view-current_step"

    def activation():
        response = client.post(
            "/activate/",
            {
                step: "license",
                "license-license_number": next(numbers),
                "license-installation_id": ids.pop(),
            },
        )
        assert response.status_code == 302, response.content[:500]
        # A browser shows the "activated" message on the next page, which empties the
        # messages cookie; without that it would grow with every round.
        client.cookies.pop("messages", None)

    def floor_request():
        assert client.post("/bench/floor/").status_code == 302

    with override_settings(ROOT_URLCONF=__name__, ACTIVATION_FAILURE_LIMIT=10**9):
        for _ in range(20):  # warm-up: caches, connections, key loading
            activation()
            floor_request()
        times = {"activation": [], "floor": []}
        for _ in range(rounds):
            for name, fn in (("activation", activation), ("floor", floor_request)):
                start = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - start)

    act = statistics.median(times["activation"]) * 1e3
    flo = statistics.median(times["floor"]) * 1e3
    print(f"database: {connection.vendor}, rounds: {rounds}")
    print(f"activation (final POST)    median {act:.3f} ms")
    print(f"floor (one-row insert)     median {flo:.3f} ms")
    print(f"ratio activation/floor     {act / flo:.2f}x (goal <= 2x)")
    if old_db:
        connection.creation.destroy_test_db(old_db, verbosity=0)


if __name__ == "__main__":
    main()
