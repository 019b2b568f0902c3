"""The license site's list of revoked serials: signed, and refused whole when changed."""

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

import tmslicense

SERIALS = ["0123456789ABCDEF", "FEDCBA9876543210", "OLD-1.2_3"]


@pytest.fixture
def signed(private_key, kid):
    return tmslicense.sign_revoked_list(SERIALS, private_key, kid, title="Revoked, Site")


def test_a_signed_list_gives_its_serials_in_order(signed, keyring, kid):
    lines = signed.splitlines()
    assert lines[0] == "# Revoked, Site" and lines[1:4] == SERIALS
    assert lines[4].startswith(f"#signature ed25519 {kid} ")
    assert tmslicense.verify_revoked_list(signed, keyring) == SERIALS
    # Transport damage and comments are harmless: CRLF, spaces, blank and comment lines.
    damaged = "\r\n".join(f"  {line} " for line in lines).replace(
        SERIALS[1], f"\n# x\n{SERIALS[1]}"
    )
    assert tmslicense.verify_revoked_list(damaged, keyring) == SERIALS


def test_an_empty_list_is_signed_too(private_key, kid, keyring):
    text = tmslicense.sign_revoked_list([], private_key, kid)
    assert tmslicense.verify_revoked_list(text, keyring) == []
    # An attacker cannot turn it into a list that stops a file.
    with pytest.raises(tmslicense.BadSignature):
        tmslicense.verify_revoked_list(f"0123456789ABCDEF\n{text}", keyring)


@pytest.mark.parametrize(
    "change",
    [
        lambda text: text.replace(SERIALS[0], f"{SERIALS[0]}\nNEW0001"),  # a serial added
        lambda text: text.replace(f"{SERIALS[1]}\n", ""),  # one removed
        lambda text: text.replace(SERIALS[2], "OLD-1.2_4"),  # one changed
        lambda text: text.replace(f"{SERIALS[0]}\n{SERIALS[1]}", f"{SERIALS[1]}\n{SERIALS[0]}"),
    ],
)
def test_a_changed_list_is_refused(signed, keyring, change):
    changed = change(signed)
    assert changed != signed
    with pytest.raises(tmslicense.BadSignature, match="changed after the license site signed"):
        tmslicense.verify_revoked_list(changed, keyring)


def test_a_list_signed_by_another_key_is_refused(signed, keyring, kid):
    other = Ed25519PrivateKey.generate()
    with pytest.raises(tmslicense.UnknownKey, match=kid):
        tmslicense.verify_revoked_list(signed, tmslicense.Keyring([other.public_key()]))
    # Another key's signature under the trusted key's id does not match.
    forged = tmslicense.sign_revoked_list(SERIALS, other, kid)
    with pytest.raises(tmslicense.BadSignature):
        tmslicense.verify_revoked_list(forged, keyring)


@pytest.mark.parametrize(
    ("change", "error", "says"),
    [
        (lambda t: "\n".join(t.splitlines()[:-1]), tmslicense.BadSignature, "not signed"),
        (lambda t: t + t.splitlines()[-1] + "\n", tmslicense.MalformedFile, "two signature"),
        (
            lambda t: t.replace("#signature ed25519 ", "#signature "),
            tmslicense.MalformedFile,
            "damaged",
        ),
        (lambda t: t.replace("ed25519", "rsa"), tmslicense.UnsupportedAlgorithm, "'rsa'"),
        (lambda t: t[: t.rindex(" ") + 1] + "not*base64\n", tmslicense.BadSignature, "changed"),
        (lambda t: t.replace(SERIALS[0], "<html>"), tmslicense.MalformedFile, "line 2"),
    ],
)
def test_a_damaged_list_is_refused_with_its_reason(signed, keyring, change, error, says):
    with pytest.raises(error, match=says):
        tmslicense.verify_revoked_list(change(signed), keyring)


def test_only_serials_are_signed_under_a_one_line_title(private_key, kid):
    with pytest.raises(ValueError, match="not a serial"):
        tmslicense.sign_revoked_list(["A1", "two words"], private_key, kid)
    for title in ("Site\nZZ1", "Site\u2028ZZ1"):
        with pytest.raises(ValueError, match="one line"):
            tmslicense.sign_revoked_list(["A1"], private_key, kid, title=title)


def test_a_list_is_read_as_saved_by_an_editor_or_fetched_as_bytes(signed, keyring):
    """A byte-order mark (Notepad), UTF-16, or the bytes as fetched: the same serials."""
    for given in (
        "\ufeff" + signed,
        signed.encode(),
        ("\ufeff" + signed).encode(),
        signed.encode("utf-16"),
    ):
        assert tmslicense.verify_revoked_list(given, keyring) == SERIALS


def test_a_list_that_is_not_text_is_refused(keyring):
    with pytest.raises(tmslicense.MalformedFile, match="not text"):
        tmslicense.verify_revoked_list(b"\x80 serials", keyring)


@pytest.mark.parametrize("kind", [bytearray, memoryview])
def test_a_list_and_a_keyring_are_taken_as_any_bytes(kind, private_key, kid, keyring):
    """As verify_license takes them: a buffer a program read the file into."""
    text = tmslicense.sign_revoked_list(["RA"], private_key, kid)
    assert tmslicense.verify_revoked_list(kind(text.encode()), keyring) == ["RA"]
    assert list(tmslicense.Keyring.from_json(kind(keyring.to_json().encode()))) == list(keyring)
    with pytest.raises(TypeError, match="text or bytes"):
        tmslicense.Keyring.from_json(None)
    with pytest.raises(TypeError, match="text or bytes"):
        tmslicense.verify_revoked_list(None, keyring)


def test_a_keyring_file_of_no_end_is_refused_unread(tmp_path):
    """`--keyring /dev/zero` (or a keyring.json that is a device) read all memory."""
    with pytest.raises(tmslicense.KeyringError, match="larger than"):
        tmslicense.Keyring.load("/dev/zero")
    big = tmp_path / "keyring.json"
    big.write_text(" " * (tmslicense.MAX_FILE_SIZE + 1))
    with pytest.raises(tmslicense.KeyringError, match="larger than"):
        tmslicense.Keyring.load(big)


def test_a_keyring_too_large_to_load_is_not_installed(tmp_path):
    """Refused when given, not stored to stop every license at the next read."""
    big = tmslicense.Keyring(Ed25519PrivateKey.generate().public_key() for _ in range(600))
    assert len(big.to_json().encode()) > tmslicense.MAX_KEYRING
    with pytest.raises(tmslicense.KeyringError, match="larger than 65,536 bytes"):
        tmslicense.Keyring.from_json(big.to_json())
    folder = tmslicense.DataFolder(tmp_path / "tms")
    folder.installation_id  # noqa: B018 - made, as on a server
    with pytest.raises(tmslicense.KeyringError, match="larger than"):
        folder.install_keyring(big.to_json())
    assert not (folder.path / "keyring.json").exists()
