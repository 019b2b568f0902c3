"""Limits on guessing: failed license-number look-ups (per user and per IP address) and failed
log-ins (per account from one address, and per address).

Fixed windows in Django's cache (Redis in production, atomic increments). When the cache is
unreachable no limit is applied: the site must keep working while Redis is down.
"""

from __future__ import annotations

import ipaddress
import logging
import time

from django.conf import settings
from django.core.cache import cache

log = logging.getLogger(__name__)


def client_ip(request) -> str:
    """The client's address: from the proxy's header when one is configured and it holds an
    address (anything else there is ignored, and logged), else the connection's."""
    if settings.CLIENT_IP_HEADER and request.META.get(settings.CLIENT_IP_HEADER):
        first = request.META[settings.CLIENT_IP_HEADER].split(",")[0].strip()
        try:
            return str(ipaddress.ip_address(first))
        except ValueError:
            log.warning("%s is not an IP address: %r", settings.CLIENT_IP_HEADER, first[:100])
    return request.META.get("REMOTE_ADDR", "")


def _counters(request, scope: str, username: str = "") -> tuple[dict[str, int], int]:
    """The cache keys counting this request's failures in ``scope``, each with its limit, and
    the window in seconds."""
    ip = client_ip(request)
    if scope == "lookup":
        window = settings.ACTIVATION_FAILURE_WINDOW
        subjects = {f"ip:{ip}": settings.ACTIVATION_FAILURE_LIMIT_PER_IP}
        if request.user.is_authenticated:
            subjects[f"user:{request.user.pk}"] = settings.ACTIVATION_FAILURE_LIMIT
    else:  # "login": the account as typed, from this address; and the address
        window = settings.LOGIN_FAILURE_WINDOW
        subjects = {
            f"account:{ip}:{username.strip().lower()}": settings.LOGIN_FAILURE_LIMIT,
            f"ip:{ip}": settings.LOGIN_FAILURE_LIMIT_PER_IP,
        }
    start = int(time.time()) // window * window
    return {f"{scope}-failures:{s}:{start}": n for s, n in subjects.items()}, window


def seconds_blocked(request, scope: str, username: str = "") -> int:
    """Seconds until the next try is allowed, 0 when it is allowed now."""
    limits, window = _counters(request, scope, username)
    try:
        counts = cache.get_many(list(limits))
    except Exception:  # noqa: BLE001 - any cache outage: fail open, logged
        log.warning("rate-limit cache unreachable; %s not limited", scope, exc_info=True)
        return 0
    if any(count >= limits[key] for key, count in counts.items()):
        return window - int(time.time()) % window
    return 0


def record_failure(request, scope: str, username: str = "") -> None:
    limits, window = _counters(request, scope, username)
    try:
        for key in limits:
            cache.add(key, 0, timeout=window + 60)
            cache.incr(key)
    except Exception:  # noqa: BLE001
        log.warning("rate-limit cache unreachable; %s failure not counted", scope, exc_info=True)


def lift_login_pause(request, user) -> None:
    """A new password was set from this address with the link sent by e-mail: the account's
    failed log-ins from here, under its username and its e-mail address, are forgotten, so
    the new password works at once. The address's own count stays."""
    keys = [
        key
        for name in {user.username, user.email}
        if name
        for key in _counters(request, "login", name)[0]
        if key.startswith("login-failures:account:")
    ]
    try:
        cache.delete_many(keys)
    except Exception:  # noqa: BLE001
        log.warning("rate-limit cache unreachable; log-in pause not lifted", exc_info=True)
