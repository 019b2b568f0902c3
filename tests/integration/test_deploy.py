"""The deployment: production settings pass Django's deploy checks, docker-compose.yml is
sound, and its production gunicorn command serves a whole activation against PostgreSQL
(run directly here: no container engine is needed)."""

from __future__ import annotations

import contextlib
import http.cookiejar
import os
import re
import secrets
import shlex
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
import yaml

import tmslicense
from tests.conftest import require
from tests.integration.conftest import free_port, wait_for

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def production_env(tmp_path, **overrides) -> dict:
    """The environment of .env.example, as a production host would have it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "PYTEST"))}
    for line in (ROOT / ".env.example").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            env[key.strip()] = value.strip()
    env["SECRET_KEY"] = secrets.token_urlsafe(60)  # as the example asks
    key_file = tmp_path / "signing-key.pem"
    if not key_file.exists():
        manage("create_signing_key", "--path", str(key_file), env=env)
    env.update(
        LICENSE_SIGNING_KEY_FILE=str(key_file),
        VAR_DIR=str(tmp_path / "var"),
        DJANGO_SETTINGS_MODULE="portal.settings",
        # The commands of docker-compose.yml (gunicorn, celery) from this environment.
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    )
    env.pop("REDIS_URL", None)
    env.pop("CACHE_URL", None)
    env.update(overrides)
    return env


def manage(*args, env) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def test_production_settings_pass_the_deploy_checks(tmp_path):
    env = production_env(tmp_path, DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}")
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=env)
    assert "no issues" in result.stdout


def test_the_deploy_checks_refuse_a_missing_signing_key_or_kept_keyring(tmp_path):
    env = production_env(tmp_path, DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}")
    for name, missing in (
        ("LICENSE_SIGNING_KEY_FILE", tmp_path / "not-mounted.pem"),
        ("LICENSE_EXTRA_KEYRING_FILE", tmp_path / "old-keyring.json"),
    ):
        result = subprocess.run(
            [sys.executable, "manage.py", "check", "--deploy"],
            cwd=ROOT,
            env={**env, name: str(missing)},
            capture_output=True,
            text=True,
        )
        assert result.returncode != 0, name
        assert "licensing.E001" in result.stderr and str(missing) in result.stderr, result.stderr


def test_the_deploy_checks_refuse_e_mail_that_is_not_sent(tmp_path):
    """Without EMAIL_HOST the e-mails (with their password links) would go to the log."""
    env = production_env(tmp_path, DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}")
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy"],
        cwd=ROOT,
        env={**env, "EMAIL_HOST": ""},
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0
    assert "licensing.E002" in result.stderr and "printed in the log" in result.stderr
    filed = {"EMAIL_HOST": "", "EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend"}
    assert "no issues" in manage("check", "--deploy", env={**env, **filed}).stdout


def test_the_deploy_checks_warn_of_djangos_own_smtp_back_end(tmp_path):
    """An .env kept from before the site's SMTP back-end (an older .env.example suggested
    Django's) would keep a hanging mail server's sends from ever being cut off: a warning,
    which does not stop a deployment."""
    env = production_env(tmp_path, DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}")
    django_smtp = {"EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend"}
    result = manage("check", "--deploy", "--fail-level", "ERROR", env={**env, **django_smtp})
    assert "licensing.W001" in result.stderr and "licensing.mail.SMTPBackend" in result.stderr
    assert "no issues" in manage("check", "--deploy", env=env).stdout  # the default


def test_smtp_over_tls_from_the_start_or_starttls_not_both(tmp_path):
    env = production_env(tmp_path, DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}")
    assert env["EMAIL_USE_TLS"] == "true"  # .env.example's
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env={**env, "EMAIL_USE_SSL": "true"},
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0
    assert "EMAIL_USE_TLS and EMAIL_USE_SSL: set one of them, not both." in result.stderr
    env.update(EMAIL_USE_SSL="true", EMAIL_USE_TLS="false", EMAIL_PORT="465")
    assert "no issues" in manage("check", env=env).stdout


def test_the_example_secret_key_is_refused(tmp_path):
    env = production_env(tmp_path, DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}")
    env["SECRET_KEY"] = next(
        line.partition("=")[2]
        for line in (ROOT / ".env.example").read_text().splitlines()
        if line.startswith("SECRET_KEY=")
    )
    result = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert result.returncode != 0
    assert "SECRET_KEY is still .env.example's placeholder" in result.stderr


def test_an_https_site_needs_its_https_address_for_links(tmp_path):
    env = production_env(tmp_path, DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}")
    for site_url in ("", "http://licensing.example.com"):
        env["SITE_URL"] = site_url  # empty: the default, this machine's address
        result = subprocess.run(
            [sys.executable, "manage.py", "check"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
        )
        assert result.returncode != 0
        assert "SITE_URL must be the site's https:// address" in result.stderr


HSTS_HEADER = """
from django.core.management import call_command
from django.test import Client
call_command("migrate", verbosity=0)  # the keyring lists the keys of files in use
response = Client().get("/keyring.json", secure=True, HTTP_HOST="licensing.example.com")
print(response.status_code, response.headers.get("Strict-Transport-Security"))
"""


@pytest.mark.parametrize(
    ("overrides", "header"),
    [
        ({}, "max-age=31536000; includeSubDomains"),
        ({"SECURE_HSTS_PRELOAD": "true"}, "max-age=31536000; includeSubDomains; preload"),
        ({"SECURE_HSTS_INCLUDE_SUBDOMAINS": "false"}, "max-age=31536000"),
        ({"SECURE_HSTS_SECONDS": "0", "SECURE_HSTS_PRELOAD": "true"}, "None"),
    ],
)
def test_hsts_subdomains_and_preload_are_separate_choices(tmp_path, overrides, header):
    """.env.example's HSTS covers subdomains; "preload", which lets anyone submit the domain
    to the browsers' lists for good, is sent only when asked for."""
    env = production_env(tmp_path, DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}")
    env.update(overrides)
    result = manage("shell", "-c", HSTS_HEADER, env=env)
    assert result.stdout.splitlines()[-1] == f"200 {header}"


@pytest.mark.parametrize(
    ("name", "value", "said"),
    [
        ("OUTBOX_KEEP_DAYS", "30", "OUTBOX_KEEP_DAYS must be at least 31, not 30"),
        # Support's list of a customer's addresses lately reads 30 days of them.
        ("AUDIT_ADDRESS_KEEP_DAYS", "7", "AUDIT_ADDRESS_KEEP_DAYS must be at least 31, not 7"),
        ("LOGIN_FAILURE_WINDOW", "0", "LOGIN_FAILURE_WINDOW must be at least 1, not 0"),
        ("LOGIN_FAILURE_LIMIT", "-1", "LOGIN_FAILURE_LIMIT must be at least 1, not -1"),
        ("EMAIL_TIMEOUT", "0", "EMAIL_TIMEOUT must be at least 1, not 0"),
        ("CLIENT_IP_HEADER", "X-Forwarded-For", "as Django does: HTTP_X_FORWARDED_FOR, not"),
        ("CLIENT_IP_HEADER", "HTTP_X-Forwarded-For", "as Django does: HTTP_X_FORWARDED_FOR,"),
        ("CLIENT_IP_HEADER", "remote_addr", "as Django does: REMOTE_ADDR, not"),
    ],
)
def test_a_value_that_cannot_work_is_refused_naming_its_variable(tmp_path, name, value, said):
    """A window of 0 counted no failed log-in (a division by it, said as the cache being
    down), a negative limit refused every log-in, a timeout of 0 failed every e-mail, a
    header written as sent was never found (every customer counted as the proxy)."""
    env = production_env(tmp_path, DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}")
    env[name] = value
    result = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert result.returncode != 0
    assert said in result.stderr


@pytest.mark.parametrize("name", ["WEB_CONCURRENCY", "GUNICORN_THREADS"])
def test_gunicorn_without_a_worker_or_thread_does_not_start(tmp_path, name):
    """0 started a server that took connections and answered none."""
    env = production_env(tmp_path, **{name: "0"})
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "-c",
            "portal/gunicorn.conf.py",
            "--check-config",
            "portal.wsgi",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert f"{name} must be at least 1, not 0" in result.stdout + result.stderr


def test_the_deploy_checks_take_an_ipv6_site_and_the_connections_own_address(tmp_path):
    env = production_env(tmp_path, DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}")
    env.update(SITE_URL="https://[2001:db8::5]", ALLOWED_HOSTS="[2001:db8::5]")
    env.update(CLIENT_IP_HEADER="REMOTE_ADDR")  # no proxy: the connection's, named as Django
    assert "no issues" in manage("check", "--deploy", env=env).stdout


@pytest.mark.parametrize(
    ("overrides", "said"),
    [
        ({"ALLOWED_HOSTS": "licenses.example.com"}, "licensing.E003"),
        ({"SECRET_KEY": ""}, "licensing.E004"),
    ],
)
def test_the_deploy_checks_refuse_links_to_a_host_refused_and_a_key_per_service(
    tmp_path, overrides, said
):
    env = production_env(tmp_path, DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}")
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy"],
        cwd=ROOT,
        env={**env, **overrides},
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0
    assert said in result.stderr, result.stderr


def test_no_secret_key_and_no_folder_to_keep_one_in_says_to_set_it(tmp_path):
    """In the image, whose folder is not the service user's to write (here, a file in the
    way: root writes any folder): the error names the setting, not the folder."""
    blocked = tmp_path / "var"
    blocked.write_text("")
    env = production_env(tmp_path, DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}")
    env.update(SECRET_KEY="", VAR_DIR=str(blocked / "inner"))
    result = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert result.returncode != 0
    assert "SECRET_KEY is not set, and none can be kept in VAR_DIR" in result.stderr


EMPTY_SETTINGS = """
from django.conf import settings
print(settings.LOG_LEVEL, settings.ALLOWED_HOSTS, settings.CACHES["default"]["BACKEND"])
print(settings.SECURE_HSTS_SECONDS, settings.EMAIL_PORT, settings.OUTBOX_KEEP_DAYS)
"""


def test_a_setting_left_empty_in_the_env_file_takes_its_default(tmp_path):
    """``NAME=`` in an env file sets the variable to nothing: that is no value, not an empty
    one (an empty LOG_LEVEL stopped start-up, an empty ALLOWED_HOSTS refused every host)."""
    listed = re.findall(r"^#?\s*([A-Z_]+)=", (ROOT / ".env.example").read_text(), re.M)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "PYTEST"))}
    env.update(dict.fromkeys(listed, ""), VAR_DIR=str(tmp_path), PYTHONPATH=str(ROOT))
    result = manage("shell", "-c", EMPTY_SETTINGS, env=env)
    assert result.stdout.splitlines()[-2:] == [
        "INFO ['127.0.0.1', 'localhost', '[::1]'] django.core.cache.backends.locmem.LocMemCache",
        "0 25 90",
    ]
    gunicorn = subprocess.run(
        [
            sys.executable,
            "-c",
            "exec(open('portal/gunicorn.conf.py').read()); "
            "print(bind, workers, threads, timeout, forwarded_allow_ips)",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert gunicorn.stdout.split() == ["0.0.0.0:8000", "3", "2", "30", "127.0.0.1"]


def test_env_example_lists_every_setting_the_portal_reads():
    settings = (ROOT / "portal" / "settings.py").read_text()
    gunicorn = (ROOT / "portal" / "gunicorn.conf.py").read_text()
    read = set(re.findall(r'(?:environ\.get|env\w*)\(\s*"([A-Z_]+)"', settings + gunicorn))
    listed = set(re.findall(r"^#?\s*([A-Z_]+)=", (ROOT / ".env.example").read_text(), re.M))
    assert read - listed == set()


def test_log_lines_say_when_in_utc_how_bad_and_where(tmp_path):
    script = "import logging; logging.getLogger('licensing.outbox').error('the sweep failed')"
    result = manage("shell", "-c", script, env=production_env(tmp_path))
    assert re.fullmatch(
        r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z ERROR licensing\.outbox the sweep failed\n",
        result.stderr,
    ), result.stderr


def test_worker_and_beat_wait_for_redis_however_long_it_is_down(tmp_path):
    script = "from portal.celery import app; print(app.conf.broker_connection_max_retries)"
    result = manage("shell", "--no-imports", "-c", script, env=production_env(tmp_path))
    assert result.stdout == "None\n"


@pytest.mark.parametrize(
    ("timeout", "options"),
    [("15", "-c search_path=public -c statement_timeout=15000"), ("0", "-c search_path=public")],
)
def test_the_statement_timeout_joins_server_options_given_in_the_url(tmp_path, timeout, options):
    url = "postgresql://tms:pw@postgres:5432/tms?options=-c%20search_path%3Dpublic"
    env = production_env(tmp_path, DATABASE_URL=url, DATABASE_STATEMENT_TIMEOUT=timeout)
    script = "from django.conf import settings; print(settings.DATABASES['default']['OPTIONS'])"
    printed = manage("shell", "--no-imports", "-c", script, env=env).stdout
    assert f"'options': '{options}'" in printed and "'connect_timeout': 3" in printed


def test_compose_runs_web_worker_beat_and_a_one_shot_migration():
    services = COMPOSE["services"]
    assert {"postgres", "redis", "migrate", "web", "worker", "beat"} <= services.keys()
    assert "--appendonly" in services["redis"]["command"]
    for name in ("postgres", "redis"):
        assert services[name]["healthcheck"]["test"]
    for name in ("web", "worker", "beat"):
        assert services[name]["depends_on"]["migrate"]["condition"] == (
            "service_completed_successfully"
        )
        assert "container_name" not in services[name]  # they scale out
        assert services[name]["secrets"] == ["signing-key"]
        assert services[name]["environment"]["LICENSE_SIGNING_KEY_FILE"] == (
            "/run/secrets/signing-key"
        )
    assert services["migrate"]["command"][-1].startswith(
        "python manage.py check --deploy --fail-level ERROR && "
    )
    assert services["web"]["command"][0] == "gunicorn"
    assert services["worker"]["command"][:4] == ["celery", "-A", "portal", "worker"]
    assert services["beat"]["command"][:4] == ["celery", "-A", "portal", "beat"]
    assert set(COMPOSE["volumes"]) == {"pgdata", "redisdata"}
    # A database dump left in the checkout (docs/operations.md) stays out of the image.
    assert "*.dump" in (ROOT / ".dockerignore").read_text().split()
    for name, service in services.items():  # every container's log is rotated
        assert service["logging"]["options"]["max-size"], name


@pytest.fixture
def fresh_postgres():
    """A new, empty PostgreSQL database for the server under test, dropped afterwards."""
    url = os.environ.get("DATABASE_URL", "")
    require(url.startswith("postgres"), "the gunicorn test needs PostgreSQL: set DATABASE_URL")
    import psycopg

    name = f"deploy_{secrets.token_hex(4)}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    parts = urllib.parse.urlsplit(url)
    yield urllib.parse.urlunsplit(parts._replace(path=f"/{name}"))
    with psycopg.connect(url, autocommit=True) as conn:
        for attempt in range(40):
            try:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                break
            except psycopg.errors.InsufficientPrivilege:
                # FORCE may not end a process of another role: an autovacuum worker that
                # happens to be in the new database. It is gone within moments.
                if attempt == 39:
                    raise
                time.sleep(0.25)


def gunicorn_env(tmp_path, database_url: str, **overrides) -> tuple[dict, int]:
    """The production environment for a gunicorn of one's own on a free port (an override
    may name it as ``{port}``), its database migrated and its static files collected;
    returns it with the port."""
    port = free_port()
    settings = {
        "DATABASE_URL": database_url,
        "STATIC_ROOT": str(tmp_path / "static"),
        "GUNICORN_BIND": f"127.0.0.1:{port}",
        "WEB_CONCURRENCY": "1",
        **{k: v.format(port=port) for k, v in overrides.items()},
    }
    env = production_env(tmp_path, **settings)
    manage("migrate", "--noinput", env=env)
    manage("collectstatic", "--noinput", env=env)
    return env, port


class Browser:
    """A stdlib HTTP client with cookies and CSRF, as a browser would post forms."""

    def __init__(self, base: str):
        self.base = base
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(self.jar), NoRedirect()
        )

    def get(self, path):
        return self.opener.open(self.base + path, timeout=10)

    def post(self, path, data):
        token = next(c.value for c in self.jar if c.name == "csrftoken")
        body = urllib.parse.urlencode({"csrfmiddlewaretoken": token, **data}).encode()
        request = urllib.request.Request(
            self.base + path, data=body, headers={"Referer": self.base + path}
        )
        try:
            return self.opener.open(request, timeout=30)
        except urllib.error.HTTPError as error:
            return error


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def test_production_gunicorn_serves_an_activation_on_postgres(tmp_path, fresh_postgres):
    env, port = gunicorn_env(
        tmp_path,
        fresh_postgres,
        ALLOWED_HOSTS="127.0.0.1",
        CSRF_TRUSTED_ORIGINS="http://127.0.0.1:{port}",
        SECURE_SSL_REDIRECT="false",  # plain http on loopback; TLS is the proxy's
        SECURE_COOKIES="false",
        WEB_CONCURRENCY="2",
        EMAIL_BACKEND="django.core.mail.backends.locmem.EmailBackend",
    )
    number, server = tmslicense.new_license_number(), tmslicense.new_installation_id()
    manage("shell", "-c", SEED.format(number=number), env=env)

    with serving(env, port, tmp_path) as base:
        health = urllib.request.urlopen(base + "/healthz", timeout=10)
        assert health.status == 200

        browser = Browser(base)
        page = browser.get("/accounts/login/").read().decode()
        css = re.search(
            r'href="(/static/vendor/bootstrap/bootstrap\.min\.[0-9a-f]{12}\.css)"', page
        )
        assert css, "hashed static file names are served"
        assert browser.get(css.group(1)).status == 200

        response = browser.post(
            "/accounts/login/", {"username": "plant", "password": "pw-0-plant-7"}
        )
        assert response.status == 302, response.read()[:500]
        browser.get("/activate/")
        response = browser.post(
            "/activate/",
            {
                "activate_license_view-current_step": "license",
                "license-license_number": number,
                "license-installation_id": server,
            },
        )
        assert response.status == 302, response.read()[:2000]
        assert response.headers["Location"] == f"/licenses/{number}/"

        download = browser.get(f"/licenses/{number}/download/")
        assert download.headers["Content-Disposition"] == f'attachment; filename="{number}.lic"'
        text = download.read().decode()
        keyring = tmslicense.Keyring.from_json(browser.get("/keyring.json").read())
        assert tmslicense.verify_license(text, keyring, server).license_number == number


def test_the_web_healthcheck_passes_on_a_production_server(tmp_path, fresh_postgres):
    """docker-compose.yml's healthcheck asks the server at its own address, over plain HTTP:
    no host the site serves, and the site redirects plain HTTP to HTTPS."""
    env, port = gunicorn_env(
        tmp_path, fresh_postgres, ALLOWED_HOSTS="licensing.example.com", SECURE_SSL_REDIRECT="true"
    )
    check = [
        part.replace("127.0.0.1:8000", f"127.0.0.1:{port}")
        for part in COMPOSE["services"]["web"]["healthcheck"]["test"][1:]  # after "CMD"
    ]
    with serving(env, port, tmp_path) as base:
        result = subprocess.run(check, env=env, capture_output=True, text=True, timeout=30)
        assert result.returncode == 0, result.stderr
        # Every other page still refuses the unknown host.
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(base + "/keyring.json", timeout=10)
        assert refused.value.code == 400


def _healthcheck(service: str, env: dict) -> int:
    """docker-compose.yml's healthcheck of ``service``, run here as Docker would."""
    kind, *test = COMPOSE["services"][service]["healthcheck"]["test"]
    if kind == "CMD-SHELL":  # compose turns $$ into $; the shell then expands it
        test = ["sh", "-c", test[0].replace("$$", "$")]
    return subprocess.run(test, cwd=ROOT, env=env, capture_output=True, timeout=60).returncode


def test_the_worker_and_beat_healthchecks(tmp_path, redis_server):
    """The worker and beat each answer their healthcheck's ping through Redis while they run,
    and fail it once they do not."""
    env = production_env(
        tmp_path,
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
        REDIS_URL=redis_server.url,
        HOSTNAME=socket.gethostname(),  # what Docker sets in a container
    )
    processes = {}
    try:
        for name in ("worker", "beat"):
            command = [
                part.replace("/tmp/celerybeat-schedule", str(tmp_path / "schedule"))
                for part in COMPOSE["services"][name]["command"]
            ]
            with open(tmp_path / f"{name}.log", "w") as log:
                processes[name] = subprocess.Popen(
                    command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
                )
        for name in ("worker", "beat"):
            wait_for(lambda n=name: _healthcheck(n, env) == 0, 60, f"the {name} to answer")
    finally:
        for process in processes.values():
            process.terminate()
            process.wait(timeout=30)
    for name in ("worker", "beat"):
        assert _healthcheck(name, env) != 0, name


def test_the_access_log_holds_no_password_reset_token(tmp_path, fresh_postgres):
    env, port = gunicorn_env(
        tmp_path, fresh_postgres, ALLOWED_HOSTS="127.0.0.1", SECURE_SSL_REDIRECT="false"
    )
    token = "cz2h7k-0123456789abcdef0123456789abcdef"
    with serving(env, port, tmp_path) as base:
        browser = Browser(base)
        assert browser.get(f"/accounts/reset/MQ/{token}/").status == 200  # an unknown user
        browser.get("/accounts/login/")
    log = (tmp_path / "gunicorn.log").read_text()
    assert "GET /accounts/reset/MQ/[token]/ HTTP/1.1" in log
    assert token not in log and "GET /accounts/login/ HTTP/1.1" in log


def test_the_sites_log_holds_no_password_reset_token():
    """Django logs the path of a request that failed (a reset link's while the database is
    down): the handler every record goes through leaves its token out."""
    import logging

    token = "cz2h7k-0123456789abcdef0123456789abcdef"
    [handler] = [h for h in logging.getLogger().handlers if h.get_name() == "console"]
    record = logging.LogRecord(
        "django.request",
        logging.ERROR,
        __file__,
        1,
        "Internal Server Error: %s",
        (f"/accounts/reset/MQ/{token}/",),
        None,
    )
    assert handler.filter(record)
    line = handler.format(record)
    assert line.endswith("ERROR django.request Internal Server Error: /accounts/reset/MQ/[token]/")
    assert token not in line
    # Nor in an error's text; and a malformed call is the handler's to report, as before.
    try:
        raise ValueError(f"no page /accounts/reset/MQ/{token}/")
    except ValueError:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    assert handler.filter(record) and token not in handler.format(record)
    malformed = logging.LogRecord("x", logging.ERROR, __file__, 1, "%s %s", ("one",), None)
    assert handler.filter(malformed)


@contextlib.contextmanager
def serving(env: dict, port: int, tmp_path: Path):
    """docker-compose.yml's web command, run here with ``env``; yields its base URL."""
    command = COMPOSE["services"]["web"]["command"]
    log_path = tmp_path / "gunicorn.log"
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: _up(base) or process.poll() is not None, 60, shlex.join(command))
        assert process.poll() is None, log_path.read_text()
        yield base
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)


def _up(base: str) -> bool:
    try:
        return urllib.request.urlopen(base + "/healthz", timeout=2).status == 200
    except OSError:
        return False


SEED = """
from datetime import date
from django.contrib.auth import get_user_model
from licensing.models import License, Membership, Organization
org = Organization.objects.create(name="Deploy Plant")
user = get_user_model().objects.create_user("plant", "plant@example.com", "pw-0-plant-7")
Membership.objects.create(user=user, organization=org)
License.objects.create(number="{number}", organization=org, kind="standard", seats=5,
                       maintenance_end=date(2030, 1, 1))
"""
