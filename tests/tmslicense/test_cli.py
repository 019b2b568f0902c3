"""`python -m tmslicense` as a TMS operator uses it: id, import, status, check, verify, revoked,
remove, keyring."""

import base64
import json
import os
import re
import subprocess
import sys
import threading
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

import tmslicense
from tests.tmslicense.conftest import NOW
from tmslicense import cli, store

ROOT = Path(__file__).resolve().parents[2]


class Tms:
    """One ThinManager Server: its own data folder, trusting the site's keyring."""

    def __init__(self, folder: Path, keyring: tmslicense.Keyring, runs_as=()):
        folder.mkdir(parents=True, exist_ok=True)
        self.data = folder / "data"
        self.keyring = folder / "keyring.json"
        self.keyring.write_text(keyring.to_json())
        self.runs_as = list(runs_as)  # a command that runs the next one as another account
        self.installation_id = self.run("id").stdout.strip()

    def run(self, *args):
        return subprocess.run(
            [
                *self.runs_as,
                sys.executable,
                "-m",
                "tmslicense",
                "--data-dir",
                str(self.data),
                "--keyring",
                str(self.keyring),
                *args,
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )

    def snapshot(self):
        return {
            p.relative_to(self.data): p.read_bytes()
            for p in sorted(self.data.rglob("*"))
            if p.is_file()
        }


@pytest.fixture
def pair(tmp_path, keyring):
    return Tms(tmp_path / "a", keyring), Tms(tmp_path / "b", keyring)


@pytest.fixture
def revoked_list(private_key, kid):
    """A list of revoked serials as the license site signs it."""

    def make(*serials):
        return tmslicense.sign_revoked_list(serials, private_key, kid, title="Revoked, Site")

    return make


def _file(tmp_path, text, name="license.lic"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_id_is_created_once_and_stable(pair):
    tms, _ = pair
    assert tmslicense.normalize_installation_id(tms.installation_id) == tms.installation_id
    assert tms.run("id").stdout.strip() == tms.installation_id


def test_import_stores_a_good_file_and_status_shows_both_servers(
    pair, make_license, sign, tmp_path
):
    primary, mirror = pair
    lic = _recent(
        make_license, kind="mirrored", ids=[primary.installation_id, mirror.installation_id]
    )
    path = _file(tmp_path, sign(lic))
    for tms in pair:
        result = tms.run("import", path)
        assert result.returncode == 0, result.stderr
        assert lic.license_number in result.stdout

    status = mirror.run("status").stdout
    assert f"Installation ID: {mirror.installation_id}" in status
    assert f"Synchronized ThinManager Server: {primary.installation_id}" in status
    location = next(line for line in status.splitlines() if "Location:" in line)
    assert primary.installation_id in location and mirror.installation_id in location
    assert "(primary)" in location and "(mirror, this server)" in location
    assert "mirrored" in status and "Seats:            25" in status
    assert "Maintenance end:  2027-11-30" in status
    assert "ThinManager is not allowed to display the ThinServer data" in status


def _recent(make_license, **kwargs):
    from datetime import datetime

    return make_license(issued_at=datetime.now(UTC).replace(microsecond=0), **kwargs)


@pytest.mark.parametrize(
    ("kind", "index", "console", "thinserver"),
    [
        ("standard", 0, 0, 0),
        ("standard", None, 1, 1),
        ("mirrored", 0, 0, 0),
        ("mirrored", 1, 1, 1),
        ("enterprise", 0, 0, 0),
        ("enterprise", 1, 0, 0),
        ("enterprise", None, 1, 1),
    ],
)
def test_check_through_the_command_line(
    pair, make_license, sign, tmp_path, kind, index, console, thinserver
):
    this, other = pair
    ids = [this.installation_id, other.installation_id]
    if index == 1:
        ids.reverse()
    if kind == "standard":
        ids = ids[:1]
    if index is None:
        ids = [tmslicense.new_installation_id() for _ in ids]
    lic = _recent(make_license, kind=kind, ids=ids)
    imported = this.run("import", _file(tmp_path, sign(lic)))
    assert imported.returncode == (1 if index is None else 0), imported.stderr
    assert this.run("check", "serve-clients").returncode == (1 if index is None else 0)
    result = this.run("check", "run-console")
    assert result.returncode == console
    result = this.run("check", "show-thinserver-data")
    assert result.returncode == thinserver
    if kind == "mirrored" and index == 1:
        assert result.stderr.strip() == "ThinManager is not allowed to display the ThinServer data"
    if index is None:
        assert "No valid license" in result.stderr


@pytest.mark.parametrize("damage", ["foreign", "tampered", "garbage", "nested", "missing", "huge"])
def test_a_bad_import_stores_and_replaces_nothing(pair, make_license, sign, tmp_path, damage):
    tms, _ = pair
    good = _recent(make_license, kind="standard", ids=[tms.installation_id])
    assert tms.run("import", _file(tmp_path, sign(good), "good.lic")).returncode == 0
    before = tms.snapshot()

    if damage == "foreign":
        text = sign(_recent(make_license, kind="standard"))
    elif damage == "tampered":
        lines = sign(
            _recent(
                make_license,
                kind="standard",
                ids=[tms.installation_id],
                license_number=good.license_number,
            )
        ).splitlines()
        lines[3] = lines[3][:-2] + ("AA" if lines[3][-2:] != "AA" else "BB")
        text = "\n".join(lines)
    elif damage == "garbage":
        text = "this is not a license"
    elif damage == "nested":  # JSON nested deeper than the parser goes
        body = base64.b64encode(b"[" * 40_000).decode()
        text = f"-----BEGIN TMS LICENSE FILE-----\n{body}\n-----END TMS LICENSE FILE-----\n"
    elif damage == "huge":
        text = "x" * (tmslicense.MAX_FILE_SIZE + 10)
    path = str(tmp_path / "absent.lic") if damage == "missing" else _file(tmp_path, text, "bad.lic")

    result = tms.run("import", path)
    assert result.returncode == 1
    assert result.stderr.startswith("refused: ")
    assert tms.snapshot() == before


def test_an_older_issue_does_not_replace_a_newer_one(pair, make_license, sign, tmp_path):
    from datetime import timedelta

    tms, _ = pair
    newer = _recent(make_license, kind="standard", ids=[tms.installation_id], serial="NEWER")
    older = tmslicense.License.create(
        **{
            **_create_args(newer),
            "serial": "OLDER",
            "issued_at": newer.issued_at - timedelta(days=3),
        }
    )
    assert tms.run("import", _file(tmp_path, sign(newer), "n.lic")).returncode == 0
    before = tms.snapshot()
    result = tms.run("import", _file(tmp_path, sign(older), "o.lic"))
    assert result.returncode == 1 and "newer file" in result.stderr
    assert tms.snapshot() == before


def test_a_newer_issue_replaces_the_older_and_says_which(
    pair, make_license, sign, tmp_path, keyring
):
    from datetime import timedelta

    tms, _ = pair
    newer = _recent(make_license, kind="standard", ids=[tms.installation_id], serial="NEWER")
    older = tmslicense.License.create(
        **{**_create_args(newer), "serial": "OLDER", "issued_at": newer.issued_at - timedelta(1)}
    )
    first = tms.run("import", _file(tmp_path, sign(older), "o.lic"))
    assert first.returncode == 0 and "It replaces" not in first.stdout
    result = tms.run("import", _file(tmp_path, sign(newer), "n.lic"))
    assert result.returncode == 0
    assert result.stdout.splitlines()[1] == "It replaces the file with serial OLDER."
    again = tmslicense.DataFolder(tms.data).import_license(sign(newer), keyring)
    assert again.already_installed and again.replaced is None


def test_a_file_imported_again_is_said_to_be_installed_already(pair, make_license, sign, tmp_path):
    tms, _ = pair
    lic = _recent(make_license, kind="standard", ids=[tms.installation_id])
    path = _file(tmp_path, sign(lic))
    assert tms.run("import", path).returncode == 0
    before = tms.snapshot()
    again = tms.run("import", path)
    assert again.returncode == 0
    assert again.stdout.strip() == (
        f"License {lic.license_number}, serial {lic.serial}, is installed already; nothing was "
        "changed."
    )
    assert tms.snapshot() == before


def test_check_says_why_the_installed_files_do_not_count(pair, make_license, sign):
    """A server whose clock was set back (a flat CMOS battery): check names the clock, not
    only "activate a license"."""
    from datetime import datetime, timedelta

    tms, _ = pair
    ahead = datetime.now(UTC).replace(microsecond=0) + timedelta(days=3)
    lic = make_license("standard", ids=[tms.installation_id], issued_at=ahead)
    (tms.data / "licenses").mkdir()
    (tms.data / "licenses" / f"{lic.license_number}.lic").write_text(sign(lic))
    result = tms.run("check", "serve-clients")
    assert result.returncode == 1
    message = result.stderr.strip()
    assert message.startswith("No valid license for this ThinManager Server")
    assert f" Not counted: license {lic.license_number}, issued " in message
    assert message.endswith("UTC): check the clock.")


def test_check_on_a_mirror_also_says_why_its_own_license_does_not_count(pair, make_license, sign):
    """A mirror that also holds a full license of its own, not counting (its clock is
    behind): the refusal is the mirror's, and check says why the full license is not used."""
    from datetime import datetime, timedelta

    mirror, primary = pair
    mirrored = _recent(
        make_license, kind="mirrored", ids=[primary.installation_id, mirror.installation_id]
    )
    ahead = datetime.now(UTC).replace(microsecond=0) + timedelta(days=3)
    own = make_license("standard", ids=[mirror.installation_id], issued_at=ahead, serial="OWN")
    (mirror.data / "licenses").mkdir()
    for lic in (mirrored, own):
        (mirror.data / "licenses" / f"{lic.license_number}.lic").write_text(sign(lic))
    result = mirror.run("check", "run-console")
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert lines[0].startswith("This is a mirrored ThinManager Server")
    assert lines[1].startswith(f"Not used: license {own.license_number}, serial OWN: issued ")
    assert lines[1].endswith("check the clock")


def test_status_of_a_mirror_with_a_duplicate_says_it_is_the_mirror_and_fully_functional(
    pair, make_license, sign
):
    mirror, primary = pair
    mirrored = _recent(
        make_license, kind="mirrored", ids=[primary.installation_id, mirror.installation_id]
    )
    own = _recent(make_license, kind="standard", ids=[mirror.installation_id])
    (mirror.data / "licenses").mkdir()
    for lic in (mirrored, own):
        (mirror.data / "licenses" / f"{lic.license_number}.lic").write_text(sign(lic))
    status = mirror.run("status").stdout
    assert (
        f"This server: primary and mirror of {mirrored.license_number}, fully functional, "
        f"{own.seats + mirrored.seats} seat(s)"
    ) in status
    assert "show-thinserver-data   allowed" in status


def _create_args(lic):
    return dict(
        serial=lic.serial,
        license_number=lic.license_number,
        kind=lic.kind,
        installation_ids=list(lic.installation_ids),
        product=lic.product,
        edition=lic.edition,
        seats=lic.seats,
        features=lic.features,
        customer=lic.customer,
        issued_at=lic.issued_at,
        maintenance_end=lic.maintenance_end,
        expires_at=lic.expires_at,
    )


def test_verify_json_prints_the_license(pair, make_license, sign, tmp_path):
    tms, _ = pair
    lic = _recent(make_license, kind="standard", ids=[tms.installation_id])
    result = tms.run("verify", _file(tmp_path, sign(lic)), "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == lic.to_dict()
    other = tms.run(
        "verify", _file(tmp_path, sign(lic)), "--installation-id", tmslicense.new_installation_id()
    )
    assert other.returncode == 1 and "not for this server" in other.stderr


@pytest.mark.parametrize("command", ["verify", "import", "status", "check", "revoked"])
def test_no_command_but_id_makes_a_server(
    pair, make_license, sign, tmp_path, revoked_list, command
):
    # A mistyped --data-dir is said so: no new Installation ID (or list) is made there.
    tms, _ = pair
    lic = _recent(make_license, kind="standard", ids=[tms.installation_id])
    elsewhere = tmp_path / "elsewhere"
    argument = {
        "check": "serve-clients",
        "status": None,
        "revoked": _file(tmp_path, revoked_list("A1"), "list.txt"),
    }.get(command, _file(tmp_path, sign(lic)))
    result = tms.run("--data-dir", str(elsewhere), command, *filter(None, [argument]))
    assert result.returncode == 2, result.stderr
    assert "holds no installation" in result.stderr and "`id` creates it" in result.stderr
    assert ("--installation-id" in result.stderr) == (command == "verify")
    # Said so before the keyring, which a mistyped folder lacks too.
    alone = subprocess.run(
        [sys.executable, "-m", "tmslicense", "--data-dir", str(elsewhere), command]
        + list(filter(None, [argument])),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert alone.returncode == 2 and "holds no installation" in alone.stderr, alone.stderr
    assert not elsewhere.exists()


def test_a_too_large_file_is_refused_with_its_own_size(pair, tmp_path):
    tms, _ = pair
    huge = tmp_path / "huge.lic"
    huge.write_bytes(b"x" * 10_485_760)
    result = tms.run("import", str(huge))
    assert result.returncode == 1
    assert "This file is 10,485,760 bytes; a license file is at most 65,536" in result.stderr
    # A pipe has no size of its own.
    piped = subprocess.run(
        [sys.executable, "-m", "tmslicense", "--data-dir", str(tms.data)]
        + ["--keyring", str(tms.keyring), "verify", "/dev/stdin"],
        input="x" * 300_000,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert piped.returncode == 1
    assert "This file is more than 65,536 bytes" in piped.stderr
    big_list = tmp_path / "revoked.txt"
    big_list.write_bytes(b"A1\n" * 6_000_000)
    result = tms.run("revoked", str(big_list))
    assert result.returncode == 1
    assert "is 18,000,000 bytes: too large for a list of revoked serials" in result.stderr


def test_status_writes_hidden_characters_of_an_older_file_as_codes(
    pair, private_key, kid, make_license, tmp_path
):
    from datetime import timedelta

    from tests.tmslicense.envelope import signed_file

    tms, _ = pair
    lic = _recent(make_license, kind="standard", ids=[tms.installation_id])
    payload = {**lic.to_dict(), "customer": "Acme\x1b[31m\nThis server: primary, 9999 seat(s)"}
    text = signed_file(json.dumps(payload).encode(), private_key, kid)
    assert tms.run("import", _file(tmp_path, text)).returncode == 0
    status = tms.run("status").stdout
    assert "Customer:         Acme\\x1b[31m\\nThis server: primary, 9999 seat(s)\n" in status
    assert "\nThis server: primary, 9999" not in status
    verified = tms.run("verify", _file(tmp_path, text), "--json").stdout
    assert "\\u001b[31m\\nThis server" in verified and "\x1b" not in verified
    # Text that only reads like a code is told apart from the character.
    later = (lic.issued_at + timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    lookalike = {**lic.to_dict(), "serial": "LOOK", "customer": "Acme\\x1b", "issued_at": later}
    text = signed_file(json.dumps(lookalike).encode(), private_key, kid)
    assert tms.run("import", _file(tmp_path, text)).returncode == 0
    assert "Customer:         Acme\\\\x1b\n" in tms.run("status").stdout


@pytest.mark.parametrize("encoding", ["cp1252", "ascii"])
def test_text_the_output_cannot_encode_is_written_as_codes(
    pair, make_license, sign, tmp_path, encoding
):
    """Windows' `status > status.txt` writes cp1252: a customer's name in Japanese is no
    reason for a traceback."""
    tms, _ = pair
    lic = _recent(
        make_license, kind="standard", ids=[tms.installation_id], customer="株式会社 Müller"
    )
    assert tms.run("import", _file(tmp_path, sign(lic))).returncode == 0
    result = subprocess.run(
        [sys.executable, "-m", "tmslicense", "--data-dir", str(tms.data)]
        + ["--keyring", str(tms.keyring), "status"],
        env={**os.environ, "PYTHONIOENCODING": encoding},
        cwd=ROOT,
        capture_output=True,
        encoding=encoding,
        timeout=60,
    )
    assert (result.returncode, result.stderr) == (0, "")
    muller = "Müller" if encoding == "cp1252" else "M\\xfcller"
    assert f"Customer:         \\u682a\\u5f0f\\u4f1a\\u793e {muller}\n" in result.stdout


def test_a_program_calling_main_gets_its_streams_back_as_they_were(tmp_path, capsys):
    before = (sys.stdout.errors, sys.stderr.errors)
    assert "backslashreplace" not in before
    assert cli.main(["--data-dir", str(tmp_path / "tms"), "id"]) == 0
    assert (sys.stdout.errors, sys.stderr.errors) == before


@pytest.mark.parametrize("encoding", ["latin-1", "utf-16"])  # an e-mail; Notepad's "Unicode"
def test_a_file_saved_in_another_encoding_imports(
    pair, make_license, sign, tmp_path, encoding, revoked_list
):
    tms, _ = pair
    lic = _recent(make_license, kind="standard", ids=[tms.installation_id])
    mail = tmp_path / "mail.txt"
    mail.write_text(f"Grüße,\n{sign(lic)}\n© 2026\n", encoding=encoding)
    result = tms.run("import", str(mail))
    assert result.returncode == 0, result.stderr
    assert f"Serial:           {lic.serial}" in tms.run("status").stdout
    # A list of revoked serials and a keyring saved with a byte-order mark read as well.
    listed = tmp_path / "list.txt"
    listed.write_text(revoked_list("A1"), encoding="utf-8-sig")
    tms.keyring.write_text(tms.keyring.read_text(), encoding="utf-8-sig")
    assert tms.run("revoked", str(listed)).returncode == 0


@pytest.mark.parametrize(
    "damaged",
    [
        b"\x00" * 100,  # zeros, as a crash can leave a file
        "# Revoked\n0123456789ABCDEF\n".encode("utf-16-le"),  # UTF-16 without a mark: UTF-8 too
    ],
)
def test_a_revoked_list_damaged_into_other_text_is_refused_too(
    pair, make_license, sign, tmp_path, damaged
):
    tms, _ = pair
    lic = _recent(make_license, kind="standard", ids=[tms.installation_id])
    assert tms.run("import", _file(tmp_path, sign(lic))).returncode == 0
    (tms.data / "revoked.txt").write_bytes(damaged)
    result = tms.run("check", "serve-clients")
    assert result.returncode == 2, result.stderr
    assert re.search(r"revoked.txt is damaged \(line \d is not a serial\)", result.stderr)


def test_a_keyring_and_a_revoked_list_saved_as_utf16_are_read(
    pair, make_license, sign, tmp_path, revoked_list, keyring
):
    """Saved from a browser with Windows' Notepad ("Unicode") or PowerShell 5's ``>``."""
    tms, _ = pair
    tms.keyring.write_bytes(keyring.to_json().encode("utf-16"))
    lic = _recent(make_license, kind="standard", ids=[tms.installation_id])
    assert tms.run("import", _file(tmp_path, sign(lic))).returncode == 0
    listed = tmp_path / "revoked.txt"
    listed.write_bytes(revoked_list(lic.serial).encode("utf-16"))
    result = tms.run("revoked", str(listed))
    assert result.returncode == 0, result.stderr
    assert lic.serial in (tms.data / "revoked.txt").read_text()
    assert tms.run("check", "serve-clients").returncode == 1


def test_a_lock_file_that_cannot_be_used_is_named(pair, make_license, sign, tmp_path):
    tms, _ = pair
    (tms.data / ".lock").mkdir()
    lic = _recent(make_license, kind="standard", ids=[tms.installation_id])
    result = tms.run("import", _file(tmp_path, sign(lic)))
    assert result.returncode == 2
    assert result.stderr.startswith(f"error: Cannot use {tms.data / '.lock'}: Is a directory.")
    assert "delete it" in result.stderr


def _as_root():
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        pytest.skip("only root can run a command as another account: run as root to test it")


SERVER = 1234  # the server's own account
AS_SERVER = ["setpriv", f"--reuid={SERVER}", f"--regid={SERVER}", "--clear-groups", "--"]
MAY_NOT_GIVE = (
    f"this account may not give what it writes there to the account that uses it (uid {SERVER})"
)


def test_a_root_that_may_not_give_files_away_changes_nothing(
    keyring, make_license, sign, revoked_list
):
    """The server runs under its own account; an administrator's job runs as a root that may
    not change owners (a hardened service without the capability, or a rootless container):
    what it would write would be root's alone, and the server could read it no more. It is
    refused, with why, and the folder is left as it was, the server still at work."""
    import shutil
    import tempfile

    _as_root()
    top = Path(tempfile.mkdtemp())  # one the server's account can reach
    try:
        top.chmod(0o755)
        (top / "data").mkdir(mode=0o700)
        os.chown(top / "data", SERVER, SERVER)
        tms = Tms(top, keyring, runs_as=AS_SERVER)
        lic = _recent(make_license, kind="standard", ids=[tms.installation_id])
        path, listed = _file(top, sign(lic)), _file(top, revoked_list("0123456789ABCDEF"), "r")
        for readable in (path, listed):
            Path(readable).chmod(0o644)
        assert tms.run("import", path).returncode == 0
        before = tms.snapshot()
        # Without the capability: refused, saying why. In a rootless container, where the
        # server's account is none it knows, it cannot even read the folder: refused too.
        for root, why in (
            (["setpriv", "--bounding-set=-chown", "--"], MAY_NOT_GIVE),
            (["unshare", "-r", "--"], "Permission denied"),
        ):
            tms.runs_as = ["sh", "-c", 'umask 077 && exec "$@"', "-", *root]
            for args in (["revoked", listed], ["keyring", str(tms.keyring)]):
                result = tms.run(*args)
                assert result.returncode == 2 and why in result.stderr, result.stderr
            assert tms.snapshot() == before
        # A keyring.json root's already (written by sudo before 1.9.0), and a new key's
        # files with it: the keyring would pass, then its license be refused, half-way.
        tms.runs_as = AS_SERVER
        assert tms.run("keyring", str(tms.keyring)).returncode == 0
        os.chown(tms.data / "keyring.json", 0, 0)
        (tms.data / "keyring.json").chmod(0o644)
        before = tms.snapshot()
        new_key = Ed25519PrivateKey.generate()
        both = _file(
            top,
            tmslicense.Keyring([*keyring.values(), new_key.public_key()]).to_json(),
            "both.json",
        )
        reissued = replace(
            lic, serial="FEDCBA9876543210", issued_at=lic.issued_at + timedelta(seconds=1)
        )
        signed = _file(
            top, tmslicense.sign_license(reissued, new_key, tmslicense.key_id(new_key)), "new.lic"
        )
        for readable in (both, signed):
            Path(readable).chmod(0o644)
        tms.runs_as = ["setpriv", "--bounding-set=-chown", "--"]
        result = tms.run("keyring", both, signed)
        assert result.returncode == 2 and MAY_NOT_GIVE in result.stderr, result.stderr
        assert tms.snapshot() == before
        assert not [p for p in tms.data.rglob("*") if p.name.endswith(".probe")]
        tms.runs_as = AS_SERVER
        assert tms.run("check", "serve-clients").returncode == 0
        # A new server's folder: no Installation ID is made that the server could not read.
        fresh = top / "fresh" / "data"
        fresh.mkdir(parents=True, mode=0o700)
        os.chown(fresh, SERVER, SERVER)
        made = subprocess.run(
            ["setpriv", "--bounding-set=-chown", "--"]
            + [sys.executable, "-m", "tmslicense", "--data-dir", str(fresh), "id"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert made.returncode == 2 and MAY_NOT_GIVE in made.stderr
        assert list(fresh.iterdir()) == []
    finally:
        shutil.rmtree(top)


def test_a_data_folder_this_account_may_not_write_is_named(keyring, make_license, sign, tmp_path):
    """The server's account may read its folder but not write it (made by root, say): an
    import names the folder, not a lock to delete or a temporary file, and changes nothing."""
    import tempfile

    _as_root()
    top = Path(tempfile.mkdtemp())  # one the server's account ("nobody") can reach
    try:
        top.chmod(0o755)
        tms = Tms(top, keyring)  # made by root
        (tms.data / "installation.secret").chmod(0o644)
        tms.runs_as = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--"]
        assert tms.run("id").stdout.strip() == tms.installation_id  # it may read
        lic = _recent(make_license, kind="standard", ids=[tms.installation_id])
        path = _file(top, sign(lic))
        Path(path).chmod(0o644)
        before = tms.snapshot()
        result = tms.run("import", path)
        assert (result.returncode, result.stderr) == (
            2,
            f"error: Cannot change {tms.data}: this account may not write to it. "
            "Nothing was changed.\n",
        )
        # A lock it may use, in a folder it may not write to: the folder is named.
        (tms.data / "licenses").mkdir(mode=0o755)
        (tms.data / ".lock").touch()
        (tms.data / ".lock").chmod(0o666)
        result = tms.run("import", path)
        assert (result.returncode, result.stderr) == (
            2,
            f"error: Cannot change {tms.data / 'licenses'}: this account may not write to it. "
            "Nothing was changed.\n",
        )
        assert tms.snapshot() == before | {Path(".lock"): b""}
    finally:
        import shutil

        shutil.rmtree(top)


def test_a_data_folder_on_a_read_only_file_system_is_said_so(
    pair, make_license, sign, tmp_path, monkeypatch, capsys
):
    """Not "delete it" (the lock), which a read-only file system does not allow either."""
    import errno

    tms, _ = pair
    lock = tms.data / ".lock"

    def read_only(file, *args, real=os.open, **kwargs):
        if file == lock:
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(lock))
        return real(file, *args, **kwargs)

    monkeypatch.setattr(os, "open", read_only)
    lic = _recent(make_license, kind="standard", ids=[tms.installation_id])
    before = tms.snapshot()
    common = ["--data-dir", str(tms.data), "--keyring", str(tms.keyring)]
    assert cli.main([*common, "import", _file(tmp_path, sign(lic))]) == 2
    assert capsys.readouterr().err == (
        f"error: Cannot change {tms.data}: it is on a read-only file system. Nothing was changed.\n"
    )
    assert tms.snapshot() == before


def test_a_folder_that_cannot_be_locked_is_said_so_at_once(pair, monkeypatch):
    import errno
    import fcntl

    def no_locks(*args):
        raise OSError(errno.ENOLCK, "No locks available")

    tms, _ = pair
    monkeypatch.setattr(fcntl, "flock", no_locks)
    refused = pytest.raises(store.DataFolderError, match="Cannot lock .*No locks available")
    with refused, store.locked(tms.data):  # at once, not after LOCK_WAIT
        pass


def test_a_command_waits_for_the_folder_then_says_it_is_busy(pair, monkeypatch):
    tms, _ = pair
    monkeypatch.setattr(store, "LOCK_WAIT", 0.3)
    busy = pytest.raises(store.DataFolderError, match="being changed by another command")
    # While another command changes the folder, this one cannot; it is told once that it waits.
    said = []
    with store.locked(tms.data), busy, store.locked(tms.data, lambda: said.append("waiting")):
        pass
    assert said == ["waiting"]
    with store.locked(tms.data):  # released: taken at once
        pass


def test_a_server_that_trickles_or_refuses_is_given_up_on(pair, monkeypatch, capsys):
    import socket
    import time
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Trickle(BaseHTTPRequestHandler):
        def do_GET(self):  # its headers a byte at a time, each well within the socket timeout
            self.wfile.write(b"HTTP/1.0 200 OK\r\nX-Slow: ")
            for _ in range(40):
                self.wfile.write(b"A")
                self.wfile.flush()
                time.sleep(0.1)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Trickle)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    tms, _ = pair
    monkeypatch.setattr(cli, "FETCH_TIMEOUT", 1)
    common = ["--data-dir", str(tms.data), "--keyring", str(tms.keyring), "revoked"]
    try:
        # Without the deadline, the headers would end after 4 s, cut short: another message.
        assert cli.main([*common, f"http://127.0.0.1:{server.server_address[1]}/"]) == 1
    finally:
        server.shutdown()
        server.server_close()
    assert "it took more than 1 s" in capsys.readouterr().err
    garbage = socket.create_server(("127.0.0.1", 0))  # answers anything but HTTP

    def answer():
        connection, _ = garbage.accept()
        connection.recv(1024)
        connection.sendall(b"220 mail.example ESMTP\r\n")
        connection.close()

    threading.Thread(target=answer, daemon=True).start()
    url = f"http://127.0.0.1:{garbage.getsockname()[1]}/"
    assert cli.main([*common, url]) == 1
    garbage.close()
    assert capsys.readouterr().err == (
        f"refused: Cannot fetch {url}: the answer was not good HTTP (BadStatusLine).\n"
    )
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    assert cli.main([*common, f"http://127.0.0.1:{port}/"]) == 1
    assert capsys.readouterr().err.strip().endswith(": connection refused.")


def test_a_download_cut_off_is_said_so_not_taken_for_a_bad_list(pair, capsys):
    """A connection that drops before the whole list came (a flaky plant link): "cut off,
    try again", not that the site's list is not signed (or the keyring not valid JSON)."""
    import socket

    tms, _ = pair
    common = ["--data-dir", str(tms.data), "--keyring", str(tms.keyring)]
    for head, body in (
        (b"Content-Length: 206\r\n", b"-----BEGIN TMS REVOKED SERIALS-----\n"),
        (b"Transfer-Encoding: chunked\r\n", b"40\r\n-----BEGIN TMS"),
    ):
        server = socket.create_server(("127.0.0.1", 0))

        def answer(server=server, head=head, body=body):
            connection, _ = server.accept()
            connection.recv(4096)
            connection.sendall(b"HTTP/1.1 200 OK\r\n" + head + b"\r\n" + body)
            connection.close()

        threading.Thread(target=answer, daemon=True).start()
        url = f"http://127.0.0.1:{server.getsockname()[1]}/revoked.txt"
        assert cli.main([*common, "revoked", url]) == 1  # a keyring is fetched alike
        server.close()
        err = capsys.readouterr().err
        assert f"Cannot fetch {url}: the download was cut off" in err, err
        assert "try again" in err and "not signed" not in err


def test_a_download_redirected_to_ftp_is_read_as_any_other(monkeypatch):
    """urllib follows an http:// address sent on to ftp://, whose answer has no length to
    tell a cut-off download by: its bytes are taken as they came."""
    import io
    import urllib.request

    class FtpAnswer(io.BytesIO):
        url = "ftp://127.0.0.1/revoked.txt"

    monkeypatch.setattr(urllib.request, "urlopen", lambda *a, **k: FtpAnswer(b"# list\n"))
    assert cli._download("http://127.0.0.1/revoked.txt", 100, https_only=False) == b"# list\n"


def test_a_licenses_folder_that_cannot_be_read_stops_the_commands(
    pair, make_license, sign, tmp_path, capsys, unreadable
):
    """Not "No valid license is installed.": the operator would activate again for nothing."""
    tms, _ = pair
    lic = _recent(make_license, kind="standard", ids=[tms.installation_id])
    assert tms.run("import", _file(tmp_path, sign(lic))).returncode == 0
    unreadable(tms.data / "licenses")
    common = ["--data-dir", str(tms.data), "--keyring", str(tms.keyring)]
    for command in (["status"], ["check", "serve-clients"]):
        assert cli.main([*common, *command]) == 2, command
        out, err = capsys.readouterr()
        assert err == f"error: {tms.data / 'licenses'}: Permission denied.\n"
        assert "No valid license" not in out


def test_a_file_this_account_cannot_read_is_named_and_the_others_still_count(
    pair, make_license, sign, tmp_path, capsys, unreadable_file
):
    """A file stored with ``sudo`` (root's, mode 600) and a TMS that runs as a service
    account: the file is said to be unreadable, the server's other licenses count."""
    tms, _ = pair
    locked_out = _recent(make_license, kind="standard", ids=[tms.installation_id], serial="X")
    kept = _recent(make_license, kind="standard", ids=[tms.installation_id], serial="KEPT")
    for lic in (locked_out, kept):
        assert tms.run("import", _file(tmp_path, sign(lic))).returncode == 0
    unreadable_file(tms.data / "licenses" / f"{locked_out.license_number}.lic")
    common = ["--data-dir", str(tms.data), "--keyring", str(tms.keyring)]
    assert cli.main([*common, "status"]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    assert f"License {kept.license_number}  standard" in out
    assert (
        f"Not used: {locked_out.license_number}.lic: This file cannot be read by this "
        "account: check its owner and permissions.\n"
    ) in out
    assert cli.main([*common, "check", "serve-clients"]) == 0
    assert cli.main([*common, "remove", locked_out.license_number]) == 0
    assert f"Removed {tms.data / 'licenses' / locked_out.license_number}.lic." in (
        capsys.readouterr().out
    )


def _together(tms, *commands):
    """Run the commands at once, each in its own process; their results, in order."""
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "tmslicense", "--data-dir", str(tms.data)]
            + ["--keyring", str(tms.keyring), *command],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for command in commands
    ]
    return [(process.wait(timeout=60), process.stderr.read()) for process in processes]


def test_lists_of_revoked_serials_added_at_once_are_all_kept(pair, tmp_path, revoked_list):
    tms, _ = pair
    for round_ in range(4):
        lists = [
            _file(tmp_path, revoked_list(*[f"R{round_}L{n}S{i}" for i in range(50)]), f"{n}.txt")
            for n in range(3)
        ]
        results = _together(tms, *(["revoked", path] for path in lists))
        assert [code for code, _ in results] == [0, 0, 0], results
        assert len(store.revoked_serials(tms.data)) == 150 * (round_ + 1)


def test_of_two_issues_imported_at_once_the_newer_stays(pair, make_license, sign, tmp_path):
    from datetime import datetime, timedelta

    tms, _ = pair
    first = _recent(make_license, kind="standard", ids=[tms.installation_id])
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    for round_ in range(4):
        older, newer = (
            tmslicense.License.create(
                **{
                    **_create_args(first),
                    "serial": f"R{round_}{name}",
                    "seats": seats,
                    "issued_at": start + timedelta(seconds=10 * round_ + offset),
                }
            )
            for name, seats, offset in (("OLDER", 30, 1), ("NEWER", 40, 2))
        )
        paths = [_file(tmp_path, sign(lic), f"{lic.serial}.lic") for lic in (newer, older)]
        results = _together(tms, *(["import", path] for path in paths))
        assert results[0][0] == 0, results  # the newer one is never refused
        status = tms.run("status").stdout
        assert f"Serial:           {newer.serial}" in status
        assert "This server: primary, 40 seat(s)" in status


def test_a_reader_that_stops_early_gets_no_error_message(pair):
    tms, _ = pair
    read_end, write_end = os.pipe()
    os.close(read_end)  # as `status | head -1` does once it has its line
    result = subprocess.run(
        [sys.executable, "-m", "tmslicense", "--data-dir", str(tms.data)]
        + ["--keyring", str(tms.keyring), "status"],
        stdout=write_end,
        stderr=subprocess.PIPE,
        cwd=ROOT,
        text=True,
        timeout=60,
    )
    os.close(write_end)
    assert (result.returncode, result.stderr) == (1, "")


def test_without_a_keyring_status_shows_the_id_and_the_rest_say_where_it_goes(
    pair, make_license, sign, tmp_path
):
    tms, _ = pair
    lic = _recent(make_license, kind="standard", ids=[tms.installation_id])
    path = _file(tmp_path, sign(lic))
    assert tms.run("import", path).returncode == 0
    tms.keyring.unlink()
    # The Licensing window still shows the ID (what activation asks for); nothing verifies.
    status = tms.run("status")
    assert status.returncode == 0, status.stderr
    assert f"Installation ID: {tms.installation_id}" in status.stdout
    assert f"No keyring at {tms.keyring}: save the license site's keyring" in status.stdout
    assert "cannot be verified without a keyring" in status.stdout
    assert "This server: unlicensed" in status.stdout
    # Each refusal says why: not "activate a license", which is activated and imported.
    (refusal,) = {
        line.split("refused: ")[1] for line in status.stdout.splitlines() if "refused: " in line
    }
    assert "Activate a license" not in refusal
    assert refusal.endswith(
        f"Not used: {lic.license_number}.lic: cannot be verified without a keyring."
    )
    for command in (["import", path], ["check", "serve-clients"], ["verify", path]):
        before = tms.snapshot()
        result = tms.run(*command)
        assert result.returncode == 2, command
        assert result.stderr == (
            f"error: No keyring at {tms.keyring}: save the license site's keyring (its "
            "address followed by /keyring.json) there, or name another with --keyring.\n"
        )
        assert tms.snapshot() == before


@pytest.mark.parametrize("stopped_by", ["revoked", "keyring"])
def test_status_says_why_installed_files_do_not_count_as_check_does(
    pair, make_license, sign, tmp_path, revoked_list, stopped_by
):
    """Files are installed but none verifies (revoked, or its key no longer trusted): not
    "activate a license", which is activated and imported."""
    tms, _ = pair
    lic = _recent(make_license, kind="standard", ids=[tms.installation_id])
    assert tms.run("import", _file(tmp_path, sign(lic))).returncode == 0
    if stopped_by == "revoked":
        assert (
            tms.run("revoked", _file(tmp_path, revoked_list(lic.serial), "list.txt")).returncode
            == 0
        )
    else:  # the site's keyring no longer lists the key that signed it
        another = tmslicense.Keyring([Ed25519PrivateKey.generate().public_key()])
        tms.keyring.write_text(another.to_json())
    status = tms.run("status")
    assert status.returncode == 0, status.stderr
    (refusal,) = {
        line.split("refused: ")[1] for line in status.stdout.splitlines() if "refused: " in line
    }
    assert "Activate a license" not in refusal
    assert f" Not used: {lic.license_number}.lic: " in refusal
    check = tms.run("check", "serve-clients")
    assert (check.returncode, check.stderr.strip()) == (1, refusal)


def test_an_empty_data_folder_setting_is_not_the_current_folder(tmp_path):
    def run(*args, **environment):
        return subprocess.run(
            [sys.executable, "-m", "tmslicense", *args],
            env={**os.environ, "PYTHONPATH": str(ROOT), **environment},
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )

    # An empty TMS_DATA_DIR is unset, as an empty TMS_KEYRING is.
    result = run("id", TMS_DATA_DIR="")
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tms-data"]
    assert (tmp_path / "tms-data" / "installation.secret").is_file()
    # An empty --data-dir is a mistake: said so, nothing made.
    result = run("--data-dir", "", "id")
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.startswith("usage: ")
    assert "error: argument --data-dir: give the data folder" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tms-data"]


def test_unknown_action_is_a_usage_error(pair):
    tms, _ = pair
    assert tms.run("check", "fly").returncode == 2


@pytest.fixture
def http_folder(tmp_path):
    """A real HTTP server on loopback serving a folder, as the license site serves its list."""
    import functools
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    folder = tmp_path / "site"
    folder.mkdir()
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(folder))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield folder, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_a_revoked_list_from_the_site_stops_the_old_file_and_keeps_the_new(
    pair, make_license, sign, tmp_path, http_folder, revoked_list
):
    tms, _ = pair
    old = _recent(make_license, kind="standard", ids=[tms.installation_id], serial="OLD0001")
    assert tms.run("import", _file(tmp_path, sign(old))).returncode == 0
    folder, url = http_folder
    (folder / "revoked.txt").write_text(revoked_list("OLD0001"))

    result = tms.run("revoked", f"{url}/revoked.txt")
    assert result.returncode == 0, result.stderr
    assert "Added 1 revoked serial(s)" in result.stdout and "(1 in all)" in result.stdout
    assert f"license {old.license_number}, serial OLD0001) is no longer used" in result.stdout
    assert tms.run("check", "serve-clients").returncode == 1
    assert "revoked" in tms.run("status").stdout

    new = tmslicense.License.create(**{**_create_args(old), "serial": "NEW0002"})
    assert tms.run("import", _file(tmp_path, sign(new), "new.lic")).returncode == 0
    assert tms.run("check", "serve-clients").returncode == 0
    again = tms.run("revoked", f"{url}/revoked.txt")
    assert "Added 0 revoked serial(s)" in again.stdout and "no longer used" not in again.stdout


def test_a_revoked_list_is_only_added_to(pair, tmp_path, revoked_list):
    tms, _ = pair
    assert tms.run("revoked", _file(tmp_path, revoked_list("A1", "B2"), "one.txt")).returncode == 0
    result = tms.run("revoked", _file(tmp_path, revoked_list("B2", "C3"), "two.txt"))  # older
    assert "Added 1 revoked serial(s)" in result.stdout and "(3 in all)" in result.stdout
    from tmslicense import store

    assert store.revoked_serials(tms.data) == {"A1", "B2", "C3"}


@pytest.mark.parametrize(
    ("content", "says"),
    [
        ("<html><body>Proxy error</body></html>\n", "line 1"),
        ("A1\nB2 C3\n", "line 2"),
        (b"\xff\xfe\x00binary", "not text"),
        (None, "Cannot read"),
        ("404", "Cannot fetch"),
        ("A1\nB2\n", "not signed by the license site"),
    ],
)
def test_a_bad_revoked_list_changes_nothing(
    pair, tmp_path, http_folder, revoked_list, content, says
):
    tms, _ = pair
    assert tms.run("revoked", _file(tmp_path, revoked_list("KEPT1"), "kept.txt")).returncode == 0
    before = tms.snapshot()
    if content == "404":
        source = f"{http_folder[1]}/missing.txt"
    elif content is None:
        source = str(tmp_path / "absent.txt")
    else:
        path = tmp_path / "bad.txt"
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
        source = str(path)
    result = tms.run("revoked", source)
    assert result.returncode == 1 and result.stderr.startswith("refused: ")
    assert says in result.stderr
    assert tms.snapshot() == before


def test_copies_of_a_file_add_no_seats(pair, make_license, sign, tmp_path):
    tms, _ = pair
    lic = _recent(make_license, kind="standard", ids=[tms.installation_id], seats=5)
    assert tms.run("import", _file(tmp_path, sign(lic))).returncode == 0
    [stored] = (tms.data / "licenses").glob("*.lic")
    for copy in ("copy1.lic", "copy2.lic"):
        (stored.parent / copy).write_text(stored.read_text())

    status = tms.run("status")
    assert status.returncode == 0, status.stderr
    assert "This server: primary, 5 seat(s)" in status.stdout
    assert status.stdout.count(f"a copy of the file {lic.serial}") == 2


def test_damaged_files_in_the_data_folder_give_a_message_not_a_traceback(
    pair, make_license, sign, tmp_path, revoked_list
):
    tms, _ = pair
    lic = _recent(make_license, kind="standard", ids=[tms.installation_id])
    assert tms.run("import", _file(tmp_path, sign(lic))).returncode == 0
    # A folder where a license would be is no license: the real one still counts.
    (tms.data / "licenses" / "TM-FOLDER.lic").mkdir()
    status = tms.run("status")
    assert status.returncode == 0, status.stderr
    assert "This server: primary" in status.stdout
    # A revoked list saved as UTF-16 (say, by an editor): read so, no serial would match, and
    # every revoked file would count again. Refused, with what to do; nothing allowed.
    revoked = tms.data / "revoked.txt"
    revoked.write_text(f"# Revoked\n{lic.serial}\n", encoding="utf-16")
    good_list = _file(tmp_path, revoked_list("FEDCBA9876543210"), "list.txt")
    for command in (["status"], ["check", "serve-clients"], ["revoked", good_list]):
        result = tms.run(*command)
        assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
        assert result.stderr.startswith("error: ")
        assert "revoked.txt is damaged (not UTF-8 text)" in result.stderr
    # Said so without a keyring too (the docs: it stops status until it is mended).
    tms.keyring.rename(tmp_path / "keyring.json")
    result = tms.run("status")
    assert result.returncode == 2 and "revoked.txt is damaged" in result.stderr, result.stderr
    (tmp_path / "keyring.json").rename(tms.keyring)
    # Saved as UTF-8 with a byte-order mark, and a comment indented: every serial counts.
    revoked.write_text(f"{lic.serial}\n  # a note\n", encoding="utf-8-sig")
    assert store.revoked_serials(tms.data) == {lic.serial}
    revoked.unlink()
    # One that never ends (a link to a device) is refused once read past its limit.
    revoked.symlink_to("/dev/zero")
    result = tms.run("status")
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert "revoked.txt is damaged (larger than 33,554,432 characters)" in result.stderr
    revoked.unlink()

    tms.keyring.write_bytes(b"\xff\xfe not json")
    result = tms.run("status")
    assert (result.returncode, result.stderr.startswith("error: ")) == (2, True), result.stderr
    assert "not a text file" in result.stderr and "Traceback" not in result.stderr

    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("")
    result = subprocess.run(
        [sys.executable, "-m", "tmslicense", "--data-dir", str(not_a_folder), "id"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert result.stderr.startswith(f"error: {not_a_folder}")


def test_a_damaged_installation_secret_stops_the_commands_and_is_kept(pair, tmp_path):
    tms, _ = pair
    secret = tms.data / "installation.secret"
    secret.write_text("zz")
    for command in (["id"], ["status"], ["check", "serve-clients"]):
        result = tms.run(*command)
        assert result.returncode == 2 and result.stdout == "", (command, result.stderr)
        assert result.stderr.startswith(f"error: {secret} is damaged"), result.stderr
    assert secret.read_text() == "zz"


def test_a_licenses_path_that_is_a_file_stops_the_commands_and_is_kept(
    pair, make_license, sign, tmp_path, revoked_list
):
    """A license file copied to DATA_DIR/licenses by mistake is not read as "no license"."""
    tms, _ = pair
    lic = _recent(make_license, kind="standard", ids=[tms.installation_id])
    misplaced = tms.data / "licenses"
    misplaced.write_text(sign(lic))
    before = tms.snapshot()
    path = _file(tmp_path, sign(lic))
    good_list = _file(tmp_path, revoked_list("FEDCBA9876543210"), "list.txt")
    for command in (
        ["status"],
        ["check", "serve-clients"],
        ["import", path],
        ["revoked", good_list],
    ):
        result = tms.run(*command)
        assert result.returncode == 2 and result.stdout == "", (command, result.stderr)
        assert result.stderr.startswith(
            f"error: {misplaced} is a file, but it should be the folder that holds this "
            "server's license files"
        ), result.stderr
        after = tms.snapshot()
        after.pop(Path(".lock"), None)  # taken by import, to read the folder
        assert after == before  # the file is neither replaced nor deleted, nothing added
    tms.keyring.unlink()  # without a keyring, status lists the files unverified: not here
    result = tms.run("status")
    assert result.returncode == 2 and result.stderr.startswith(f"error: {misplaced} is a file")
    assert misplaced.read_text() == sign(lic)


def test_ctrl_c_while_waiting_for_the_folder_gives_a_message_and_changes_nothing(
    pair, make_license, sign, tmp_path
):
    """An operator who gives up waiting for another command (which holds the folder for up
    to 30 s) gets a line, not a traceback, and the folder as it was."""
    import signal

    tms, _ = pair
    lic = _recent(make_license, kind="standard", ids=[tms.installation_id])
    path = _file(tmp_path, sign(lic), "new.lic")
    with store.locked(tms.data):  # another command, changing the folder
        before = tms.snapshot()
        process = subprocess.Popen(
            [sys.executable, "-m", "tmslicense", "--data-dir", str(tms.data)]
            + ["--keyring", str(tms.keyring), "import", path],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            # As at a terminal, whatever started the tests (a background job ignores Ctrl-C).
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
        waiting = process.stderr.readline()  # it waits for the lock, and says so
        process.send_signal(signal.SIGINT)
        code = process.wait(timeout=30)
    assert waiting == (
        f"Waiting for another command that is changing {tms.data} (up to 30 s; Ctrl-C stops, "
        "changing nothing)...\n"
    )
    assert (code, process.stderr.read()) == (130, "interrupted.\n")
    assert tms.snapshot() == before


def test_help_names_the_exit_codes():
    result = subprocess.run(
        [sys.executable, "-m", "tmslicense", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "exit status: 0 success or allowed, 1 refused" in " ".join(result.stdout.split())


def test_help_of_revoked_says_where_the_serials_go_and_names_each_address_taken():
    def shown(*args):
        result = subprocess.run(
            [sys.executable, "-m", "tmslicense", *args, "--help"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
        return " ".join(result.stdout.split())

    assert (
        "revoked add the license site's list of revoked serials to DATA_DIR/revoked.txt "
        "remove" in shown()
    )
    assert "source the list: a saved file, or its https:// or http:// address" in shown("revoked")


def test_remove_deletes_a_licenses_files_and_says_which(pair, make_license, sign, tmp_path):
    tms, _ = pair
    lic = _recent(make_license, kind="standard", ids=[tms.installation_id])
    tms.run("import", _file(tmp_path, sign(lic)))
    result = tms.run("remove", lic.license_number)
    assert result.returncode == 0, result.stderr
    path = tms.data / "licenses" / f"{lic.license_number}.lic"
    assert result.stdout == f"Removed {path} (serial {lic.serial}).\n"
    assert "No valid license is installed." in tms.run("status").stdout
    again = tms.run("remove", lic.license_number)
    assert again.returncode == 1
    assert again.stderr == (
        f"refused: no file of license {lic.license_number} is installed in "
        f"{tms.data / 'licenses'}; nothing was removed.\n"
    )
    mistyped = tms.run("remove", "TM-0000")
    assert mistyped.returncode == 2 and mistyped.stderr.startswith("error: ")
    # A copy saved by hand under a name that would move the terminal's cursor: named as codes.
    (tms.data / "licenses" / "copy\x1b[2J.lic").write_text(sign(lic))
    result = tms.run("remove", lic.license_number)
    assert (
        result.stdout
        == f"Removed {tms.data / 'licenses'}/copy\\x1b[2J.lic (serial {lic.serial}).\n"
    )


def test_keyring_keeps_the_sites_keyring_in_the_data_folder(
    pair, make_license, sign, keyring, kid, tmp_path, capsys
):
    tms, _ = pair
    site = _file(tmp_path, keyring.to_json(), "keyring.json")

    def run(*args):
        code = cli.main(["--data-dir", str(tms.data), *args])
        out, err = capsys.readouterr()
        return code, out, err

    assert run("keyring", site) == (
        0,
        f"Keyring saved as {tms.data / 'keyring.json'}: 1 key(s).\nNow trusted: key {kid}.\n",
        "",
    )
    lic = _recent(make_license, kind="standard", ids=[tms.installation_id])
    assert run("import", _file(tmp_path, sign(lic)))[0] == 0  # with the folder's keyring
    new_key = Ed25519PrivateKey.generate()
    rotated = _file(tmp_path, tmslicense.Keyring([new_key.public_key()]).to_json(), "new.json")
    code, out, err = run("keyring", rotated)
    assert (code, out) == (1, "")
    assert err.startswith(
        f"refused: This keyring leaves out the key of the file license {lic.license_number}"
    )
    code, _, err = run("keyring", "http://licensing.example.com/keyring.json")
    assert code == 1 and "over https://" in err
    assert tmslicense.Keyring.load(tms.data / "keyring.json") == keyring  # unchanged
    # The site no longer lists the old key, and reissued the file under the new one: this
    # keyring does not trust the new file, so it is kept with the site's keyring, in one step.
    reissued = replace(lic, serial="REISSUED", issued_at=lic.issued_at + timedelta(seconds=1))
    new_file = _file(
        tmp_path, tmslicense.sign_license(reissued, new_key, tmslicense.key_id(new_key))
    )
    code, _, err = run("import", new_file)
    assert err == (
        f"refused: The license file is signed with key '{tmslicense.key_id(new_key)}', which "
        "this server does not trust. Update the keyring from the license site, or download the "
        "file again. If the license site's keyring no longer lists the key of the file in use "
        "here, keep it with this file: "
        f"`python -m tmslicense --data-dir {tms.data} keyring SOURCE {new_file}`.\n"
    )
    # Given a keyring that trusts it, the folder's refuses it, and says what to do, once.
    both = tmslicense.Keyring([*keyring.values(), new_key.public_key()]).to_json()
    code, _, err = run("--keyring", _file(tmp_path, both, "both.json"), "import", new_file)
    assert code == 1 and err.count("keyring") == 2 and "keep the license site's keyring" in err
    code, out, err = run("keyring", rotated, new_file)
    assert (code, err) == (0, "")
    assert out == (
        f"Keyring saved as {tms.data / 'keyring.json'}: 1 key(s).\n"
        f"Now trusted: key {tmslicense.key_id(new_key)}.\n"
        f"No longer trusted: key {kid}.\n"
        f"Imported license {lic.license_number} (standard), serial REISSUED.\n"
        f"It replaces the file with serial {lic.serial}.\n"
    )
    assert run("check", "serve-clients")[0] == 0


@pytest.fixture
def https_site(tmp_path, monkeypatch):
    """An https:// server on loopback with a certificate this process trusts; ``routes`` maps
    a path to (status, headers, body)."""
    import ipaddress
    import ssl
    from datetime import datetime, timedelta
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    monkeypatch.setenv("SSL_CERT_FILE", str(cert_file))  # read by urllib's default context
    routes = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's name
            status, headers, body = routes[self.path]
            self.send_response(status)
            for header, value in headers.items():
                self.send_header(header, value)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    server.routes = routes
    server.url = f"https://127.0.0.1:{server.server_port}"
    yield server
    server.shutdown()


def test_keyring_is_fetched_over_https_and_not_taken_when_sent_on_to_http(
    pair, keyring, kid, https_site, capsys
):
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    tms, _ = pair
    other = tmslicense.Keyring([Ed25519PrivateKey.generate().public_key()]).to_json().encode()

    class Plain(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's name
            self.send_response(200)
            self.end_headers()
            self.wfile.write(other)

        def log_message(self, *args):
            pass

    plain = ThreadingHTTPServer(("127.0.0.1", 0), Plain)
    threading.Thread(target=plain.serve_forever, daemon=True).start()
    https_site.routes["/keyring.json"] = (200, {}, keyring.to_json().encode())
    https_site.routes["/moved.json"] = (
        302,
        {"Location": f"http://127.0.0.1:{plain.server_port}/keyring.json"},
        b"",
    )
    try:
        code = cli.main(["--data-dir", str(tms.data), "keyring", f"{https_site.url}/moved.json"])
        out, err = capsys.readouterr()
        assert (code, out) == (1, "")
        assert err == (
            f"refused: Cannot fetch {https_site.url}/moved.json: it sends on to "
            f"http://127.0.0.1:{plain.server_port}/keyring.json.\n"
        )
        assert not (tms.data / "keyring.json").exists()
        address = f"{https_site.url.upper()}/keyring.json"  # a scheme in capitals is one too
        assert cli.main(["--data-dir", str(tms.data), "keyring", address]) == 0
        assert tmslicense.Keyring.load(tms.data / "keyring.json") == keyring
    finally:
        plain.shutdown()


def test_a_command_to_paste_is_quoted_for_the_systems_shell(monkeypatch):
    """The advice's command is pasted into the server's shell: a path with spaces, brackets
    or (on Windows) backslashes works there as printed."""
    assert cli._command("--data-dir", "/var/lib/tms data") == "--data-dir '/var/lib/tms data'"
    monkeypatch.setattr(os, "name", "nt")
    assert cli._command(r"C:\Users\a\A2 (1).lic") == r'"C:\Users\a\A2 (1).lic"'


def test_status_json_is_the_licensing_window_for_a_program(pair, make_license, sign, tmp_path):
    """What a monitoring script reads: the role, seats, each license with this server's role,
    what is allowed, and why an installed file is not used, with its code."""
    mirror, primary = pair
    mirrored = _recent(
        make_license, kind="mirrored", ids=[primary.installation_id, mirror.installation_id]
    )
    elsewhere = _recent(make_license, kind="standard", ids=[primary.installation_id])
    expired = make_license(  # issued in 2026 (NOW), expired since
        kind="standard", ids=[mirror.installation_id], expires_at=NOW + timedelta(days=1)
    )
    assert mirror.run("import", _file(tmp_path, sign(mirrored))).returncode == 0
    (mirror.data / "licenses" / "copied.lic").write_text(sign(elsewhere))
    (mirror.data / "licenses" / "damaged.lic").write_text("not a license")
    (mirror.data / "licenses" / "expired.lic").write_text(sign(expired))

    result = mirror.run("status", "--json")
    assert result.returncode == 0, result.stderr
    status = json.loads(result.stdout)
    assert status["installation_id"] == mirror.installation_id
    assert status["synchronized_servers"] == [primary.installation_id]
    assert status["keyring"] is True
    assert (status["role"], status["seats"]) == ("mirror", mirrored.seats)
    assert status["fully_functional_mirror_of"] == []
    assert status["features"] == sorted(mirrored.features)
    assert status["next_expiry"] is None
    assert status["licenses"] == [{**mirrored.to_dict(), "this_server": "mirror"}]
    caps = tmslicense.capabilities([mirrored], mirror.installation_id)
    assert status["actions"] == {
        action.value: {"allowed": caps.allows(action), "message": caps.message(action)}
        for action in tmslicense.Action
    }
    assert status["actions"]["serve-clients"] == {"allowed": True, "message": None}
    assert status["actions"]["show-thinserver-data"] == {
        "allowed": False,
        "message": "ThinManager is not allowed to display the ThinServer data",
    }
    # Each named by its file, or its license, and by what it holds as far as it can be read.
    reasons = {item["file"] or item["license_number"]: item for item in status["not_used"]}
    assert {
        key: (item["code"], item["license_number"], item["serial"]) for key, item in reasons.items()
    } == {
        "copied.lic": ("wrong_installation", elsewhere.license_number, elsewhere.serial),
        "damaged.lic": ("malformed", None, None),
        expired.license_number: ("expired", expired.license_number, expired.serial),
    }
    assert elsewhere.license_number in reasons["copied.lic"]["reason"]
    assert reasons[expired.license_number]["file"] is None
    assert reasons[expired.license_number]["reason"].startswith("expired on ")
    # The text window says the same reasons.
    text = mirror.run("status").stdout
    for item in status["not_used"]:
        assert item["reason"] in text
    # And the clock they were decided by: one far ahead reads as files that expired.
    before = datetime.now(UTC).replace(microsecond=0)
    clock = datetime.fromisoformat(status["clock"])
    assert before - timedelta(minutes=5) <= clock <= before + timedelta(seconds=1)
    assert re.search(r"^This server's clock: \d{4}-\d\d-\d\d \d\d:\d\d(:\d\d)? UTC$", text, re.M)
    refused = mirror.run("import", _file(tmp_path, sign(expired), "again.lic"))
    assert "expired on" in refused.stderr and "(this server's clock: " in refused.stderr


def test_status_json_without_a_keyring_shows_the_id_and_why_no_file_counts(
    pair, make_license, sign, tmp_path
):
    tms, _ = pair
    lic = _recent(make_license, kind="standard", ids=[tms.installation_id])
    assert tms.run("import", _file(tmp_path, sign(lic))).returncode == 0
    tms.keyring.unlink()
    status = json.loads(tms.run("status", "--json").stdout)
    assert (status["installation_id"], status["keyring"], status["role"]) == (
        tms.installation_id,
        False,
        None,
    )
    assert [(item["file"], item["code"]) for item in status["not_used"]] == [
        (f"{lic.license_number}.lic", "no_keyring")
    ]
    assert not any(item["allowed"] for item in status["actions"].values())


def test_check_with_no_output_stream_still_answers_by_its_exit_code(pair):
    """A Windows service (pythonw) has no stdout, nor a command run with it closed: an allowed
    action must not read as refused (a traceback, exit 1)."""
    tms, _ = pair
    args = [sys.executable, "-m", "tmslicense", "--data-dir", str(tms.data), "--keyring"]
    closed = subprocess.run(
        ["sh", "-c", '"$@" >&-', "sh", *args, str(tms.keyring), "id"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (closed.returncode, closed.stderr) == (0, "")
