"""Signing and verification: round trips, and one error class per refusal."""

import base64
import json
import pickle
import string
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta, timezone

import pytest

import tmslicense
from tests.tmslicense.conftest import NOW, later
from tests.tmslicense.envelope import armor, envelope, signed_file


@pytest.mark.parametrize(
    ("kind", "roles"),
    [
        ("standard", ["primary"]),
        ("mirrored", ["primary", "mirror"]),
        ("enterprise", ["primary", "redundant"]),
    ],
)
def test_round_trip_for_every_kind_on_each_bound_server(make_license, sign, keyring, kind, roles):
    lic = make_license(kind)
    text = sign(lic)
    assert text.startswith("-----BEGIN TMS LICENSE FILE-----\n")
    for installation_id in lic.installation_ids:
        verified = tmslicense.verify_license(text, keyring, installation_id, now=NOW)
        assert verified == lic
        assert [s.role.value for s in verified.servers] == roles


def test_installation_id_may_be_given_in_any_typed_form(make_license, sign, keyring):
    lic = make_license("standard")
    typed = lic.installation_ids[0].lower().replace("-", " ")
    assert tmslicense.verify_license(sign(lic), keyring, typed, now=NOW) == lic


def test_file_for_server_a_is_refused_on_server_b(make_license, sign, keyring):
    lic = make_license("mirrored")
    other = tmslicense.new_installation_id()
    with pytest.raises(tmslicense.NotForThisServer) as error:
        tmslicense.verify_license(sign(lic), keyring, other, now=NOW)
    assert other in str(error.value)
    assert lic.installation_ids[0] in str(error.value)


def test_a_mistyped_server_id_is_the_servers_error_not_the_files(make_license, sign, keyring):
    lic = make_license("standard")
    with pytest.raises(tmslicense.InvalidInstallationId) as error:
        tmslicense.verify_license(sign(lic), keyring, lic.license_number, now=NOW)
    assert not isinstance(error.value, tmslicense.LicenseError)  # a ValueError, as documented
    assert isinstance(error.value, ValueError)


def test_a_file_may_be_given_as_any_bytes_like_value_and_nothing_else(make_license, sign, keyring):
    lic = make_license("standard")
    data = sign(lic).encode()
    for given in (bytearray(data), memoryview(data)):
        assert tmslicense.verify_license(given, keyring, lic.installation_ids[0], now=NOW) == lic
    with pytest.raises(TypeError, match="str or bytes, not list"):
        tmslicense.verify_license([data], keyring, lic.installation_ids[0], now=NOW)


def test_errors_carry_their_message_and_a_file_too_large_its_size(keyring):
    with pytest.raises(tmslicense.FileTooLarge) as error:
        tmslicense.verify_license(b"x" * 70_000, keyring, None, now=NOW)
    assert (error.value.size, error.value.limit) == (70_000, tmslicense.MAX_FILE_SIZE)
    assert error.value.message == str(error.value)
    assert "70,000 bytes" in error.value.message
    again = pickle.loads(pickle.dumps(error.value))  # noqa: S301 (our own, as to another process)
    assert (again.size, again.message) == (70_000, error.value.message)

    class Refused(tmslicense.LicenseError):  # an embedder's own, setting its message itself
        def __init__(self, why):
            super().__init__(why)
            self.message = f"Refused: {why}"

    assert Refused("no").message == "Refused: no"


def test_a_signature_written_otherwise_for_the_same_bytes_is_refused(
    make_license, private_key, kid, keyring
):
    """64 bytes take 86 base64 characters: the last holds 4 bits that carry nothing. Changed,
    the bytes read are the same, yet the file is not the one issued."""
    lic = make_license("standard")
    payload = lic.to_payload()
    good = json.loads(envelope(payload, private_key.sign(payload), kid=kid))
    sig = good["sig"]
    assert sig.endswith("==")
    alphabet = string.ascii_uppercase + string.ascii_lowercase + string.digits + "+/"
    other = alphabet[alphabet.index(sig[-3]) ^ 1]  # the lowest of the 4 unused bits
    changed = dict(good, sig=f"{sig[:-3]}{other}==")
    assert base64.b64decode(changed["sig"]) == base64.b64decode(sig)
    text = armor(json.dumps(changed).encode())
    with pytest.raises(tmslicense.MalformedFile):
        tmslicense.verify_license(text, keyring, lic.installation_ids[0], now=NOW)


def test_expired_file_is_refused(make_license, sign, keyring):
    lic = make_license("standard", expires_at=later(30))
    text = sign(lic)
    tmslicense.verify_license(text, keyring, lic.installation_ids[0], now=later(29))
    with pytest.raises(tmslicense.LicenseExpired, match="expired"):
        tmslicense.verify_license(text, keyring, lic.installation_ids[0], now=later(30))


def test_not_yet_valid_file_is_refused_beyond_the_clock_tolerance(make_license, sign, keyring):
    lic = make_license("standard")
    text = sign(lic)
    slightly_early = NOW - tmslicense.CLOCK_TOLERANCE
    tmslicense.verify_license(text, keyring, lic.installation_ids[0], now=slightly_early)
    with pytest.raises(tmslicense.LicenseNotYetValid, match="clock"):
        tmslicense.verify_license(text, keyring, lic.installation_ids[0], now=later(-2))


@pytest.mark.parametrize(
    ("zone", "change"),  # a change to summer time and back, in UTC
    [
        ("Europe/Berlin", datetime(2027, 3, 28, 1, 0, tzinfo=UTC)),
        ("Europe/Berlin", datetime(2027, 10, 31, 1, 0, tzinfo=UTC)),
        ("America/New_York", datetime(2027, 3, 14, 7, 0, tzinfo=UTC)),
        ("America/New_York", datetime(2027, 11, 7, 6, 0, tzinfo=UTC)),
    ],
)
def test_the_clock_tolerance_is_24_hours_in_any_time_zone(
    make_license, sign, keyring, zone, change
):
    """A server's clock given in its own zone: across a change to or from summer time the
    tolerance is still 24 hours, not a calendar day of 23 or 25."""
    from zoneinfo import ZoneInfo

    issued = change + timedelta(hours=12)
    lic = make_license("standard", issued_at=issued)
    text, server = sign(lic), lic.installation_ids[0]
    within = (issued - timedelta(hours=23, minutes=59)).astimezone(ZoneInfo(zone))
    tmslicense.verify_license(text, keyring, server, now=within)
    beyond = (issued - timedelta(hours=24, minutes=1)).astimezone(ZoneInfo(zone))
    with pytest.raises(tmslicense.LicenseNotYetValid, match="clock"):
        tmslicense.verify_license(text, keyring, server, now=beyond)
    # A license made in memory with its times in that zone, asked of capabilities: the same.
    local = replace(lic, issued_at=issued.astimezone(ZoneInfo(zone)))
    assert tmslicense.capabilities([local], server, now=within).serve_clients
    assert not tmslicense.capabilities([local], server, now=beyond).serve_clients


def test_unknown_kid_is_refused(make_license, sign):
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    lic = make_license("standard")
    stranger = tmslicense.Keyring([Ed25519PrivateKey.generate().public_key()])
    with pytest.raises(tmslicense.UnknownKey, match="does not trust"):
        tmslicense.verify_license(sign(lic), stranger, lic.installation_ids[0], now=NOW)


def test_unknown_alg_is_refused(make_license, private_key, kid, keyring):
    lic = make_license("standard")
    text = signed_file(lic.to_payload(), private_key, kid, alg="rsa-pss")
    with pytest.raises(tmslicense.UnsupportedAlgorithm, match="rsa-pss"):
        tmslicense.verify_license(text, keyring, lic.installation_ids[0], now=NOW)


def test_signature_of_another_payload_is_refused(make_license, private_key, kid, keyring):
    lic = make_license("standard")
    forged = armor(envelope(lic.to_payload(), private_key.sign(b"something else"), kid=kid))
    with pytest.raises(tmslicense.BadSignature, match="changed"):
        tmslicense.verify_license(forged, keyring, lic.installation_ids[0], now=NOW)


def test_read_license_shows_what_a_file_says_without_deciding_anything(
    make_license, private_key, kid
):
    lic = make_license("mirrored")
    forged = armor(envelope(lic.to_payload(), private_key.sign(b"something else"), kid=kid))
    assert tmslicense.read_license(forged) == lic  # the signature is not its business
    with pytest.raises(tmslicense.MalformedFile):
        tmslicense.read_license("no license here")


def test_revoked_serial_is_refused(make_license, sign, keyring):
    lic = make_license("standard")
    with pytest.raises(tmslicense.LicenseRevoked, match="revoked"):
        tmslicense.verify_license(
            sign(lic), keyring, lic.installation_ids[0], now=NOW, revoked={lic.serial}
        )


def test_revoked_serials_given_as_text_are_refused(make_license, sign, keyring):
    """The text of a list would match parts of serials ("...X was a typo" revoking ...)."""
    lic = make_license("standard")
    with pytest.raises(TypeError, match="not text"):
        tmslicense.verify_license(
            sign(lic), keyring, lic.installation_ids[0], now=NOW, revoked=f"# {lic.serial}X\n"
        )


def test_revoked_serials_given_as_an_iterator_or_bytes_are_refused(make_license, sign, keyring):
    """An iterator would be used up by the first check: the next file of a revoked serial
    would pass. Bytes are the text of a list."""
    first, second = make_license("standard", serial="RA"), make_license("standard", serial="RB")
    serials = iter(["RA", "RB"])
    for lic in (second, first):
        with pytest.raises(TypeError, match="not an iterator"):
            tmslicense.verify_license(
                sign(lic), keyring, lic.installation_ids[0], now=NOW, revoked=serials
            )
    with pytest.raises(TypeError, match="not text"):
        tmslicense.verify_license(
            sign(first), keyring, first.installation_ids[0], now=NOW, revoked=b"RA\nRB\n"
        )
    for kept in (["RA"], ("RA",), {"RA"}, frozenset({"RA"}), {"RA": None}.keys()):
        with pytest.raises(tmslicense.LicenseRevoked):
            tmslicense.verify_license(
                sign(first), keyring, first.installation_ids[0], now=NOW, revoked=kept
            )


def test_a_clock_at_either_end_of_the_calendar_gets_a_refusal_not_a_crash(
    make_license, sign, keyring
):
    expiring = make_license("standard", expires_at=NOW + timedelta(days=30))
    west = timezone(timedelta(hours=-5))
    for at_the_end in (
        datetime(9999, 12, 31, 23, 0, tzinfo=UTC),
        datetime(9999, 12, 31, 20, 0, tzinfo=west),  # in UTC, past the calendar's end
    ):
        with pytest.raises(tmslicense.LicenseExpired, match="expired on 2026-12-25 12:00 UTC"):
            tmslicense.verify_license(
                sign(expiring), keyring, expiring.installation_ids[0], now=at_the_end
            )
        caps = tmslicense.capabilities([expiring], expiring.installation_ids[0], now=at_the_end)
        assert caps.role is None
    lic = make_license("standard")
    with pytest.raises(tmslicense.LicenseNotYetValid, match=r"clock \(0001-01-01 00:00 UTC\)"):
        tmslicense.verify_license(
            sign(lic), keyring, lic.installation_ids[0], now=datetime(1, 1, 1, tzinfo=UTC)
        )


def test_text_with_two_license_files_is_refused(make_license, sign, keyring):
    first, second = make_license("standard"), make_license("standard")
    with pytest.raises(tmslicense.MalformedFile, match="more than one license file"):
        tmslicense.verify_license(sign(first) + sign(second), keyring, None, now=NOW)


def test_a_long_key_id_or_algorithm_is_cut_short_in_the_message(make_license, private_key):
    lic = make_license("standard")
    for field, error in (("kid", tmslicense.UnknownKey), ("alg", tmslicense.UnsupportedAlgorithm)):
        kwargs = {"kid": "k" * 3000} if field == "kid" else {"kid": "x", "alg": "a" * 3000}
        text = signed_file(lic.to_payload(), private_key, **kwargs)
        with pytest.raises(error) as refused:
            tmslicense.read_envelope(text) and tmslicense.verify_license(
                text, tmslicense.Keyring([private_key.public_key()]), None, now=NOW
            )
        assert len(str(refused.value)) < 300 and "…" in str(refused.value)


def test_sign_refuses_a_key_id_that_is_not_the_keys_own(make_license, private_key):
    with pytest.raises(ValueError, match="not the key's own"):
        tmslicense.sign_license(make_license("standard"), private_key, "0000000000000000")


def _payload_dict(lic):
    return lic.to_dict()


def _refused_payload(raw: bytes, private_key, kid, keyring, installation_id):
    text = signed_file(raw, private_key, kid)
    with pytest.raises(tmslicense.InvalidPayload) as error:
        tmslicense.verify_license(text, keyring, installation_id, now=NOW)
    assert str(error.value)
    return str(error.value)


def test_duplicate_json_keys_in_the_payload_are_refused(make_license, private_key, kid, keyring):
    lic = make_license("standard")
    raw = lic.to_payload()
    duplicated = raw[:-1] + b',"seats":9999}'
    message = _refused_payload(duplicated, private_key, kid, keyring, lic.installation_ids[0])
    assert "twice" in message


def test_duplicate_json_keys_in_the_envelope_are_refused(make_license, private_key, kid, keyring):
    lic = make_license("standard")
    good = envelope(lic.to_payload(), private_key.sign(lic.to_payload()), kid=kid)
    doubled = good[:-1] + b', "kid": "other"}'
    with pytest.raises(tmslicense.MalformedFile, match="twice"):
        tmslicense.verify_license(armor(doubled), keyring, lic.installation_ids[0], now=NOW)


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (lambda d: d.update(extra="x"), "unknown field"),
        (lambda d: d.pop("seats"), "lacks"),
        (lambda d: d.pop("expires_at"), "lacks"),
        (lambda d: d.update(seats=True), "wrong type"),
        (lambda d: d.update(seats="25"), "wrong type"),
        (lambda d: d.update(seats=25.0), "wrong type"),
        (lambda d: d.update(seats=-1), "zero or more"),
        (lambda d: d.update(features="relevance"), "wrong type"),
        (lambda d: d.update(features=[1]), "list of text"),
        (lambda d: d.update(kind="gold"), "Unknown kind"),
        (lambda d: d.update(version=2), "version"),
        (lambda d: d.update(format="other"), "not a version"),
        (lambda d: d.update(issued_at="yesterday"), "UTC time"),
        (lambda d: d.update(maintenance_end="2027-1-1"), "date like"),
        (lambda d: d.update(maintenance_end="2027-W01-1"), "date like"),  # an ISO week date
        (lambda d: d.update(maintenance_end="2027-0\u0661-31"), "date like"),  # Arabic-Indic 1
        (lambda d: d.update(issued_at="2026-11-25T12:00:0\u0660Z"), "UTC time"),
        (
            lambda d: d["servers"][0].update(
                installation_id=d["servers"][0]["installation_id"].lower()
            ),
            "canonical",
        ),
        (lambda d: d["servers"][1].update(role="redundant"), "must name its servers"),
        (
            lambda d: d["servers"][1].update(installation_id=d["servers"][0]["installation_id"]),
            "different",
        ),
        (lambda d: d["servers"].pop(), "must name its servers"),
        (lambda d: d["servers"][0].update(extra=1), "exactly"),
        (lambda d: d.update(license_number="TM-AAAA-AAAA-AAAA"), "license number"),
        (lambda d: d.update(customer=""), "non-empty"),
        (lambda d: d.update(expires_at=""), "UTC time"),  # not "never expires"
    ],
)
def test_payload_that_is_not_exactly_the_schema_is_refused(
    make_license, private_key, kid, keyring, change, words
):
    lic = make_license("mirrored")
    data = _payload_dict(lic)
    change(data)
    raw = json.dumps(data).encode()
    message = _refused_payload(raw, private_key, kid, keyring, lic.installation_ids[0])
    assert words in message


def test_payload_that_is_not_json_is_refused(make_license, private_key, kid, keyring):
    lic = make_license("standard")
    for raw in [b"\xff\xfe", b"[1, 2]", b'{"seats": NaN}', b"not json"]:
        _refused_payload(raw, private_key, kid, keyring, lic.installation_ids[0])


@pytest.mark.parametrize("size_kind", ["text", "bytes"])
def test_file_over_the_size_limit_is_refused_before_parsing(make_license, sign, keyring, size_kind):
    lic = make_license("standard")
    text = sign(lic) + " " * tmslicense.MAX_FILE_SIZE
    data = text if size_kind == "text" else text.encode()
    with pytest.raises(tmslicense.FileTooLarge, match="at most"):
        tmslicense.verify_license(data, keyring, lic.installation_ids[0], now=NOW)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "hello",
        "-----BEGIN TMS LICENSE FILE-----\n-----END TMS LICENSE FILE-----",
        "-----BEGIN TMS LICENSE FILE-----\n!!!not base64!!!\n-----END TMS LICENSE FILE-----",
        "-----BEGIN TMS LICENSE FILE-----\naGVsbG8=\n-----END TMS LICENSE FILE-----",
        "-----BEGIN TMS LICENSE FILE-----\nW10=\n-----END TMS LICENSE FILE-----",
    ],
)
def test_bad_armor_or_base64_is_refused(keyring, text):
    with pytest.raises(tmslicense.MalformedFile):
        tmslicense.verify_license(text, keyring, tmslicense.new_installation_id(), now=NOW)


def test_non_utf8_bytes_are_refused(keyring):
    with pytest.raises(tmslicense.MalformedFile, match="not text"):
        tmslicense.verify_license(b"\xff" * 10, keyring, None, now=NOW)


def test_an_e_mail_around_the_file_may_be_in_any_encoding(make_license, sign, keyring):
    lic = make_license("standard")
    mail = "Grüße aus dem Werk:\n".encode("latin-1") + sign(lic).encode() + b"\n\xa9 2026\n"
    assert tmslicense.verify_license(mail, keyring, lic.installation_ids[0], now=NOW) == lic


def test_harmless_transport_damage_is_accepted(make_license, sign, keyring):
    lic = make_license("enterprise")
    text = sign(lic)
    body = "".join(text.splitlines()[1:-1])
    rewrapped = "\r\n".join(
        ["Dear customer, your file:", "", "-----BEGIN TMS LICENSE FILE-----   "]
        + [body[i : i + 76] + "  " for i in range(0, len(body), 76)]
        + ["-----END TMS LICENSE FILE-----", "", "Regards"]
    )
    for installation_id in lic.installation_ids:
        assert tmslicense.verify_license(rewrapped, keyring, installation_id, now=NOW) == lic


def test_a_file_quoted_in_a_reply_or_with_invisible_characters_is_accepted(
    make_license, sign, keyring
):
    """A file forwarded in a reply ("> " before each line, quoted twice over), or pasted with
    characters that show as nothing (a zero-width space, a soft hyphen, a byte-order mark):
    none of them is base64, so dropping them reads the file as issued; the signature still
    refuses any other change."""
    from tmslicense.fileformat import license_file

    lic = make_license("mirrored")
    lines = sign(lic).splitlines()
    quoted = "\r\n".join(["On Monday support wrote:", *(f"> {line}" for line in lines), ""])
    twice = "\n".join(f">> > {line}" for line in lines)
    hidden = "\n".join(
        [lines[0], lines[1][:10] + "\u200b" + lines[1][10:] + "\u00ad", "\ufeff" + lines[2]]
        + lines[3:]
    )
    for text in (quoted, twice, hidden):
        for installation_id in lic.installation_ids:
            assert tmslicense.verify_license(text, keyring, installation_id, now=NOW) == lic
        assert license_file(text) == sign(lic)  # what a data folder stores: as issued
    # A quote mark or an invisible character is dropped; a character of another kind is not.
    changed = "\n".join([lines[0], lines[1][:10] + "\u00e9" + lines[1][11:], *lines[2:]])
    with pytest.raises(tmslicense.MalformedFile, match="damaged"):
        tmslicense.verify_license(changed, keyring, None, now=NOW)


def test_every_error_is_a_license_error_with_a_code():
    classes = [
        tmslicense.FileTooLarge,
        tmslicense.MalformedFile,
        tmslicense.UnsupportedAlgorithm,
        tmslicense.UnknownKey,
        tmslicense.BadSignature,
        tmslicense.InvalidPayload,
        tmslicense.NotForThisServer,
        tmslicense.LicenseExpired,
        tmslicense.LicenseNotYetValid,
        tmslicense.LicenseRevoked,
        tmslicense.AlreadyReplaced,
    ]
    codes = {cls.code for cls in classes}
    assert len(codes) == len(classes)
    assert all(issubclass(cls, tmslicense.LicenseError) for cls in classes)


def test_sign_refuses_a_payload_the_tms_would_refuse(private_key, kid):
    with pytest.raises(tmslicense.InvalidPayload):
        tmslicense.sign_license({"seats": 1}, private_key, kid)


def test_sign_refuses_a_file_larger_than_a_tms_takes(make_license, private_key, kid, keyring):
    """Thousands of features would make a file every server refuses as too large."""
    many = [f"機能{i:04d}" for i in range(3500)]
    with pytest.raises(tmslicense.InvalidPayload, match=r"more than a ThinManager Server takes"):
        tmslicense.sign_license(make_license(features=many), private_key, kid)
    lic = make_license(features=many[:1500])  # what fits is signed and verifies
    text = tmslicense.sign_license(lic, private_key, kid)
    assert tmslicense.verify_license(text, keyring, None, now=NOW) == lic


@pytest.mark.parametrize(
    ("change", "words"),
    [
        # A year-1 issue was written as "1-01-01T…", which every TMS refused.
        ({"issued_at": datetime(1, 1, 1, tzinfo=UTC)}, "years 2000-9998"),
        ({"maintenance_end": date(1999, 12, 31)}, "years 2000-9998"),
        ({"expires_at": datetime(9999, 12, 31, tzinfo=UTC)}, "years 2000-9998"),
        ({"serial": "SER X 1"}, "serial"),  # no list of revoked serials could name it
        # Text that would print as more lines, or in another order, in the Licensing window.
        ({"customer": "Acme\r\nThis server: primary"}, "control characters"),
        ({"edition": "Premium\u202eevil"}, "direction marks"),
        ({"product": "ThinManager\u200f"}, "direction marks"),
        ({"features": ["relevance", "a\tb"]}, "Each feature must not"),
        # Invisible: "relevance" twice to a person, two features to a TMS.
        ({"features": ["relevance", "relevance\u200b"]}, "invisible characters"),
        ({"customer": "Acme\u00adPackaging"}, "invisible characters"),
        ({"product": "\ufeffThinManager"}, "invisible characters"),
        ({"features": ["relevance", "Relevance"]}, "a feature twice: Relevance, relevance"),
        ({"features": ["caf\u00e9", "cafe\u0301"]}, "a feature twice"),  # é, and e + accent
        ({"features": ["relevance\U000e0041"]}, "invisible characters"),  # a tag character
        # The year written is UTC's: 1999-12-31T23:30:00Z.
        ({"issued_at": datetime(2000, 1, 1, 0, 30, tzinfo=timezone(timedelta(hours=1)))}, "years"),
    ],
)
def test_the_site_signs_nothing_it_should_not_issue(make_license, sign, change, words):
    with pytest.raises(tmslicense.InvalidPayload, match=words):
        sign(make_license("standard", **change))


@pytest.mark.parametrize(
    "change",
    [
        {"customer": "Acme\tPackaging"},
        {"serial": "SER X 1"},
        {"maintenance_end": "1999-12-31"},
        {"expires_at": "9999-12-31T23:59:59Z"},
        {"issued_at": "0001-01-01T00:00:00Z"},  # and no arithmetic on it overflows
    ],
)
def test_a_file_issued_before_the_sites_stricter_rules_still_verifies(
    make_license, private_key, kid, keyring, change
):
    lic = make_license("standard")
    text = signed_file(json.dumps({**lic.to_dict(), **change}).encode(), private_key, kid)
    verified = tmslicense.verify_license(text, keyring, lic.installation_ids[0], now=NOW)
    assert verified.to_dict() == {**lic.to_dict(), **change}


def test_text_problem_says_what_the_site_must_refuse_before_signing():
    assert tmslicense.text_problem("Acme Packaging, Plant 4 – Line 3 (Zürich)") is None
    assert tmslicense.text_problem("  ") == "must be non-empty text"
    # Text that shows nothing is none: joiners, a Hangul filler, the blank Braille pattern.
    for blank in ("\u200d", "\u200c\u3164", "\u2800 "):
        assert tmslicense.text_problem(blank) == "must be non-empty text", ascii(blank)
    assert tmslicense.text_problem("\u0915\u094d\u200d\u0937") is None  # a joiner in a word
    assert "control characters" in tmslicense.text_problem("Acme\x1b[2J")


def test_keyring_round_trips_and_refuses_a_mismatched_kid(private_key, keyring, tmp_path):
    path = tmp_path / "keyring.json"
    path.write_text(keyring.to_json())
    assert tmslicense.Keyring.load(path) == keyring
    data = json.loads(keyring.to_json())
    data["keys"][0]["kid"] = "0000000000000000"
    with pytest.raises(tmslicense.KeyringError, match="does not match"):
        tmslicense.Keyring.from_json(json.dumps(data))
    with pytest.raises(tmslicense.KeyringError, match="Cannot read"):
        tmslicense.Keyring.load(tmp_path / "absent.json")


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ('{"keys": {}}', 'a list of "keys"'),
        ("[]", 'a list of "keys"'),
        ('{"keys": NaN}', "NaN"),
        ('{"keys": []}', "lists no ed25519 key"),
        ('{"keys": [KEY], "keys": []}', "the field 'keys' appears twice"),
        ('{"keys": [1]}', "entry 1 is not an object"),
        ('{"keys": [{"kid": {"a": 1}, "alg": 7}]}', "^Keyring entry 1 names no algorithm"),
        ('{"keys": [{"kid": "x", "public_key": "AAAA"}]}', "entry 1 .x. names no algorithm"),
        ('{"keys": [KEY, {"alg": "ed25519", "public_key": null}]}', "entry 2 has no public_key"),
        ('{"keys": [{"alg": "ed25519", "public_key": "AAAA"}]}', "not 32 bytes in base64"),
        ('{"keys": [{"alg": "rsa", "public_key": "AAAA"}]}', "lists no ed25519 key"),
        ("{", "not valid JSON"),
    ],
)
def test_a_malformed_keyring_says_what_is_wrong(keyring, text, says):
    key = json.dumps(json.loads(keyring.to_json())["keys"][0])
    with pytest.raises(tmslicense.KeyringError, match=says):
        tmslicense.Keyring.from_json(text.replace("KEY", key))


def test_a_key_of_another_algorithm_leaves_the_keyrings_ed25519_keys_trusted(keyring):
    """A later site may list a key of a newer algorithm beside its ed25519 ones: a server of
    this version skips it, and still trusts the others."""
    data = json.loads(keyring.to_json())
    data["keys"].insert(0, {"kid": "pq1", "alg": "ml-dsa-65", "public_key": "AAAA", "new": 1})
    assert tmslicense.Keyring.from_json(json.dumps(data)) == keyring


def test_importing_tmslicense_does_not_import_django():
    import subprocess
    import sys

    code = "import sys, tmslicense; print('django' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=__import__("pathlib").Path(__file__).resolve().parents[2],
    )
    assert result.stdout.strip() == "False"


def test_non_ascii_in_the_envelope_fields_is_refused(keyring, kid):
    for field in ("payload", "sig"):
        data = {"alg": "ed25519", "kid": kid, "payload": "AAAA", "sig": "AAAA"}
        data[field] = "é" * 8
        with pytest.raises(tmslicense.MalformedFile):
            tmslicense.verify_license(armor(json.dumps(data).encode()), keyring, None, now=NOW)


@pytest.mark.parametrize("given", ["text", "bytes"])
def test_the_size_limit_is_in_bytes_for_text_too(make_license, sign, keyring, given):
    """Text is held to the limit by its size in UTF-8, as the same file given as bytes is."""
    lic = make_license("standard")
    text = sign(lic)
    room = tmslicense.MAX_FILE_SIZE - len(text.encode())
    within = text + "€" * (room // 3)  # three bytes each, a third as many characters
    over = within + "é"  # the limit in characters is far off; in bytes it is passed
    assert len(within.encode()) <= tmslicense.MAX_FILE_SIZE < len(over.encode())
    assert len(over) < tmslicense.MAX_FILE_SIZE // 2

    def as_given(value):
        return value if given == "text" else value.encode()

    this = lic.installation_ids[0]
    assert tmslicense.verify_license(as_given(within), keyring, this, now=NOW) == lic
    size = len(over.encode())
    with pytest.raises(
        tmslicense.FileTooLarge,
        match=f"This file is {size:,} bytes; a license file is at most 65,536 bytes",
    ):
        tmslicense.verify_license(as_given(over), keyring, this, now=NOW)


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("x" * 70_000, "70,000"),  # ASCII: its length is its size
        ("é" * 70_000, "more than 65,536"),  # over the limit in characters: not encoded
        ("é" * 40_000, "80,000"),
        ("\ud800" * 30_000, "90,000"),  # lone surrogates (3 bytes each) are measured too
    ],
)
def test_text_over_the_limit_is_said_with_its_size_in_bytes(text, said):
    with pytest.raises(tmslicense.FileTooLarge, match=f"This file is {said} bytes;"):
        tmslicense.read_envelope(text)


def test_a_keyring_holds_public_keys_only(private_key):
    with pytest.raises(TypeError, match="give its public_key"):
        tmslicense.Keyring([private_key])
    with pytest.raises(TypeError, match="not str"):
        tmslicense.Keyring(["3f9c0a61d2e4b7a8"])
    # A mapping (a keyring, two merged) gives its keys, each under its own kid.
    public = private_key.public_key()
    ring = tmslicense.Keyring({"any name": public})
    assert ring == tmslicense.Keyring([public]) == tmslicense.Keyring(ring)
    assert list(ring) == [tmslicense.key_id(public)]


def test_every_documented_name_is_exported():
    assert tmslicense.check_issuable is tmslicense.model.check_issuable
    assert set(tmslicense.__all__) <= set(dir(tmslicense))


def test_a_clock_at_the_calendars_start_east_of_utc_is_refused_with_a_message(
    make_license, sign, keyring
):
    """A server whose clock battery died reads year 1, in local time east of UTC: that time
    has no UTC form. The file is not yet valid there, said with the time as the clock gave it."""
    lic = make_license(kind="standard")
    clock = datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=5)))
    this = lic.installation_ids[0]
    behind = r"clock \(0001-01-01 00:00 UTC\+0500\)"
    with pytest.raises(tmslicense.LicenseNotYetValid, match=behind):
        tmslicense.verify_license(sign(lic), keyring, this, now=clock)
    caps = tmslicense.capabilities([lic], this, now=clock)
    refusal = caps.message(tmslicense.Action.SERVE_CLIENTS)
    assert not caps.serve_clients and "0001-01-01 00:00 UTC+0500" in refusal


def test_text_holding_half_a_character_cannot_be_signed(make_license, private_key, kid):
    """A lone surrogate (JSON's "\\ud83d" from an emoji cut in two) is refused where text is
    checked, not left to fail in signing."""
    cut = json.loads('"Acme \\ud83d Packaging"')
    assert "lone surrogate" in tmslicense.text_problem(cut)
    for field in ({"customer": cut}, {"features": ["relevance", cut]}):
        with pytest.raises(tmslicense.InvalidPayload, match="lone surrogate"):
            tmslicense.sign_license(make_license(**field), private_key, kid)


@pytest.mark.parametrize(
    "given", [["RA\n"], {b"RA"}, [" RA"]], ids=["readlines", "bytes", "spaced"]
)
def test_revoked_serials_read_as_lines_are_refused_not_missed(make_license, sign, keyring, given):
    """`open("revoked.txt").readlines()` keeps each line's end: no serial would match, and a
    revoked file would count. Refused, as text is."""
    lic = make_license("standard", serial="RA")
    with pytest.raises(TypeError, match="one serial each"):
        tmslicense.verify_license(
            sign(lic), keyring, lic.installation_ids[0], now=NOW, revoked=given
        )
