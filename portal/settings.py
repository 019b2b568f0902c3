"""One settings file, read from environment variables with safe embedded defaults.

Without any variable set, the portal runs on SQLite under ``var/`` with tasks run in-process
and e-mail printed to the console: ``make run`` needs no server. Every variable is listed in
``.env.example``; a bad value stops start-up with a message naming the variable.
"""

import contextlib
import os
import re
import secrets
import tempfile
import warnings
from pathlib import Path

import dj_database_url
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env(name: str, default=""):
    """A variable's value; set but empty (``NAME=`` in an env file) counts as not set."""
    return os.environ.get(name) or default


def envbool(name: str, default: str) -> bool:
    value = env(name, default)
    if value in ("1", "true", "True", "yes"):
        return True
    if value in ("0", "false", "False", "no"):
        return False
    raise ImproperlyConfigured(f"{name} must be true or false, not {value!r}")


def envint(name: str, default: int, minimum: int = 1) -> int:
    """A whole number of at least ``minimum`` (a limit or window of 0 would count nothing,
    a timeout of 0 wait for nothing)."""
    value = env(name)
    if not value:
        return default
    try:
        number = int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a whole number, not {value!r}") from None
    if number < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}, not {number}")
    return number


def envlist(name: str, default: str) -> list[str]:
    return [item.strip() for item in env(name, default).split(",") if item.strip()]


VAR_DIR = Path(env("VAR_DIR", BASE_DIR / "var"))


def _embedded_secret_key() -> str:
    # A first run needs no configuration: a random key kept under var/ (git-ignored), a folder
    # only its owner opens (it gets the demo's database, e-mails and signing key too).
    path = VAR_DIR / "secret_key"
    if not path.exists():
        VAR_DIR.mkdir(mode=0o700, parents=True, exist_ok=True)
        # Written whole under a name of its own (owner-only), then linked into place: of two
        # processes starting at once (web and worker), the second reads the first one's key.
        fd, temporary = tempfile.mkstemp(dir=VAR_DIR)
        try:
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_urlsafe(50))
            try:
                os.link(temporary, path)
            except FileExistsError:
                pass
            except OSError:  # a filesystem without hard links: moved into place instead
                os.replace(temporary, path)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temporary)
    return path.read_text().strip()


DEBUG = envbool("DEBUG", "false")
try:
    SECRET_KEY = env("SECRET_KEY") or _embedded_secret_key()
except OSError as error:  # a deployment's read-only folder: the key was to be set
    raise ImproperlyConfigured(
        f"SECRET_KEY is not set, and none can be kept in VAR_DIR ({error}): set SECRET_KEY "
        "to a long random value, the same for every service."
    ) from None
if SECRET_KEY.startswith("replace-with"):
    # .env.example copied as it is: a key everyone can read would sign the sessions.
    raise ImproperlyConfigured(
        "SECRET_KEY is still .env.example's placeholder. Set a long random value: "
        'python -c "import secrets; print(secrets.token_urlsafe(60))"'
    )
ALLOWED_HOSTS = envlist("ALLOWED_HOSTS", "127.0.0.1,localhost,[::1]")
CSRF_TRUSTED_ORIGINS = envlist("CSRF_TRUSTED_ORIGINS", "")
CSRF_FAILURE_VIEW = "licensing.views.csrf_failure"
SITE_NAME = env("SITE_NAME", "ThinManager License Site")
# The site's address as customers reach it, for every link the site e-mails (an invitation,
# a password reset, the revocation notice), never taken from who happens to ask.
SITE_URL = env("SITE_URL", "http://127.0.0.1:8000").rstrip("/")
if not re.fullmatch(r"https?://[^/\s]+", SITE_URL):
    raise ImproperlyConfigured(
        f"SITE_URL must be like https://licenses.example.com, not {SITE_URL!r}"
    )
# Where customers write for help: on every page and in every message that sends them to support.
SUPPORT_EMAIL = env("SUPPORT_EMAIL", "support@example.com")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "crispy_forms",
    "crispy_bootstrap5",
    "formtools",
    "licensing",
]

MIDDLEWARE = [
    "licensing.health.HealthCheckMiddleware",  # first: see licensing/health.py
    "django.middleware.security.SecurityMiddleware",
    "portal.middleware.ContentSecurityPolicyMiddleware",
    "portal.middleware.RefuseNullCharactersMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "portal.middleware.PrivatePagesMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "portal.middleware.IdleSessionsMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "portal.urls"
WSGI_APPLICATION = "portal.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "licensing.context_processors.site",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        env("DATABASE_URL", f"sqlite:///{VAR_DIR / 'db.sqlite3'}"),
        conn_max_age=envint("DATABASE_CONN_MAX_AGE", 0, minimum=0),
        # A kept connection is checked before a request uses it: after PostgreSQL restarted,
        # the request gets a new one, not a 500.
        conn_health_checks=True,
    )
}
# Seconds a statement may run on PostgreSQL before the server cancels it (0: no limit;
# docker-compose.yml's migrate sets 0).
DATABASE_STATEMENT_TIMEOUT = envint("DATABASE_STATEMENT_TIMEOUT", 15, minimum=0)
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # A database host that stops answering must not hold web threads and workers: a new
    # connection gives up after 3 s, a kept one is found dead by TCP keepalives or by sends
    # left unacknowledged within about 20 s, and a statement stuck behind a lock is cancelled.
    # Options given in DATABASE_URL's query string win; the statement timeout is added to its
    # server options. (A connection pooler may refuse it, as PgBouncer does: there set 0, and
    # the timeout on the database role: ALTER ROLE … SET statement_timeout.)
    options = DATABASES["default"].setdefault("OPTIONS", {})
    for name, value in {
        "connect_timeout": 3,
        "keepalives": 1,
        "keepalives_idle": 10,
        "keepalives_interval": 5,
        "keepalives_count": 2,
        "tcp_user_timeout": 20000,
    }.items():
        options.setdefault(name, value)
    if DATABASE_STATEMENT_TIMEOUT:
        timeout = f"-c statement_timeout={DATABASE_STATEMENT_TIMEOUT * 1000}"
        options["options"] = f"{options.get('options', '')} {timeout}".strip()
elif DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # A transaction takes SQLite's write lock when it begins, waiting up to 20 s for it: two
    # simultaneous ones would otherwise fail at their first write with "database is locked".
    DATABASES["default"].setdefault("OPTIONS", {}).update(transaction_mode="IMMEDIATE", timeout=20)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env("REDIS_URL", "")
# The cache (rate limits) in its own Redis database, apart from the broker's queues.
CACHE_URL = env("CACHE_URL", REDIS_URL)
if CACHE_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": CACHE_URL,
            # The rate limits fail open when Redis fails (licensing/throttle.py); a hung Redis
            # must not hold each log-in and look-up for redis-py's default 5 s first.
            "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
AUTHENTICATION_BACKENDS = ["licensing.auth.UsernameOrEmailBackend"]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "licensing:license_list"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
FORMAT_MODULE_PATH = ["portal.formats"]  # dates as 2026-11-28 everywhere

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(env("STATIC_ROOT", BASE_DIR / "staticfiles"))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    # Production runs collectstatic and sets STATIC_MANIFEST=true (hashed, cacheable names);
    # without collectstatic (make run, tests) WhiteNoise serves straight from the finders.
    "staticfiles": {
        "BACKEND": (
            "whitenoise.storage.CompressedManifestStaticFilesStorage"
            if envbool("STATIC_MANIFEST", "false")
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        )
    },
}
WHITENOISE_USE_FINDERS = not envbool("STATIC_MANIFEST", "false")
if WHITENOISE_USE_FINDERS:  # nothing collected is needed, nor warned about when absent
    warnings.filterwarnings("ignore", f"No directory at: {re.escape(str(STATIC_ROOT))}")
WHITENOISE_AUTOREFRESH = DEBUG

FORM_RENDERER = "licensing.forms.FormRenderer"
CRISPY_ALLOWED_TEMPLATE_PACKS = "bootstrap5"
CRISPY_TEMPLATE_PACK = "bootstrap5"

# E-mail: printed to the console unless an SMTP host is configured.
EMAIL_BACKEND = env(
    "EMAIL_BACKEND",
    "licensing.mail.SMTPBackend"  # Django's, whose sends can be cut off (licensing/mail.py)
    if env("EMAIL_HOST")
    else "django.core.mail.backends.console.EmailBackend",
)
EMAIL_HOST = env("EMAIL_HOST", "localhost")
EMAIL_PORT = envint("EMAIL_PORT", 25)
EMAIL_HOST_USER = env("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = envbool("EMAIL_USE_TLS", "false")  # STARTTLS, usually on port 587
EMAIL_USE_SSL = envbool("EMAIL_USE_SSL", "false")  # TLS from the start, usually on port 465
if EMAIL_USE_TLS and EMAIL_USE_SSL:
    raise ImproperlyConfigured("EMAIL_USE_TLS and EMAIL_USE_SSL: set one of them, not both.")
# Seconds to wait for each answer of the mail server; a whole send is cut off after four times
# this (licensing/outbox.py), so that a hung mail server does not hold a worker for ever.
EMAIL_TIMEOUT = envint("EMAIL_TIMEOUT", 30)
EMAIL_FILE_PATH = env("EMAIL_FILE_PATH", str(VAR_DIR / "mail"))
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", "licensing@localhost")
# Sent and failed e-mails are deleted this many days after (beat, daily). At least 31: a
# maintenance reminder's row (up to 30 days before the end) is what keeps it from being sent
# twice, so it must outlive its reminder window. Pending e-mails are never deleted.
OUTBOX_KEEP_DAYS = envint("OUTBOX_KEEP_DAYS", 90, minimum=31)
# How long the audit trail keeps personal data it needs no longer (services.purge_audit): the
# address each event came from (support's list of a customer's addresses lately reads 30
# days), and an account's own events, log-ins and passwords chosen, which name no license.
AUDIT_ADDRESS_KEEP_DAYS = envint("AUDIT_ADDRESS_KEEP_DAYS", 90, minimum=31)
AUDIT_ACCOUNT_KEEP_DAYS = envint("AUDIT_ACCOUNT_KEEP_DAYS", 365, minimum=31)

# The private key that signs license files: a PEM file, never in the repository.
LICENSE_SIGNING_KEY_FILE = Path(env("LICENSE_SIGNING_KEY_FILE", VAR_DIR / "signing-key.pem"))
# Public keys a TMS should still trust after a key rotation (served in /keyring.json).
LICENSE_EXTRA_KEYRING_FILE = env("LICENSE_EXTRA_KEYRING_FILE", "")

# Failed license-number look-ups allowed per user, and per IP address (a plant's users may
# share one), in a window of ACTIVATION_FAILURE_WINDOW seconds.
ACTIVATION_FAILURE_LIMIT = envint("ACTIVATION_FAILURE_LIMIT", 10)
ACTIVATION_FAILURE_LIMIT_PER_IP = envint("ACTIVATION_FAILURE_LIMIT_PER_IP", 50)
ACTIVATION_FAILURE_WINDOW = envint("ACTIVATION_FAILURE_WINDOW", 3600)
# Failed log-ins allowed per account from one IP address, and per IP address (a plant's
# users may share one), in a window of LOGIN_FAILURE_WINDOW seconds.
LOGIN_FAILURE_LIMIT = envint("LOGIN_FAILURE_LIMIT", 10)
LOGIN_FAILURE_LIMIT_PER_IP = envint("LOGIN_FAILURE_LIMIT_PER_IP", 50)
# Failed log-ins allowed per account from every address together (a guesser with many
# addresses); a new password set with the e-mailed link lifts it.
LOGIN_FAILURE_LIMIT_PER_ACCOUNT = envint("LOGIN_FAILURE_LIMIT_PER_ACCOUNT", 100)
LOGIN_FAILURE_WINDOW = envint("LOGIN_FAILURE_WINDOW", 900)
# Password reset requests per e-mail address, and per IP address, in a window of
# PASSWORD_RESET_WINDOW seconds (refused ones count too): no mailbox is flooded with e-mails.
PASSWORD_RESET_LIMIT = envint("PASSWORD_RESET_LIMIT", 3)
PASSWORD_RESET_LIMIT_PER_IP = envint("PASSWORD_RESET_LIMIT_PER_IP", 20)
PASSWORD_RESET_WINDOW = envint("PASSWORD_RESET_WINDOW", 3600)
# Behind a reverse proxy: the request header that carries the client address
# (e.g. HTTP_X_FORWARDED_FOR; of a list, the last address: the one the proxy added).
# Empty: REMOTE_ADDR.
CLIENT_IP_HEADER = env("CLIENT_IP_HEADER", "")
if CLIENT_IP_HEADER and not re.fullmatch(r"REMOTE_ADDR|HTTP_[A-Z0-9_]+", CLIENT_IP_HEADER):
    # "X-Forwarded-For" as the header is written would never be found: every customer would
    # count as the proxy's one address (one limit for all log-ins; no address on the trail).
    written = CLIENT_IP_HEADER.upper().replace("-", "_")
    meta = written if written == "REMOTE_ADDR" else "HTTP_" + written.removeprefix("HTTP_")
    raise ImproperlyConfigured(
        f"CLIENT_IP_HEADER names the header as Django does: {meta}, not {CLIENT_IP_HEADER!r}"
    )

# Celery: Redis from REDIS_URL; without it, tasks run in-process (embedded default).
CELERY_BROKER_URL = REDIS_URL or "memory://localhost/"
CELERY_RESULT_BACKEND = None
CELERY_TASK_ALWAYS_EAGER = not REDIS_URL
CELERY_TASK_EAGER_PROPAGATES = False
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Worker and beat wait for Redis however long it is down (Celery's default gives up after 100
# tries, about 46 minutes, leaving a process that no longer works nor answers its ping).
CELERY_BROKER_CONNECTION_MAX_RETRIES = None
# Publishing must not hang a web request when Redis is down: fail fast, the sweep resends.
CELERY_TASK_PUBLISH_RETRY = False
CELERY_BROKER_CONNECTION_TIMEOUT = 2
CELERY_BROKER_TRANSPORT_OPTIONS = {"socket_connect_timeout": 2, "socket_timeout": 5}
CELERY_BEAT_SCHEDULE = {
    "sweep-outbox": {"task": "licensing.tasks.sweep_outbox", "schedule": 120.0},
    "purge-outbox": {
        "task": "licensing.tasks.purge_outbox",
        "schedule": crontab(hour=3, minute=30),
    },
    "purge-audit": {
        "task": "licensing.tasks.purge_audit",
        "schedule": crontab(hour=3, minute=50),
    },
    "purge-sessions": {
        "task": "licensing.tasks.purge_sessions",
        "schedule": crontab(hour=3, minute=45),
    },
    "reminders": {
        "task": "licensing.tasks.send_reminders",
        "schedule": crontab(hour=6, minute=0),
    },
}

SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# On a plant's shared PC, a log-in left open is the next person's: a session ends when the
# browser closes, and after this long without use (portal.middleware.IdleSessionsMiddleware).
SESSION_IDLE_MINUTES = envint("SESSION_IDLE_MINUTES", 60, minimum=5)
SESSION_COOKIE_AGE = SESSION_IDLE_MINUTES * 60
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
SESSION_COOKIE_SECURE = envbool("SECURE_COOKIES", "false")
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_SSL_REDIRECT = envbool("SECURE_SSL_REDIRECT", "false")
if SECURE_SSL_REDIRECT and not SITE_URL.startswith("https://"):
    # A site served over HTTPS would e-mail links to this machine (the default) or over HTTP.
    raise ImproperlyConfigured(
        f"SITE_URL must be the site's https:// address (in .env), not {SITE_URL!r}"
    )
SECURE_HSTS_SECONDS = envint("SECURE_HSTS_SECONDS", 0, minimum=0)
# With HSTS on, subdomains are included unless switched off. Preloading is asked for only when
# switched on: the header's "preload" lets anyone submit the domain to the browsers' preload
# lists, which then force HTTPS on the whole registered domain, for months, past any undo.
SECURE_HSTS_INCLUDE_SUBDOMAINS = SECURE_HSTS_SECONDS > 0 and envbool(
    "SECURE_HSTS_INCLUDE_SUBDOMAINS", "true"
)
SECURE_HSTS_PRELOAD = SECURE_HSTS_SECONDS > 0 and envbool("SECURE_HSTS_PRELOAD", "false")
if not SECURE_HSTS_PRELOAD:
    SILENCED_SYSTEM_CHECKS = ["security.W021"]  # preloading left off on purpose (above)

# Scripts and styles only from the site's own files: an injected inline script, event handler
# or style is not used. Images from the site and the data: URIs of Bootstrap's icons.
CONTENT_SECURITY_POLICY = {
    "default-src": ["'self'"],
    "script-src": ["'self'"],
    "style-src": ["'self'"],
    "img-src": ["'self'", "data:"],
    "object-src": ["'none'"],
    "base-uri": ["'none'"],
    "form-action": ["'self'"],
    "frame-ancestors": ["'none'"],
}

LOG_LEVEL = env("LOG_LEVEL", "INFO").upper()
if LOG_LEVEL not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
    raise ImproperlyConfigured(
        f"LOG_LEVEL must be DEBUG, INFO, WARNING, ERROR or CRITICAL, not {LOG_LEVEL!r}"
    )
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    # Times in UTC (TIME_ZONE: Django sets the process's time zone from it).
    "formatters": {
        "line": {
            "format": "%(asctime)s.%(msecs)03dZ %(levelname)s %(name)s %(message)s",
            "datefmt": "%Y-%m-%dT%H:%M:%S",
        }
    },
    "filters": {"without_tokens": {"()": "portal.logs.WithoutTokens"}},
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "line",
            "filters": ["without_tokens"],
        }
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
}
