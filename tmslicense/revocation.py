"""The license site's list of revoked serials (its ``/revoked.txt``), signed by the same keys
as its license files::

    # Revoked TMS license files (serials), Example Plant Licensing
    0123456789ABCDEF
    FEDCBA9876543210
    #signature ed25519 KEY_ID BASE64

One serial per line. ``#`` lines are comments, except the one signature line: plain Ed25519
over ``tms-revoked-serials-v1`` and a newline, then each serial followed by a newline, in the
order listed. Comments are not signed. A server that reads an unsigned list as plain lines
takes the signature line for a comment.
"""

from __future__ import annotations

import binascii
from base64 import b64encode
from collections.abc import Iterable, Mapping

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from .errors import BadSignature, MalformedFile, UnknownKey, UnsupportedAlgorithm, quoted
from .fileformat import strict_b64decode
from .model import SERIAL, FileData, decode_text, text_or_bytes

__all__ = ["sign_revoked_list", "verify_revoked_list"]

# A list of revoked serials larger than this is refused, not read in part.
MAX_REVOKED_LIST = 16 * 1024 * 1024

# What the signature is over starts with this tag; a license file's signed payload is JSON,
# which never does, so neither signature can be passed off as the other.
_DOMAIN = b"tms-revoked-serials-v1\n"
_SIGNATURE = "#signature "


def _signed(serials: list[str]) -> bytes:
    return _DOMAIN + "".join(f"{serial}\n" for serial in serials).encode("ascii")


def sign_revoked_list(
    serials: Iterable[str], private_key: Ed25519PrivateKey, kid: str, *, title: str = ""
) -> str:
    """The signed list of ``serials`` (the issuer's side), under a ``title`` comment."""
    serials = list(serials)
    bad = next((s for s in serials if not SERIAL.fullmatch(s)), None)
    if bad is not None:
        raise ValueError(f"not a serial: {bad!r}")
    if len(title.splitlines()) > 1:  # a second line would read as an unsigned serial
        raise ValueError(f"a title is one line: {title!r}")
    signature = b64encode(private_key.sign(_signed(serials))).decode("ascii")
    lines = [f"# {title}"] if title else []
    return "\n".join([*lines, *serials, f"{_SIGNATURE}ed25519 {kid} {signature}"]) + "\n"


def verify_revoked_list(text: FileData, keyring: Mapping[str, Ed25519PublicKey]) -> list[str]:
    """The serials of a list of revoked serials signed by a key in ``keyring``; as bytes, in
    UTF-8 or UTF-16 (see ``decode_text``), with or without a byte-order mark.

    Refuses the whole list, with a :class:`~tmslicense.LicenseError` subclass, when it is not
    text, when a line is not a serial or a comment, when it has no signature or more than
    one, and when the signature is not by a trusted key or does not match (a serial was
    added, removed or changed).
    """
    text = text_or_bytes(text)
    if isinstance(text, bytes):
        try:
            text = decode_text(text)
        except UnicodeDecodeError:
            raise MalformedFile("This is not a list of revoked serials: it is not text.") from None
    text = text.removeprefix("\ufeff")  # an editor's byte-order mark
    serials, signature = [], None
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if line.startswith(_SIGNATURE):
            if signature is not None:
                raise MalformedFile("This list of revoked serials has two signature lines.")
            signature = line[len(_SIGNATURE) :].split()
        elif line and not line.startswith("#"):
            if not SERIAL.fullmatch(line):  # an HTML error page from a proxy, say
                raise MalformedFile(
                    f"This is not a list of revoked serials: line {number} reads {line[:40]!r}."
                )
            serials.append(line)
    if signature is None:
        raise BadSignature(
            "This list of revoked serials is not signed by the license site. Use the list "
            "the site serves (its /revoked.txt)."
        )
    if len(signature) != 3:
        raise MalformedFile("The signature line of this list of revoked serials is damaged.")
    alg, kid, sig = signature
    if alg != "ed25519":
        raise UnsupportedAlgorithm(
            f"This list of revoked serials is signed with {quoted(alg)}, which this ThinManager "
            "Server does not support (only ed25519)."
        )
    key = keyring.get(kid)
    if key is None:
        raise UnknownKey(
            f"This list of revoked serials is signed with key {quoted(kid)}, which this server "
            "does not trust. Update the keyring from the license site."
        )
    try:
        key.verify(strict_b64decode(sig), _signed(serials))
    except (binascii.Error, InvalidSignature):
        raise BadSignature(
            "This list of revoked serials does not match its signature: it was changed after "
            "the license site signed it. Fetch it from the site again."
        ) from None
    return serials
