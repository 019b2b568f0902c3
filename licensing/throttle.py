"""Limits on guessing license numbers: failed look-ups counted per user and per IP address.

Fixed windows in Django's cache (Redis in production, atomic increments). When the cache is
unreachable the limit is not applied: activation must keep working while Redis is down.
"""

from __future__ import annotations

import logging
import time

from django.conf import settings
from django.core.cache import cache

log = logging.getLogger(__name__)


def client_ip(request) -> str:
    if settings.CLIENT_IP_HEADER and request.META.get(settings.CLIENT_IP_HEADER):
        return request.META[settings.CLIENT_IP_HEADER].split(",")[0].strip()
    return request.META.get("REMOTE_ADDR", "")


def _keys(request) -> list[str]:
    window = settings.ACTIVATION_FAILURE_WINDOW
    start = int(time.time()) // window * window
    keys = [f"lookup-failures:ip:{client_ip(request)}:{start}"]
    if request.user.is_authenticated:
        keys.append(f"lookup-failures:user:{request.user.pk}:{start}")
    return keys


def seconds_blocked(request) -> int:
    """Seconds until the next look-up is allowed, 0 when it is allowed now."""
    try:
        counts = cache.get_many(_keys(request))
    except Exception:  # noqa: BLE001 - any cache outage: fail open, logged
        log.warning("rate-limit cache unreachable; look-up not limited", exc_info=True)
        return 0
    if any(count >= settings.ACTIVATION_FAILURE_LIMIT for count in counts.values()):
        window = settings.ACTIVATION_FAILURE_WINDOW
        return window - int(time.time()) % window
    return 0


def record_failure(request) -> None:
    window = settings.ACTIVATION_FAILURE_WINDOW
    try:
        for key in _keys(request):
            cache.add(key, 0, timeout=window + 60)
            cache.incr(key)
    except Exception:  # noqa: BLE001
        log.warning("rate-limit cache unreachable; failure not counted", exc_info=True)
