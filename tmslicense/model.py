"""The typed license value and its strict JSON schema (the payload that is signed)."""

from __future__ import annotations

import codecs
import enum
import json
import re
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import NamedTuple

from .errors import InvalidPayload
from .ids import INSTALLATION_ID, LICENSE_NUMBER, InvalidIdentifier, normalize_installation_id


def decode_text(data: bytes) -> str:
    """A text file's bytes: UTF-8, with or without a byte-order mark, or UTF-16 known by its
    mark (Windows' Notepad as "Unicode", PowerShell 5's ``>``). Else UnicodeDecodeError."""
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return data.decode("utf-16")
    return data.decode("utf-8-sig")


FileData = str | bytes | bytearray | memoryview  # a file's text, or its bytes in any buffer


def text_or_bytes(data: FileData) -> str | bytes:
    """Text, or the bytes of any buffer (a bytearray, a memoryview); anything else is refused."""
    if isinstance(data, bytearray | memoryview):
        return bytes(data)
    if not isinstance(data, str | bytes):
        raise TypeError(f"expected text or bytes, not {type(data).__name__}")
    return data


FORMAT = "tms-license"
VERSION = 1


class Kind(enum.StrEnum):
    STANDARD = "standard"
    MIRRORED = "mirrored"
    ENTERPRISE = "enterprise"

    @property
    def server_roles(self) -> tuple[Role, ...]:
        """The roles of the servers a license of this kind is bound to, in order."""
        return _SERVER_ROLES[self]

    @property
    def needs_mirrored_installation_id(self) -> bool:
        return len(self.server_roles) == 2


class Role(enum.StrEnum):
    PRIMARY = "primary"
    MIRROR = "mirror"
    REDUNDANT = "redundant"


_SERVER_ROLES = {
    Kind.STANDARD: (Role.PRIMARY,),
    Kind.MIRRORED: (Role.PRIMARY, Role.MIRROR),
    Kind.ENTERPRISE: (Role.PRIMARY, Role.REDUNDANT),
}


class Server(NamedTuple):
    installation_id: str
    role: Role


@dataclass(frozen=True, slots=True)
class License:
    """A license as the TMS sees it: what was signed, parsed and checked.

    >>> lic = License.create(kind="mirrored", installation_ids=[a, b], ...)  # doctest: +SKIP
    >>> [s.role.value for s in lic.servers]  # doctest: +SKIP
    ['primary', 'mirror']
    """

    serial: str
    license_number: str
    kind: Kind
    product: str
    edition: str
    seats: int
    features: tuple[str, ...]
    servers: tuple[Server, ...]
    customer: str
    issued_at: datetime
    maintenance_end: date
    expires_at: datetime | None = None

    def __post_init__(self):
        # One validation path: whatever builds a License (the portal, a parser, a test)
        # gets the same checks that a TMS applies to a signed payload.
        _validate(self)

    @classmethod
    def create(
        cls,
        *,
        serial: str,
        license_number: str,
        kind: Kind | str,
        installation_ids: list[str] | tuple[str, ...],
        product: str,
        edition: str,
        seats: int,
        features=(),
        customer: str,
        issued_at: datetime,
        maintenance_end: date,
        expires_at: datetime | None = None,
    ) -> License:
        """Build a license, giving the servers their roles from the kind (primary first)."""
        kind = _enum(Kind, kind, "kind")
        if len(installation_ids) != len(kind.server_roles):
            raise InvalidPayload(
                f"A {kind.value} license is bound to {len(kind.server_roles)} Installation ID(s); "
                f"{len(installation_ids)} given."
            )
        servers = tuple(
            Server(_installation_id(i), role)
            for i, role in zip(installation_ids, kind.server_roles, strict=True)
        )
        return cls(
            serial=serial,
            license_number=license_number,
            kind=kind,
            product=product,
            edition=edition,
            seats=seats,
            features=tuple(features),
            servers=servers,
            customer=customer,
            # The file carries whole seconds; dropping the rest here keeps round trips exact.
            issued_at=issued_at.replace(microsecond=0),
            maintenance_end=maintenance_end,
            expires_at=expires_at.replace(microsecond=0) if expires_at else None,
        )

    @property
    def installation_ids(self) -> tuple[str, ...]:
        return tuple([s.installation_id for s in self.servers])

    def supersedes(self, other: License) -> bool:
        """Issued after ``other`` (a file of the same license replaces the older one). Times
        are kept to the second; of two issued in one second the greater serial counts, so
        that every server picks the same."""
        return (self.issued_at, self.serial) > (other.issued_at, other.serial)

    def server(self, installation_id: str) -> Server | None:
        """This license's entry for a server, or None when the license is not bound to it."""
        for server in self.servers:
            if server.installation_id == installation_id:
                return server
        return None

    def to_dict(self) -> dict:
        return {
            "format": FORMAT,
            "version": VERSION,
            "serial": self.serial,
            "license_number": self.license_number,
            "kind": self.kind.value,
            "product": self.product,
            "edition": self.edition,
            "seats": self.seats,
            "features": list(self.features),
            "servers": [
                {"installation_id": s.installation_id, "role": s.role.value} for s in self.servers
            ],
            "customer": self.customer,
            "issued_at": _format_datetime(self.issued_at),
            "maintenance_end": self.maintenance_end.isoformat(),
            "expires_at": _format_datetime(self.expires_at) if self.expires_at else None,
        }

    def to_payload(self) -> bytes:
        """The exact bytes that are signed: compact JSON, keys sorted, UTF-8."""
        return json.dumps(
            self.to_dict(), sort_keys=True, separators=(",", ":"), ensure_ascii=False
        ).encode("utf-8")

    @classmethod
    def from_payload(cls, payload: bytes) -> License:
        """Parse signed payload bytes, refusing anything but exactly the expected schema."""
        try:
            data = _PAYLOAD_DECODER.decode(payload.decode("utf-8"))
        except InvalidPayload:
            raise
        except (UnicodeDecodeError, ValueError, RecursionError) as error:
            raise InvalidPayload(f"The license content is not valid JSON ({error}).") from None
        return cls.from_dict(data)

    @classmethod
    def from_dict(cls, data: object) -> License:
        if not isinstance(data, dict):
            raise InvalidPayload("The license content must be a JSON object.")
        if data.keys() != _FIELDS.keys():
            missing = sorted(_FIELDS.keys() - data.keys())
            extra = sorted(data.keys() - _FIELDS.keys())
            if missing:
                raise InvalidPayload(
                    f"The license content lacks the field(s): {', '.join(missing)}."
                )
            raise InvalidPayload(f"The license content has unknown field(s): {', '.join(extra)}.")
        for name, expected in _FIELDS.items():
            if type(data[name]) not in expected:
                raise InvalidPayload(f"The license field {name!r} has the wrong type.")
        if data["format"] != FORMAT or data["version"] != VERSION:
            raise InvalidPayload(
                f"This is not a version {VERSION} TMS license "
                f"(format {data['format']!r}, version {data['version']!r})."
            )
        servers = []
        for entry in data["servers"]:
            if type(entry) is not dict or entry.keys() != _SERVER_KEYS:
                raise InvalidPayload("Each server must have exactly an installation_id and a role.")
            servers.append(Server(entry["installation_id"], _enum(Role, entry["role"], "role")))
        if any(type(f) is not str for f in data["features"]):
            raise InvalidPayload("The license field 'features' must be a list of text.")
        return cls(
            serial=data["serial"],
            license_number=data["license_number"],
            kind=_enum(Kind, data["kind"], "kind"),
            product=data["product"],
            edition=data["edition"],
            seats=data["seats"],
            features=tuple(data["features"]),
            servers=tuple(servers),
            customer=data["customer"],
            issued_at=_parse_datetime(data["issued_at"], "issued_at"),
            maintenance_end=_parse_date(data["maintenance_end"]),
            expires_at=(
                None  # never "": an empty text is no date, refused as one
                if data["expires_at"] is None
                else _parse_datetime(data["expires_at"], "expires_at")
            ),
        )


_SERVER_KEYS = {"installation_id", "role"}
# Exact JSON types: type() rather than isinstance(), so that `"seats": true` is no count.
_FIELDS = {
    "format": {str},
    "version": {int},
    "serial": {str},
    "license_number": {str},
    "kind": {str},
    "product": {str},
    "edition": {str},
    "seats": {int},
    "features": {list},
    "servers": {list},
    "customer": {str},
    "issued_at": {str},
    "maintenance_end": {str},
    "expires_at": {str, type(None)},
}


# What the license site may sign is stricter than what a TMS accepts (``check_issuable``):
# files issued before a rule was added stay valid on the servers that hold them.
#
# A serial: one word of letters, digits, dots, dashes or underscores, as the list of revoked
# serials writes it (a file whose serial could not be listed could never be revoked).
SERIAL = re.compile(r"[0-9A-Za-z][0-9A-Za-z._-]{0,63}")
# Characters no text in a new license may hold: control characters (a line break or a
# terminal's escape sequence would print as more lines of the Licensing window), line and
# paragraph separators, the marks that set or reorder the direction of text (Trojan
# Source), and characters that show as nothing (zero-width space, word joiner and invisible
# operators, soft hyphen, byte-order mark): "relevance" and "relevance" with one would read
# the same and be two features. The joiners (U+200C, U+200D) stay: some scripts spell words
# with them.
HIDDEN_CHARACTERS = (
    "\x00-\x1f\x7f-\x9f\xad\u034f\u061c\u180e\u200b\u200e\u200f\u2028\u2029"
    "\u202a-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb\U000e0000-\U000e007f"
)
HIDDEN = re.compile(f"[{HIDDEN_CHARACTERS}]")
SURROGATE = re.compile("[\ud800-\udfff]")  # no UTF-8 text holds one: it cannot be signed
# The years a new license's dates may fall in: four digits, well inside Python's dates.
YEARS = range(2000, 9999)


# Letters that show as blank space (Hangul fillers, the blank Braille pattern).
_BLANK_LETTERS = frozenset("\u115f\u1160\u3164\uffa0\u2800")


def reads_as_blank(text: str) -> bool:
    """Whether ``text`` shows nothing: spaces, control and format characters (the joiners
    too), combining marks with nothing to combine with, and blank letters."""
    import unicodedata  # only here: a TMS verifying a file needs none of it

    return all(
        unicodedata.category(c)[0] in "CZ"
        or unicodedata.category(c) in ("Mn", "Me")
        or c in _BLANK_LETTERS
        for c in text
    )


def text_problem(value: object) -> str | None:
    """Why ``value`` cannot be a new license's text (product, edition, customer, a feature),
    or None when it can: what the license site checks where such text is entered."""
    if not isinstance(value, str) or reads_as_blank(value):
        return "must be non-empty text"
    if SURROGATE.search(value):  # half of a character (read from broken JSON, say)
        return "must be valid Unicode text: it holds half of a character (a lone surrogate)"
    if HIDDEN.search(value):
        return (
            "must not contain control characters, line breaks, text direction marks or "
            "invisible characters"
        )
    return None


def case_variants(names) -> list[str]:
    """The names that read the same but are written otherwise ("relevance", "Relevance";
    "é" composed or as "e" and an accent), sorted."""
    import unicodedata  # only here: a TMS verifying a file needs none of it

    names = list(names)
    keys = [unicodedata.normalize("NFKC", name).casefold() for name in names]
    counts = Counter(keys)
    return sorted(name for name, key in zip(names, keys, strict=True) if counts[key] > 1)


def check_issuable(lic: License) -> None:
    """Refuse, with :class:`InvalidPayload`, a license the site must not sign: beyond what a
    TMS checks, its serial must be one a list of revoked serials can name, its text must
    hold no hidden characters, and its dates must fall in ``YEARS``."""
    if not SERIAL.fullmatch(lic.serial):
        raise InvalidPayload(
            "The license serial must be 1 to 64 letters, digits, dots, dashes or underscores, "
            "beginning with a letter or digit."
        )
    for name in ("product", "edition", "customer"):
        problem = text_problem(getattr(lic, name))
        if problem:
            raise InvalidPayload(f"The license field {name!r} {problem}.")
    for feature in lic.features:
        problem = text_problem(feature)
        if problem:
            raise InvalidPayload(f"Each feature {problem}: {feature!r}.")
    twice = case_variants(lic.features)
    if twice:
        # A TMS compares feature names exactly: one of them would be a feature it never knows.
        raise InvalidPayload(f"The license lists a feature twice: {', '.join(twice)}.")
    for name in ("issued_at", "maintenance_end", "expires_at"):
        value = getattr(lic, name)
        if value is None:  # no expiry
            continue
        try:  # a time's year as written: UTC's
            year = value.astimezone(UTC).year if isinstance(value, datetime) else value.year
        except OverflowError:
            year = None
        if year not in YEARS:
            raise InvalidPayload(
                f"The license field {name!r} must be in the years {YEARS[0]}-{YEARS[-1]}."
            )


def _validate(lic: License) -> None:
    for name in ("serial", "product", "edition", "customer"):
        value = getattr(lic, name)
        if not isinstance(value, str) or not value.strip():
            raise InvalidPayload(f"The license field {name!r} must be non-empty text.")
    if not isinstance(lic.kind, Kind):
        raise InvalidPayload("The license kind must be a Kind.")
    if not (
        isinstance(lic.license_number, str) and LICENSE_NUMBER.is_canonical(lic.license_number)
    ):
        raise InvalidPayload(
            f"The license number {lic.license_number!r} in the license is not a canonical, "
            "valid license number."
        )
    if type(lic.seats) is not int or lic.seats < 0:
        raise InvalidPayload("The seat count must be a whole number, zero or more.")
    if len(set(lic.features)) != len(lic.features):
        raise InvalidPayload("The license lists a feature twice.")
    if tuple([s.role for s in lic.servers]) != lic.kind.server_roles:
        expected = ", ".join(r.value for r in lic.kind.server_roles)
        raise InvalidPayload(f"A {lic.kind.value} license must name its servers as: {expected}.")
    ids = lic.installation_ids
    for installation_id in ids:
        if not (isinstance(installation_id, str) and INSTALLATION_ID.is_canonical(installation_id)):
            raise InvalidPayload(
                f"The Installation ID {installation_id!r} in the license is not a canonical, "
                "valid Installation ID."
            )
    if len(set(ids)) != len(ids):
        raise InvalidPayload("The two servers of a license must have different Installation IDs.")
    for name in ("issued_at", "expires_at"):
        value = getattr(lic, name)
        if value is not None and (
            not isinstance(value, datetime) or value.tzinfo is None or value.microsecond
        ):
            raise InvalidPayload(
                f"The license field {name!r} must be a time in whole seconds with a time zone."
            )
    if type(lic.maintenance_end) is not date:
        raise InvalidPayload("The license field 'maintenance_end' must be a date.")
    if lic.expires_at is not None and lic.expires_at <= lic.issued_at:
        raise InvalidPayload("The license expires before it was issued.")


def _installation_id(text: str) -> str:
    try:
        return normalize_installation_id(text)
    except InvalidIdentifier as error:
        raise InvalidPayload(f"Bad Installation ID in the license: {error}") from None


def _enum(cls, value, name):
    member = cls._value2member_map_.get(value) if isinstance(value, str) else None
    if member is None:
        allowed = ", ".join(m.value for m in cls)
        raise InvalidPayload(f"Unknown {name} {value!r} (expected one of: {allowed}).")
    return member


def strict_json(refuse) -> json.JSONDecoder:
    """A JSON decoder that refuses a field named twice (parsers disagree on which one counts)
    and NaN or Infinity: it raises ``refuse(problem)``, ``problem`` saying what is wrong."""

    def object_pairs(pairs):
        result = dict(pairs)
        if len(result) != len(pairs):
            seen = set()
            twice = next(key for key, _ in pairs if key in seen or seen.add(key))
            raise refuse(f"the field {twice!r} appears twice")
        return result

    def constant(name):
        raise refuse(f"it contains {name}, which is not allowed in JSON")

    return json.JSONDecoder(object_pairs_hook=object_pairs, parse_constant=constant)


_PAYLOAD_DECODER = strict_json(
    lambda problem: InvalidPayload(f"The license is not valid: {problem}.")
)


def _format_datetime(value: datetime) -> str:
    # isoformat writes four digits for any year; strftime writes year 1 as "1".
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="seconds") + "Z"


# ASCII digits only, and the calendar form only (fromisoformat also reads "2027-W01-1").
_UTC_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _parse_datetime(text: str, name: str) -> datetime:
    try:
        if not _UTC_TIME.fullmatch(text):
            raise ValueError(text)
        return datetime.fromisoformat(text)
    except ValueError:
        raise InvalidPayload(
            f"The license field {name!r} is not a UTC time like 2026-01-31T12:00:00Z."
        ) from None


def _parse_date(text: str) -> date:
    try:
        if not _DATE.fullmatch(text):
            raise ValueError(text)
        return date.fromisoformat(text)
    except ValueError:
        raise InvalidPayload(
            "The license field 'maintenance_end' is not a date like 2027-01-31."
        ) from None
