"""/healthz: the database, the signing key, the keyring served and the broker, reported
separately.

503 when the database is down or the signing key cannot be read (the site cannot work, or
issues no file: a deployment's mistake, shown at once); a broker outage is "degraded":
activation and download still work and e-mail waits in the outbox; so is a kept keyring that
does not load (files are issued, /keyring.json fails).

Answered by a middleware ahead of all others: a container's healthcheck reaches the server
at its own address, which is no host the site serves (``ALLOWED_HOSTS``), over plain HTTP
(``SECURE_SSL_REDIRECT``).
"""

import threading
import time

from django.db import connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache

from portal.celery import app

from . import signing


def _database() -> str:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return "ok"
    except Exception as error:  # noqa: BLE001
        return f"error: {type(error).__name__}"


# A hung Redis (it takes connections, answers nothing) costs each check its timeout, so checks
# take turns in a process, and a failure is given again for a few seconds without asking: a
# caller polling /healthz holds at most one thread, for about a second at a time.
BROKER_TIMEOUT = 1  # seconds, to connect and to answer
FAILURE_KEPT = 5  # seconds
_broker_turn = threading.Lock()
_broker_failure = {"at": -FAILURE_KEPT, "answer": ""}


def _broker() -> str:
    if app.conf.task_always_eager:
        return "in-process"
    with _broker_turn:
        if time.monotonic() - _broker_failure["at"] < FAILURE_KEPT:
            return _broker_failure["answer"]
        timeouts = {"socket_connect_timeout": BROKER_TIMEOUT, "socket_timeout": BROKER_TIMEOUT}
        try:
            with app.connection_for_write(transport_options=timeouts) as conn:
                conn.ensure_connection(max_retries=0)  # once: a retry would wait 2 s first
            return "ok"
        except Exception as error:  # noqa: BLE001
            answer = f"error: {type(error).__name__}"
            _broker_failure.update(at=time.monotonic(), answer=answer)
            return answer


def _signing() -> tuple[str, str]:
    """The signing key's state, and the served keyring's (the key's and any kept after a
    rotation). The files' names stay in the log of `manage.py check --deploy`, not on a
    public page."""
    if signing.problem(key_only=True) is not None:
        return ("error: no usable signing key",) * 2
    if signing.problem() is not None:
        return "ok", "error: the kept keyring does not load"
    return "ok", "ok"


@never_cache
def healthz(request):
    key, keyring = _signing()
    checks = {"database": _database(), "signing": key, "keyring": keyring, "broker": _broker()}
    if checks["database"] != "ok" or checks["signing"] != "ok":
        status, code = "down", 503
    elif checks["broker"].startswith("error") or checks["keyring"] != "ok":
        status, code = "degraded", 200
    else:
        status, code = "ok", 200
    return JsonResponse({"status": status, **checks}, status=code)


class HealthCheckMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path == "/healthz":  # the path alone: the Host header is not looked at
            return healthz(request)
        return self.get_response(request)
