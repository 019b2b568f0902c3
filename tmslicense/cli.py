"""``python -m tmslicense``: what a TMS operator runs to identify, license and check a server,
and to keep its list of revoked serials and the license site's keyring.

Exit codes: 0 success or allowed, 1 refused (a license error or an action not allowed),
2 wrong usage, an unreadable keyring or a data folder that cannot be used, 130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from . import store
from .errors import FileTooLarge, LicenseError, LicenseExpired, Reason, UnknownKey, describe_size
from .fileformat import MAX_FILE_SIZE, read_envelope, read_license, utc_time, verify_license
from .gating import Action, capabilities
from .ids import (
    SECRET_FILE,
    InvalidIdentifier,
    normalize_installation_id,
    normalize_license_number,
)
from .keyring import MAX_KEYRING, Keyring, KeyringError
from .model import HIDDEN_CHARACTERS, _format_datetime
from .revocation import MAX_REVOKED_LIST

DEFAULT_DATA_DIR = "tms-data"


class UsageError(Exception):
    """The command cannot run as given (exit 2)."""


@contextmanager
def _output_as_codes():
    """Output that cannot encode a character (a customer's name in Japanese, written to a
    Windows console or `> status.txt` in cp1252) writes it as its code, not a traceback; the
    streams are as they were afterwards (``main`` may be called by a program of its own)."""
    streams = [s for s in (sys.stdout, sys.stderr) if hasattr(s, "reconfigure")]  # a TextIO
    before = [stream.errors for stream in streams]
    for stream in streams:
        stream.reconfigure(errors="backslashreplace")
    try:
        yield
    finally:
        for stream, errors in zip(streams, before, strict=True):
            stream.reconfigure(errors=errors)


def main(argv: list[str] | None = None, *, prog: str = "python -m tmslicense") -> int:
    with _output_as_codes():
        return _main(argv, prog)


def command() -> int:
    """The ``tmslicense`` command that installing the package makes."""
    return main(prog="tmslicense")


def _main(argv: list[str] | None, prog: str) -> int:
    args = _parser(prog).parse_args(argv)
    args.prog = prog  # for advice naming a command
    try:
        code = args.handler(args, args.data_dir)
        if sys.stdout is not None:  # none for a Windows service (pythonw), or closed (>&-)
            sys.stdout.flush()  # here, so that a reader gone early is met below
        return code
    except BrokenPipeError:
        # The reader stopped early (`status | head -1`): nothing of ours went wrong. What is
        # left to write goes nowhere, as Python's documentation advises.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except (UsageError, KeyringError, InvalidIdentifier, store.DataFolderError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except LicenseError as error:
        clock = ""
        if isinstance(error, LicenseExpired):  # one far ahead reads as a file that expired
            clock = f" (this server's clock: {utc_time(datetime.now(UTC))})"
        print(f"refused: {_shown(str(error))}{clock}", file=sys.stderr)
        return 1
    except OSError as error:  # the data folder or a file in it cannot be used
        where = f"{error.filename}: " if error.filename else ""
        print(f"error: {where}{error.strerror or error}.", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        # Every change is written whole or not at all: the folder is as before, or changed.
        print("interrupted.", file=sys.stderr)
        return 130


def _parser(prog: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Identify this ThinManager Server, import license files and check them.",
        epilog="exit status: 0 success or allowed, 1 refused (a license error or an action "
        "not allowed), 2 wrong usage, an unreadable keyring or a data folder that cannot be "
        "used, 130 interrupted (Ctrl-C)",
    )
    parser.add_argument(
        "--data-dir",
        type=_data_dir,
        default=os.environ.get("TMS_DATA_DIR") or DEFAULT_DATA_DIR,  # empty is unset
        help="this server's data folder (default: $TMS_DATA_DIR, else ./tms-data)",
    )
    parser.add_argument(
        "--keyring",
        default=os.environ.get("TMS_KEYRING"),
        help="trusted public keys (default: $TMS_KEYRING, else DATA_DIR/keyring.json)",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("id", help="print this installation's ID (created on first use)")
    command = commands.add_parser("import", help="verify a license file and install it")
    command.add_argument("file")
    command = commands.add_parser("status", help="the Licensing window as text")
    command.add_argument("--json", action="store_true", help="print it as JSON, for a program")
    command = commands.add_parser("check", help="exit 0 if this server may do ACTION, else 1")
    command.add_argument("action", choices=[a.value for a in Action])
    command = commands.add_parser("verify", help="verify a license file without installing it")
    command.add_argument("file")
    command.add_argument("--json", action="store_true", help="print the license as JSON")
    command.add_argument(
        "--installation-id", help="check the file for this ID instead of this server's"
    )
    command = commands.add_parser(
        "revoked", help="add the license site's list of revoked serials to DATA_DIR/revoked.txt"
    )
    # Signed by the site: taken over http:// as well (see _revoked).
    command.add_argument(
        "source", help="the list: a saved file, or its https:// or http:// address"
    )
    command = commands.add_parser(
        "remove", help="delete the installed files of a license (one moved to other servers)"
    )
    command.add_argument("number", help="the license number")
    command = commands.add_parser(
        "keyring", help="keep the license site's keyring as DATA_DIR/keyring.json"
    )
    command.add_argument("source", help="the keyring: a saved file, or its https:// address")
    command.add_argument(
        "files",
        nargs="*",
        metavar="FILE",
        help="license files issued under its keys, imported with it in one step (when it no "
        "longer lists the key of a file in use here)",
    )
    for name, handler in [
        ("id", _id),
        ("import", _import),
        ("status", _status),
        ("check", _check),
        ("verify", _verify),
        ("revoked", _revoked),
        ("remove", _remove),
        ("keyring", _install_keyring),
    ]:
        commands.choices[name].set_defaults(handler=handler)
    return parser


def _folder(data_dir: Path) -> store.DataFolder:
    """The data folder, for a change: one that waits for another command says so at once."""

    def waiting():
        print(
            f"Waiting for another command that is changing {data_dir} (up to "
            f"{store.LOCK_WAIT} s; Ctrl-C stops, changing nothing)...",
            file=sys.stderr,
            flush=True,
        )

    return store.DataFolder(data_dir, waiting=waiting)


def _data_dir(text: str) -> Path:
    """An empty --data-dir would be the current folder, where `id` would make a server."""
    if not text:
        raise argparse.ArgumentTypeError("give the data folder (empty is the current folder)")
    return Path(text)


def _keyring(args, data_dir: Path, *, required: bool = True) -> Keyring | None:
    """The trusted keys. One that is not there is said so, with where to get it; without
    ``required`` (``status``) that is None: no installed file can be verified."""
    path = _keyring_path(args, data_dir)
    if path.exists():
        return Keyring.load(path)
    if not required:
        return None
    raise KeyringError(_no_keyring(path))


def _as_given(args, keyring: Keyring) -> Keyring | None:
    """The keyring for DataFolder: None for the folder's own, which it reads again when it
    changed meanwhile (a key rotation while this command reads the files)."""
    return keyring if args.keyring else None


def _keyring_path(args, data_dir: Path) -> Path:
    return Path(args.keyring or data_dir / store.KEYRING)


def _no_keyring(path: Path) -> str:
    return store.no_keyring(path, ", or name another with --keyring")


def _read(path: str, limit: int = MAX_FILE_SIZE, too_large=FileTooLarge) -> bytes:
    try:
        return store.read_file(path, limit, too_large)
    except OSError as error:
        raise LicenseError(f"Cannot read {path}: {error.strerror}.") from None


FETCH_TIMEOUT = 60  # seconds for a whole download, from connecting to the last byte


def _fetch(url: str, limit: int, *, https_only: bool = False) -> bytes:
    """At most ``limit`` bytes from ``url``, within FETCH_TIMEOUT seconds in all: a server
    that trickles its headers or its body is given up on too. ``https_only``: refused when
    sent on (redirected) to an address that is not https://."""
    import threading  # only here: the other commands start faster without them

    outcome: dict = {}

    def download():
        try:
            outcome["data"] = _download(url, limit, https_only)
        except BaseException as error:  # noqa: BLE001 - handed to the waiting thread
            outcome["error"] = error

    worker = threading.Thread(target=download, daemon=True)  # left behind if it overruns
    worker.start()
    worker.join(FETCH_TIMEOUT)
    if worker.is_alive():
        raise LicenseError(
            f"Cannot fetch {url}: it took more than {FETCH_TIMEOUT} s. Try again, or save the "
            "list from a browser and give the file."
        )
    if "error" in outcome:
        raise outcome["error"]
    return outcome["data"]


def _download(url: str, limit: int, https_only: bool) -> bytes:
    import http.client
    import ssl
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=30) as response:  # noqa: S310 - http(s) only
            if https_only and not _is_address(response.url, "https://"):
                raise LicenseError(f"Cannot fetch {url}: it sends on to {response.url}.")
            data = response.read(limit)
            # The connection closed before the end (an ftp:// one, redirected to, says nothing).
            if getattr(response, "length", None) and len(data) < limit:
                raise http.client.IncompleteRead(data, response.length)
            return data
    except (OSError, ValueError, http.client.HTTPException) as error:  # URLError is an OSError
        reason = getattr(error, "reason", error)
        if isinstance(error, http.client.IncompleteRead):
            why = "the download was cut off before its end; try again"
        elif isinstance(reason, ssl.SSLError):
            why = f"the secure connection failed ({reason.reason or reason})"
        elif isinstance(reason, OSError) and reason.strerror:
            why = reason.strerror.lower()
        elif isinstance(error, http.client.HTTPException):
            why = f"the answer was not good HTTP ({type(error).__name__})"
        else:
            why = str(reason)
        raise LicenseError(f"Cannot fetch {url}: {why}.") from None


def _is_address(source: str, *schemes: str) -> bool:
    return source.lower().startswith(schemes)


def _source(source: str, limit: int, what: str, schemes: tuple[str, ...]) -> bytes:
    """The bytes of a saved file, or fetched from an address of one of ``schemes`` (and not
    sent on to another scheme); one larger than ``limit`` is refused, naming ``what``."""

    def too_large(size, limit):
        return LicenseError(
            f"{source} is {describe_size(size, limit)} bytes: too large for {what} "
            f"(at most {limit:,})."
        )

    if not _is_address(source, *schemes):
        return _read(source, limit, too_large)
    data = _fetch(source, limit + 1, https_only=schemes == ("https://",))
    if len(data) > limit:
        raise too_large(0, limit)
    return data


def _id(args, data_dir: Path) -> int:
    print(store.DataFolder(data_dir).installation_id)
    return 0


def _this_server(data_dir: Path, other_ways: str = "") -> str:
    """This server's Installation ID. Only ``id`` makes one: a mistyped --data-dir must not
    become a new server."""
    if not (data_dir / SECRET_FILE).exists():
        raise UsageError(
            f"{data_dir} holds no installation ({SECRET_FILE}). Run this on the ThinManager "
            f"Server and name its data folder with --data-dir{other_ways}; on a new server, "
            "`id` creates it."
        )
    return store.DataFolder(data_dir).installation_id


def _import(args, data_dir: Path) -> int:
    _this_server(data_dir)  # first: a mistyped --data-dir is said so, not its keyring
    keyring = _keyring(args, data_dir)
    data = _read(args.file)
    try:
        done = _folder(data_dir).import_license(data, keyring)
    except UnknownKey as error:
        if read_envelope(data)["kid"] in keyring:  # the folder's refused it, saying what to do
            raise
        raise UnknownKey(
            f"{error} If the license site's keyring no longer lists the key of the file in use "
            f"here, keep it with this file: `{args.prog} {_command('--data-dir', data_dir)} "
            f"keyring SOURCE {_command(args.file)}`."
        ) from None
    lic = done.license
    if done.already_installed:
        print(
            f"License {lic.license_number}, serial {_shown(lic.serial)}, is installed already; "
            "nothing was changed."
        )
        return 0
    _print_imported(done)
    print(f"Stored as {done.path}.")
    return 0


def _command(*words) -> str:
    """Words as a command to paste into this system's shell (cmd.exe's quoting on Windows);
    hidden characters, which no shell takes as typed, written as codes."""
    if os.name == "nt":
        from subprocess import list2cmdline as joined  # only here: the others start faster
    else:
        from shlex import join as joined
    text = joined([str(word) for word in words])
    return _shown(text) if _HIDDEN.search(text) else text


def _print_imported(done: store.Imported) -> None:
    lic = done.license
    print(f"Imported license {lic.license_number} ({lic.kind.value}), serial {_shown(lic.serial)}.")
    if done.replaced is not None:
        print(f"It replaces the file with serial {_shown(done.replaced.serial)}.")


def _capabilities(args, data_dir: Path):
    """For ``status``: what this server may do, the installed files not used with why (all of
    them without a keyring), and the keyring (None: there is none)."""
    this = _this_server(data_dir)
    keyring = _keyring(args, data_dir, required=False)
    if keyring is None:
        store.revoked_serials(data_dir)  # a damaged list is said so, as with a keyring
        valid = []
        refused = [
            (i.path, Reason("cannot be verified without a keyring.", "no_keyring"))
            for i in store.installed(data_dir)
        ]
    else:
        valid, refused = store.DataFolder(data_dir).licenses(_as_given(args, keyring))
    # The refusal says why the installed files do not count, as check's does.
    not_used = [f"{path.name}: {why}" for path, why in refused]
    now = datetime.now(UTC)
    return capabilities(valid, this, now=now, not_used=not_used), refused, keyring, now


def _status(args, data_dir: Path) -> int:
    # Without a keyring the window still shows this server's ID (what activation asks for).
    caps, refused, keyring, now = _capabilities(args, data_dir)
    if args.json:
        print(json.dumps(_status_json(caps, refused, keyring, now), indent=2))
        return 0
    print("ThinManager Licensing")
    print(f"Installation ID: {caps.installation_id}")
    # What the dates were checked by: a clock far ahead reads as files that expired.
    print(f"This server's clock: {utc_time(now)}")
    for partner in caps.partners:
        print(f"Synchronized ThinManager Server: {partner}")
    print()
    if keyring is None:
        print(_shown(_no_keyring(_keyring_path(args, data_dir))))
    if not caps.licenses:
        print("No valid license is installed.")
    for lic in caps.licenses:
        print(f"License {lic.license_number}  {lic.kind.value}")
        print(f"  Product:          {_shown(lic.product)} {_shown(lic.edition)}")
        print(f"  Seats:            {lic.seats}")
        print(f"  Features:         {_shown(', '.join(lic.features)) or '-'}")
        print(f"  Customer:         {_shown(lic.customer)}")
        print(f"  Serial:           {_shown(lic.serial)}")
        print(f"  Maintenance end:  {lic.maintenance_end.isoformat()}")
        expires = utc_time(lic.expires_at) if lic.expires_at else "never"
        print(f"  Expires:          {expires}")
        location = ", ".join(
            f"{s.installation_id} ({s.role.value}"
            + (", this server)" if s.installation_id == caps.installation_id else ")")
            for s in lic.servers
        )
        print(f"  Location:         {location}")
    for line in _not_used(refused, caps):
        print(line)
    print()
    role = caps.role.value if caps.role else "unlicensed"
    if caps.fully_functional_mirror_of:  # by its own licenses, though the mirror of these
        role += f" and mirror of {', '.join(caps.fully_functional_mirror_of)}, fully functional"
    print(f"This server: {role}, {caps.seats} seat(s)")
    for action in Action:
        message = caps.message(action)
        print(f"  {action.value:<22} {'allowed' if message is None else 'refused: ' + message}")
    return 0


def _status_json(caps, refused, keyring, now) -> dict:
    """``status --json``: the window's facts for a program (ASCII JSON: hidden characters of
    an older file's text are written as codes by the encoder), each reason with its code."""
    this = caps.installation_id
    return {
        "installation_id": this,
        "clock": _format_datetime(now),  # what the dates were checked by
        "synchronized_servers": list(caps.partners),
        "keyring": keyring is not None,
        "role": caps.role.value if caps.role else None,
        "fully_functional_mirror_of": list(caps.fully_functional_mirror_of),
        "seats": caps.seats,
        "features": sorted(caps.features),
        "next_expiry": _format_datetime(caps.next_expiry) if caps.next_expiry else None,
        "licenses": [
            {**lic.to_dict(), "this_server": lic.server(this).role.value} for lic in caps.licenses
        ],
        "not_used": [
            {"file": path.name, **_holds(path), "code": why.code, "reason": str(why)}
            for path, why in refused
        ]
        + [
            {
                "file": None,
                "license_number": lic.license_number,
                "serial": lic.serial,
                "code": why.code,
                "reason": str(why),
            }
            for lic, why in caps.ignored
        ],
        "actions": {
            action.value: {"allowed": caps.allows(action), "message": caps.message(action)}
            for action in Action
        },
    }


def _holds(path: Path) -> dict:
    """The license number and serial a file not used holds, as far as it can be read."""
    try:
        lic = read_license(store.read_file(path))
    except (OSError, LicenseError):
        return {"license_number": None, "serial": None}
    return {"license_number": lic.license_number, "serial": lic.serial}


def _shown(text: str) -> str:
    """Text from a file as one line of the terminal: a character that would break the line,
    move the cursor or reorder the text (a file issued before the site refused them) is
    written as its code, e.g. ``\\x1b``."""
    return _SHOWN_AS_CODE.sub(lambda found: found.group().encode("unicode_escape").decode(), text)


# What _shown writes as a code: hidden characters, and a backslash (as \\), so that text that
# reads like a code ("\x1b") is told apart from the character.
_SHOWN_AS_CODE = re.compile(rf"[{HIDDEN_CHARACTERS}\\]")
_HIDDEN = re.compile(f"[{HIDDEN_CHARACTERS}]")


def _not_used(refused, caps) -> list[str]:
    """Why installed files do not count, a line each: those that do not verify, and those
    that do but are not used (expired, another server's, an older issue)."""
    return [f"Not used: {_shown(f'{path.name}: {reason}')}" for path, reason in refused] + [
        f"Not used: {_shown(f'license {lic.license_number}, serial {lic.serial}: {reason}')}"
        for lic, reason in caps.ignored
    ]


def _check(args, data_dir: Path) -> int:
    _this_server(data_dir)
    keyring = _as_given(args, _keyring(args, data_dir))
    folder = store.DataFolder(data_dir)
    # With no license counting, the refusal itself says why the installed files do not.
    caps = folder.capabilities(keyring)
    message = caps.message(args.action)
    if message is None:
        print(f"{args.action}: allowed")
        return 0
    print(_shown(message), file=sys.stderr)
    if caps.role is not None:  # refused for this server's role: and why other files do not count
        _, refused = folder.licenses(keyring)
        for line in _not_used(refused, caps):
            print(line, file=sys.stderr)
    return 1


def _revoked(args, data_dir: Path) -> int:
    source = args.source
    _this_server(data_dir)  # a mistyped --data-dir gets no list
    # Nor a folder whose license files cannot be read: which of them the list stops is said.
    files = store.installed(data_dir)

    # Signed by the site: it may come over http:// as well.
    data = _source(source, MAX_REVOKED_LIST, "a list of revoked serials", ("https://", "http://"))
    keyring = _keyring(args, data_dir)
    try:
        new = _folder(data_dir).add_revoked_list(data, keyring)
    except LicenseError as error:
        raise type(error)(f"{error} Nothing was changed.") from None
    total = len(store.revoked_serials(data_dir))
    print(f"Added {len(new)} revoked serial(s) to {data_dir / store.REVOKED} ({total} in all).")
    new = set(new)
    for item in files:
        try:
            lic = read_license(item.data)
        except LicenseError:
            continue  # `status` names files that do not verify
        if lic.serial in new:
            print(
                f"Revoked: {_shown(item.path.name)} (license {lic.license_number}, serial "
                f"{lic.serial}) is no longer used. Import the file that replaced it, if any, "
                "from the license site, or activate the license there again."
            )
    return 0


def _remove(args, data_dir: Path) -> int:
    number = normalize_license_number(args.number)
    _this_server(data_dir)
    removed = _folder(data_dir).remove_license(number)
    if not removed:
        print(
            f"refused: no file of license {number} is installed in "
            f"{store.licenses_dir(data_dir)}; nothing was removed.",
            file=sys.stderr,
        )
        return 1
    for path, lic in removed:
        serial = f" (serial {_shown(lic.serial)})" if lic else ""
        print(f"Removed {_shown(str(path))}{serial}.")
    return 0


def _install_keyring(args, data_dir: Path) -> int:
    source = args.source
    _this_server(data_dir)
    if _is_address(source, "http://"):
        # The keys decide which files are trusted: only over a connection that proves the site.
        raise LicenseError(f"Fetch the keyring over https://, not {source}.")
    data = _source(source, MAX_KEYRING, "a keyring", ("https://",))
    files = [_read(path) for path in args.files]
    try:
        change = _folder(data_dir).install_keyring(data, files)
    except KeyringError as error:  # the keyring given is refused, not this server's
        raise LicenseError(str(error)) from None
    print(f"Keyring saved as {data_dir / store.KEYRING}: {len(change.keyring)} key(s).")
    for kid in change.added:
        print(f"Now trusted: key {kid}.")
    for kid in change.removed:
        print(f"No longer trusted: key {kid}.")
    for done in change.imported:
        _print_imported(done)
    if args.keyring:
        print(f"{args.keyring} is not changed: commands given --keyring still use it.")
    return 0


def _verify(args, data_dir: Path) -> int:
    if args.installation_id:
        this = normalize_installation_id(args.installation_id)
    else:
        this = _this_server(data_dir, ", or give the ID to check the file for (--installation-id)")
    keyring = _keyring(args, data_dir)
    lic = verify_license(_read(args.file), keyring, this, revoked=store.revoked_serials(data_dir))
    if args.json:
        # ASCII: hidden characters of an older file's text are written as codes here too.
        print(json.dumps(lic.to_dict(), indent=2))
    else:
        ids = " and ".join(lic.installation_ids)
        print(f"Valid: license {lic.license_number} ({lic.kind.value}) for {ids}.")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
