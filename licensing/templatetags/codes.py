"""Messages that name license numbers and Installation IDs keep each code on one line, in the
typeface it is shown in elsewhere (a browser would break an ID after any of its dashes)."""

import re

from django import template
from django.utils.html import escape, format_html
from django.utils.safestring import SafeData, mark_safe

register = template.Library()

# TM-XXXX-XXXX-XXXX and XXXX-XXXX-XXXX-XXXX-XXXX: groups of capitals and digits joined by dashes.
_CODE = re.compile(r"\b[0-9A-Z]{2,}(?:-[0-9A-Z]{2,}){2,}\b")


@register.filter
def nowrap_codes(text):
    """Plain text (a message or an error) escaped, with each code in a ``.code`` span. Markup
    already made safe is returned as it is: codes inside its tags must stay untouched."""
    text = getattr(text, "message", text)  # a contrib.messages Message
    if isinstance(text, SafeData):
        return text
    return mark_safe(  # noqa: S308 - escaped here; only whole codes (no markup) are wrapped
        _CODE.sub(lambda m: format_html('<span class="code">{}</span>', m.group()), escape(text))
    )
