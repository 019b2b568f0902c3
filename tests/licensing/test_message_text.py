"""How messages and errors are shown: codes kept whole, support's address linked, all else
escaped."""

from django.contrib.messages.storage.base import Message
from django.utils.safestring import mark_safe

from licensing.templatetags.message_text import message_text


def test_codes_are_wrapped_and_everything_else_is_escaped():
    text = '<b onclick="x()">TM-Q6H8-J9SE-5BYJ</b> & FJHZ-2SJ0-1JBD-ZWX4-QW7N.'
    assert message_text(text) == (
        '&lt;b onclick=&quot;x()&quot;&gt;<span class="code">TM-Q6H8-J9SE-5BYJ</span>'
        '&lt;/b&gt; &amp; <span class="code">FJHZ-2SJ0-1JBD-ZWX4-QW7N</span>.'
    )


def test_words_with_dashes_are_not_codes():
    assert message_text("a one-to-one ID(s) re-download") == "a one-to-one ID(s) re-download"


def test_dates_are_not_codes_but_stay_on_one_line():
    assert message_text("It expired on 2026-01-31.") == (
        'It expired on <span class="text-nowrap">2026-01-31</span>.'
    )
    assert message_text("Expired on 2026-12-03 18:23:43 UTC. Ask.") == (
        'Expired on <span class="text-nowrap">2026-12-03 18:23:43 UTC</span>. Ask.'
    )


def test_supports_address_is_a_link_and_no_other_address(settings):
    settings.SUPPORT_EMAIL = "help+tms@example.com"
    assert message_text("Write to help+tms@example.com, not x@example.com.") == (
        'Write to <a href="mailto:help+tms@example.com">help+tms@example.com</a>, '
        "not x@example.com."
    )
    assert "<a" not in message_text("Not xhelp+tms@example.com.au either.")
    settings.SUPPORT_EMAIL = "o'neil&co@example.com"
    assert message_text("Write to o'neil&co@example.com.") == (
        'Write to <a href="mailto:o&#x27;neil&amp;co@example.com">o&#x27;neil&amp;co@example.com'
        "</a>."
    )
    settings.SUPPORT_EMAIL = ""
    assert message_text("Write to support.") == "Write to support."


def test_a_message_is_read_and_safe_markup_left_as_it_is():
    assert message_text(Message(20, "License TM-Q6H8-J9SE-5BYJ <ok>")) == (
        'License <span class="code">TM-Q6H8-J9SE-5BYJ</span> &lt;ok&gt;'
    )
    link = mark_safe('<a href="/licenses/TM-Q6H8-J9SE-5BYJ/">it</a>')
    assert message_text(link) == link
