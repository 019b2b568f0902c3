"""The license file: armored, base64 JSON envelope around an Ed25519-signed payload.

::

    -----BEGIN TMS LICENSE FILE-----
    base64 of {"alg": "ed25519", "kid": KEY_ID, "payload": BASE64, "sig": BASE64}
    -----END TMS LICENSE FILE-----

The signature is plain Ed25519 over the exact payload bytes, so standard tools can check it
(``openssl pkeyutl -verify -rawin``).
"""

from __future__ import annotations

import base64
import binascii
import codecs
import json
import re
from collections.abc import Collection, Iterator, Mapping
from datetime import UTC, datetime, timedelta

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from .errors import (
    BadSignature,
    FileTooLarge,
    InvalidPayload,
    LicenseError,
    LicenseExpired,
    LicenseNotYetValid,
    LicenseRevoked,
    MalformedFile,
    NotForThisServer,
    UnknownKey,
    UnsupportedAlgorithm,
    quoted,
)
from .ids import normalize_installation_id
from .keyring import key_id
from .model import HIDDEN_CHARACTERS, SERIAL, FileData, License, check_issuable, strict_json

__all__ = ["MAX_FILE_SIZE", "CLOCK_TOLERANCE", "sign_license", "verify_license", "read_envelope"]
_UTF16_MARKS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)

BEGIN = "-----BEGIN TMS LICENSE FILE-----"
END = "-----END TMS LICENSE FILE-----"
MAX_FILE_SIZE = 64 * 1024
# A TMS on a plant network often has a clock that is off; a file issued "in the future" by
# less than this is still accepted.
CLOCK_TOLERANCE = timedelta(days=1)
_ENVELOPE_KEYS = {"alg", "kid", "payload", "sig"}
# In the block, besides white space: a reply's quote marks ("> " before each line) and
# characters that show as nothing, picked up on the way. None is base64: dropped.
_NOT_IN_BLOCK = re.compile(f"[>{HIDDEN_CHARACTERS}]")


def sign_license(payload: License | Mapping, private_key: Ed25519PrivateKey, kid: str) -> str:
    """Sign a license and return the armored file text (the issuer's side).

    ``payload`` is a :class:`License` or its dict form; either way it passes the checks a
    TMS applies, so the site cannot issue a file that a TMS refuses, and the stricter ones of
    ``check_issuable`` for what is newly issued.

    >>> text = sign_license(lic, private_key, key_id(private_key))  # doctest: +SKIP
    >>> text.splitlines()[0]  # doctest: +SKIP
    '-----BEGIN TMS LICENSE FILE-----'
    """
    if kid != key_id(private_key):
        # Every TMS would refuse the file as changed after it was issued.
        raise ValueError(f"kid {kid!r} is not the key's own ({key_id(private_key)})")
    lic = payload if isinstance(payload, License) else License.from_dict(dict(payload))
    check_issuable(lic)
    data = lic.to_payload()
    envelope = {
        "alg": "ed25519",
        "kid": kid,
        "payload": base64.b64encode(data).decode("ascii"),
        "sig": base64.b64encode(private_key.sign(data)).decode("ascii"),
    }
    body = base64.b64encode(
        json.dumps(envelope, sort_keys=True, separators=(",", ":")).encode()
    ).decode("ascii")
    text = _armor(body)
    if len(text) > MAX_FILE_SIZE:  # every TMS would refuse it unread
        raise InvalidPayload(
            f"The license file would be {len(text):,} bytes, more than a ThinManager Server "
            f"takes ({MAX_FILE_SIZE:,}): list fewer or shorter features."
        )
    return text


def _armor(body: str) -> str:
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    return "\n".join([BEGIN, *lines, END]) + "\n"


def license_file(text: str) -> str:
    """The license file alone, as the site issued it, from ``text`` that holds one (as
    ``read_envelope`` reads it: an e-mail around it, its lines re-wrapped)."""
    return _armor(_armored_body(text))


def read_envelope(text: FileData) -> dict:
    """Unarmor a license file and return its envelope, checking only its form (no signature).
    A file over MAX_FILE_SIZE bytes is refused first: bytes as given, text as UTF-8."""
    if isinstance(text, bytearray | memoryview):
        text = bytes(text)
    if isinstance(text, bytes):
        if len(text) > MAX_FILE_SIZE:
            raise FileTooLarge(len(text), MAX_FILE_SIZE)
        text = as_text(text)
    elif not isinstance(text, str):
        raise TypeError(f"a license file is given as str or bytes, not {type(text).__name__}")
    elif len(text) > MAX_FILE_SIZE // 4:  # shorter, it is within the limit in any case
        _check_text_size(text)
    try:
        raw = strict_b64decode(_armored_body(text))
        envelope = _ENVELOPE_DECODER.decode(raw.decode("utf-8"))
    except (binascii.Error, ValueError, UnicodeDecodeError, RecursionError):
        # RecursionError: JSON nested deeper than the parser goes (a crafted file).
        raise MalformedFile(
            "The license file is damaged: its text between the BEGIN and END lines "
            "cannot be read. Download it again."
        ) from None
    if not isinstance(envelope, dict) or set(envelope) != _ENVELOPE_KEYS:
        raise MalformedFile("The license file is damaged: its envelope has the wrong fields.")
    if not (
        type(envelope["alg"])
        is type(envelope["kid"])
        is type(envelope["payload"])
        is type(envelope["sig"])
        is str
    ):
        raise MalformedFile("The license file is damaged: its envelope has the wrong types.")
    return envelope


def _armored_body(text: str) -> str:
    """The base64 between the BEGIN and END lines of the one license file in ``text``."""
    begin = text.find(BEGIN)
    end = text.find(END, begin + len(BEGIN)) if begin >= 0 else -1
    if end < 0:
        if "\x00" in text or text.count("\ufffd") * 2 > len(text):
            raise MalformedFile("This is not a license file: it is not text.")
        raise MalformedFile(
            "This is not a license file: the lines -----BEGIN TMS LICENSE FILE----- "
            "and -----END TMS LICENSE FILE----- were not found."
        )
    if text.find(BEGIN, end) >= 0:
        raise MalformedFile(
            "This text holds more than one license file: save each on its own and import them "
            "one by one."
        )
    # Mail programs re-wrap lines, add CRs and trailing spaces: all white space is dropped.
    body = "".join(text[begin + len(BEGIN) : end].split())
    if ">" in body or not body.isascii():
        body = _NOT_IN_BLOCK.sub("", body)
    return body


def _check_text_size(text: str) -> None:
    """Refuse text over MAX_FILE_SIZE bytes as UTF-8, what the same file given as bytes is
    held to (a character takes up to 4 bytes). Text of more characters than that is refused
    without being encoded: its size in bytes is then said as more than the limit."""
    if text.isascii():
        size = len(text)
    elif len(text) > MAX_FILE_SIZE:
        raise FileTooLarge(0, MAX_FILE_SIZE)  # no size of its own: "more than" the limit
    else:
        size = len(text.encode("utf-8", "surrogatepass"))  # a lone surrogate takes 3
    if size > MAX_FILE_SIZE:
        raise FileTooLarge(size, MAX_FILE_SIZE)


def as_text(data: bytes) -> str:
    """A file's bytes as text. The block is ASCII, so an e-mail around it may be in any
    encoding; a file saved as UTF-16 (Windows' Notepad as "Unicode", PowerShell 5's ``>``)
    is known by its byte-order mark."""
    if data.startswith(_UTF16_MARKS):
        return data.decode("utf-16", errors="replace")
    return data.decode("utf-8", errors="replace")


def read_license(text: FileData) -> License:
    """The license a file carries, its signature NOT checked: for showing what a file says
    (the license site's own pages), never for deciding what a server may do: that is
    :func:`verify_license`."""
    envelope = read_envelope(text)
    try:
        payload = strict_b64decode(envelope["payload"])
    except binascii.Error:
        raise MalformedFile("The license file is damaged: its content cannot be read.") from None
    return License.from_payload(payload)


def verify_license(
    text: FileData,
    keyring: Mapping[str, Ed25519PublicKey],
    installation_id: str | None,
    *,
    now: datetime | None = None,
    revoked: Collection[str] = (),
    dates: bool = True,
) -> License:
    """Verify a license file for this server and return the :class:`License` it carries.

    Refuses, each with its own :class:`~tmslicense.LicenseError` subclass: a file too
    large, bad armor or base64, an unknown ``alg`` or ``kid``, a bad signature, a payload
    that is not exactly the schema, a revoked serial, a file not issued for
    ``installation_id`` (``None`` skips only that check), an expired or not-yet-valid file
    (``dates=False`` leaves the dates to :func:`capabilities`, at the time it is asked).

    >>> lic = verify_license(text, keyring, "FJHZ-2SJ0-1JBD-ZWX4-QW7N")  # doctest: +SKIP
    >>> lic.kind  # doctest: +SKIP
    <Kind.MIRRORED: 'mirrored'>
    """
    if isinstance(revoked, str | bytes | bytearray):  # a list's text would match parts of serials
        raise TypeError("revoked is a collection of serials (verify_revoked_list), not text")
    if isinstance(revoked, Iterator):  # the first check would use it up for the next
        raise TypeError("revoked is a collection of serials (a set, say), not an iterator")
    # Lines read with their ends (readlines) or as bytes would match no serial: one looked at.
    sample = next(iter(revoked), "")
    if sample and not (isinstance(sample, str) and SERIAL.fullmatch(sample)):
        raise TypeError(
            f"revoked holds one serial each, as text without spaces or line ends: {sample!r} "
            "is not one (verify_revoked_list gives them so)"
        )
    envelope = read_envelope(text)
    if envelope["alg"] != "ed25519":
        raise UnsupportedAlgorithm(
            f"The license file is signed with {quoted(envelope['alg'])}, which this "
            "ThinManager Server does not support (only ed25519)."
        )
    key = keyring.get(envelope["kid"])
    if key is None:
        raise UnknownKey(
            f"The license file is signed with key {quoted(envelope['kid'])}, which this server "
            "does not trust. Update the keyring from the license site, or download the file "
            "again."
        )
    try:
        payload = strict_b64decode(envelope["payload"])
        signature = strict_b64decode(envelope["sig"])
    except binascii.Error:
        raise MalformedFile("The license file is damaged: its content cannot be read.") from None
    try:
        key.verify(signature, payload)
    except InvalidSignature:
        raise BadSignature(
            "The license file's signature does not match: the file was changed after it was "
            "issued. Download it again from the license site."
        ) from None
    lic = License.from_payload(payload)
    if lic.serial in revoked:
        raise LicenseRevoked(
            f"License file {lic.serial} for {lic.license_number} has been revoked. Import the "
            "file that replaced it, if any, from the license site, or activate the license "
            "there again."
        )
    if installation_id is not None:
        _check_server(lic, installation_id)
    if dates:
        check_dates(lic, now or datetime.now(UTC))
    return lic


def _check_server(lic: License, installation_id: str) -> None:
    if installation_id in lic.installation_ids:
        return  # the signed IDs are canonical and checked: an exact match is this server
    this = normalize_installation_id(installation_id)  # a mistyped ID: the server's, not the file's
    if lic.server(this) is None:
        ids = " and ".join(lic.installation_ids)
        plural = "s" if len(lic.installation_ids) > 1 else ""
        raise NotForThisServer(
            f"License {lic.license_number} was issued for Installation ID{plural} {ids}, "
            f"not for this server ({this})."
        )


def check_dates(lic: License, now: datetime) -> None:
    """Refuse a license not valid at ``now`` (an aware time): issued more than
    ``CLOCK_TOLERANCE`` after it, or expired."""
    problem = date_problem(lic, now)
    if problem is not None:
        error, why = problem
        raise error(f"License {lic.license_number}: {why}.")


def date_problem(lic: License, now: datetime) -> tuple[type[LicenseError], str] | None:
    """Why a license is not valid at ``now`` (an aware time), with the error that says it;
    None when it is."""
    if now.tzinfo is None:
        raise ValueError("now must carry a time zone")
    # The day counted on the issue time in UTC: in a zone of its own (a clock, a license made
    # in memory) a day added is a calendar day, 23 or 25 hours across a change to or from
    # summer time. (A clock at the calendar's end west of UTC is past year 9999 in UTC:
    # compared as given.)
    try:
        ahead = lic.issued_at.astimezone(UTC) - CLOCK_TOLERANCE > now
    except OverflowError:  # issued on the calendar's first day: no clock is a day before it
        ahead = False
    if ahead:  # then now is well inside the calendar
        # Not "valid from" the issue time: a clock up to CLOCK_TOLERANCE behind it is taken.
        return LicenseNotYetValid, (
            f"issued {utc_time(lic.issued_at)}, more than a day after this server's clock "
            f"({utc_time(now)}): check the clock"
        )
    if lic.expires_at is not None and now >= lic.expires_at:
        return LicenseExpired, f"expired on {utc_time(lic.expires_at)}"
    return None


def utc_time(time: datetime) -> str:
    """A time as messages write it, in UTC as files carry it: "2027-06-30 12:00 UTC", to the
    second when it has seconds ("12:00:05": two times written the same are the same), the year
    in four digits (strftime writes year 1 as "1"). A time at the calendar's start east of UTC
    (or its end west of it) has no UTC time: written as given, with its offset."""
    try:
        time, zone = time.astimezone(UTC), "UTC"
    except OverflowError:
        zone = f"UTC{time:%z}"
    seconds = f":{time.second:02d}" if time.second else ""
    return f"{time.year:04d}-{time:%m-%d %H:%M}{seconds} {zone}"


def strict_b64decode(text: str) -> bytes:
    """Strict base64: no stray characters, correct padding, and the one text of its bytes (the
    unused bits of the last character zero), so a changed character is never read as the same
    bytes; raises binascii.Error."""
    try:
        data = text.encode("ascii")
    except UnicodeEncodeError:
        raise binascii.Error("not base64") from None
    raw = binascii.a2b_base64(data, strict_mode=True)
    last = raw[(len(raw) - 1) // 3 * 3 :]  # the bytes of the last 4 characters
    if raw and binascii.b2a_base64(last, newline=False) != data[-4:]:
        raise binascii.Error("not canonical base64")
    return raw


_ENVELOPE_DECODER = strict_json(
    lambda problem: MalformedFile(f"The license file is damaged: in its envelope, {problem}.")
)
