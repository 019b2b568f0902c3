"""Log-in by username or e-mail address, in any letter case: what a plant engineer remembers;
and every log-in audited, with its address."""

import logging
from datetime import timedelta
from importlib import import_module

from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.auth import SESSION_KEY, get_user_model, logout
from django.contrib.auth import views as auth_views
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import update_last_login
from django.contrib.sessions.models import Session
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

log = logging.getLogger(__name__)


def _spellings(domain: str) -> tuple[str, str] | None:
    """A domain's two spellings, in ASCII and in letters (xn--bcher-kva.example,
    bücher.example), when it is written as one of them in any case; else None. The conversion
    drops characters that show as nothing (a soft hyphen), reads others as letters (a
    full-width "ｅ") and ß as ss: taken for another spelling, they would make endless texts
    of one address, or one of two."""
    lowered = domain.lower()
    try:
        ascii_form = lowered.encode("idna").decode("ascii")
        letters = ascii_form.encode("ascii").decode("idna")
    except UnicodeError:  # no domain mail servers read
        return None
    return (ascii_form, letters) if lowered in (ascii_form, letters) else None


def address_forms(text: str) -> set[str]:
    """An e-mail address as typed, and with its domain in its other spelling: mail programs
    show a domain of other letters in ASCII (bücher.example as xn--bcher-kva.example), and
    an account keeps the one it was given."""
    local, at, domain = text.rpartition("@")
    spellings = _spellings(domain) if at else None
    return {text, *(f"{local}@{one}" for one in spellings or ())}


def _fold(text: str) -> str:
    """Text as the database compares it case-blind: each character upper-cased where that is
    one character ("kımı" finds "kimi", "ſ" is "s"; "ß" stays), then lower-cased."""
    return "".join(c.upper() if len(c.upper()) == 1 else c for c in text).lower()


def address_key(text: str) -> str:
    """One text for every way an address (or a user name) finds its account, to count it by:
    its domain in letters, in the database's case rules, before and after the spelling (an
    ASCII spelling with an "ı" in it is found so)."""
    folded = _fold(text)
    local, at, domain = folded.rpartition("@")
    spellings = _spellings(domain) if at else None
    return _fold(f"{local}@{spellings[1]}") if spellings else folded


def same_address(text: str, field: str = "email") -> Q:
    """The accounts whose ``field`` is this address in any letter case and either form."""
    query = Q()
    for form in address_forms(text):
        query |= Q(**{f"{field}__iexact": form})
    return query


def find_account(text: str):
    """The account a name typed at the log-in names: its exact username, else its username or
    e-mail address in any letter case when that fits one account alone; else None."""
    users = get_user_model()._default_manager
    text = text.strip()
    user = users.filter(username=text).first()
    if user is None:
        found = list(users.filter(Q(username__iexact=text) | same_address(text))[:2])
        user = found[0] if len(found) == 1 else None
    return user


def logged_in_from_here(name: str, request, *, days: int = 30) -> bool:
    """Whether the account a name typed names logged in from the request's address (an IPv6
    one's /64) in the last ``days`` (its audited log-ins): where its owner works, which a
    guesser who paused the account from everywhere else does not keep them out of
    (throttle.count_try asks)."""
    from .models import AuditEvent
    from .throttle import client_ip, counted

    account = find_account(name)
    if account is None:
        return False
    used = AuditEvent.objects.filter(
        actor=account,
        action="log_in",
        created_at__gte=timezone.now() - timedelta(days=days),
        ip_address__isnull=False,
    ).values_list("ip_address", flat=True)
    # As the limits count them: an IPv6 address by its /64 (a PC's address changes daily).
    return counted(client_ip(request)) in {counted(address) for address in used.distinct()}


class UsernameOrEmailBackend(ModelBackend):
    """Django's model backend, finding the account by its exact username, else by its username
    or e-mail address in any letter case. Text that fits two accounts that way (an address two
    users share, or two usernames differing only in case) logs in neither."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        if username is None or password is None:
            return None
        user = find_account(username)
        if user is None:
            # As long as a real check (Django's own guard: no name told apart by the time).
            get_user_model()().set_password(password)
            return None
        if user.check_password(password) and self.user_can_authenticate(user):
            return user
        return None

    async def aauthenticate(self, request, username=None, password=None, **kwargs):
        return await sync_to_async(self.authenticate)(request, username, password, **kwargs)


def audit_log_in(sender, request, user, **kwargs):
    """A log-in (to the site or the admin; Django's ``user_logged_in``, in place of its
    ``update_last_login``), its time saved and audited: the organization's trail shows who
    logged in from which address, and support checks an address against those its members
    used lately. The account's row is locked for both writes: one deleted in the instant since
    its password was checked is refused (403), not a 500."""
    from . import services

    with transaction.atomic():
        if not services.lock_account(user):
            logout(request)  # the session just made names an account that is gone
            raise PermissionDenied("Your account was deleted: you are not logged in.")
        update_last_login(sender, user)
        audit_account(request, user, "log_in")


def log_failed_log_in(sender, credentials, request=None, **kwargs):
    """A failed log-in (Django's ``user_login_failed``), logged (log_wrong_password)."""
    log_wrong_password(request, find_account(str(credentials.get("username", ""))))


def log_wrong_password(request, account, what: str = "log-in") -> None:
    """A wrong password, logged with the account it was tried for and the address: what a
    security team reviews after a guessing run (pauses are logged when they start:
    licensing.throttle). Never the text typed (a password typed as the name, by mistake):
    a name that is no account's is "an unknown name"."""
    from .throttle import client_ip

    who = f"account {account.get_username()!r}" if account else "an unknown name"
    where = client_ip(request) if request is not None else "no request"
    log.info("%s failed for %s from %s", what, who, where)


def start_session(sender, request, user, **kwargs):
    """A log-in's session (Django's ``user_logged_in``). Django keeps the session's data, a
    password link opened in it before too (its token, for the page that sets the password):
    on a shared PC, the next person logging in as themselves would set the password of the
    one who opened it. The link asks for the token again."""
    request.session.pop(auth_views.INTERNAL_RESET_SESSION_TOKEN, None)


def end_sessions(request) -> int:
    """Every session of the request's user ended, this one's too (a browser left logged in on
    a shared PC, without changing the password), audited; returns how many. The sessions
    are kept in the database (checks.sessions_in_the_database), not by user: each live one is
    read (a live one is one used in the last SESSION_IDLE_MINUTES)."""
    store = import_module(settings.SESSION_ENGINE).SessionStore()
    user_id = str(request.user.pk)
    theirs = [
        session.session_key
        for session in Session.objects.filter(expire_date__gt=timezone.now()).iterator()
        if store.decode(session.session_data).get(SESSION_KEY) == user_id
    ]
    for key in theirs:
        store.delete(key)
    audit_account(request, request.user, "log_out_everywhere", {"sessions": len(theirs)})
    return len(theirs)


def audit_account(request, user, action: str, details=None) -> None:
    """An account's own event (a log-in; a password chosen from an invitation, reset or
    changed; a log-out everywhere: AuditEvent.ACCOUNT_EVENTS, deleted in time), audited on its
    organization's trail with the address it came from."""
    from . import services, throttle
    from .models import Membership

    membership = Membership.objects.select_related("organization").filter(user=user).first()
    services.audit(
        actor=user,
        action=action,
        license=None,
        obj=membership.organization if membership else user,
        ip=throttle.client_ip(request) if request is not None else None,
        details=details,
    )
