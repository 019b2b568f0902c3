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
    from licensing.models import License, Membership, Organization
    from django.conf import settings
    from django.contrib.auth import get_user_model

    call_command("migrate", verbosity=0)
    signing.create_key_file(settings.LICENSE_SIGNING_KEY_FILE)
    user = get_user_model().objects.create_user("support", is_staff=True)
    customer = get_user_model().objects.create_user("engineer")
    plant = Organization.objects.create(name="Plant")
    Membership.objects.create(user=customer, organization=plant)
    lic = License.objects.create(
        organization=plant, kind="standard", seats=5, maintenance_end="2030-01-01"
    )
    first, _ = services.activate(
        license=lic, installation_id=tmslicense.new_installation_id(), actor=customer
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


def test_a_first_run_makes_one_secret_key_in_a_folder_only_its_owner_opens(tmp_path):
    """Web and worker starting at once on a fresh machine share one key, never half-written;
    var/ (with the demo's database, e-mails and signing key) is closed to other users."""
    var = tmp_path / "var"
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"SECRET_KEY", "DATABASE_URL", "REDIS_URL", "CACHE_URL"}
    }
    env.update(DJANGO_SETTINGS_MODULE="portal.settings", VAR_DIR=str(var), PYTHONPATH=str(ROOT))
    script = "from django.conf import settings; print(settings.SECRET_KEY)"
    starts = [
        subprocess.Popen(
            [sys.executable, "-c", script], cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True
        )
        for _ in range(6)
    ]
    keys = {start.communicate(timeout=120)[0].strip() for start in starts}
    assert keys == {(var / "secret_key").read_text()} and len(keys.pop()) > 50
    assert [path.name for path in var.iterdir()] == ["secret_key"]  # no temporary one left
    assert var.stat().st_mode & 0o777 == 0o700
    assert (var / "secret_key").stat().st_mode & 0o777 == 0o600


def test_a_first_run_on_a_filesystem_without_hard_links_still_makes_its_key(tmp_path):
    var = tmp_path / "var"
    env = {key: value for key, value in os.environ.items() if key != "SECRET_KEY"}
    env.update(DJANGO_SETTINGS_MODULE="portal.settings", VAR_DIR=str(var), PYTHONPATH=str(ROOT))
    script = textwrap.dedent(
        """
        import errno, os
        def link(*args):
            raise OSError(errno.EPERM, "no hard links on this filesystem")
        os.link = link
        from django.conf import settings
        print(settings.SECRET_KEY)
        """
    )
    run = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.strip() == (var / "secret_key").read_text()
    assert [path.name for path in var.iterdir()] == ["secret_key"]
    assert (var / "secret_key").stat().st_mode & 0o777 == 0o600
