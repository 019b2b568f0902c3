"""The filter that keeps license numbers and Installation IDs whole inside messages."""

from django.contrib.messages.storage.base import Message
from django.utils.safestring import mark_safe

from licensing.templatetags.codes import nowrap_codes


def test_codes_are_wrapped_and_everything_else_is_escaped():
    text = '<b onclick="x()">TM-Q6H8-J9SE-5BYJ</b> & FJHZ-2SJ0-1JBD-ZWX4-QW7N.'
    assert nowrap_codes(text) == (
        '&lt;b onclick=&quot;x()&quot;&gt;<span class="code">TM-Q6H8-J9SE-5BYJ</span>'
        '&lt;/b&gt; &amp; <span class="code">FJHZ-2SJ0-1JBD-ZWX4-QW7N</span>.'
    )


def test_words_with_dashes_are_not_codes():
    assert nowrap_codes("a one-to-one ID(s) re-download") == "a one-to-one ID(s) re-download"


def test_a_message_is_read_and_safe_markup_left_as_it_is():
    assert nowrap_codes(Message(20, "License TM-Q6H8-J9SE-5BYJ <ok>")) == (
        'License <span class="code">TM-Q6H8-J9SE-5BYJ</span> &lt;ok&gt;'
    )
    link = mark_safe('<a href="/licenses/TM-Q6H8-J9SE-5BYJ/">it</a>')
    assert nowrap_codes(link) == link
