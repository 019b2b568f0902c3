"""Messages that name license numbers and Installation IDs keep each code on one line, in the
typeface it is shown in elsewhere (a browser would break an ID after any of its dashes)."""

import re

from django import template
from django.utils.html import conditional_escape, format_html
from django.utils.safestring import mark_safe

register = template.Library()

# TM-XXXX-XXXX-XXXX and XXXX-XXXX-XXXX-XXXX-XXXX: groups of capitals and digits joined by dashes.
_CODE = re.compile(r"\b[0-9A-Z]{2,}(?:-[0-9A-Z]{2,}){2,}\b")


@register.filter
def nowrap_codes(text):
    escaped = str(conditional_escape(text))
    return mark_safe(  # noqa: S308 - escaped above; only whole codes (no markup) are wrapped
        _CODE.sub(lambda m: format_html('<span class="code">{}</span>', m.group()), escaped)
    )
