"""The TMS data folder: this installation's secret, its keyring and its imported licenses.
A TMS that embeds tmslicense uses :class:`DataFolder`; the command line does the same.

::

    DATA_DIR/installation.secret    made once; the Installation ID is derived from it
    DATA_DIR/keyring.json           trusted public keys of the license site (default keyring)
    DATA_DIR/licenses/TM-....lic    one file per license number, the newest issue
    DATA_DIR/revoked.txt            optional: revoked serials, one per line (``add_revoked``)
    DATA_DIR/.lock                  held while the folder is changed (``locked``)
"""

from __future__ import annotations

import errno
import os
import re
import secrets
import stat
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

from .errors import (
    AlreadyReplaced,
    DataFolderError,
    FileTooLarge,
    LicenseError,
    Reason,
    UnknownKey,
    UnreadableFile,
    quoted,
)
from .fileformat import (
    MAX_FILE_SIZE,
    as_text,
    license_file,
    read_envelope,
    read_license,
    utc_time,
    verify_license,
)
from .gating import Capabilities, capabilities
from .ids import (
    SECRET_FILE,
    InvalidInstallationId,
    as_root,
    give,
    give_to_folders_owner,
    load_or_create_installation_id,
    make_folder,
    normalize_license_number,
    sync_folder,
)
from .keyring import Keyring, KeyringError
from .model import SERIAL, FileData, License
from .revocation import MAX_REVOKED_LIST, verify_revoked_list

__all__ = ["DataFolder", "DataFolderError", "Imported", "KeyringChange", "LOCK_WAIT", "locked"]


def _root_may_give(data_dir: Path) -> None:
    """A root that may not give what it writes in the folder to the folder's account is
    refused (give_to_folders_owner) before anything is changed: a change may write several
    files (a keyring, then its licenses), and one refused half-way would leave the others."""
    if not as_root():
        return
    probe = data_dir / f".{secrets.token_hex(8)}.probe"
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(probe, flags, 0o600)
    except OSError:
        return  # the lock says why the folder cannot be written
    try:
        give_to_folders_owner(fd, data_dir)
    finally:
        os.close(fd)
        probe.unlink(missing_ok=True)


def may_not_write(folder: Path) -> DataFolderError:
    return DataFolderError(
        f"Cannot change {folder}: this account may not write to it. Nothing was changed."
    )


LOCK_WAIT = 30  # seconds to wait for another command that is changing the folder
# What a lock held by another process is refused with: flock's, and msvcrt.locking's.
_HELD = {errno.EAGAIN, errno.EWOULDBLOCK, errno.EACCES, errno.EDEADLK}


@contextmanager
def locked(
    data_dir: Path, waiting: Callable[[], object] | None = None, wait: float | None = None
) -> Iterator[None]:
    """Hold the data folder's lock: what one process reads to decide a change (the installed
    licenses, the revoked serials) stays so until it has written the change. Waits up to
    ``wait`` seconds (by default LOCK_WAIT) for another command (calling ``waiting`` once,
    if given, when it starts to wait: to say so), then raises :class:`DataFolderError`."""
    wait = LOCK_WAIT if wait is None else wait
    data_dir.mkdir(parents=True, exist_ok=True)
    _root_may_give(data_dir)
    path = data_dir / ".lock"
    # Never through a link placed there (O_NOFOLLOW): a command run as root would create, and
    # lock, the file it names (/etc/nologin, say).
    flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)
    try:
        handle = os.fdopen(os.open(path, flags, 0o666), "r+b")
    except OSError as error:
        if path.is_symlink():
            raise DataFolderError(
                f"{path} is a link, but it should be a file of its own (it only lets commands "
                "take turns): delete it. Nothing was changed."
            ) from None
        if error.errno == errno.EROFS:  # no file can be deleted or written there either
            raise DataFolderError(
                f"Cannot change {data_dir}: it is on a read-only file system. Nothing was changed."
            ) from None
        if error.errno in (errno.EACCES, errno.EPERM) and not path.exists():
            raise may_not_write(data_dir) from None
        raise DataFolderError(
            f"Cannot use {path}: {error.strerror}. It only lets commands take turns: delete "
            f"it, or let this account write to {data_dir}."
        ) from None
    with handle:
        made = os.fstat(handle.fileno())
        # Made by root just now, or kept so; never a second name of another file (a hard
        # link the folder's owner put there, to /etc/shadow say, would be given to them).
        if made.st_uid == 0 and made.st_nlink == 1:
            give_to_folders_owner(handle.fileno(), data_dir)
        if os.name == "nt":
            import msvcrt

            def take():
                handle.seek(0)
                msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)

            def release():
                handle.seek(0)
                msvcrt.locking(handle.fileno(), msvcrt.LK_UNLCK, 1)
        else:
            import fcntl

            def take():
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)

            def release():
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)

        deadline = time.monotonic() + wait
        while True:
            try:
                take()
                break
            except OSError as error:
                if error.errno not in _HELD:  # no locks here (some network shares), say
                    raise DataFolderError(f"Cannot lock {path}: {error.strerror}.") from None
                if waiting is not None:
                    waiting()
                    waiting = None
                if time.monotonic() > deadline:
                    raise DataFolderError(
                        f"{data_dir} is being changed by another command (it has held {path} "
                        f"for {wait:g} s); try again when it is done."
                    ) from None
                time.sleep(0.05)
        try:
            _remove_leftovers(data_dir)
            yield
        finally:
            release()


@dataclass(frozen=True)
class Installed:
    path: Path
    data: bytes  # read as an import reads a file: verify_license decodes it
    # Why it was left unread (data is empty): too large, or it cannot be read.
    unread: LicenseError | None = None


def read_file(path, limit: int = MAX_FILE_SIZE, too_large=FileTooLarge) -> bytes:
    """A file's bytes. One larger than ``limit`` is refused unread: ``too_large(size,
    limit)``, the size the file's own (a pipe has none: then only more than ``limit``)."""
    with open(path, "rb") as handle:
        data = handle.read(limit + 1)
        if len(data) > limit:
            raise too_large(os.fstat(handle.fileno()).st_size, limit)
        return data


def _installed_file(path: Path) -> Installed:
    try:
        return Installed(path, read_file(path))
    except FileTooLarge as error:
        return Installed(path, b"", error)
    except FileNotFoundError:
        raise  # removed since listed: installed() leaves it out
    except OSError as error:
        # One file, not the folder (stored by another account, with sudo and umask 077
        # say): the other licenses still count.
        if isinstance(error, PermissionError):
            why = "This file cannot be read by this account: check its owner and permissions."
        else:
            why = f"This file cannot be read: {error.strerror or error}."
        return Installed(path, b"", UnreadableFile(why))


def licenses_dir(data_dir: Path) -> Path:
    return data_dir / "licenses"


def _has_licenses_dir(data_dir: Path) -> bool:
    """Whether the folder of license files is there yet. Anything else in its place (a
    license file copied to ``licenses`` by mistake) raises :class:`DataFolderError`: read
    as "no license", every installed license would stop counting without a word, and an
    import would have to replace it."""
    folder = licenses_dir(data_dir)
    if folder.is_dir():
        return True
    if os.path.lexists(folder) and not folder.is_dir():  # not a folder made meanwhile
        what = "a file" if folder.is_file() else "not a folder"
        raise DataFolderError(
            f"{folder} is {what}, but it should be the folder that holds this server's "
            "license files: none can be read or imported until it is. Move it elsewhere (if "
            "it is a license file, import it again once it is moved)."
        )
    return False


def installed(data_dir: Path) -> list[Installed]:
    folder = licenses_dir(data_dir)
    if not _has_licenses_dir(data_dir):
        return []
    found = []
    # iterdir, not glob: glob reads a folder it may not list as empty, "no license".
    for path in sorted(folder.iterdir()):
        # .LIC too: Windows hides extensions, and a copy made there may be upper case.
        if path.suffix.lower() == ".lic" and path.is_file():  # a folder named *.lic is none
            try:
                found.append(_installed_file(path))
            except FileNotFoundError:  # removed since listed (reads take no lock): gone
                continue
    return found


REVOKED = "revoked.txt"


def _revoked_text(data_dir: Path) -> str | None:
    path = data_dir / REVOKED
    # Refused whole when damaged: read loosely (as UTF-16, say) no serial would match any
    # more, and every revoked file would count again.
    damaged = (
        f"{path} is damaged ({{}}), so revoked files cannot be told apart. Restore it from a "
        "backup, or delete it and add the license site's list again with the revoked command."
    )
    try:
        # An editor's byte-order mark is no serial. The lists added hold no more than the
        # site's last one (a serial once revoked stays on it): twice that is no list, but a
        # device (/dev/zero) that never ends, say.
        with open(path, encoding="utf-8-sig") as handle:
            text = handle.read(2 * MAX_REVOKED_LIST + 1)
    except FileNotFoundError:
        return None
    except UnicodeDecodeError:
        raise DataFolderError(damaged.format("not UTF-8 text")) from None
    if len(text) > 2 * MAX_REVOKED_LIST:
        raise DataFolderError(damaged.format(f"larger than {2 * MAX_REVOKED_LIST:,} characters"))
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if line and not line.startswith("#") and not SERIAL.fullmatch(line):
            raise DataFolderError(damaged.format(f"line {number} is not a serial"))
    return text


def revoked_serials(data_dir: Path) -> frozenset[str]:
    return _serials(_revoked_text(data_dir) or "")


def _serials(text: str) -> frozenset[str]:
    lines = (line.strip() for line in text.splitlines())
    return frozenset(line for line in lines if line and not line.startswith("#"))


def add_revoked(data_dir: Path, serials, waiting=None, wait=None) -> list[str]:
    """Add serials to this server's list of revoked serials and return the ones that were new.

    A list is only ever added to: a serial once revoked stays revoked, so an old or partial
    list cannot bring a revoked file back. Lists added at the same time are all kept.
    """
    with locked(data_dir, waiting, wait):
        text = _revoked_text(data_dir) or "# Revoked serials\n"
        new = sorted(set(serials) - _serials(text))
        if new:
            if not text.endswith("\n"):
                text += "\n"
            _write(data_dir / REVOKED, text + "".join(f"{serial}\n" for serial in new))
    return new


def placement(data_dir: Path, lic: License, current: License | None, refused=()) -> Path:
    """Where a verified license file is to be stored, replacing an older issue of the same
    license number (``current``, read holding the folder's lock, see ``locked``); refused
    (:class:`AlreadyReplaced`) when a newer issue is installed. ``refused``: (path, error) of
    the installed files not verified here; one in the way is kept, not written over, when it
    holds a newer issue under a key the keyring given lacks, or cannot be read (it may)."""
    _refuse_older(lic, current)
    folder = licenses_dir(data_dir)
    if not _has_licenses_dir(data_dir):
        make_folder(folder)
        give_to_folders_owner(folder, data_dir)
    target = folder / f"{lic.license_number}.lic"
    # A file of another license saved under this one's name (by hand) is not written over:
    # it may be what that license counts by. This one goes beside it.
    copies = 1
    while (there := _license_in(target)) and there.license_number != lic.license_number:
        copies += 1
        target = folder / f"{lic.license_number}-{copies}.lic"
    if os.path.lexists(target) and not (target.is_symlink() or target.is_file()):
        raise DataFolderError(
            f"{target} is not a file (a folder, a pipe or a device), but the license file goes "
            "there: move it elsewhere, then import again. Nothing was changed."
        )
    why = dict(refused).get(target)
    if isinstance(why, UnreadableFile):
        raise UnreadableFile(
            f"{target.name}: {why} It may hold a newer issue of license {lic.license_number}: "
            "nothing was changed."
        )
    if there and isinstance(why, UnknownKey) and there.supersedes(lic):
        raise AlreadyReplaced(
            f"{target.name} holds a newer file for license {lic.license_number} (serial "
            f"{there.serial}, issued {utc_time(there.issued_at)}), signed with a key this "
            "keyring does not trust: update the keyring from the license site. Nothing was "
            "changed; to install this older issue instead, remove that file first."
        )
    return target


def _newest(lic: License, found) -> tuple[Path | None, License | None]:
    """The newest installed issue of ``lic``'s license among ``found`` ((path, license) of
    each installed file), with its path; (None, None) when it has none."""
    path = current = None
    for where, other in found:
        if other.license_number == lic.license_number and (
            current is None or other.supersedes(current)
        ):
            path, current = where, other
    return path, current


def _refuse_older(lic: License, current: License | None) -> None:
    """Refuse (:class:`AlreadyReplaced`) an issue older than the installed one, ``current``."""
    if current is not None and current.supersedes(lic):
        raise AlreadyReplaced(
            f"A newer file for license {lic.license_number} (serial {current.serial}, issued "
            f"{utc_time(current.issued_at)}) is already installed; nothing was changed."
        )


def _license_in(path: Path) -> License | None:
    """The license a file holds, read, not verified; None for no file, one that cannot be
    read, or no license in it (damaged: replaced)."""
    if not path.is_file():  # a pipe would be read for ever; a link to a file is read
        return None
    try:
        return read_license(read_file(path))
    except (OSError, LicenseError):
        return None


def store_file(target: Path, data: FileData) -> None:
    """Store a verified license file, its armored block alone: stored so, what imports
    verifies again (the text around it, an e-mail in any encoding, each byte that is no UTF-8
    read as U+FFFD, 3 bytes, could grow the file past MAX_FILE_SIZE, or not be UTF-8 at all)."""
    text = data if isinstance(data, str) else as_text(bytes(data))  # verified: bytes-like
    _write(target, license_file(text))


@contextmanager
def _uninterrupted() -> Iterator[None]:
    """Ctrl-C (SIGINT) taken once the writes under way are done, not half-way through them
    (in the main thread, the only one Python signals)."""
    import signal
    import threading

    previous = signal.getsignal(signal.SIGINT)
    # Not in another thread, nor under a handler set outside Python (None: not restorable).
    if threading.current_thread() is not threading.main_thread() or previous is None:
        yield
        return
    caught = []
    signal.signal(signal.SIGINT, lambda number, frame: caught.append(number))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if caught:  # sent again, to the handler there was: Python's raises KeyboardInterrupt
        signal.raise_signal(signal.SIGINT)


_LEFTOVER = re.compile(r"\..+\.[0-9a-f]{16}\.tmp")  # what _write names its temporary files


def _remove_leftovers(data_dir: Path) -> None:
    """Remove the temporary files of a change cut off before its rename (a power cut, a
    process killed): with the folder's lock held, no change is under way."""
    for folder in (data_dir, licenses_dir(data_dir)):
        try:
            entries = list(os.scandir(folder))
        except OSError:  # no licenses folder yet; one that cannot be read is said elsewhere
            continue
        for entry in entries:
            if _LEFTOVER.fullmatch(entry.name) and entry.is_file(follow_symlinks=False):
                with suppress(OSError):
                    os.unlink(entry.path)


def _owned_as_before(fd: int, target: Path) -> None:
    """A file written in place of another keeps its mode and, written by root, its owner; a
    new one written by root goes to the owner of its folder. The server's account must read
    what an administrator changed with sudo: under a umask of 077, a file root makes is
    root's alone, and the server would count no license."""
    try:
        before = os.lstat(target)
    except OSError:
        before = None
    if before is None or not stat.S_ISREG(before.st_mode):
        give_to_folders_owner(fd, target.parent)
        return
    if hasattr(os, "fchmod"):  # not on Windows before Python 3.13
        os.fchmod(fd, stat.S_IMODE(before.st_mode) & 0o777)
    if as_root():
        give(fd, before.st_uid, before.st_gid, target.parent)


def _write(target: Path, text: str) -> None:
    """Write to a temporary file and rename: a crash leaves the old file or the new one,
    never half of one. The temporary file is new, of a name no one can guess: one placed in
    its way (a link to another file) is never written through."""
    temporary = target.with_name(f".{target.name}.{secrets.token_hex(8)}.tmp")
    # Made new (O_EXCL: a link in its place is refused, not followed), with the mode the
    # umask gives, as any file the server writes; then the mode of the file it replaces.
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(temporary, flags, 0o666)
    except PermissionError:
        raise may_not_write(target.parent) from None
    try:
        _owned_as_before(fd, target)
        with open(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, target)
        sync_folder(target.parent)  # the rename too: a revoked list never goes back
    finally:
        temporary.unlink(missing_ok=True)


KEYRING = "keyring.json"


def no_keyring(path: Path, other_ways: str = "") -> str:
    return (
        f"No keyring at {path}: save the license site's keyring (its address followed by "
        f"/keyring.json) there{other_ways}."
    )


@dataclass(frozen=True)
class Imported:
    license: License
    path: Path  # where it is installed
    already_installed: bool  # the same file was installed before: nothing was changed
    replaced: License | None = None  # the older issue of the license this file took over from


@dataclass(frozen=True)
class KeyringChange:
    keyring: Keyring  # the one installed
    added: list[str]  # kids trusted now and not before
    removed: list[str]  # kids no longer trusted
    # The license files installed with it (not those installed already).
    imported: list[Imported] = field(default_factory=list)


class DataFolder:
    """A ThinManager Server's data folder, as a TMS that embeds tmslicense uses it: what
    ``python -m tmslicense`` does, as calls. Changes take the folder's lock (``locked``), so
    a TMS and the command line can work on one folder at once.

    Only :attr:`installation_id` makes an installation; the other calls, on a folder that
    holds none (a mistyped path), raise :class:`DataFolderError` and create nothing.

    >>> folder = DataFolder("/var/lib/tms")  # doctest: +SKIP
    >>> folder.import_license(open("TM-Q6H8-J9SE-5BYJ.lic", "rb").read(), keyring)  # doctest: +SKIP
    >>> folder.capabilities(keyring).serve_clients  # doctest: +SKIP
    True
    """

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        waiting: Callable[[], object] | None = None,
        lock_wait: float | None = None,
    ):
        """``waiting``: called when a change starts to wait for another process that holds
        the folder (up to ``lock_wait`` seconds, by default ``LOCK_WAIT``, then
        :class:`DataFolderError`), to say so."""
        if not os.fspath(path):  # Path("") is the current folder, where an ID would be made
            raise ValueError("give the data folder (empty is the current folder)")
        self.path = Path(path)
        self.waiting = waiting
        self.lock_wait = lock_wait

    def _locked(self):
        return locked(self.path, self.waiting, self.lock_wait)

    @property
    def installation_id(self) -> str:
        """This installation's ID, made on first use (``load_or_create_installation_id``):
        what the Licensing window shows, and activation asks for. A damaged secret raises
        :class:`DataFolderError`: never replaced, which would make this a new server."""
        try:
            return load_or_create_installation_id(self.path)
        except InvalidInstallationId:  # what a damaged secret is refused with
            raise DataFolderError(
                f"{self.path / SECRET_FILE} is damaged, so this server's Installation ID is "
                "unknown. Restore it from a backup of the data folder. Do not delete it: a new "
                "one would make this a new server, with an ID its licenses were not activated for."
            ) from None

    def _this(self) -> str:
        if not (self.path / SECRET_FILE).is_file():
            raise DataFolderError(
                f"{self.path} holds no installation ({SECRET_FILE}): a mistyped path, or a new "
                "server whose installation_id was never asked for."
            )
        return self.installation_id

    def _installed(self, keyring, this: str):
        """(path, license) of each installed file issued for this server and not revoked,
        its dates not checked; and each other file with the error that refuses it."""
        revoked = revoked_serials(self.path)
        found: list[tuple[Path, License]] = []
        refused: list[tuple[Path, LicenseError]] = []
        for item in installed(self.path):
            if item.unread is not None:
                refused.append((item.path, item.unread))
                continue
            try:
                lic = verify_license(item.data, keyring, this, revoked=revoked, dates=False)
            except LicenseError as error:
                refused.append((item.path, error))
            else:
                found.append((item.path, lic))
        return found, refused

    def licenses(self, keyring=None) -> tuple[list[License], list[tuple[Path, Reason]]]:
        """The installed licenses issued for this server and not revoked (their dates, and
        which file of a license counts, are :meth:`capabilities`' to decide at the time
        asked), and the installed files that do not verify, each with why (a :class:`Reason`:
        text with the error's ``code``)."""
        this = self._this()
        for _ in range(3):
            # Reads take no lock: the folder's keyring read again when it was changed while
            # the files were read (a key rotation), so that both are of one moment.
            seen = self._keyring_seen()
            found, refused = self._installed(self._given(keyring), this)
            if keyring is not None or self._keyring_seen() == seen:
                break
        return [lic for _, lic in found], [(path, Reason.of(error)) for path, error in refused]

    def capabilities(self, keyring=None, *, now=None) -> Capabilities:
        """What this server may do with its installed licenses, now (or at ``now``): ask
        again before a gated action or on a timer, not only at start. When none counts, the
        refusal says why each installed file is not used."""
        valid, refused = self.licenses(keyring)
        not_used = [f"{path.name}: {why}" for path, why in refused]
        return capabilities(valid, self._this(), now=now, not_used=not_used)

    def import_license(self, data: FileData, keyring=None, *, now=None) -> Imported:
        """Verify a license file for this server (at ``now``, by default the clock's) and
        install it, replacing an older issue of the same license. Refuses (a
        :class:`LicenseError`, nothing changed) a file that does not verify here, and an
        older issue than the one installed, even if that one has expired."""
        this = self._this()
        # Another import at the same time must not install an older issue over this one.
        with self._locked():
            kept = self._kept_keyring()
            keyring = kept if keyring is None else keyring
            if keyring is None:
                raise KeyringError(no_keyring(self.path / KEYRING))
            try:
                lic = verify_license(
                    data, keyring, this, now=now, revoked=revoked_serials(self.path)
                )
            except UnknownKey:
                self._refuse_if_older(data, keyring, this)
                raise
            # The keyring given may be older than the folder's (read at a TMS's start, or
            # kept elsewhere): a file the folder's does not trust would count by none.
            if kept is not None and (kid := read_envelope(data)["kid"]) not in kept:
                raise UnknownKey(
                    f"This server's {KEYRING} does not trust key {quoted(kid)}, which signed "
                    "the file: keep the license site's keyring first (with this file, if the "
                    "site no longer lists the key of the file in use). Nothing was changed."
                )
            imported = self._placed(lic, *self._installed(keyring, this))
            if not imported.already_installed:
                store_file(imported.path, data)
            return imported

    def _refuse_if_older(self, data, keyring, this: str) -> None:
        """A file signed with a key the keyring does not trust, of a license a newer file of
        which is installed (the site rotated its key since, and retired the old one): refused
        as the older issue it is, not as a key to trust (which would lead back here)."""
        try:
            old = read_license(data)
        except LicenseError:
            return  # no license in it: its key is what is said
        if old.server(this) is not None:
            _refuse_older(old, _newest(old, self._installed(keyring, this)[0])[1])

    def _placed(self, lic: License, found, refused) -> Imported:
        """Where a verified file of this server goes among those installed (``found`` and
        ``refused``, as :meth:`_installed` gives them), or that it is installed already."""
        path, current = _newest(lic, found)
        if current is not None and current.serial == lic.serial:
            return Imported(lic, path, True)
        return Imported(lic, placement(self.path, lic, current, refused), False, current)

    def add_revoked_list(self, data: FileData, keyring=None) -> list[str]:
        """Verify the license site's signed list of revoked serials (its ``/revoked.txt``)
        and add its serials to this server's; returns the ones that were new. Refuses a list
        that does not verify, or is no text (a :class:`LicenseError`, nothing changed)."""
        self._this()
        serials = verify_revoked_list(data, self._given(keyring))
        return add_revoked(self.path, serials, self.waiting, self.lock_wait)

    def remove_license(self, number: str) -> list[tuple[Path, License | None]]:
        """Delete the installed files of a license (its number in any form the site shows):
        one moved to other servers, say. Returns each file deleted with the license read from
        it, not verified (None for a file that is no license file, named after the number);
        none when the license has no file here."""
        number = normalize_license_number(number)
        self._this()
        removed = []
        with self._locked():
            for item in installed(self.path):
                try:
                    lic = read_license(item.data) if item.unread is None else None
                except LicenseError:
                    lic = None
                if (lic.license_number if lic else item.path.stem.upper()) == number:
                    item.path.unlink()
                    removed.append((item.path, lic))
        return removed

    def keyring(self) -> Keyring:
        """The trusted keys kept in the folder (``keyring.json``); a :class:`KeyringError`
        when there are none, or they cannot be read."""
        self._this()
        path = self.path / KEYRING
        if not path.exists():
            raise KeyringError(no_keyring(path))
        return Keyring.load(path)

    def _keyring_seen(self) -> tuple[int, int] | None:
        """Which ``keyring.json`` is there now (each one written is a new file); None: none."""
        try:
            found = os.stat(self.path / KEYRING)
        except FileNotFoundError:
            return None
        return found.st_ino, found.st_mtime_ns

    def _given(self, keyring):
        """The keyring a call was given; without one, the folder's as it is now (read at each
        call: a TMS that runs for months follows a key rotation)."""
        return self.keyring() if keyring is None else keyring

    def _kept_keyring(self) -> Keyring | None:
        """The folder's keyring; None when there is none (the keyring given to a call
        decides). A damaged one raises :class:`KeyringError`."""
        path = self.path / KEYRING
        return Keyring.load(path) if path.exists() else None

    def install_keyring(
        self, data: FileData, licenses: Iterable[FileData] = (), *, now=None
    ) -> KeyringChange:
        """Keep a keyring (the license site's ``/keyring.json``, after a key rotation say) as
        the folder's. Refuses (a :class:`KeyringError`, nothing changed) one that is not a
        keyring, and one that leaves out the key of a file that counts here: its license
        would stop counting (and the server with it), or count by an older issue.

        ``licenses``: license files issued under the new keyring's keys, installed with it in
        one step, each as :meth:`import_license` would (at ``now``): when the site no longer
        lists a key (a compromised one) and reissued its files under a new key, the keyring
        alone would leave their licenses without a file that counts, and the files alone are
        not trusted by the folder's keyring. Refused whole (nothing changed) when one is."""
        if isinstance(licenses, FileData):  # one file, which would be read line by line
            raise TypeError("licenses is a list of license files ([file]), not one")
        this = self._this()
        new = Keyring.from_json(data)
        with self._locked():
            try:
                old = self._kept_keyring() or Keyring()  # none: no license counts now
            except KeyringError:  # damaged: none counts by it now either; replaced
                old = Keyring()
            revoked = revoked_serials(self.path)
            # Each file goes where an import trusting both keyrings would put it (in place of
            # the older issue the old key signed); the check below counts by the new alone.
            placed = self._installed(Keyring({**old, **new}), this)
            found, _ = self._installed(new, this)
            imported = []
            for text in licenses:
                lic = verify_license(text, new, this, now=now, revoked=revoked)
                done = self._placed(lic, *placed)
                if not done.already_installed:
                    imported.append((done, text))
                    for files in (placed[0], found):
                        files.append((done.path, lic))
            # The files that count now, against those that would: an older issue left in the
            # folder counting instead of a newer one is a loss too.
            # (A newer issue counting instead, which only the new keyring verifies, is none.)
            would = {
                lic.license_number: lic
                for lic in capabilities([lic for _, lic in found], this, now=now).licenses
            }
            lost = sorted(
                {
                    lic.license_number
                    for lic in self.capabilities(old, now=now).licenses
                    if lic.license_number not in would or lic.supersedes(would[lic.license_number])
                }
            )
            if lost:
                raise KeyringError(
                    f"This keyring leaves out the key of the file license {', '.join(lost)} "
                    "counts by here: it would no longer count, or an older issue would "
                    "instead. Use the license site's keyring, which lists every key still in "
                    "use; if it no longer lists that key, give the license's new file with it "
                    "(issued under its keys). Nothing was changed."
                )
            # Both keys trusted while the files change (cut off half-way, by a power cut say,
            # a license counts by its old file or its new one, never by none), then the new;
            # Ctrl-C waits for the end (or the dropped key would stay trusted).
            with _uninterrupted():
                if imported:
                    _write(self.path / KEYRING, Keyring({**old, **new}).to_json())
                for done, text in imported:
                    store_file(done.path, text)
                _write(self.path / KEYRING, new.to_json())
        return KeyringChange(
            new,
            sorted(set(new) - set(old)),
            sorted(set(old) - set(new)),
            [done for done, _ in imported],
        )
