"""The site's Content-Security-Policy, on every response (settings.CONTENT_SECURITY_POLICY);
a logged-in user's pages kept by no browser, and a session left unused ended; requests that no
page can answer, refused before any view."""

import time
from urllib.parse import unquote_plus, urlsplit

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import BadRequest
from django.urls import reverse
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
    use: one in use is saved again, which moves its end on, at most once a minute (a write a
    minute, not one a page). Its cookie goes when the browser closes
    (``SESSION_EXPIRE_AT_BROWSER_CLOSE``). A page asked for once it ended leads to the log-in,
    which says why (a form sent then is said so by its own page: the activation's)."""

    SAVED_EVERY = 60  # seconds

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        used = request.session.get("seen_at", 0)
        if request.user.is_authenticated and time.time() - used >= self.SAVED_EVERY:
            mark_used(request.session)
        response = self.get_response(request)
        if request.method == "GET" and _ended_unused(request) and _to_log_in(response):
            messages.info(
                request,
                f"You were logged out after {settings.SESSION_IDLE_MINUTES} minutes without use.",
            )
        return response


def mark_used(session) -> None:
    """The session used now (a log-in marks its new one: no second write on the next page)."""
    session["seen_at"] = int(time.time())


def _ended_unused(request) -> bool:
    """Whether the request came with a session that is no more: it expired unused (a log-out
    deletes the cookie with the session)."""
    return (
        request.COOKIES.get(settings.SESSION_COOKIE_NAME)
        and request.session.session_key is None
        and not request.user.is_authenticated
    )


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
