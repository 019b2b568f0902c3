"""Every reason a license file is refused: one class each, with a message a person understands."""

from __future__ import annotations


class DataFolderError(Exception):
    """A server's data folder cannot be used as it is: a damaged file (the server cannot
    decide what its licenses allow until it is restored), or one this account may not
    change."""


class LicenseError(Exception):
    """Base class: the license file cannot be used. ``message`` (``str(error)``) is the
    message to show; ``code`` names the reason for a program."""

    code = "invalid"

    def __init__(self, message: str = "", *args):
        super().__init__(message, *args)
        self.message = message


class FileTooLarge(LicenseError):
    """A file over ``limit`` bytes, text measured as UTF-8. ``size`` is its size, or any
    figure not beyond ``limit`` for one whose exact size is not known (see describe_size)."""

    code = "too_large"

    def __init__(self, size: int, limit: int):
        self.size, self.limit = size, limit
        super().__init__(
            f"This file is {describe_size(size, limit)} bytes; a license file is at most "
            f"{limit:,} bytes. Choose the .lic file downloaded from the license site."
        )

    def __reduce__(self):  # made again from its figures (pickled to another process, say)
        return type(self), (self.size, self.limit)


def describe_size(size: int, limit: int) -> str:
    """A size found beyond ``limit``: the file's own, or "more than" the limit when it has none
    (a pipe's is 0)."""
    return f"{size:,}" if size > limit else f"more than {limit:,}"


class MalformedFile(LicenseError):
    """Not a license file: the armor, base64 or envelope is damaged."""

    code = "malformed"


class UnsupportedAlgorithm(LicenseError):
    code = "unsupported_alg"


class UnknownKey(LicenseError):
    """Signed with a key this server does not trust (not in its keyring)."""

    code = "unknown_kid"


class BadSignature(LicenseError):
    """The signature does not match: the file was changed or not issued by the license site."""

    code = "bad_signature"


class InvalidPayload(LicenseError):
    """The signed content is not exactly the expected schema."""

    code = "invalid_payload"


class UnreadableFile(LicenseError):
    """An installed file this account cannot read (its owner or permissions; a disk error)."""

    code = "unreadable"


class AlreadyReplaced(LicenseError):
    """A newer file of the same license is installed already (an import of its older issue)."""

    code = "replaced"


class NotForThisServer(LicenseError):
    """The file was issued for other Installation IDs."""

    code = "wrong_installation"


class LicenseExpired(LicenseError):
    code = "expired"


class LicenseNotYetValid(LicenseError):
    code = "not_yet_valid"


class LicenseRevoked(LicenseError):
    code = "revoked"


class Reason(str):
    """Why a file is not used: the text to show, and ``code`` for a program (a
    :class:`LicenseError`'s code, or ``no_keyring``)."""

    code: str

    def __new__(cls, text: str, code: str = LicenseError.code):
        reason = super().__new__(cls, text)
        reason.code = code
        return reason

    @classmethod
    def of(cls, error: LicenseError) -> Reason:
        return cls(str(error), error.code)


def quoted(value: str) -> str:
    """A value from a file in a message, quoted and cut short: a message stays a line."""
    return repr(value if len(value) <= 40 else value[:40] + "…")
