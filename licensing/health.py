"""/healthz: the database and the broker, reported separately.

503 only when the database is down (the site cannot work); a broker outage is "degraded":
activation and download still work and e-mail waits in the outbox.
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
