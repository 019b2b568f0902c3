"""The embedded default (SQLite, as `make run` uses it) under simultaneous support actions."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# Six support actions on one activation at the same moment, in one process with threads, on
# a fresh SQLite file: each either takes effect or is refused; none fails with "database is
# locked" (SQLite refuses a deferred transaction's write at once when another one wrote first).
SCRIPT = textwrap.dedent(
    """
    import json, threading
    import django
    django.setup()
    from django.core.management import call_command
    from django.db import connection
    import tmslicense
    from licensing import services, signing
    from licensing.models import License, Organization
    from django.conf import settings
    from django.contrib.auth import get_user_model

    call_command("migrate", verbosity=0)
    signing.create_key_file(settings.LICENSE_SIGNING_KEY_FILE)
    user = get_user_model().objects.create_user("support", is_staff=True)
    lic = License.objects.create(
        organization=Organization.objects.create(name="Plant"),
        kind="standard",
        seats=5,
        maintenance_end="2030-01-01",
    )
    first, _ = services.activate(
        license=lic, installation_id=tmslicense.new_installation_id(), actor=user
    )
    connection.close()
    barrier = threading.Barrier(6)
    outcomes = []

    def act(index):
        try:
            barrier.wait(timeout=30)
            if index % 2:
                services.revoke(activation=first, reason="test", actor=user)
            else:
                services.reissue(activation=first, actor=user)
            outcomes.append("done")
        except services.ActivationError:
            outcomes.append("refused")
        except Exception as error:
            outcomes.append(repr(error))
        finally:
            connection.close()

    threads = [threading.Thread(target=act, args=(i,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    print(json.dumps(outcomes))
    """
)


def test_simultaneous_support_actions_on_sqlite_wait_their_turn(tmp_path):
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"DATABASE_URL", "REDIS_URL", "CACHE_URL", "REQUIRE_SERVICES"}
    }
    env.update(
        DJANGO_SETTINGS_MODULE="portal.settings",
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
        LICENSE_SIGNING_KEY_FILE=str(tmp_path / "signing-key.pem"),
        PYTHONPATH=str(ROOT),
    )
    run = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    outcomes = json.loads(run.stdout.strip().splitlines()[-1])
    assert sorted(outcomes) == ["done"] + ["refused"] * 5, outcomes
