"""`manage.py check --deploy`: what a deployment must have that the settings alone do not show."""

from django.conf import settings
from django.core import checks

from . import signing


@checks.register(checks.Tags.security, deploy=True)
def signing_key(app_configs, **kwargs):
    """A portal that cannot sign issues no file and serves no keyring: said before it starts
    (docker-compose's first deployment runs this), not at a customer's first activation."""
    why = signing.problem()
    if why is None:
        return []
    return [checks.Error(why, id="licensing.E001")]


@checks.register(checks.Tags.security, deploy=True)
def keys_in_use(app_configs, **kwargs):
    """Files in use signed with a key the site's keyring does not list: a server given that
    keyring refuses them (and the customer's download is the same file)."""
    from django.db import DatabaseError

    if signing.problem() is not None:
        return []  # E001 says why
    try:
        unlisted = signing.unlisted_keys()
    except DatabaseError:  # not migrated yet: the files are checked once it is
        return []
    return [
        checks.Warning(
            f"{count} license file(s) in use are signed with key {kid}, which /keyring.json "
            "does not list: keep it in LICENSE_EXTRA_KEYRING_FILE until they are reissued "
            "(docs/operations.md, Rotate the signing key).",
            id="licensing.W002",
        )
        for kid, count in sorted(unlisted.items())
    ]


# Backends that send nothing: the e-mails' password links would go to the log, or nowhere.
_NOT_SENDING = {
    "django.core.mail.backends.console.EmailBackend": "printed in the log",
    "django.core.mail.backends.locmem.EmailBackend": "kept in memory and lost",
    "django.core.mail.backends.dummy.EmailBackend": "thrown away",
}


@checks.register(checks.Tags.security, deploy=True)
def email_backend(app_configs, **kwargs):
    """A deployment left without EMAIL_HOST prints every e-mail (password-reset and invitation
    links, which set a password) to its log: refused, as a demo's default never is."""
    what = _NOT_SENDING.get(settings.EMAIL_BACKEND)
    if settings.DEBUG or what is None:
        return []
    return [
        checks.Error(
            f"E-mails would be {what} ({settings.EMAIL_BACKEND}), with the password links "
            "they carry: set EMAIL_HOST (SMTP), or EMAIL_BACKEND to the file-based backend.",
            id="licensing.E002",
        )
    ]


@checks.register(checks.Tags.security, deploy=True)
def email_cut_off(app_configs, **kwargs):
    """Django's own SMTP back-end, which .env.example once suggested: a mail server that hangs
    would hold a send until the task's limit, never counted as an attempt (docs/operations.md).
    A warning: mail still goes out."""
    if settings.EMAIL_BACKEND != "django.core.mail.backends.smtp.EmailBackend":
        return []
    return [
        checks.Warning(
            "EMAIL_BACKEND is Django's own SMTP back-end: a send to a mail server that hangs is "
            "never cut off nor marked failed. Remove EMAIL_BACKEND from .env: with EMAIL_HOST "
            "set, the site's licensing.mail.SMTPBackend (Django's, with the cut-off) is used.",
            id="licensing.W001",
        )
    ]


@checks.register(checks.Tags.security, deploy=True)
def site_url_allowed(app_configs, **kwargs):
    """The site's own address (SITE_URL, in every link it e-mails) among ALLOWED_HOSTS: else
    every page reached by such a link is a 400."""
    from urllib.parse import urlsplit

    from django.http.request import split_domain_port, validate_host

    host, _ = split_domain_port(urlsplit(settings.SITE_URL).netloc)  # [::1] as ALLOWED_HOSTS
    if settings.DEBUG or validate_host(host, settings.ALLOWED_HOSTS):
        return []
    return [
        checks.Error(
            f"SITE_URL's host {host} is not in ALLOWED_HOSTS ({', '.join(settings.ALLOWED_HOSTS)})"
            ": every link the site e-mails would lead to a 400.",
            id="licensing.E003",
        )
    ]


@checks.register(checks.Tags.security, deploy=True)
def secret_key_set(app_configs, **kwargs):
    """A deployment sets SECRET_KEY: a key made on first use is one per container (a log-in
    or a reset link made by one web container refused by the next)."""
    import os

    if settings.DEBUG or os.environ.get("SECRET_KEY"):
        return []
    return [
        checks.Error(
            "SECRET_KEY is not set: each service would make a key of its own under VAR_DIR. "
            "Set a long random value, the same for every service.",
            id="licensing.E004",
        )
    ]


@checks.register(checks.Tags.security)
def sessions_in_the_database(app_configs, **kwargs):
    """Sessions are kept in the database: a session's end is moved on by its row
    (portal.middleware.IdleSessionsMiddleware) and "Log out everywhere" reads the rows
    (auth.end_sessions); in a cache or a cookie, a session in use would end and a log-out
    everywhere would end nothing."""
    engine = settings.SESSION_ENGINE
    if engine == "django.contrib.sessions.backends.db":
        return []
    return [
        checks.Error(
            f"SESSION_ENGINE is {engine}: sessions must be kept in the database "
            "(django.contrib.sessions.backends.db).",
            id="licensing.E005",
        )
    ]
