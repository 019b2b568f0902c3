"""Interoperability: the signature is plain Ed25519 that standard tools check."""

import base64
import json
import shutil
import subprocess

import pytest
from cryptography.hazmat.primitives import serialization

import tmslicense
from tests.tmslicense.conftest import NOW
from tests.tmslicense.envelope import armor, envelope

pytestmark = pytest.mark.skipif(
    shutil.which("openssl") is None, reason="the openssl command is not installed"
)


def _openssl(*args, **kwargs):
    return subprocess.run(["openssl", *args], capture_output=True, timeout=30, **kwargs)


def test_file_signed_by_sign_license_verifies_with_openssl(
    make_license, sign, private_key, tmp_path
):
    lic = make_license("mirrored")
    parts = tmslicense.read_envelope(sign(lic))
    (tmp_path / "payload.bin").write_bytes(base64.b64decode(parts["payload"]))
    (tmp_path / "sig.bin").write_bytes(base64.b64decode(parts["sig"]))
    (tmp_path / "pub.pem").write_bytes(
        private_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    verify = [
        "pkeyutl",
        "-verify",
        "-rawin",
        "-pubin",
        "-inkey",
        "pub.pem",
        "-in",
        "payload.bin",
        "-sigfile",
        "sig.bin",
    ]
    result = _openssl(*verify, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert b"Signature Verified Successfully" in result.stdout

    tampered = bytearray((tmp_path / "payload.bin").read_bytes())
    tampered[10] ^= 1
    (tmp_path / "payload.bin").write_bytes(bytes(tampered))
    assert _openssl(*verify, cwd=tmp_path).returncode != 0


def test_payload_signed_by_openssl_verifies_with_verify_license(make_license, tmp_path):
    assert (
        _openssl("genpkey", "-algorithm", "ed25519", "-out", "key.pem", cwd=tmp_path).returncode
        == 0
    )
    assert (
        _openssl("pkey", "-in", "key.pem", "-pubout", "-out", "pub.pem", cwd=tmp_path).returncode
        == 0
    )
    public = serialization.load_pem_public_key((tmp_path / "pub.pem").read_bytes())
    keyring = tmslicense.Keyring([public])

    lic = make_license("enterprise")
    payload = lic.to_payload()
    (tmp_path / "payload.bin").write_bytes(payload)
    result = _openssl(
        "pkeyutl",
        "-sign",
        "-rawin",
        "-inkey",
        "key.pem",
        "-in",
        "payload.bin",
        "-out",
        "sig.bin",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    signature = (tmp_path / "sig.bin").read_bytes()
    text = armor(envelope(payload, signature, kid=tmslicense.key_id(public)))
    for installation_id in lic.installation_ids:
        assert tmslicense.verify_license(text, keyring, installation_id, now=NOW) == lic

    forged = json.loads(json.dumps(lic.to_dict()))
    forged["seats"] = 5000
    forged_payload = json.dumps(forged).encode()
    with pytest.raises(tmslicense.BadSignature):
        tmslicense.verify_license(
            armor(envelope(forged_payload, signature, kid=tmslicense.key_id(public))),
            keyring,
            lic.installation_ids[0],
            now=NOW,
        )
