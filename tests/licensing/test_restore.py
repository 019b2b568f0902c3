"""After a database is restored from a dump older than the last revocations: the files revoked
since are live again in it, and the site's /revoked.txt no longer lists them. The list saved
before (it is public and signed) revokes them again."""

import io

import pytest
from django.core.management import CommandError, call_command
from django.test import Client

import tmslicense
from licensing import services
from licensing.management.commands import revoke_listed
from licensing.models import Activation, AuditEvent, OutboxMessage


def _activated(make_license, customer):
    return services.activate(
        license=make_license("standard"),
        installation_id=tmslicense.new_installation_id(),
        actor=customer,
    )[0]


def test_the_saved_list_of_revoked_files_revokes_them_again(
    make_license, customer, support, tmp_path, capsys, monkeypatch
):
    leaked, kept = _activated(make_license, customer), _activated(make_license, customer)
    services.revoke(activation=leaked, reason="Leaked on a forum", actor=support)
    saved = tmp_path / "revoked.txt"
    saved.write_bytes(Client().get("/revoked.txt").content)  # as the hourly copy saves it
    # The dump was taken before the revocation: restored, the file is live again.
    Activation.objects.filter(pk=leaked.pk).update(revoked_at=None, revoked_reason="")
    AuditEvent.objects.filter(action="revoke").delete()
    OutboxMessage.objects.filter(key__startswith="revoked:").delete()
    assert leaked.serial not in Client().get("/revoked.txt").content.decode()

    call_command("revoke_listed", str(saved), "--dry-run")
    assert Activation.objects.revoked().count() == 0  # said, not done
    assert f"Would revoke {leaked.serial} (license {leaked.license.number})" in (
        capsys.readouterr().out
    )
    # From standard input, as `docker compose run -T migrate … - < revoked.txt` gives it.
    monkeypatch.setattr(revoke_listed.Command, "stdin", io.BytesIO(saved.read_bytes()))
    call_command("revoke_listed", "-")
    out = capsys.readouterr().out
    assert f"Revoked {leaked.serial} (license {leaked.license.number})" in out
    assert "1 file revoked again" in out
    leaked.refresh_from_db()
    kept.refresh_from_db()
    assert not leaked.is_live and kept.is_live
    assert "restored" in leaked.revoked_reason
    event = AuditEvent.objects.get(action="revoke")
    assert event.actor is None and event.details["serial"] == leaked.serial
    assert leaked.serial in Client().get("/revoked.txt").content.decode()
    # The customer hears of it again, as for any revocation.
    assert OutboxMessage.objects.filter(key=f"revoked:{leaked.serial}").exists()
    # Run again: nothing more to do.
    call_command("revoke_listed", str(saved))
    assert "No file on the list is live here: nothing to revoke." in capsys.readouterr().out


def test_a_list_not_signed_by_the_site_revokes_nothing(make_license, customer, tmp_path):
    live = _activated(make_license, customer)
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    other = Ed25519PrivateKey.generate()
    forged = tmslicense.sign_revoked_list([live.serial], other, tmslicense.key_id(other))
    for text in (forged, f"{live.serial}\n"):
        path = tmp_path / "revoked.txt"
        path.write_text(text)
        with pytest.raises(CommandError, match=rf"{path}: .*nothing was revoked"):
            call_command("revoke_listed", str(path))
    with pytest.raises(CommandError, match="nothing was revoked"):
        call_command("revoke_listed", str(tmp_path / "missing.txt"))
    live.refresh_from_db()
    assert live.is_live and not AuditEvent.objects.filter(action="revoke").exists()


def test_a_file_that_could_not_be_revoked_again_is_named_and_fails_the_command(
    make_license, customer, support, tmp_path, monkeypatch
):
    """A refusal that leaves a listed file live (its row held by a send past the lock's
    timeout): named, the command fails, to be run again; not "nothing to revoke"."""
    leaked = _activated(make_license, customer)
    services.revoke(activation=leaked, reason="Leaked", actor=support)
    saved = tmp_path / "revoked.txt"
    saved.write_bytes(Client().get("/revoked.txt").content)
    Activation.objects.filter(pk=leaked.pk).update(revoked_at=None, revoked_reason="")

    def held(**kwargs):
        raise services.ActivationError("Its license file is being e-mailed right now.")

    monkeypatch.setattr(services, "revoke", held)
    with pytest.raises(CommandError, match=rf"Not revoked, still live .*{leaked.serial}"):
        call_command("revoke_listed", str(saved))
    leaked.refresh_from_db()
    assert leaked.is_live
