"""DataFolder: what a TMS that embeds tmslicense calls, instead of the command line."""

import errno
import os
import re
import stat
from datetime import UTC, datetime, timedelta

import pytest

import tmslicense
from tests.tmslicense.envelope import armor, envelope
from tmslicense import Action


@pytest.fixture
def folder(tmp_path):
    return tmslicense.DataFolder(tmp_path / "tms")


def _recent(make_license, **kwargs):
    return make_license(issued_at=datetime.now(UTC).replace(microsecond=0), **kwargs)


def test_a_server_imports_its_file_and_is_gated_by_it(folder, make_license, sign, keyring):
    this = folder.installation_id
    assert folder.installation_id == this  # made once, kept
    assert not folder.capabilities(keyring).serve_clients
    primary = tmslicense.new_installation_id()
    lic = _recent(make_license, kind="mirrored", ids=[primary, this])
    done = folder.import_license(sign(lic).encode("utf-16"), keyring)  # bytes, any encoding
    assert (done.license, done.already_installed) == (lic, False)
    assert done.path == folder.path / "licenses" / f"{lic.license_number}.lic"
    caps = folder.capabilities(keyring)
    assert caps.serve_clients and not caps.change_config
    assert caps.message(Action.SHOW_THINSERVER_DATA) == tmslicense.THINSERVER_DATA_REFUSED
    again = folder.import_license(sign(lic), keyring)
    assert again.already_installed and again.path == done.path


def test_what_does_not_verify_is_refused_and_changes_nothing(folder, make_license, sign, keyring):
    this = folder.installation_id
    newer = _recent(make_license, kind="standard", ids=[this], serial="NEWER")
    folder.import_license(sign(newer), keyring)
    before = sorted(p.read_bytes() for p in folder.path.rglob("*.lic"))
    older = tmslicense.License.create(
        **{
            **{f: getattr(newer, f) for f in ("license_number", "kind", "product", "edition")},
            **{f: getattr(newer, f) for f in ("seats", "features", "customer", "expires_at")},
            "maintenance_end": newer.maintenance_end,
            "installation_ids": [this],
            "serial": "OLDER",
            "issued_at": newer.issued_at - timedelta(days=3),
        }
    )
    with pytest.raises(tmslicense.AlreadyReplaced, match="newer file"):
        folder.import_license(sign(older), keyring)
    foreign = _recent(make_license, kind="standard")
    with pytest.raises(tmslicense.NotForThisServer):
        folder.import_license(sign(foreign), keyring)
    assert sorted(p.read_bytes() for p in folder.path.rglob("*.lic")) == before


def test_a_revoked_list_stops_the_file_it_names(
    folder, make_license, sign, keyring, private_key, kid
):
    lic = _recent(make_license, kind="standard", ids=[folder.installation_id])
    folder.import_license(sign(lic), keyring)
    signed = tmslicense.sign_revoked_list([lic.serial], private_key, kid)
    assert folder.add_revoked_list(signed.encode(), keyring) == [lic.serial]
    assert folder.add_revoked_list(signed, keyring) == []  # added once
    valid, refused = folder.licenses(keyring)
    assert valid == [] and "has been revoked" in refused[0][1]
    assert not folder.capabilities(keyring).serve_clients
    with pytest.raises(tmslicense.BadSignature):
        folder.add_revoked_list(signed.replace(lic.serial, "0" * 16), keyring)


def test_capabilities_are_decided_at_the_time_asked(folder, make_license, sign, keyring):
    ends = datetime.now(UTC).replace(microsecond=0) + timedelta(days=30)
    lic = _recent(make_license, kind="standard", ids=[folder.installation_id], expires_at=ends)
    folder.import_license(sign(lic), keyring)
    assert folder.capabilities(keyring).run_console
    later = folder.capabilities(keyring, now=ends + timedelta(seconds=1))
    assert not later.run_console and "expired on" in later.message(Action.RUN_CONSOLE)


def test_a_folder_with_no_installation_is_refused_and_nothing_is_made(
    tmp_path, make_license, sign, keyring, private_key, kid
):
    """A mistyped path must not become a new server with an ID of its own."""
    folder = tmslicense.DataFolder(tmp_path / "mistyped")
    lic = make_license("standard")
    signed = tmslicense.sign_revoked_list(["0" * 16], private_key, kid)
    for call in (
        lambda: folder.capabilities(keyring),
        lambda: folder.licenses(keyring),
        lambda: folder.import_license(sign(lic), keyring),
        lambda: folder.add_revoked_list(signed, keyring),
    ):
        with pytest.raises(tmslicense.DataFolderError, match="holds no installation"):
            call()
    assert not folder.path.exists()


@pytest.mark.parametrize("damage", ["zz", "00" * 16])
def test_a_damaged_installation_secret_is_said_so_and_kept(
    folder, make_license, sign, keyring, private_key, kid, damage
):
    """Never replaced by a new secret: that would make this a new server, whose licenses
    were activated for another Installation ID."""
    lic = _recent(make_license, kind="standard", ids=[folder.installation_id])
    folder.import_license(sign(lic), keyring)
    secret = folder.path / "installation.secret"
    secret.write_text(damage)
    signed = tmslicense.sign_revoked_list(["0" * 16], private_key, kid)
    for call in (
        lambda: folder.installation_id,
        lambda: folder.capabilities(keyring),
        lambda: folder.licenses(keyring),
        lambda: folder.import_license(sign(lic), keyring),
        lambda: folder.add_revoked_list(signed, keyring),
    ):
        with pytest.raises(
            tmslicense.DataFolderError,
            match=f"^{re.escape(str(secret))} is damaged.*Restore it from a backup",
        ):
            call()
    assert secret.read_text() == damage


def _issues(make_license, this, *, old_expires, new_expires):
    now = datetime.now(UTC).replace(microsecond=0)
    old = make_license(
        "standard",
        ids=[this],
        seats=50,
        serial="OLD",
        expires_at=old_expires,
        issued_at=now - timedelta(days=10),
    )
    new = make_license(
        "standard",
        ids=[this],
        seats=5,
        serial="NEW",
        expires_at=new_expires,
        license_number=old.license_number,
        issued_at=now - timedelta(days=1),
    )
    return old, new


def test_an_older_issue_does_not_count_again_once_the_newer_expired(
    folder, make_license, sign, keyring
):
    """Support shortened a license and reissued it; the old file is still in the folder
    under another name (saved from an e-mail)."""
    now = datetime.now(UTC).replace(microsecond=0)
    old, new = _issues(
        make_license,
        folder.installation_id,
        old_expires=now + timedelta(days=300),
        new_expires=now + timedelta(days=30),
    )
    folder.import_license(sign(new), keyring)
    (folder.path / "licenses" / "saved-from-mail.lic").write_text(sign(old))
    assert folder.capabilities(keyring).seats == 5
    caps = folder.capabilities(keyring, now=now + timedelta(days=31))
    assert caps.role is None and caps.seats == 0
    assert "expired on" in caps.message(Action.SERVE_CLIENTS)
    # Nor is it imported over the newer one, expired or not.
    with pytest.raises(tmslicense.LicenseError, match="newer file"):
        folder.import_license(sign(old), keyring)


def test_a_file_installed_under_another_name_is_found_installed_already(
    folder, make_license, sign, keyring
):
    lic = _recent(make_license, kind="standard", ids=[folder.installation_id])
    (folder.path / "licenses").mkdir()
    saved = folder.path / "licenses" / "attachment.lic"
    saved.write_text(sign(lic))
    done = folder.import_license(sign(lic), keyring)
    assert done.already_installed and done.path == saved
    assert [p.name for p in (folder.path / "licenses").iterdir()] == ["attachment.lic"]


def test_a_revoked_or_expired_file_is_not_imported(
    folder, make_license, sign, keyring, private_key, kid
):
    this = folder.installation_id
    revoked = _recent(make_license, kind="standard", ids=[this], serial="REVOKED")
    folder.add_revoked_list(tmslicense.sign_revoked_list(["REVOKED"], private_key, kid), keyring)
    with pytest.raises(tmslicense.LicenseRevoked):
        folder.import_license(sign(revoked), keyring)
    ends = datetime.now(UTC) + timedelta(days=5)
    expiring = _recent(
        make_license, kind="standard", ids=[this], expires_at=ends.replace(microsecond=0)
    )
    with pytest.raises(tmslicense.LicenseExpired):
        folder.import_license(sign(expiring), keyring, now=ends + timedelta(days=1))
    assert not (folder.path / "licenses").exists()
    with pytest.raises(tmslicense.MalformedFile, match="not text"):
        folder.add_revoked_list(b"\xff\xfe\x00\xd8" + b"\x00" * 9, keyring)


def test_a_refusal_names_the_files_that_do_not_verify(
    folder, make_license, keyring, private_key, kid
):
    from tests.tmslicense.envelope import armor, envelope

    lic = _recent(make_license, kind="standard", ids=[folder.installation_id])
    forged = armor(envelope(lic.to_payload(), private_key.sign(b"another payload"), kid=kid))
    (folder.path / "licenses").mkdir()
    (folder.path / "licenses" / "changed.lic").write_text(forged)
    message = folder.capabilities(keyring).message(Action.RUN_CONSOLE)
    assert message.startswith("No valid license")
    assert " Not used: changed.lic: The license file's signature does not match" in message


def test_importing_tmslicense_to_verify_loads_no_data_folder_part():
    import subprocess
    import sys

    code = (
        "import sys, tmslicense; print('tmslicense.store' in sys.modules, 'pathlib' in "
        "sys.modules); print('DataFolder' in dir(tmslicense), tmslicense.DataFolder.__name__)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.split() == ["False", "False", "True", "DataFolder"], result.stderr


def test_a_licenses_path_that_is_a_file_is_refused_and_kept(folder, make_license, sign, keyring):
    """A license file copied to DATA_DIR/licenses by mistake: read as "no license", every
    installed license would stop counting without a word."""
    from tmslicense import store

    this = folder.installation_id
    lic = _recent(make_license, kind="standard", ids=[this])
    misplaced = folder.path / "licenses"
    misplaced.write_text(sign(lic))
    before = {p.name for p in folder.path.iterdir()}
    for call in (
        lambda: folder.licenses(keyring),
        lambda: folder.capabilities(keyring),
        lambda: folder.import_license(sign(lic), keyring),
        lambda: store.installed(folder.path),
        lambda: store.placement(folder.path, lic, None),
    ):
        with pytest.raises(
            tmslicense.DataFolderError,
            match=f"^{re.escape(str(misplaced))} is a file, but it should be the folder",
        ):
            call()
    assert misplaced.read_text() == sign(lic)
    assert {p.name for p in folder.path.iterdir()} - {".lock"} == before  # no file written


def test_a_licenses_folder_that_cannot_be_read_is_an_error_not_no_license(
    folder, make_license, sign, keyring, unreadable
):
    lic = _recent(make_license, kind="standard", ids=[folder.installation_id])
    folder.import_license(sign(lic), keyring)
    unreadable(folder.path / "licenses")
    for call in (
        lambda: folder.licenses(keyring),
        lambda: folder.capabilities(keyring),
        lambda: folder.import_license(sign(lic), keyring),
    ):
        with pytest.raises(PermissionError):
            call()


MAILS = [
    # An e-mail in Latin-1: each accented byte is no UTF-8, and would be kept as U+FFFD.
    lambda text: b"Bonjour " + b"\xe9" * 30_000 + b"\n" + text.encode(),
    # Notepad's "Unicode": Japanese takes 2 bytes a character in UTF-16, 3 in UTF-8.
    lambda text: ("ライセンスファイルを送ります。\n" * 1_500 + text).encode("utf-16"),
]


@pytest.mark.parametrize("mail", MAILS, ids=["latin-1", "utf-16"])
def test_only_the_license_file_is_stored_so_what_imports_verifies_again(
    folder, make_license, sign, keyring, mail
):
    """The text around the file in a mail could grow the stored file past MAX_FILE_SIZE: it
    would say "Imported", then count no more."""
    lic = _recent(make_license, kind="standard", ids=[folder.installation_id])
    done = folder.import_license(mail(sign(lic)), keyring)
    assert done.path.read_text() == sign(lic)  # as the site issued it
    assert folder.licenses(keyring) == ([lic], [])
    # Given as any bytes-like value, the same.
    done.path.unlink()
    done = folder.import_license(memoryview(mail(sign(lic))), keyring)
    assert done.path.read_text() == sign(lic) and not done.already_installed


@pytest.mark.parametrize(
    "saved",
    [lambda text: text.encode("utf-16"), *MAILS],  # saved by Notepad as "Unicode"; e-mails
    ids=["utf-16", "latin-1-mail", "utf-16-mail"],
)
def test_a_file_copied_into_the_folder_by_hand_is_read_as_an_import_reads_it(
    folder, make_license, sign, keyring, saved
):
    lic = _recent(make_license, kind="standard", ids=[folder.installation_id])
    (folder.path / "licenses").mkdir()
    (folder.path / "licenses" / "copied.lic").write_bytes(saved(sign(lic)))
    assert folder.licenses(keyring) == ([lic], [])


def test_a_file_mangled_by_mail_is_stored_as_it_was_issued(folder, make_license, sign, keyring):
    lic = _recent(make_license, kind="standard", ids=[folder.installation_id])
    lines = sign(lic).splitlines()
    body = "".join(lines[1:-1])
    rewrapped = [body[i : i + 50] + "  " for i in range(0, len(body), 50)]
    mangled = "> " + "\r\n".join([lines[0], *rewrapped, lines[-1]]) + "\r\n-- \r\nRegards"
    done = folder.import_license(mangled, keyring)
    assert done.path.read_text() == sign(lic)


def test_text_that_cannot_be_stored_around_the_file_is_not_stored(
    folder, make_license, sign, keyring
):
    """A lone surrogate (text from a broken clipboard) cannot be written as UTF-8."""
    lic = _recent(make_license, kind="standard", ids=[folder.installation_id])
    done = folder.import_license("note \ud800\n" + sign(lic), keyring)
    assert done.path.read_text() == sign(lic)
    assert folder.licenses(keyring) == ([lic], [])


def test_an_import_never_writes_through_a_link_placed_in_its_way(
    folder, make_license, sign, keyring, tmp_path
):
    """Whoever may write to licenses/ must not make the server (run as root, say) overwrite
    another file: a link placed where a temporary file of a guessable name would go."""
    import os

    this = folder.installation_id
    lic = _recent(make_license, kind="standard", ids=[this])
    licenses = folder.path / "licenses"
    licenses.mkdir()
    victim = tmp_path / "victim.conf"
    victim.write_text("kept\n")
    for name in (f"{lic.license_number}.lic", "revoked.txt"):
        (licenses / f".{name}.{os.getpid()}.tmp").symlink_to(victim)
        (folder.path / f".{name}.{os.getpid()}.tmp").symlink_to(victim)
    before = os.umask(0o027)  # a plant's: the files the server writes keep to it
    try:
        done = folder.import_license(sign(lic), keyring)
        tmslicense.store.add_revoked(folder.path, ["NOT-THIS-ONE"])
    finally:
        os.umask(before)
    assert victim.read_text() == "kept\n"
    assert not done.path.is_symlink() and done.path.read_text() == sign(lic)
    assert (folder.path / "revoked.txt").read_text().endswith("NOT-THIS-ONE\n")
    assert oct(done.path.stat().st_mode & 0o777) == oct(0o640)
    assert oct((folder.path / "revoked.txt").stat().st_mode & 0o777) == oct(0o640)
    left = {p.name for p in licenses.iterdir() if not p.is_symlink()}
    assert left == {done.path.name}  # no temporary file left behind


def test_an_oversized_file_in_the_folder_is_refused_unread(folder, make_license, sign, keyring):
    """Each status check reads the installed files: one of 64 MiB (copied there by mistake)
    is refused with its size, never read into memory."""
    import tracemalloc

    this = folder.installation_id
    lic = _recent(make_license, kind="standard", ids=[this])
    folder.import_license(sign(lic), keyring)
    big = folder.path / "licenses" / "big.lic"
    with open(big, "wb") as handle:
        handle.truncate(64 * 1024 * 1024)  # sparse: no disk used
    tracemalloc.start()
    try:
        valid, refused = folder.licenses(keyring)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert valid == [lic]
    assert refused == [
        (
            big,
            f"This file is {64 * 1024 * 1024:,} bytes; a license file is at "
            "most 65,536 bytes. Choose the .lic file downloaded from the license site.",
        )
    ]
    assert peak < 4 * 1024 * 1024


def test_a_file_copied_in_by_hand_counts_whatever_the_case_of_its_extension(
    folder, make_license, sign, keyring
):
    this = folder.installation_id
    lic = _recent(make_license, kind="standard", ids=[this])
    licenses = folder.path / "licenses"
    licenses.mkdir()
    (licenses / "TM-COPY.LIC").write_text(sign(lic))
    (licenses / "notes.txt").write_text("not a license")
    assert folder.licenses(keyring) == ([lic], [])
    assert folder.capabilities(keyring).role is tmslicense.Role.PRIMARY


def test_an_empty_path_is_no_data_folder(tmp_path, monkeypatch):
    """An unset setting read as "" would be the current folder, where installation_id would
    make a new server: refused, as the command line refuses an empty --data-dir."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match="give the data folder"):
        tmslicense.DataFolder("")
    assert list(tmp_path.iterdir()) == []


def test_a_license_moved_elsewhere_is_removed_by_its_number(folder, make_license, sign, keyring):
    this = folder.installation_id
    moved = _recent(make_license, kind="standard", ids=[this], serial="MOVED")
    kept = _recent(make_license, kind="standard", ids=[this], serial="KEPT")
    for lic in (moved, kept):
        folder.import_license(sign(lic), keyring)
    with pytest.raises(tmslicense.InvalidLicenseNumber):
        folder.remove_license("TM-0000")
    typed = moved.license_number.lower().replace("-", " ")  # as a person might type it
    path = folder.path / "licenses" / f"{moved.license_number}.lic"
    assert folder.remove_license(typed) == [(path, moved)]
    assert not path.exists()
    assert [lic.serial for lic in folder.capabilities(keyring).licenses] == ["KEPT"]
    assert folder.remove_license(moved.license_number) == []  # nothing left of it
    # A file named after the license that is no license file goes by its name.
    damaged = folder.path / "licenses" / f"{moved.license_number}.LIC"
    damaged.write_text("not a license")
    assert folder.remove_license(moved.license_number) == [(damaged, None)]
    assert [p.name for p in (folder.path / "licenses").iterdir()] == [f"{kept.license_number}.lic"]


def test_a_file_removed_while_the_folder_is_read_is_not_counted_and_no_error(
    folder, make_license, sign, keyring, monkeypatch
):
    """Reads take no lock: another process's ``remove`` may take a file away between the
    folder's listing and the file's reading. It is gone, not an error that hides the rest."""
    this = folder.installation_id
    gone = _recent(make_license, kind="standard", ids=[this], serial="GONE")
    kept = _recent(make_license, kind="standard", ids=[this], serial="KEPT")
    for lic in (gone, kept):
        folder.import_license(sign(lic), keyring)
    read = tmslicense.store.read_file

    def removed_meanwhile(path, *args, **kwargs):
        if path.name == f"{gone.license_number}.lic":
            path.unlink()
        return read(path, *args, **kwargs)

    monkeypatch.setattr(tmslicense.store, "read_file", removed_meanwhile)
    assert [lic.serial for lic in folder.capabilities(keyring).licenses] == ["KEPT"]


@pytest.mark.parametrize(
    ("code", "why"),
    [
        (
            errno.EACCES,
            "This file cannot be read by this account: check its owner and permissions.",
        ),
        (errno.EIO, "This file cannot be read: Input/output error."),
    ],
    ids=["permission", "disk"],
)
def test_a_file_that_cannot_be_read_is_not_used_and_the_others_count(
    folder, make_license, sign, keyring, unreadable_file, code, why
):
    """A file stored by another account (``sudo tmslicense import`` with umask 077: root's,
    mode 600) stops only itself, not every license of the server."""
    this = folder.installation_id
    locked_out = _recent(make_license, kind="standard", ids=[this], serial="LOCKED")
    kept = _recent(make_license, kind="standard", ids=[this], serial="KEPT")
    for lic in (locked_out, kept):
        folder.import_license(sign(lic), keyring)
    path = folder.path / "licenses" / f"{locked_out.license_number}.lic"
    unreadable_file(path, code)
    assert folder.licenses(keyring) == ([kept], [(path, why)])
    caps = folder.capabilities(keyring)
    assert [lic.serial for lic in caps.licenses] == ["KEPT"] and caps.serve_clients
    # Removed by its name, as a file that is no license file.
    assert folder.remove_license(locked_out.license_number) == [(path, None)]
    assert not path.exists()


def test_an_import_never_writes_over_a_file_of_its_license_that_cannot_be_read(
    folder, make_license, sign, keyring, unreadable_file
):
    """The newer issue stored by another account (root's, mode 600): an older issue imported
    (from an old e-mail) is refused, not written over what it cannot read."""
    this = folder.installation_id
    older = _recent(make_license, kind="standard", ids=[this], serial="OLDER")
    newer = make_license(
        kind="standard",
        ids=[this],
        license_number=older.license_number,
        serial="NEWER",
        issued_at=older.issued_at + timedelta(seconds=1),
    )
    path = folder.import_license(sign(newer), keyring).path
    before = path.read_bytes()
    unreadable_file(path)
    with pytest.raises(tmslicense.UnreadableFile) as refused:
        folder.import_license(sign(older), keyring)
    assert str(refused.value) == (
        f"{path.name}: This file cannot be read by this account: check its owner and "
        f"permissions. It may hold a newer issue of license {older.license_number}: nothing "
        "was changed."
    )
    assert path.read_bytes() == before


def test_an_import_never_writes_over_another_license_saved_under_its_name(
    folder, make_license, sign, keyring
):
    """A file of license B saved by hand under license A's name: importing A keeps B (it
    counts as before) and stores A beside it."""
    this = folder.installation_id
    a = _recent(make_license, kind="standard", ids=[this], seats=5)
    b = _recent(make_license, kind="standard", ids=[this], seats=7)
    (folder.path / "licenses").mkdir()
    misnamed = folder.path / "licenses" / f"{a.license_number}.lic"
    misnamed.write_text(sign(b))
    done = folder.import_license(sign(a), keyring)
    assert done.path == misnamed.with_name(f"{a.license_number}-2.lic")
    assert misnamed.read_text() == sign(b)
    assert folder.capabilities(keyring).seats == 12


@pytest.mark.skipif(os.name != "posix", reason="a folder is synced on POSIX only")
def test_each_file_written_is_lasting_with_its_name(
    tmp_path, make_license, sign, keyring, private_key, kid, monkeypatch
):
    """A rename lasts only once the folder holding it is on disk too: after a power cut the
    new secret must not vanish (a new server), nor the revoked list go back to an older one."""
    synced = []
    fsync = os.fsync

    def recording(fd):
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        return fsync(fd)

    monkeypatch.setattr(os, "fsync", recording)
    folder = tmslicense.DataFolder(tmp_path / "tms")
    lic = _recent(make_license, kind="standard", ids=[folder.installation_id])
    assert synced == [str(tmp_path), str(folder.path)]  # the new folder's, the secret's
    folder.import_license(sign(lic), keyring)
    folder.add_revoked_list(tmslicense.sign_revoked_list(["GONE"], private_key, kid), keyring)
    folder.install_keyring(keyring.to_json())
    licenses = str(folder.path / "licenses")
    assert synced[2:] == [str(folder.path), licenses, str(folder.path), str(folder.path)]


def test_a_folder_that_cannot_be_synced_still_takes_its_files(
    folder, make_license, sign, keyring, monkeypatch
):
    """Some network shares refuse to sync a folder (EINVAL) after the rename was made: the
    change is made, not reported as failed."""
    fsync = os.fsync

    def refused_for_folders(fd):
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            raise OSError(22, "Invalid argument")
        return fsync(fd)

    monkeypatch.setattr(os, "fsync", refused_for_folders)
    lic = _recent(make_license, kind="standard", ids=[folder.installation_id])
    folder.import_license(sign(lic), keyring)
    assert folder.capabilities(keyring).serve_clients


def test_a_change_waits_for_the_folder_as_long_as_asked(folder, make_license, sign, keyring):
    lic = _recent(make_license, kind="standard", ids=[folder.installation_id])
    impatient = tmslicense.DataFolder(folder.path, lock_wait=0.2)
    busy = pytest.raises(tmslicense.DataFolderError, match=r"for 0\.2 s")
    with tmslicense.store.locked(folder.path), busy:  # another process changing the folder
        impatient.import_license(sign(lic), keyring)
    assert impatient.licenses(keyring) == ([], [])


def test_the_folder_keeps_the_sites_keyring_and_refuses_one_that_drops_a_used_key(
    folder, make_license, sign, keyring, kid
):
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    folder.installation_id  # noqa: B018 - a server
    with pytest.raises(tmslicense.KeyringError, match="No keyring at .*keyring.json"):
        folder.keyring()
    with pytest.raises(tmslicense.KeyringError, match="not valid JSON"):
        folder.install_keyring(b"<html>Sign in</html>")  # a log-in page saved by mistake
    assert not (folder.path / "keyring.json").exists()

    change = folder.install_keyring(keyring.to_json().encode())
    assert (change.added, change.removed) == ([kid], [])
    assert folder.keyring() == keyring
    lic = _recent(make_license, kind="standard", ids=[folder.installation_id])
    folder.import_license(sign(lic), keyring)

    # The site rotated its key: its keyring lists both; later, the new one alone.
    new_key = Ed25519PrivateKey.generate().public_key()
    both = tmslicense.Keyring([*keyring.values(), new_key])
    change = folder.install_keyring(both.to_json())
    assert (change.added, change.removed) == ([tmslicense.key_id(new_key)], [])
    before = (folder.path / "keyring.json").read_bytes()
    refused = pytest.raises(
        tmslicense.KeyringError, match=f"the file license {lic.license_number} counts by"
    )
    with refused:
        folder.install_keyring(tmslicense.Keyring([new_key]).to_json())
    assert (folder.path / "keyring.json").read_bytes() == before
    assert folder.capabilities(folder.keyring()).serve_clients
    # One file given where a list of them is taken: said so, not "not a license file".
    for one in (sign(lic), sign(lic).encode()):
        with pytest.raises(TypeError, match=r"a list of license files \(\[file\]\), not one"):
            folder.install_keyring(tmslicense.Keyring([new_key]).to_json(), one)
    assert (folder.path / "keyring.json").read_bytes() == before
    # Once the license is gone (or reissued with the new key), the old key may go.
    folder.remove_license(lic.license_number)
    change = folder.install_keyring(tmslicense.Keyring([new_key]).to_json())
    assert change.removed == [kid]


def _reissued_under_a_new_key(folder, make_license):
    """A standard license for the folder's server, issued (signed with the tests' key), and
    its newer issue signed with the key the site rotated to: (the older issue, the newer's
    file, the new key's public key)."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    older = _recent(
        make_license, kind="standard", ids=[folder.installation_id], serial="OLDER", seats=5
    )
    newer = make_license(
        kind="standard",
        ids=[folder.installation_id],
        license_number=older.license_number,
        serial="NEWER",
        seats=50,
        issued_at=older.issued_at + timedelta(seconds=1),
    )
    rotated = Ed25519PrivateKey.generate()
    newer_file = tmslicense.sign_license(newer, rotated, tmslicense.key_id(rotated))
    return older, newer_file, rotated.public_key()


def test_a_keyring_that_would_let_an_older_issue_count_instead_is_refused(
    folder, make_license, sign, keyring
):
    older, newer, new_key = _reissued_under_a_new_key(folder, make_license)
    folder.install_keyring(keyring.to_json())
    # A copy of the older issue left in the folder by hand, beside the newer one.
    (folder.path / "licenses").mkdir()
    (folder.path / "licenses" / "copy.lic").write_text(sign(older))
    both = tmslicense.Keyring([*keyring.values(), new_key])
    folder.install_keyring(both.to_json())
    folder.import_license(newer, both)
    assert folder.capabilities(both).seats == 50
    with pytest.raises(tmslicense.KeyringError, match="an older issue would instead"):
        folder.install_keyring(keyring.to_json())  # the old key alone
    assert folder.keyring() == both


def test_a_keyring_that_only_adds_the_key_of_a_newer_issue_copied_in_is_taken(
    folder, make_license, sign, keyring
):
    """The site rotated its key; the new key's file was copied into the folder by hand beside
    the old one. The site's keyring (both keys) lets the newer issue count instead: no loss."""
    older, newer, new_key = _reissued_under_a_new_key(folder, make_license)
    folder.install_keyring(keyring.to_json())
    folder.import_license(sign(older), keyring)
    (folder.path / "licenses" / "newer.lic").write_text(newer)
    both = tmslicense.Keyring([*keyring.values(), new_key])
    change = folder.install_keyring(both.to_json())
    assert change.added == [tmslicense.key_id(new_key)]
    assert folder.capabilities(folder.keyring()).seats == 50


def test_an_import_keeps_a_newer_issue_in_its_place_that_it_cannot_verify(
    folder, make_license, sign, keyring
):
    """Imported with a keyring that lacks the key of the newer issue installed (an old copy
    of the keyring, given by its path): the newer file is kept, and the refusal says why."""
    older, newer, new_key = _reissued_under_a_new_key(folder, make_license)
    both = tmslicense.Keyring([*keyring.values(), new_key])
    done = folder.import_license(newer, both)
    before = done.path.read_bytes()
    with pytest.raises(tmslicense.AlreadyReplaced) as refused:
        folder.import_license(sign(older), keyring)  # the old key alone
    assert str(refused.value).startswith(
        f"{done.path.name} holds a newer file for license {older.license_number} (serial "
        "NEWER, issued "
    )
    assert str(refused.value).endswith(
        "signed with a key this keyring does not trust: update the keyring from the license "
        "site. Nothing was changed; to install this older issue instead, remove that file first."
    )
    assert done.path.read_bytes() == before
    assert folder.capabilities(both).seats == 50
    # A damaged file in its place is no newer issue: replaced (damaged before its key id, or
    # after it: an unknown key's file whose content is no license).
    unknown_key_no_license = armor(envelope(b"not json", b"\0" * 64, kid="0123456789abcdef"))
    for damaged in ("damaged", unknown_key_no_license):
        done.path.write_text(damaged)
        assert folder.import_license(sign(older), keyring).path == done.path
        assert folder.capabilities(keyring).seats == 5


def test_an_older_issue_under_a_key_retired_since_is_refused_as_the_older_issue(
    folder, make_license, sign
):
    """The site rotated its key and retired the old one; the server has the new keyring and
    the reissued file. The old file imported again is an older issue, said so: not a file
    whose key to trust (which would lead back to the same refusal)."""
    older, newer, new_key = _reissued_under_a_new_key(folder, make_license)
    rotated = tmslicense.Keyring([new_key])
    folder.install_keyring(rotated.to_json())
    done = folder.import_license(newer, rotated)
    before = done.path.read_bytes()
    with pytest.raises(tmslicense.AlreadyReplaced) as refused:
        folder.import_license(sign(older))
    assert str(refused.value).startswith(
        f"A newer file for license {older.license_number} (serial NEWER, issued "
    )
    assert done.path.read_bytes() == before
    # A file of another license under that key is still one whose key is not trusted.
    other = make_license(kind="standard", ids=[folder.installation_id])
    with pytest.raises(tmslicense.UnknownKey):
        folder.import_license(sign(other))


def test_an_import_is_refused_a_file_whose_key_the_folders_keyring_no_longer_trusts(
    folder, make_license, sign, keyring
):
    """A TMS holds the keyring it read at its start; meanwhile the folder's keyring was
    replaced by one without the newer file's key. Imported, that file would take the place
    of the one that counts and count by none: refused, the folder as it was."""
    older, newer, new_key = _reissued_under_a_new_key(folder, make_license)
    folder.install_keyring(keyring.to_json())
    done = folder.import_license(sign(older), keyring)
    before = done.path.read_bytes()
    held = tmslicense.Keyring([*keyring.values(), new_key])  # read before the folder's changed
    with pytest.raises(tmslicense.UnknownKey, match="keyring.json does not trust key"):
        folder.import_license(newer, held)
    assert done.path.read_bytes() == before
    assert folder.capabilities(folder.keyring()).seats == 5
    # Nor while the folder's keyring is damaged (restored, it would not trust the new file).
    kept = (folder.path / "keyring.json").read_bytes()
    (folder.path / "keyring.json").write_bytes(kept[:20])
    with pytest.raises(tmslicense.KeyringError):
        folder.import_license(newer, held)
    assert done.path.read_bytes() == before


def test_a_keyring_without_the_key_in_use_is_kept_with_the_files_issued_under_its_keys(
    folder, make_license, sign, keyring
):
    """The site stopped listing a key (a compromised one) and reissued its files under the
    new key: neither the site's keyring alone (the license would stop counting) nor the new
    file alone (this keyring does not trust its key) can be taken; both together are, in one
    step: the license counts by its new file throughout."""
    older, newer, new_key = _reissued_under_a_new_key(folder, make_license)
    folder.install_keyring(keyring.to_json())
    folder.import_license(sign(older), keyring)
    sites = tmslicense.Keyring([new_key]).to_json()
    with pytest.raises(tmslicense.KeyringError, match="give the license's new file with it"):
        folder.install_keyring(sites)
    # Refused whole when one of the files is (here one the new keyring does not trust).
    with pytest.raises(tmslicense.UnknownKey):
        folder.install_keyring(sites, licenses=[newer, sign(make_license("standard"))])
    assert folder.keyring() == keyring
    assert folder.capabilities(keyring).seats == 5

    change = folder.install_keyring(sites, licenses=[newer.encode()])
    assert (change.added, change.removed) == ([tmslicense.key_id(new_key)], list(keyring))
    assert [done.license.serial for done in change.imported] == ["NEWER"]
    assert change.imported[0].replaced.serial == "OLDER"
    assert folder.capabilities(folder.keyring()).seats == 50
    assert folder.licenses(folder.keyring())[1] == []  # no file left that does not verify
    # Given again (the same file installed already): nothing more to do.
    assert folder.install_keyring(sites, licenses=[newer]).imported == []


def test_a_check_during_a_key_rotation_reads_the_keyring_and_files_of_one_moment(
    folder, make_license, sign, keyring, monkeypatch
):
    """Reads take no lock: a check that read the keyring before a rotation and the files
    after it trusted none of them (a boot refused). It reads again when the keyring changed
    meanwhile."""
    older, newer, new_key = _reissued_under_a_new_key(folder, make_license)
    folder.install_keyring(keyring.to_json())
    folder.import_license(sign(older))
    installed = tmslicense.store.DataFolder._installed
    rotated = []

    def rotation_meanwhile(self, ring, this):
        if not rotated:  # another process, between this check's keyring and its files
            rotated.append(True)
            folder.install_keyring(tmslicense.Keyring([new_key]).to_json(), licenses=[newer])
        return installed(self, ring, this)

    monkeypatch.setattr(tmslicense.store.DataFolder, "_installed", rotation_meanwhile)
    assert folder.capabilities().seats == 50


def test_ctrl_c_while_a_keyring_is_kept_with_its_files_waits_for_it_to_be_whole(
    folder, make_license, sign, keyring, monkeypatch
):
    """Interrupted while its files are written, the change is finished first, then the
    interruption taken: the key the site dropped (a compromised one, say) is not left trusted
    beside the new one."""
    import signal

    older, newer, new_key = _reissued_under_a_new_key(folder, make_license)
    folder.install_keyring(keyring.to_json())
    folder.import_license(sign(older))
    store_file = tmslicense.store.store_file

    def interrupted(*args):
        os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C, as the file is written
        return store_file(*args)

    monkeypatch.setattr(tmslicense.store, "store_file", interrupted)
    sites = tmslicense.Keyring([new_key])
    with pytest.raises(KeyboardInterrupt):
        folder.install_keyring(sites.to_json(), licenses=[newer])
    assert folder.keyring() == sites
    assert folder.capabilities().seats == 50
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    # A TMS's own handler is called once the change is whole, and kept.
    monkeypatch.undo()
    other = tmslicense.DataFolder(folder.path.parent / "other")
    older, newer, new_key = _reissued_under_a_new_key(other, make_license)
    other.install_keyring(keyring.to_json())
    other.import_license(sign(older))
    monkeypatch.setattr(tmslicense.store, "store_file", interrupted)
    calls = []

    def own(number, frame):
        calls.append(number)

    signal.signal(signal.SIGINT, own)
    try:
        other.install_keyring(tmslicense.Keyring([new_key]).to_json(), licenses=[newer])
        assert calls == [signal.SIGINT] and signal.getsignal(signal.SIGINT) is own
        assert other.capabilities().seats == 50
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def test_without_a_keyring_given_the_folders_is_read_at_each_call(
    folder, make_license, sign, keyring, private_key, kid
):
    """A TMS that runs for months asks with the folder's keyring as it is at that moment:
    after a rotation kept with its files, its license still counts (a keyring read at the
    start and kept would trust none of them)."""
    older, newer, new_key = _reissued_under_a_new_key(folder, make_license)
    folder.install_keyring(keyring.to_json())
    folder.import_license(sign(older))
    held = folder.keyring()
    folder.install_keyring(tmslicense.Keyring([new_key]).to_json(), licenses=[newer])
    assert folder.capabilities().seats == 50
    assert [lic.serial for lic in folder.licenses()[0]] == ["NEWER"]
    assert folder.capabilities(held).seats == 0  # a keyring given is taken as it is
    other = tmslicense.DataFolder(folder.path.parent / "other")
    other.installation_id  # noqa: B018 - a server, with no keyring yet
    with pytest.raises(tmslicense.KeyringError, match="No keyring at"):
        other.capabilities()


def test_a_keyring_kept_with_its_files_leaves_a_license_counting_if_cut_off_half_way(
    folder, make_license, sign, keyring, monkeypatch
):
    """A power cut (here: the disk full) between the files and the keyring: the folder's
    keyring trusts both keys meanwhile, so the license counts by its old file or its new one,
    never by none."""
    older, newer, new_key = _reissued_under_a_new_key(folder, make_license)
    folder.install_keyring(keyring.to_json())
    folder.import_license(sign(older), keyring)
    sites = tmslicense.Keyring([new_key])
    write = tmslicense.store._write

    def cut_off_at_the_new_keyring(target, text):
        if text == sites.to_json():
            raise OSError(28, "No space left on device")
        return write(target, text)

    monkeypatch.setattr(tmslicense.store, "_write", cut_off_at_the_new_keyring)
    with pytest.raises(OSError, match="No space left"):
        folder.install_keyring(sites.to_json(), licenses=[newer])
    assert folder.capabilities(folder.keyring()).seats == 50  # the new file, trusted meanwhile
    monkeypatch.undo()
    folder.install_keyring(sites.to_json(), licenses=[newer])  # run again: done
    assert folder.keyring() == sites and folder.capabilities(sites).seats == 50


def test_the_keyring_of_a_folder_with_no_installation_is_refused_as_the_rest(tmp_path, keyring):
    """A mistyped data folder: asked for its keyring, or given one, it says there is no
    installation there (not where to save a keyring), and makes nothing."""
    folder = tmslicense.DataFolder(tmp_path / "mistyped")
    for call in (folder.keyring, lambda: folder.install_keyring(b"not a keyring")):
        with pytest.raises(tmslicense.DataFolderError, match="holds no installation"):
            call()
    assert not (tmp_path / "mistyped").exists()


def test_a_link_in_place_of_the_lock_is_refused_not_followed(
    folder, make_license, sign, keyring, tmp_path
):
    """Whoever may write to the data folder must not make a command run as root create (or
    lock) another file through a `.lock` link: /etc/nologin would lock out every login."""
    lic = _recent(make_license, kind="standard", ids=[folder.installation_id])
    victim = tmp_path / "created-by-lock"
    (folder.path / ".lock").symlink_to(victim)
    with pytest.raises(tmslicense.DataFolderError, match=r"\.lock is a link"):
        folder.import_license(sign(lic), keyring)
    assert not victim.exists()
    assert not (folder.path / "licenses").exists()


@pytest.mark.parametrize("made", ["pipe", "folder"])
def test_a_pipe_or_folder_where_the_file_goes_is_named_and_kept(
    folder, make_license, sign, keyring, made
):
    """A pipe would be read for ever (holding the folder's lock); a folder was named by the
    temporary file's name. Each is named, and nothing is changed."""
    import os

    lic = _recent(make_license, kind="standard", ids=[folder.installation_id])
    (folder.path / "licenses").mkdir()
    target = folder.path / "licenses" / f"{lic.license_number}.lic"
    os.mkfifo(target) if made == "pipe" else target.mkdir()
    with pytest.raises(tmslicense.DataFolderError, match=f"{target.name} is not a file"):
        folder.import_license(sign(lic), keyring)
    assert target.exists() and not target.is_file()
    assert [p.name for p in target.parent.iterdir()] == [target.name]


def test_what_a_killed_import_left_half_written_is_removed_by_the_next_change(
    folder, make_license, sign, keyring, tmp_path
):
    """A TMS killed (power cut, SIGKILL) between writing an import's file and renaming it
    leaves a hidden temporary file: the next change of the folder, which holds its lock as
    every writer does, removes it; other files are kept."""
    import signal
    import subprocess
    import sys

    lic = _recent(make_license, kind="standard", ids=[folder.installation_id])
    folder.install_keyring(keyring.to_json())
    file = tmp_path / "from-the-site.lic"
    file.write_text(sign(lic))
    killed = (
        "import os, signal, sys, tmslicense\n"
        "os.replace = lambda *args: os.kill(os.getpid(), signal.SIGKILL)\n"
        "tmslicense.DataFolder(sys.argv[1]).import_license(open(sys.argv[2], 'rb').read())\n"
    )
    run = subprocess.run([sys.executable, "-c", killed, str(folder.path), str(file)])
    assert run.returncode == -signal.SIGKILL
    licenses = folder.path / "licenses"
    left = [path.name for path in licenses.iterdir()]
    assert len(left) == 1 and re.fullmatch(r"\..+\.lic\.[0-9a-f]{16}\.tmp", left[0])
    kept = [licenses / ".notes.txt", folder.path / ".backup.tmp"]
    for path in kept:
        path.write_text("the server's own")
    folder.import_license(sign(lic))
    assert sorted(licenses.iterdir()) == sorted(
        [licenses / ".notes.txt", licenses / f"{lic.license_number}.lic"]
    )
    assert all(path.read_text() == "the server's own" for path in kept)


def test_what_root_writes_under_a_strict_umask_stays_the_servers_accounts(
    tmp_path, make_license, sign, keyring
):
    """A server runs under an account of its own; an administrator runs a command with sudo
    under a umask of 077. A file written in place of another keeps its owner and mode, and
    what is new (the licenses folder, a license file, the lock) goes to the folder's owner:
    otherwise each is root's alone, and the server counts no license."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        pytest.skip("only root can give a file to another account: run as root to test it")
    server = 65534  # the server's account ("nobody")
    folder = tmslicense.DataFolder(tmp_path / "tms")
    folder.path.mkdir()
    os.chown(folder.path, server, server)
    umask = os.umask(0o077)
    try:
        this = folder.installation_id  # a new server's secret, made by root
    finally:
        os.umask(umask)
    assert (folder.path / "installation.secret").stat().st_uid == server
    folder.install_keyring(keyring.to_json().encode())
    (folder.path / ".lock").unlink()
    for path in [folder.path, *folder.path.iterdir()]:
        os.chown(path, server, server)
    os.chmod(folder.path / "keyring.json", 0o640)
    umask = os.umask(0o077)
    try:
        folder.install_keyring(keyring.to_json().encode())  # written again, as root
        folder.import_license(sign(_recent(make_license, kind="standard", ids=[this])), keyring)
    finally:
        os.umask(umask)
    made = [folder.path, *folder.path.rglob("*")]
    assert {p.name for p in made} >= {".lock", "licenses", "keyring.json"}
    assert all((p.stat().st_uid, p.stat().st_gid) == (server, server) for p in made), made
    assert stat.S_IMODE((folder.path / "keyring.json").stat().st_mode) == 0o640
    assert folder.capabilities(keyring).serve_clients


def test_root_gives_the_folders_owner_no_file_through_a_link_put_in_its_way(tmp_path):
    """Between root making the licenses folder and giving it to the data folder's owner,
    that owner could put a link in its place: the link is given, never the file it names."""
    from tmslicense import store
    from tmslicense.ids import give_to_folders_owner

    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        pytest.skip("only root can give a file to another account: run as root to test it")
    data = tmp_path / "tms"
    data.mkdir()
    os.chown(data, 65534, 65534)
    elsewhere = tmp_path / "shadow"
    elsewhere.write_text("root's")
    (data / "licenses").symlink_to(elsewhere)
    give_to_folders_owner(data / "licenses", data)
    assert elsewhere.stat().st_uid == 0
    assert os.lstat(data / "licenses").st_uid == 65534
    # Nor a lock that is a second name of another file (a hard link the owner put there).
    os.link(elsewhere, data / ".lock")
    with store.locked(data):
        pass
    assert elsewhere.stat().st_uid == 0
