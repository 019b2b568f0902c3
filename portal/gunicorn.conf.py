"""gunicorn settings for the web service (docker-compose.yml runs it with -c this file)."""

import os

from gunicorn import glogging

from portal.logs import without_tokens


def env(name: str, default: str) -> str:
    # Set but empty (NAME= in an env file) counts as not set, as in portal/settings.py.
    return os.environ.get(name) or default


def envint(name: str, default: int, minimum: int = 1) -> int:
    value = env(name, str(default))
    try:
        number = int(value)
    except ValueError:
        raise SystemExit(f"{name} must be a whole number, not {value!r}") from None
    if number < minimum:  # no worker or thread: a server that takes connections, answers none
        raise SystemExit(f"{name} must be at least {minimum}, not {number}")
    return number


bind = env("GUNICORN_BIND", "0.0.0.0:8000")
workers = envint("WEB_CONCURRENCY", 3)
threads = envint("GUNICORN_THREADS", 2)
timeout = envint("GUNICORN_TIMEOUT", 30, minimum=0)  # 0: none
# No runtime control socket (gunicornc): nothing uses it, and its folder under $HOME is not
# the service user's to create in the image (an ERROR at every start).
control_socket_disable = True
accesslog = "-"
errorlog = "-"
# Behind the reverse proxy that terminates TLS.
forwarded_allow_ips = env("FORWARDED_ALLOW_IPS", "127.0.0.1")


class Logger(glogging.Logger):
    """The access log without a password reset link's token (portal.logs)."""

    def atoms(self, resp, req, environ, request_time):
        atoms = super().atoms(resp, req, environ, request_time)
        for key in ("r", "U"):  # the request line and the path
            atoms[key] = without_tokens(atoms[key] or "")
        return atoms


logger_class = Logger
