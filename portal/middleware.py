"""The site's Content-Security-Policy, on every response (settings.CONTENT_SECURITY_POLICY)."""

from django.conf import settings


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
