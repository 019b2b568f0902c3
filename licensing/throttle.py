"""Limits on guessing: failed license-number look-ups (per user and per IP address) and failed
log-ins (per account from one address, per address, and per account from every address); and
on password reset requests (per e-mail address, and per address asking). An IPv6 address is
counted by its /64.

Fixed windows in Django's cache (Redis in production, atomic increments). When the cache is
unreachable no limit is applied: the site must keep working while Redis is down.
"""

from __future__ import annotations

import ipaddress
import logging
import math
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import quote

from django.conf import settings
from django.core.cache import cache

from .auth import address_key, find_account, logged_in_from_here

log = logging.getLogger(__name__)


def client_ip(request) -> str:
    """The client's address: from the proxy's header when one is configured and it holds an
    address (anything else there is ignored, and logged), else the connection's ("" when that
    is none). Of a list (``X-Forwarded-For: a, b``) the last: the one the proxy added. The
    ones before it came with the request, and anyone can write them."""
    if settings.CLIENT_IP_HEADER and request.META.get(settings.CLIENT_IP_HEADER):
        last = request.META[settings.CLIENT_IP_HEADER].split(",")[-1].strip()
        if address := ip_text(last):
            return address
        log.warning("%s is not an IP address: %r", settings.CLIENT_IP_HEADER, last[:100])
    return ip_text(request.META.get("REMOTE_ADDR", ""))


def ip_text(text: str) -> str:
    """An IP address as text, without the interface a link-local one may name (``fe80::1%eth0``:
    the same address, which no database's address column takes); "" for text that is none."""
    try:
        return str(ipaddress.ip_address(text.partition("%")[0]))
    except ValueError:
        return ""


def _counted_address(request) -> str:
    return _counted(client_ip(request))


def counted(address: str) -> str:
    """An address as pauses count it, shown: 203.0.113.7, an IPv6 one as 2001:db8:1:2::/64."""
    return _counted(address).strip("[]")


def _counted(address: str) -> str:
    """The address tries are counted for: an IPv6 one by its /64, the block a single
    customer (or a single rented server) is given, so that walking through it gains nothing."""
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return f"[{address}]"
    if parsed.version == 6:
        if parsed.ipv4_mapped is None:
            # Bracketed, as in a URL: an IPv6 address holds colons.
            return f"[{ipaddress.ip_network(f'{parsed}/64', strict=False)}]"
        parsed = parsed.ipv4_mapped
    return f"[{parsed}]"


def _address_limits() -> dict[str, tuple[int, int]]:
    """Each scope's limit for one address (across accounts), and its window in seconds."""
    return {
        "lookup": (settings.ACTIVATION_FAILURE_LIMIT_PER_IP, settings.ACTIVATION_FAILURE_WINDOW),
        "login": (settings.LOGIN_FAILURE_LIMIT_PER_IP, settings.LOGIN_FAILURE_WINDOW),
        "reset": (settings.PASSWORD_RESET_LIMIT_PER_IP, settings.PASSWORD_RESET_WINDOW),
    }


def _counters(request, scope: str, name: str, now: int) -> tuple[dict[str, dict], int, str]:
    """The cache keys counting this request's tries in ``scope`` at ``now``, each with what a
    refusal by it records (its ``limit``; the ``address`` it counts for, shown, for one
    address's; ``shared`` for the address's own count, across accounts; the account's
    ``epoch`` for an account's); the window in seconds; and whose refusals are recorded for
    support (the account as typed, the customer; "" for a password reset). Reads the cache
    (an account's epoch): call it where an outage is caught."""
    ip = _counted_address(request)
    shown = ip.strip("[]")
    per_ip, window = _address_limits()[scope]
    subjects = {
        f"ip:{ip}": {"limit": per_ip, "address": shown, "shared": True, "who": f"address {shown}"}
    }
    owner = ""
    if scope == "lookup":
        if request.user.is_authenticated:
            owner = f"user:{request.user.pk}"
            subjects[owner] = {
                "limit": settings.ACTIVATION_FAILURE_LIMIT,
                "who": f"account {request.user.get_username()!r}",
            }
    elif scope == "reset":  # the e-mail address typed; and the address asking
        subjects[f"email:{_name(name)}"] = {
            "limit": settings.PASSWORD_RESET_LIMIT,
            "who": f"e-mail address {name.strip()[:254]!r}",
        }
    else:  # "login": the account as typed, from this address; and the address
        account = _name(name)
        owner = f"account:{account}"
        epoch = cache.get(_epoch_key(account), "0")
        subjects |= {
            f"account:{ip}:{account}:{epoch}": {
                "limit": settings.LOGIN_FAILURE_LIMIT,
                "address": shown,
                "epoch": epoch,
                "who": f"from {shown}",  # after the account: see _log_pause
            },
            # From every address: a guesser with many addresses still meets a ceiling (a new
            # password set by e-mail starts a new epoch, which lifts it).
            f"account:{account}:{epoch}": {
                "limit": settings.LOGIN_FAILURE_LIMIT_PER_ACCOUNT,
                "epoch": epoch,
                "who": "from every address",
            },
        }
    return {_key(scope, s, window, now): c for s, c in subjects.items()}, window, owner


def _key(scope: str, subject: str, window: int, now: float | None = None) -> str:
    """A counter of the window of ``now`` (by default the current one; fixed windows: the key
    names the window's start)."""
    now = time.time() if now is None else now
    return f"{scope}-tries:{subject}:{int(now) // window * window}"


def _name(typed: str) -> str:
    """An account's name as typed, for a key: the same however it was cased, spaced or its
    address's domain spelled (auth.address_key), and with no colon of its own (``5:alice``
    from 2001:db8::1 must not count for ``alice`` from 2001:db8::1:5)."""
    return quote(address_key(typed.strip()), safe="@.+-_")


EPOCH_KEPT = 30 * 24 * 3600  # seconds an account's epoch is kept after a pause is lifted


def _epoch_key(name: str) -> str:
    # An account's failed log-ins are counted under its epoch; a new epoch forgets them, from
    # every address at once.
    return f"login-tries:epoch:{name}"


def record(request, scope: str, name: str = "") -> Pause | None:
    """Count one try in ``scope`` (a failed look-up; any password reset request, refused ones
    too); the pause that refuses it when this try is beyond a limit, else None. The count is
    raised before it is compared (atomic in the cache), so requests sent at the same moment
    cannot all slip under the limit."""
    return _refusal(_count(request, scope, name)[0])


def count_try(request, scope: str, name: str = "") -> tuple[Pause | None, list[str]]:
    """Count a try before it is made (a log-in, before its password is checked), so that
    simultaneous tries cannot all slip under a limit. Returns the pause that refuses it,
    with its count taken back at once (a try not made is no guess, and must not pause the
    account or the address further), else None and the keys raised, for :func:`forget`.
    A log-in refused by its account's ceiling across addresses alone, from an address its
    owner uses (auth.logged_in_from_here), is made: returned are then both the pause and the
    keys raised, the pause for a wrong password (answered as a refusal: the answer tells
    nobody which addresses the owner uses), the keys to take back for a right one."""
    over, raised = _count(request, scope, name)
    ceiling = all(p is not None and not p.address and not p.shared for p in over)
    if over and scope == "login" and ceiling and logged_in_from_here(name, request):
        return _refusal(over), raised
    if over:
        forget(raised)
        return _refusal(over), []
    return None, raised


def forget(raised: list[str]) -> None:
    """Take back a try counted before it was made (it was refused, or it succeeded): exactly
    the counters it raised, even if the window or the account's epoch changed since."""
    for key in raised:
        try:
            cache.decr(key)
        except Exception:  # noqa: BLE001 - expired or evicted meanwhile, or the cache is down
            log.info("rate-limit counter %s not taken back", key, exc_info=True)


@dataclass(frozen=True)
class Pause:
    """Tries in ``scope`` refused by a counter at its ``limit`` until ``ends`` (a time in
    seconds): counted for ``address`` (shown as :func:`counted` shows it), or from every
    address (""); ``shared``: the address's own count, across accounts, which a refusal
    names for support to lift."""

    scope: str
    limit: int
    ends: int
    address: str = ""
    shared: bool = False

    @property
    def minutes_left(self) -> int:
        return max(1, math.ceil((self.ends - time.time()) / 60))

    @property
    def time_left(self) -> str:
        """ "1 minute", "5 minutes": for a message."""
        minutes = self.minutes_left
        return f"{minutes} minute{'s' if minutes > 1 else ''}"


def _refusal(over: list[Pause]) -> Pause | None:
    """The pause a refusal names: the address's own when it is one of those passed (all end
    with the scope's window)."""
    return max(over, key=lambda pause: pause.shared, default=None)


def _count(request, scope: str, name: str) -> tuple[list[Pause], list[str]]:
    """Raise this request's counters in ``scope``: the pauses of those beyond their limit,
    and the keys raised."""
    now = int(time.time())  # one reading: the keys' window is the one the pauses end with
    try:
        counters, window, owner = _counters(request, scope, name, now)
        ends = (now // window + 1) * window
        over, raised = {}, []
        for key, counter in counters.items():
            cache.add(key, 0, timeout=window + 60)
            if cache.incr(key) > counter["limit"]:
                over[key] = {**counter, "ends": ends}
                if cache.add(_logged(key), 1, timeout=window + 60):  # once a window
                    _log_pause(scope, name, counter, window, ends)
            raised.append(key)
    except Exception:  # noqa: BLE001
        log.warning("rate-limit cache unreachable; %s try not counted", scope, exc_info=True)
        return [], []
    if over and owner:
        _record_refusal(_refused_key(scope, owner), over, now, window)
    return [_pause(scope, entry) for entry in over.values()], raised


def _logged(key: str) -> str:
    """The marker of a counter whose pause was logged (lifted with it)."""
    return f"{key}:logged"


def _log_pause(scope: str, name: str, counter: dict, window: int, ends: int) -> None:
    """A pause starting, for a security team. An account's is named by the account the name
    typed is, never the text typed (a password, by mistake)."""
    who = counter["who"]
    if "epoch" in counter:  # an account's
        account = find_account(name)
        who = f"account {account.get_username()!r} {who}" if account else f"an unknown name {who}"
    log.warning(
        "%s tries paused for %s: %d in %d minutes, until %s UTC",
        scope,
        who,
        counter["limit"],
        window // 60,
        datetime.fromtimestamp(ends, UTC).strftime("%Y-%m-%d %H:%M"),
    )


REFUSALS_KEPT = 20  # counters recorded per account or customer, the latest


def _record_refusal(marker: str, over: dict[str, dict], now: int, window: int) -> None:
    """Record which counters refused an account or a customer, and where, for support to see
    (:func:`pauses`): the latest few of the window, the refusal counted whatever happens
    here. Two refusals at once may keep one of them: what support sees, not what refuses."""
    try:
        kept = cache.get(marker)
        kept = {
            key: entry
            for key, entry in (kept.items() if isinstance(kept, dict) else ())
            if key not in over and isinstance(entry, dict) and entry.get("ends", 0) > now
        }
        latest = list((kept | over).items())[-REFUSALS_KEPT:]
        cache.set(marker, dict(latest), timeout=window + 60)
    except Exception:  # noqa: BLE001
        log.warning("rate-limit cache unreachable; refusal not recorded", exc_info=True)


def _refused_key(scope: str, owner: str) -> str:
    return f"{scope}-tries:refused:{owner}"


def _pause(scope: str, entry) -> Pause | None:
    """A recorded refusal's pause; None for an entry of another shape (recorded by another
    version)."""
    try:
        return Pause(
            scope,
            int(entry["limit"]),
            int(entry["ends"]),
            str(entry.get("address", "")),
            bool(entry.get("shared", False)),
        )
    except (AttributeError, KeyError, TypeError, ValueError):
        return None


def pauses(user) -> list[Pause] | None:
    """The customer's log-ins and license look-ups refused now, as the refusals recorded them:
    of the customer's look-ups; of log-ins under the user name and under the e-mail address,
    from wherever they were tried (by the customer or not). A counter lifted since (an
    account's under an earlier epoch), or whose window ended, no longer counts. None when the
    cache is unreachable (then nobody is paused)."""
    names = {_name(n) for n in (user.username, user.email) if n}
    try:
        epochs = cache.get_many([_epoch_key(n) for n in names])
        markers = {_refused_key("lookup", f"user:{user.pk}"): ("lookup", None)} | {
            _refused_key("login", f"account:{n}"): ("login", epochs.get(_epoch_key(n), "0"))
            for n in names
        }
        recorded = {}
        for marker, entries in cache.get_many(list(markers)).items():
            scope, epoch = markers[marker]
            for key, entry in entries.items() if isinstance(entries, dict) else ():
                pause = _pause(scope, entry)
                if pause and entry.get("epoch", epoch) == epoch:
                    recorded[key] = pause
        counts = cache.get_many(list(recorded))
    except Exception:  # noqa: BLE001
        log.warning("rate-limit cache unreachable; pauses not read", exc_info=True)
        return None
    # Refused at the next try (a refused log-in was taken back, a refused look-up was not),
    # until its window ends.
    now = time.time()
    found = {p for key, p in recorded.items() if counts.get(key, 0) >= p.limit and p.ends > now}
    return sorted(found, key=lambda p: (p.scope, p.shared, p.address))


def lift_login_pause(user) -> bool:
    """Forget the account's failed log-ins, under its username and its e-mail address, from
    every address: its password was reset, or support lifted the pause. The addresses' own
    counts (across accounts) stay. False (and logged) when the cache is unreachable."""
    # Kept a month: far longer than the counts made under the epoch before (a window and a
    # minute), which it must outlive, and not for ever, as its key names the account. When it
    # ends, the counts made under it in its last window are forgotten.
    epochs = {_epoch_key(_name(n)): secrets.token_hex(4) for n in {user.username, user.email} if n}
    try:
        cache.set_many(epochs, timeout=EPOCH_KEPT)
    except Exception:  # noqa: BLE001
        log.warning("rate-limit cache unreachable; log-in pause not lifted", exc_info=True)
        return False
    return True


def lift_lookup_pause(user) -> bool:
    """Forget the customer's failed license-number look-ups (support lifted the pause). Those
    counted for an address (across its users) stay. False (and logged) when the cache is
    unreachable."""
    try:
        key = _key("lookup", f"user:{user.pk}", settings.ACTIVATION_FAILURE_WINDOW)
        cache.delete_many([key, _logged(key)])
    except Exception:  # noqa: BLE001
        log.warning("rate-limit cache unreachable; look-up pause not lifted", exc_info=True)
        return False
    return True


def lift_address_pause(address: str) -> tuple[str, list[str]] | None:
    """Forget what an address (an IPv6 one: its /64) counted across accounts in every scope:
    failed log-ins and look-ups, password reset requests (support lifted its pause). Returns
    the address or block lifted, with the scopes it was paused in (its next try would have
    been refused); None (and logged) when the cache is unreachable."""
    block = _counted(address)
    limits = _address_limits()
    keys = {scope: _key(scope, f"ip:{block}", window) for scope, (_, window) in limits.items()}
    try:
        counts = cache.get_many(list(keys.values()))
        cache.delete_many([*keys.values(), *map(_logged, keys.values())])
    except Exception:  # noqa: BLE001
        log.warning("rate-limit cache unreachable; address pause not lifted", exc_info=True)
        return None
    paused = [scope for scope, key in keys.items() if counts.get(key, 0) >= limits[scope][0]]
    return counted(address), paused
