"""Property-based tests: tampering never verifies, transport damage always does, no input
crashes the verifier, and pasted or mistyped IDs get the canonical form or a readable message."""

import base64

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tmslicense
from tests.tmslicense.conftest import NOW
from tests.tmslicense.envelope import BEGIN, END, armor, envelope
from tests.tmslicense.test_ids import DASHES, INVISIBLE, SPACES
from tmslicense.ids import ALPHABET, INSTALLATION_ID, LICENSE_NUMBER

FAST = settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@FAST
@given(data=st.data())
def test_every_single_byte_change_to_payload_or_signature_is_refused(
    make_license, private_key, kid, keyring, data
):
    lic = make_license("mirrored", license_number="TM-0000-0000-0000")
    payload = lic.to_payload()
    signature = private_key.sign(payload)
    target = data.draw(st.sampled_from(["payload", "sig"]))
    original = payload if target == "payload" else signature
    index = data.draw(st.integers(0, len(original) - 1))
    value = data.draw(st.integers(0, 255).filter(lambda b: b != original[index]))
    changed = original[:index] + bytes([value]) + original[index + 1 :]
    if target == "payload":
        text = armor(envelope(changed, signature, kid=kid))
    else:
        text = armor(envelope(payload, changed, kid=kid))
    try:
        tmslicense.verify_license(text, keyring, lic.installation_ids[0], now=NOW)
    except tmslicense.LicenseError:
        return
    raise AssertionError(f"a changed {target} byte at {index} was accepted")


@FAST
@given(
    width=st.integers(1, 200),
    crlf=st.booleans(),
    trailing=st.text(alphabet=" \t", max_size=3),
    before=st.text(max_size=200).filter(lambda t: "-----" not in t),
    after=st.text(max_size=200).filter(lambda t: "-----" not in t),
)
def test_rewrapping_crlf_trailing_spaces_and_surrounding_text_are_accepted(
    make_license, sign, keyring, width, crlf, trailing, before, after
):
    lic = make_license("standard", license_number="TM-0000-0000-0000")
    body = "".join(sign(lic).splitlines()[1:-1])
    lines = [BEGIN, *(body[i : i + width] + trailing for i in range(0, len(body), width)), END]
    text = before + "\n" + ("\r\n" if crlf else "\n").join(lines) + "\n" + after
    assert tmslicense.verify_license(text, keyring, lic.installation_ids[0], now=NOW) == lic


@FAST
@given(blob=st.binary(max_size=2000))
def test_random_bytes_never_crash_and_never_verify(keyring, blob):
    for candidate in (blob, BEGIN.encode() + base64.b64encode(blob) + END.encode()):
        try:
            tmslicense.verify_license(candidate, keyring, None, now=NOW)
        except tmslicense.LicenseError:
            continue
        raise AssertionError("random bytes verified")


@FAST
@given(text=st.text(max_size=2000))
def test_random_text_never_crashes_and_never_verifies(keyring, text):
    for candidate in (text, f"{BEGIN}\n{text}\n{END}"):
        try:
            tmslicense.verify_license(candidate, keyring, None, now=NOW)
        except tmslicense.LicenseError:
            continue
        raise AssertionError("random text verified")


@FAST
@given(text=st.text(max_size=60))
def test_normalizers_raise_only_their_own_error(text):
    for normalize, error in [
        (tmslicense.normalize_installation_id, tmslicense.InvalidInstallationId),
        (tmslicense.normalize_license_number, tmslicense.InvalidLicenseNumber),
    ]:
        try:
            normalize(text)
        except error as exc:
            assert exc.message


installation_ids = st.text(alphabet=ALPHABET, min_size=19, max_size=19).map(
    INSTALLATION_ID.complete
)
license_numbers = st.text(alphabet=ALPHABET, min_size=11, max_size=11).map(LICENSE_NUMBER.complete)
separators = st.lists(
    st.sampled_from([" ", "-", "\t", *DASHES, *SPACES, *INVISIBLE]), max_size=3
).map("".join)


def _full_width(ch: str) -> str:
    return chr(ord(ch) + 0xFEE0) if "!" <= ch <= "~" else ch


@st.composite
def pasted(draw, canonical):
    """``canonical`` as a person might paste it: any case, any dashes, spaces and invisible
    characters around and between the characters, some of them in full width."""
    text = draw(separators)
    for ch in canonical.replace("-", ""):
        ch = draw(st.sampled_from([ch, ch.lower(), _full_width(ch), _full_width(ch.lower())]))
        text += ch + draw(separators)
    return text


@FAST
@given(data=st.data())
def test_pasted_ids_and_license_numbers_give_the_canonical_form(data):
    for canonical, normalize in [
        (data.draw(installation_ids), tmslicense.normalize_installation_id),
        (data.draw(license_numbers), tmslicense.normalize_license_number),
    ]:
        assert normalize(data.draw(pasted(canonical))) == canonical


@FAST
@given(data=st.data())
def test_an_id_in_the_other_field_is_named_for_what_it_is(data):
    with pytest.raises(tmslicense.InvalidInstallationId, match="This is a license number"):
        tmslicense.normalize_installation_id(data.draw(pasted(data.draw(license_numbers))))
    with pytest.raises(tmslicense.InvalidLicenseNumber, match="This is an Installation ID"):
        tmslicense.normalize_license_number(data.draw(pasted(data.draw(installation_ids))))


@FAST
@given(text=st.text(max_size=60))
def test_messages_show_no_python_escapes_and_no_invisible_characters(text):
    for normalize in (tmslicense.normalize_installation_id, tmslicense.normalize_license_number):
        try:
            normalize(text)
        except tmslicense.InvalidIdentifier as error:
            assert error.message.isprintable(), error.message
            assert "\\" not in error.message or "\\" in text, error.message
