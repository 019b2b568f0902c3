"""The site's Content-Security-Policy, on every response (settings.CONTENT_SECURITY_POLICY);
a logged-in user's pages kept by no browser, and a session left unused ended; requests that no
page can answer, refused before any view."""

import time
from datetime import timedelta
from urllib.parse import unquote_plus, urlsplit

from django.conf import settings
from django.contrib import messages
from django.contrib.sessions.models import Session
from django.core.exceptions import BadRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import add_never_cache_headers


def content_security_policy(**more_sources) -> str:
    """The policy as a header's value; ``more_sources`` adds sources to directives (named
    with underscores: ``style_src=[...]``) for one response."""
    directives = {name: list(sources) for name, sources in settings.CONTENT_SECURITY_POLICY.items()}
    for name, sources in more_sources.items():
        directives[name.replace("_", "-")] += sources
    return "; ".join(" ".join((name, *sources)) for name, sources in directives.items())


class ContentSecurityPolicyMiddleware:
    """Adds the policy unless the view set its own. Off with DEBUG: Django's debug pages work
    by inline scripts, which the policy blocks."""

    def __init__(self, get_response):
        self.get_response = get_response
        self.policy = content_security_policy()

    def __call__(self, request):
        response = self.get_response(request)
        if not settings.DEBUG:
            response.headers.setdefault("Content-Security-Policy", self.policy)
        return response


class PrivatePagesMiddleware:
    """A logged-in user's pages (an organization's licenses, their Installation IDs, the
    spreadsheet of them) are kept by no browser: on a plant's shared PC, its cache or Back
    after log-out would show them to the next person. A view that says how its answer may be
    kept (the public keyring and revocation list) is left as it says."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if "Cache-Control" not in response and request.user.is_authenticated:
            add_never_cache_headers(response)
        return response


class IdleSessionsMiddleware:
    """A session lasts ``SESSION_COOKIE_AGE`` (settings.SESSION_IDLE_MINUTES) from its last
    use: in use, its end is moved on at most once a minute (a cookie of its own says when it
    last was), by writing that end alone: the session's data, which another tab's request
    may be changing at that moment (an activation's step), is not written. Its cookies go
    when the browser closes (``SESSION_EXPIRE_AT_BROWSER_CLOSE``). A page asked for once it
    ended leads to the log-in, which says why, unless the page said so itself (the
    activation's)."""

    MOVED_EVERY = 60  # seconds
    COOKIE = "seen"  # when the session's end was last moved on, in seconds since 1970

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        now = int(time.time())
        seen = request.COOKIES.get(self.COOKIE, "")
        seen = int(seen) if seen.isascii() and seen.isdigit() and len(seen) <= 10 else 0
        seen = seen if seen <= now else 0  # a clock set back, a cookie set by another site
        due = now - seen >= self.MOVED_EVERY
        if due and request.user.is_authenticated:
            ends = timezone.now() + timedelta(seconds=settings.SESSION_COOKIE_AGE)
            Session.objects.filter(session_key=request.session.session_key).update(expire_date=ends)
        response = self.get_response(request)
        if due and request.user.is_authenticated:  # a log-in's new session too
            response.set_cookie(
                self.COOKIE,
                str(now),
                secure=settings.SESSION_COOKIE_SECURE,
                httponly=True,
                samesite="Lax",
            )
        said = len(messages.get_messages(request))  # the page's own why (the activation's)
        if _ended(request) and _to_log_in(response) and not said:
            messages.info(request, _why_ended(request, seen, now))
        return response


def _ended(request) -> bool:
    """Whether the request came with a session that is no more (a log-out deletes the
    cookie with the session), other than to log out."""
    return bool(
        request.COOKIES.get(settings.SESSION_COOKIE_NAME)
        and request.session.session_key is None
        and not request.user.is_authenticated
        and request.path != reverse("logout")
    )


def _why_ended(request, seen: int, now: int) -> str:
    minutes = settings.SESSION_IDLE_MINUTES
    if not seen:  # not known (a session from before the cookie was given)
        why = "Your log-in ended"
    elif now - seen >= minutes * 60:
        why = f"You were logged out after {minutes} minutes without use"
    else:  # ended otherwise: a log-out elsewhere, a new password
        why = (
            "Your log-in ended (you logged out everywhere, or the password was changed, in "
            "another tab or browser)"
        )
    return f"{why}{'.' if request.method in ('GET', 'HEAD') else ': what you sent was not saved.'}"


def _to_log_in(response) -> bool:
    if response.status_code != 302:
        return False
    return urlsplit(response["Location"]).path in (reverse("login"), reverse("admin:login"))


class RefuseNullCharactersMiddleware:
    """A NUL character in the address or its query is no text a page takes, and PostgreSQL
    refuses any statement comparing a value with one (a 500, where SQLite finds nothing): such
    a request is a 400 before any view or admin filter builds a query from it. Form fields
    refuse it themselves (Django's null-character validator). A cookie holding one (which a
    script, or a site of a parent domain, may set) is ignored, as if not sent (of two cookies
    of one name Django reads the last: a session cookie with one after the real one still
    ends that session here): refused, it would refuse every page until deleted, the log-in
    page too."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if "\x00" in request.path or "\x00" in unquote_plus(request.META.get("QUERY_STRING", "")):
            raise BadRequest("A NUL character in the address.")
        if any("\x00" in value for value in request.COOKIES.values()):
            request.COOKIES = {k: v for k, v in request.COOKIES.items() if "\x00" not in v}
        return self.get_response(request)
