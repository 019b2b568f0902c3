"""The site's Content-Security-Policy, on every response (settings.CONTENT_SECURITY_POLICY);
a logged-in user's pages kept by no browser; requests that no page can answer, refused before
any view."""

from urllib.parse import unquote_plus

from django.conf import settings
from django.core.exceptions import BadRequest
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
