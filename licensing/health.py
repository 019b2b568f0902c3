"""/healthz: the database and the broker, reported separately.

503 only when the database is down (the site cannot work); a broker outage is "degraded":
activation and download still work and e-mail waits in the outbox.

Answered by a middleware ahead of all others: a container's healthcheck reaches the server
at its own address, which is no host the site serves (``ALLOWED_HOSTS``), over plain HTTP
(``SECURE_SSL_REDIRECT``).
"""

from django.db import connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache

from portal.celery import app


def _database() -> str:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return "ok"
    except Exception as error:  # noqa: BLE001
        return f"error: {type(error).__name__}"


def _broker() -> str:
    if app.conf.task_always_eager:
        return "in-process"
    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=1)
        return "ok"
    except Exception as error:  # noqa: BLE001
        return f"error: {type(error).__name__}"


@never_cache
def healthz(request):
    checks = {"database": _database(), "broker": _broker()}
    if checks["database"] != "ok":
        status, code = "down", 503
    elif checks["broker"].startswith("error"):
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
