"""Log lines without a password reset link's token: Django redirects that link to its
set-password page at once, but the token, logged, would let a log's reader set the password
until the link is used. For gunicorn's access log (gunicorn.conf.py) and every record of the
site's own log (settings.LOGGING: django.request logs the path of a request that failed, a
reset link's while the database is down, say)."""

import logging
import re

_RESET_TOKEN = re.compile(r"(/accounts/reset/[^/\s]+/)(?!set-password/)[^/?\s]+")


def without_tokens(text: str) -> str:
    return _RESET_TOKEN.sub(r"\1[token]", text)


class WithoutTokens(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a malformed call: the handler says so, as without us
            return True
        hidden = without_tokens(message)
        if hidden != message:
            record.msg, record.args = hidden, ()
        if record.exc_info and not record.exc_text:  # an error's text may hold the link too
            record.exc_text = without_tokens(_FORMATTER.formatException(record.exc_info))
        return True


_FORMATTER = logging.Formatter()
