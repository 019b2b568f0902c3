"""Installation IDs and license numbers: grouped Crockford base32 with a check character.

People read these aloud, type them and paste them from certificates and e-mails, so input
is forgiving (case, ``O``/``I``/``L``, spaces and dashes of any kind, invisible characters,
full-width letters) and every single wrong character and every swap of two neighbouring
characters is caught before anything is looked up.

The check character ``c`` makes ``w1*v1 + w2*v2 + ... + wn*vn + c == 0`` in GF(32), with
``wi = alpha**i`` for a generator ``alpha``. All weights are non-zero (a substitution changes
the sum) and neighbouring weights differ, the check character's weight 1 included (a swap of
two different neighbours changes the sum by ``(wi + wj) * (x + y) != 0``).
"""

from __future__ import annotations

import errno
import os
import re
from functools import reduce
from operator import xor

from cryptography.hazmat.primitives import hashes

from .errors import DataFolderError

__all__ = [
    "grouped_symbols",
    "InvalidIdentifier",
    "InvalidInstallationId",
    "InvalidLicenseNumber",
    "load_or_create_installation_id",
    "new_installation_id",
    "new_license_number",
    "normalize_installation_id",
    "normalize_license_number",
]

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_VALUE = {ch: i for i, ch in enumerate(ALPHABET)}
_FOLD = str.maketrans({"O": "0", "I": "1", "L": "1"})
_IGNORED = " -\t\n\r\v\f"
_SENTENCE_END = ".,;"  # after an ID, not in it
# Unicode calls these "symbols", not dashes; pasted text uses them as dashes all the same.
_OTHER_DASHES = "\u2212"  # MINUS SIGN

# GF(2^5) with the primitive polynomial x^5 + x^2 + 1; alpha = x = 2.
_EXP = [0] * 62
_value = 1
for _i in range(31):
    _EXP[_i] = _EXP[_i + 31] = _value
    _value <<= 1
    if _value & 0b100000:
        _value ^= 0b100101
_LOG = {v: i for i, v in enumerate(_EXP[:31])}


def _mul(a: int, b: int) -> int:
    if a == 0 or b == 0:
        return 0
    return _EXP[_LOG[a] + _LOG[b]]


# _WEIGHTED[i][symbol] = alpha**(i+1) * value(symbol): a check is a few lookups and XORs.
_WEIGHTED = [{ch: _mul(_EXP[(i + 1) % 31], v) for ch, v in _VALUE.items()} for i in range(30)]


def _check_value(symbols: str) -> int:
    return reduce(xor, map(dict.__getitem__, _WEIGHTED, symbols), 0)


class InvalidIdentifier(ValueError):
    """An Installation ID or license number that is malformed or mistyped."""

    def __init__(self, message: str, *, code: str = "invalid"):
        super().__init__(message)
        self.message = message
        self.code = code


class InvalidInstallationId(InvalidIdentifier):
    """Raised by :func:`normalize_installation_id`."""


class InvalidLicenseNumber(InvalidIdentifier):
    """Raised by :func:`normalize_license_number`."""


class _Scheme:
    def __init__(self, *, noun: str, prefix: str, data_length: int, group: int, error):
        self.noun = noun
        self.prefix = prefix
        self.data_length = data_length
        self.length = data_length + 1
        self.group = group
        self.error = error
        symbol = "[0-9A-HJKMNP-TV-Z]"
        groups, rest = divmod(self.length, group)
        pattern = "-".join(
            [f"{symbol}{{{group}}}"] * groups + ([f"{symbol}{{{rest}}}"] if rest else [])
        )
        self.canonical = re.compile(re.escape(prefix) + pattern)
        # One table per character of the canonical form: the prefix and dashes weigh nothing,
        # data symbols their weight, the check character itself; a valid ID sums to zero.
        tables, k = [], 0
        for ch in self.format("X" * self.length):
            if ch == "X":
                tables.append(_WEIGHTED[k] if k < data_length else _VALUE)
                k += 1
            else:
                tables.append({ch: 0})
        self._canonical_tables = tables

    def format(self, symbols: str) -> str:
        groups = [symbols[i : i + self.group] for i in range(0, len(symbols), self.group)]
        return self.prefix + "-".join(groups)

    def from_bits(self, data: bytes) -> str:
        number = int.from_bytes(data, "big") >> (len(data) * 8 - 5 * self.data_length)
        values = [(number >> (5 * i)) & 31 for i in reversed(range(self.data_length))]
        return self.complete("".join(ALPHABET[v] for v in values))

    def complete(self, symbols: str) -> str:
        """Add the check character to ``data_length`` symbols (for chosen, readable IDs)."""
        symbols = symbols.upper().replace("-", "").translate(_FOLD)
        if len(symbols) != self.data_length or any(ch not in _VALUE for ch in symbols):
            raise self.error(f"{self.data_length} symbols are needed.", code="length")
        return self.format(symbols + ALPHABET[_check_value(symbols)])

    def normalize(self, text: object) -> str:
        if not isinstance(text, str):
            raise self.error(f"The {self.noun} must be text.", code="type")
        if self.is_canonical(text):
            return text
        typed, cleaned = _typed(text)
        prefix = self.prefix.rstrip("-")
        typed_prefix = bool(prefix) and cleaned.startswith(prefix)
        if typed_prefix:
            # "TM" is the prefix when it is set apart ("TM-...") or the rest has the length.
            set_apart = typed[len(prefix) : len(prefix) + 1] in _IGNORED
            if set_apart or len(cleaned) == self.length + len(prefix):
                cleaned, typed_prefix = cleaned[len(prefix) :], False
        if not cleaned:
            raise self.error(f"Enter the {self.noun}.", code="required")
        bad = sorted({ch for ch in cleaned if ch not in _VALUE})
        if bad:
            shown = ", ".join(map(_readable, bad))
            raise self.error(
                f"The {self.noun} contains characters that are never used in it: {shown}. "
                f"It uses only digits and the letters A-Z without I, L, O and U.",
                code="characters",
            )
        if len(cleaned) != self.length:
            # People count what they see, so the dashes of the example are left out here too.
            after = f" after {self.prefix}," if self.prefix else ","
            if typed_prefix:  # not set apart, but surely the prefix: not counted as typed
                cleaned = cleaned[len(prefix) :]
            entered = "1 was" if len(cleaned) == 1 else f"{len(cleaned)} were"
            raise self.error(
                f"The {self.noun} has {self.length} characters{after} not counting dashes; "
                f"{entered} entered. It looks like {self.example()}.",
                code="length",
            )
        formatted = self.format(cleaned)
        if not self.is_canonical(formatted):
            raise self.error(
                f"This {self.noun} contains a typo: check each character and try again.",
                code="checksum",
            )
        return formatted

    def is_canonical(self, text: str) -> bool:
        """Exactly the canonical grouped form, with a right check character."""
        return bool(self.canonical.fullmatch(text)) and not reduce(
            xor, map(dict.__getitem__, self._canonical_tables, text)
        )

    def example(self) -> str:
        return self.format("X" * self.length)

    def is_entered_in_full(self, text: str) -> bool:
        """``text`` is a valid one of these, prefix included: then it was surely meant as one.

        Without the prefix a license number is no proof: one in 32 cut-short Installation IDs
        of 12 characters would pass its check character.
        """
        cleaned = _typed(text)[1]
        prefix = self.prefix.rstrip("-")
        return cleaned.startswith(prefix) and self.is_canonical(self.format(cleaned[len(prefix) :]))


def _typed(text: str) -> tuple[str, str]:
    """``text`` upper-cased and stripped, and its symbols: without spaces and dashes, folded.
    A sentence's full stop or comma after it (copied from a sentence; a phone's double
    space types ". ") is stripped too."""
    typed = text.strip().upper() if text.isascii() else _plain(text).strip()
    typed = typed.rstrip(_SENTENCE_END + _IGNORED)
    return typed, "".join(ch for ch in typed if ch not in _IGNORED).translate(_FOLD)


def _plain(text: str) -> str:
    r"""Pasted text in ASCII, upper-cased: dashes of any kind become ``-``, spaces of any kind
    ``" "``; invisible format characters (zero-width spaces, soft hyphens, byte order marks) are
    dropped; full-width and other compatibility forms of letters and digits become ASCII. Any
    other character is kept as it is, to be named in the error.

    >>> _plain("tm\u2013dem0\u00a0\uff10\u200b1")
    'TM-DEM0 01'
    """
    # Imported here: only text with non-ASCII characters needs it, and importing tmslicense is
    # part of a TMS's start-up (bench/verify.py measures it).
    import unicodedata

    plain = []
    for ch in text:
        if ch.isascii():
            plain.append(ch.upper())
        elif ch.isspace():
            plain.append(" ")
        elif ch in _OTHER_DASHES or unicodedata.category(ch) == "Pd":
            plain.append("-")
        elif unicodedata.category(ch) != "Cf":
            folded = unicodedata.normalize("NFKC", ch).upper()
            plain.append(folded if len(folded) == 1 and folded.isascii() else ch)
    return "".join(plain)


def _readable(ch: str) -> str:
    r"""A wrong character as a person can tell it, never as a Python escape: ``'#'``,
    ``'\u0410' (U+0410 CYRILLIC CAPITAL LETTER A)``, ``U+0007 (control character)``."""
    import unicodedata  # see _plain

    if ch.isascii() and ch.isprintable() and ch != "'":
        return f"'{ch}'"
    category = unicodedata.category(ch)
    name = unicodedata.name(ch, "") or f"({_UNNAMED.get(category, 'unassigned character')})"
    if ch.isprintable() and not category.startswith("M") and ch != "'":
        return f"'{ch}' (U+{ord(ch):04X} {name})"
    return f"U+{ord(ch):04X} {name}"


_UNNAMED = {"Cc": "control character", "Co": "private-use character", "Cs": "broken character"}


INSTALLATION_ID = _Scheme(
    noun="Installation ID", prefix="", data_length=19, group=4, error=InvalidInstallationId
)
LICENSE_NUMBER = _Scheme(
    noun="license number", prefix="TM-", data_length=11, group=4, error=InvalidLicenseNumber
)


# The labels the Licensing window (and `tmslicense status`) writes before an ID, copied with it.
_ID_LABEL = re.compile(
    r"\s*(?:(?:mirrored\s+)?installation\s+id|synchronized\s+thinmanager\s+server)\s*:", re.I
)
_NUMBER_LABEL = re.compile(r"\s*license(?:\s+number)?\s*:", re.I)


def _unlabelled(text: object, label: re.Pattern) -> object:
    """``text`` without the label copied in front of it ("Installation ID: ...")."""
    found = label.match(text) if isinstance(text, str) else None
    return text[found.end() :] if found else text


def normalize_installation_id(text: str) -> str:
    """Return the canonical grouped form of an Installation ID typed by a person.

    >>> normalize_installation_id("fjhz 2sjo 1jbd zwx4 qw7n")
    'FJHZ-2SJ0-1JBD-ZWX4-QW7N'

    The label copied with it from the Licensing window ("Installation ID: ...") is left out.

    Raises :class:`InvalidInstallationId` with a message saying what is wrong
    (unused characters, wrong length, or a typo caught by the check character).
    """
    text = _unlabelled(text, _ID_LABEL)
    try:
        return INSTALLATION_ID.normalize(text)
    except InvalidInstallationId as error:
        # A license number, maybe with its label too ("License Number: TM-..."): said so.
        if isinstance(text, str) and LICENSE_NUMBER.is_entered_in_full(
            _unlabelled(text, _NUMBER_LABEL)
        ):
            raise InvalidInstallationId(
                "This is a license number, not an Installation ID. The Installation ID is shown "
                "at the bottom of the Licensing window of the ThinManager Server.",
                code="length",
            ) from None
        if error.code != "length":
            raise
        pair = _two_installation_ids(text)
        if pair:
            raise InvalidInstallationId(
                f"These are two Installation IDs, {pair[0]} and {pair[1]}: enter one at a time "
                "(a second server's is asked for as the Mirrored Installation ID).",
                code="length",
            ) from None
        raise


def _two_installation_ids(text: str) -> tuple[str, str] | None:
    """Two whole Installation IDs in one text (both pasted at once), or None."""
    symbols = _typed(text)[1]
    length = INSTALLATION_ID.length
    if len(symbols) != 2 * length:
        return None
    pair = (INSTALLATION_ID.format(symbols[:length]), INSTALLATION_ID.format(symbols[length:]))
    return pair if all(map(INSTALLATION_ID.is_canonical, pair)) else None


def normalize_license_number(text: str) -> str:
    """Return the canonical form ``TM-XXXX-XXXX-XXXX`` of a license number.

    The ``TM`` prefix may be left out, and the label "License Number:" copied with it is.
    Raises :class:`InvalidLicenseNumber`.

    >>> normalize_license_number("q6h8-j9se-5byj")
    'TM-Q6H8-J9SE-5BYJ'
    """
    text = _unlabelled(text, _NUMBER_LABEL)
    try:
        return LICENSE_NUMBER.normalize(text)
    except InvalidLicenseNumber:
        # An Installation ID, maybe with its label too ("Installation ID: ..."): said so.
        if isinstance(text, str) and INSTALLATION_ID.is_entered_in_full(
            _unlabelled(text, _ID_LABEL)
        ):
            raise InvalidLicenseNumber(
                "This is an Installation ID, not a license number. The license number is on "
                "your license certificate and starts with TM-.",
                code="length",
            ) from None
        raise


def grouped_symbols(text: str) -> str | None:
    """The start of an Installation ID as a person typed it (4 symbols or more, in any form),
    grouped as stored: ``"ykwha8j4"`` -> ``"YKWH-A8J4"``; None when it is not made of
    symbols. For searching: nothing is checked.
    """
    symbols = _typed(text)[1]
    if len(symbols) < INSTALLATION_ID.group or any(ch not in _VALUE for ch in symbols):
        return None
    return INSTALLATION_ID.format(symbols)


def installation_id_from_secret(secret: bytes) -> str:
    """The Installation ID that belongs to an installation's secret (stable, one-way)."""
    digest = hashes.Hash(hashes.SHA256())
    digest.update(b"tms-installation-id\0" + secret)
    return INSTALLATION_ID.from_bits(digest.finalize())


def new_installation_id() -> str:
    """A fresh random Installation ID, for example ``'FJHZ-2SJ0-1JBD-ZWX4-QW7N'``."""
    return installation_id_from_secret(os.urandom(32))


def new_license_number() -> str:
    """A fresh random license number, for example ``'TM-Q6H8-J9SE-5BYJ'``."""
    return LICENSE_NUMBER.from_bits(os.urandom(8))


SECRET_FILE = "installation.secret"  # noqa: S105 (a file name, not a secret)


def as_root() -> bool:
    return getattr(os, "geteuid", lambda: None)() == 0  # no such thing on Windows


def give_to_folders_owner(made: int | str | os.PathLike, folder: str | os.PathLike) -> None:
    """What root made in a data folder (a file, given open, or a folder by its name) goes to
    the folder's owner: the server runs under an account of its own, and must read what an
    administrator made with sudo (under a umask of 077, root's alone)."""
    if as_root():
        owner = os.stat(folder)
        # A folder by its name: never through a link put in its place meanwhile (root would
        # give the file it names, /etc/shadow say, to the folder's owner).
        follow = {} if isinstance(made, int) else {"follow_symlinks": False}
        give(made, owner.st_uid, owner.st_gid, folder, **follow)


def give(made, uid: int, gid: int, folder, **follow) -> None:
    """Give a file root writes in ``folder`` to an account (its owner's, or the replaced
    file's). A root that may not (without the capability, or in a rootless container) is
    refused (:class:`DataFolderError`) rather than leave a file that account cannot read."""
    found = os.stat(made, **follow)
    if (found.st_uid, found.st_gid) == (uid, gid):
        return  # root's own folder, say: nothing to give
    try:
        os.chown(made, uid, gid, **follow)
    except OSError as error:
        if error.errno not in (errno.EPERM, errno.EINVAL):
            raise
        raise DataFolderError(
            f"Cannot change {folder}: this account may not give what it writes there to the "
            f"account that uses it (uid {uid}), which could then not read it. Run the command "
            "as that account. Nothing was changed."
        ) from None


def sync_folder(folder: str | os.PathLike) -> None:
    """Make a file's new name in ``folder`` (a rename, a link) last through a power cut: the
    folder itself written to disk. POSIX only (Windows has no such call, nor needs it); as far
    as the file system allows (some network shares refuse it: the change is made anyway)."""
    if os.name != "posix":
        return
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError:
        pass


def make_folder(folder: str | os.PathLike) -> None:
    """Make ``folder`` (and the folders above it) unless it is there, lasting through a power
    cut: synced into the folder that holds it."""
    if not os.path.isdir(folder):
        os.makedirs(folder, exist_ok=True)
        sync_folder(os.path.dirname(os.path.abspath(folder)))


def load_or_create_installation_id(data_dir: str | os.PathLike) -> str:
    """This installation's ID, made once from a random secret kept in ``data_dir``.

    The first call creates ``data_dir/installation.secret`` (readable by the owner only);
    every later call derives the same ID from it.

    >>> first = load_or_create_installation_id(tmp_path)  # doctest: +SKIP
    >>> first == load_or_create_installation_id(tmp_path)  # doctest: +SKIP
    True
    """
    path = os.path.join(data_dir, SECRET_FILE)
    try:
        secret = bytes.fromhex(_read(path))
    except FileNotFoundError:
        import tempfile  # only here: verifying a file needs none of it

        make_folder(data_dir)
        candidate = os.urandom(32)
        # A name of its own (mode 0600): threads share a pid, and so do containers (pid 1)
        # that share a volume; a shared name would let one truncate what another linked.
        fd, temporary = tempfile.mkstemp(prefix=f".{SECRET_FILE}.", dir=data_dir)
        try:
            with os.fdopen(fd, "w") as handle:
                give_to_folders_owner(handle.fileno(), data_dir)
                handle.write(candidate.hex() + "\n")
                handle.flush()
                os.fsync(handle.fileno())  # its content on disk before it is linked
            # link() refuses to overwrite: when two callers race, the first secret wins.
            os.link(temporary, path)
        except FileExistsError:
            pass
        finally:
            os.unlink(temporary)
        sync_folder(data_dir)  # a new server's ID never vanishes after a power cut
        secret = bytes.fromhex(_read(path))
    except ValueError as error:
        raise InvalidInstallationId(
            f"The installation secret {path} is damaged; restore it from a backup.",
            code="secret",
        ) from error
    if len(secret) != 32:
        raise InvalidInstallationId(
            f"The installation secret {path} is damaged; restore it from a backup.", code="secret"
        )
    return installation_id_from_secret(secret)


def _read(path: str) -> str:
    with open(path, encoding="ascii", errors="replace") as handle:
        return handle.read().strip()
