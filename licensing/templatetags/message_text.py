"""Messages and errors as the site's pages show them: license numbers and Installation IDs kept
whole on one line, in the typeface they are shown in elsewhere (a browser would break an ID
after any of its dashes), and support's e-mail address a link to write to it."""

import re

from django import template
from django.conf import settings
from django.utils.html import escape, format_html
from django.utils.safestring import SafeData, mark_safe

register = template.Library()

# TM-XXXX-XXXX-XXXX and XXXX-XXXX-XXXX-XXXX-XXXX: groups of capitals and digits joined by dashes
# (a date, 2026-01-31, is none).
_CODE = r"\b(?!\d{4}-\d\d-\d\d\b)[0-9A-Z]{2,}(?:-[0-9A-Z]{2,}){2,}\b"
# A date, with its time and zone if it has them: kept on one line too (a phone broke
# "2026-12-03 18:23:43 UTC" after "2026-").
_DATE = r"\b\d{4}-\d\d-\d\d(?: \d\d:\d\d(?::\d\d)?(?: UTC)?)?\b"


def _marked(match: re.Match) -> str:
    found = mark_safe(match.group())  # noqa: S308 - a part of the text escaped before
    if match.group("code"):
        return format_html('<span class="code">{}</span>', found)
    if match.group("date"):
        return format_html('<span class="text-nowrap">{}</span>', found)
    return format_html('<a href="mailto:{}">{}</a>', found, found)


@register.filter
def message_text(text):
    """Plain text (a message or an error) escaped, each code in a ``.code`` span and support's
    address linked. Markup already made safe is returned as it is: codes inside its tags
    must stay untouched."""
    text = getattr(text, "message", text)  # a contrib.messages Message
    if isinstance(text, SafeData):
        return text
    address = (
        # The whole address only: not a part of a longer one; a full stop may end the sentence.
        rf"(?<![\w.+-]){re.escape(escape(settings.SUPPORT_EMAIL))}(?![\w@-]|\.\w)"
        if settings.SUPPORT_EMAIL
        else "(?!)"
    )
    marks = re.compile(f"(?P<code>{_CODE})|(?P<date>{_DATE})|{address}")
    return mark_safe(marks.sub(_marked, escape(text)))  # noqa: S308 - escaped; marks added
