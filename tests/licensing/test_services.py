"""Support operations and database invariants."""

import logging
import os
import time
from datetime import timedelta

import pytest
from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

import tmslicense
from licensing import services, signing
from licensing.models import Activation, AuditEvent, License, OutboxMessage, person
from tests.factories import OrganizationFactory


@pytest.fixture
def ids():
    return tmslicense.new_installation_id(), tmslicense.new_installation_id()


@pytest.fixture
def live(make_license, customer, ids):
    activation, created = services.activate(
        license=make_license("mirrored"),
        installation_id=ids[0],
        mirrored_installation_id=ids[1],
        actor=customer,
        ip="10.0.0.7",
    )
    assert created
    return activation


def test_activation_is_audited_with_actor_and_ip(live, customer):
    event = AuditEvent.objects.get(action="activate")
    assert event.actor == customer
    assert event.ip_address == "10.0.0.7"
    assert event.details["serial"] == live.serial


def test_a_record_no_file_can_carry_is_refused_clearly_and_writes_nothing(make_license, customer):
    # Recorded before the site checked names for control characters.
    lic = make_license("standard")
    License.objects.filter(pk=lic.pk).update(product="ThinManager\tServer")
    with pytest.raises(services.LicenseNotActivatable, match="cannot be put into a license file"):
        services.activate(
            license=lic, installation_id=tmslicense.new_installation_id(), actor=customer
        )
    assert not Activation.objects.exists() and not OutboxMessage.objects.exists()
    assert not AuditEvent.objects.filter(action="activate").exists()


def test_an_updated_file_the_record_cannot_carry_sends_the_customer_to_support(live, customer):
    License.objects.filter(pk=live.license_id).update(product="ThinManager\tServer")
    with pytest.raises(services.LicenseNotActivatable) as refused:
        services.update_file(license=live.license, actor=customer)
    assert refused.value.message.endswith(services.contact_support())  # not "Correct the record"
    live.refresh_from_db()
    assert live.is_live and Activation.objects.count() == 1  # nothing written


def test_a_redownload_or_a_refusal_is_decided_before_signing(live, customer, ids, monkeypatch):
    # Decided under the license's lock: no file is signed and no insert is tried (which
    # would fail on the "one live activation" constraint and log an error in PostgreSQL).
    signed = []
    monkeypatch.setattr(services.signing, "sign", lambda lic: signed.append(lic))
    again, created = services.activate(
        license=live.license,
        installation_id=ids[0],
        mirrored_installation_id=ids[1],
        actor=customer,
    )
    assert (again, created) == (live, False)
    with pytest.raises(services.AlreadyActivated, match="already activated"):
        services.activate(
            license=live.license,
            installation_id=tmslicense.new_installation_id(),
            mirrored_installation_id=ids[1],
            actor=customer,
        )
    assert signed == []
    assert Activation.objects.get() == live


def test_the_same_two_servers_the_other_way_round_are_told_which_is_which(live, customer, ids):
    with pytest.raises(services.AlreadyActivated) as refused:
        services.activate(
            license=live.license,
            installation_id=ids[1],
            mirrored_installation_id=ids[0],
            actor=customer,
        )
    assert refused.value.message == (
        f"License {live.license.number} is activated with {ids[0]} as the primary server and "
        f"{ids[1]} as the secondary. To download its file again, enter {ids[0]} as the "
        f"Installation ID and {ids[1]} as the Mirrored Installation ID. To swap the servers' "
        "roles, contact support at support@example.com with your license number."
    )
    assert Activation.objects.get() == live


def test_only_a_second_live_activation_is_taken_for_a_race(make_license, customer, monkeypatch):
    # Another constraint's refusal is a fault to see, not "busy; try again".
    monkeypatch.setattr(services.secrets, "token_hex", lambda n: "00" * n)  # one serial
    services.activate(
        license=make_license(), installation_id=tmslicense.new_installation_id(), actor=customer
    )
    with pytest.raises(IntegrityError, match="serial"):
        services.activate(
            license=make_license(), installation_id=tmslicense.new_installation_id(), actor=customer
        )


@pytest.mark.parametrize("removal", ["deactivated", "moved to another organization"])
def test_a_member_removed_while_their_request_ran_is_issued_no_file(
    make_license, customer, live, removal
):
    """The look-up found the license theirs; by the time the license is locked, an
    administrator has removed them: nothing is issued, nothing written."""
    found = services.find_license(user=customer, number=make_license("standard").number)
    if removal == "deactivated":
        customer.is_active = False
        customer.save()
    else:
        customer.membership.organization = OrganizationFactory()
        customer.membership.save()
    before = (Activation.objects.count(), AuditEvent.objects.count(), OutboxMessage.objects.count())
    with pytest.raises(services.LicenseNotFound, match="no longer belongs"):
        services.activate(
            license=found, installation_id=tmslicense.new_installation_id(), actor=customer
        )
    with pytest.raises(services.LicenseNotFound, match="no longer belongs"):
        services.update_file(license=live.license, actor=customer)
    after = (Activation.objects.count(), AuditEvent.objects.count(), OutboxMessage.objects.count())
    assert after == before


def test_revoke_needs_a_reason_and_frees_the_license(live, customer, ids):
    with pytest.raises(services.ActivationError, match="reason"):
        services.revoke(activation=live, reason="  ", actor=customer)
    live.refresh_from_db()
    assert live.is_live
    services.revoke(activation=live, reason="Server replaced", actor=customer)
    live.refresh_from_db()
    assert not live.is_live and live.revoked_reason == "Server replaced"
    # The organization is told, without support's reason.
    mail = OutboxMessage.objects.get(key=f"revoked:{live.serial}")
    assert mail.recipients == [customer.email]
    assert live.serial in mail.body and ids[0] in mail.body and "(mirror)" in mail.body
    assert "Server replaced" not in mail.body and "activated again" in mail.body
    assert f"{settings.SITE_URL}/licenses/{live.license.number}/" in mail.body  # where
    other = tmslicense.new_installation_id()
    activation, created = services.activate(
        license=live.license,
        installation_id=other,
        mirrored_installation_id=ids[1],
        actor=customer,
    )
    assert created and activation.installation_ids == (other, ids[1])


@pytest.mark.parametrize(
    ("change", "says"),
    [
        (
            {"status": "suspended"},
            "suspended: it cannot be activated again until support has lifted the suspension",
        ),
        (
            {"expires_at": timezone.now() - timedelta(days=1)},
            "expired: it cannot be activated again until support has extended its expiry",
        ),
        (
            {"status": "suspended", "expires_at": timezone.now() - timedelta(days=1)},
            "suspended: it cannot be activated again until support has lifted the suspension "
            "and extended its expiry",
        ),
    ],
)
def test_a_revocation_notice_of_a_license_not_active_says_why_it_stays_off(
    live, customer, support_client, change, says
):
    License.objects.filter(pk=live.license_id).update(**change)
    # Support's Revoke page says it alike (it said the license could be activated again).
    page = support_client.get(f"/admin/licensing/activation/{live.pk}/revoke/").content.decode()
    assert f"The license is {says}." in page and "can be activated again" not in page
    services.revoke(activation=live, reason="Plant closed", actor=customer)
    body = OutboxMessage.objects.get(key=f"revoked:{live.serial}").body
    assert f"The license is {says}." in " ".join(body.split())
    assert "can be activated again" not in body


def test_reissue_keeps_ids_with_a_new_serial(live, customer, keyring, ids):
    new = services.reissue(activation=live, actor=customer)
    live.refresh_from_db()
    assert not live.is_live
    assert new.serial != live.serial and new.installation_ids == ids
    first = OutboxMessage.objects.get(key=f"activation:{live.serial}").body
    again = OutboxMessage.objects.get(key=f"activation:{new.serial}").body
    assert "is activated" in first and "replaces" not in first
    lic = live.license
    assert f"({lic.product} {lic.edition} edition, mirrored license) is activated." in first

    assert f"It replaces the file with serial {live.serial}, which is revoked" in again
    # When the old file stops, and that a server with only the old one stops serving.
    assert "on both servers. The old file keeps working until a server has" in again
    assert "(http://127.0.0.1:8000/revoked.txt)" in again and "serves no thin clients" in again
    lic = tmslicense.verify_license(new.license_file, keyring, ids[1])
    assert lic.serial == new.serial
    assert AuditEvent.objects.get(action="reissue").details["replaces"] == live.serial
    assert live.replaced_by == new


def test_correcting_a_mistyped_installation_id_revokes_and_reissues(live, customer, keyring, ids):
    fixed = tmslicense.new_installation_id()
    with pytest.raises(services.ActivationError, match="reason"):
        services.reissue(
            activation=live,
            installation_id=fixed,
            mirrored_installation_id=ids[1],
            actor=customer,
        )
    new = services.reissue(
        activation=live,
        installation_id=fixed,
        mirrored_installation_id=ids[1],
        reason="Customer typed the primary ID wrong",
        actor=customer,
    )
    assert new.installation_ids == (fixed, ids[1])
    with pytest.raises(tmslicense.NotForThisServer):
        tmslicense.verify_license(new.license_file, keyring, ids[0])
    event = AuditEvent.objects.get(action="correct_installation_id")
    assert event.details["previous_installation_ids"] == list(ids)


def test_correction_refuses_bad_ids_and_writes_nothing(live, customer, ids):
    before = list(Activation.objects.values_list("serial", "revoked_at"))
    for bad in ["NOT-AN-ID", ids[1]]:
        with pytest.raises(services.InvalidInstallationIds):
            services.reissue(
                activation=live,
                installation_id=bad,
                mirrored_installation_id=ids[1],
                reason="x",
                actor=customer,
            )
    # Two new servers are no correction but a move (revoke, and the customer activates).
    with pytest.raises(services.InvalidInstallationIds, match="one Installation ID at a time"):
        services.reissue(
            activation=live,
            installation_id=tmslicense.new_installation_id(),
            mirrored_installation_id=tmslicense.new_installation_id(),
            reason="x",
            actor=customer,
        )
    assert list(Activation.objects.values_list("serial", "revoked_at")) == before
    # The two swapped is a correction.
    new = services.reissue(
        activation=live,
        installation_id=ids[1],
        mirrored_installation_id=ids[0],
        reason="primary and secondary the other way round",
        actor=customer,
    )
    assert new.installation_ids == (ids[1], ids[0])


def test_database_allows_one_live_activation_per_license(live):
    with pytest.raises(IntegrityError), transaction.atomic():
        Activation.objects.create(
            license=live.license,
            installation_id=tmslicense.new_installation_id(),
            serial="DUPLICATE",
            kid="k",
            license_file="x",
        )


@pytest.mark.parametrize("case", ["same ids", "lower-case primary", "lower-case mirror"])
def test_database_keeps_installation_ids_canonical_and_different(live, case):
    canonical = tmslicense.new_installation_id()
    primary, mirror = {
        "same ids": (canonical, canonical),
        "lower-case primary": (canonical.lower(), ""),
        "lower-case mirror": (canonical, tmslicense.new_installation_id().lower()),
    }[case]
    services.revoke(activation=live, reason="test", actor=None)
    with pytest.raises(IntegrityError), transaction.atomic():
        Activation.objects.create(
            license=live.license,
            installation_id=primary,
            mirrored_installation_id=mirror,
            serial="BAD",
            kid="k",
            license_file="x",
        )


def test_signing_key_never_reaches_the_logs(make_license, customer, signing_key_file, caplog):
    caplog.set_level(logging.DEBUG)
    services.activate(
        license=make_license("standard"),
        installation_id=tmslicense.new_installation_id(),
        actor=customer,
    )
    secret_line = signing_key_file.read_text().splitlines()[1]
    assert secret_line not in caplog.text
    assert "PRIVATE KEY" not in caplog.text


def test_missing_signing_key_is_a_clear_error_that_writes_nothing(
    make_license, customer, customer_client, support, settings, tmp_path, caplog
):
    """A key file lost or unreadable while the site runs (check --deploy refuses to start
    without one): the customer is told to try later, not shown a 500 page; the log says why."""
    from tests.licensing.wizard import step1

    settings.LICENSE_SIGNING_KEY_FILE = tmp_path / "absent.pem"
    lic = make_license("standard")
    with pytest.raises(services.ActivationError) as refused:
        services.activate(
            license=lic, installation_id=tmslicense.new_installation_id(), actor=customer
        )
    assert refused.value.message == (
        "License files cannot be issued right now: nothing was done. Try again in a few "
        f"minutes; if it cannot wait, contact support at {settings.SUPPORT_EMAIL} with your "
        "license number."
    )
    assert "create_signing_key" in caplog.text  # for whoever runs the site
    page = step1(customer_client, lic.number, tmslicense.new_installation_id())
    assert page.status_code == 200
    assert "License files cannot be issued right now" in page.content.decode()
    assert not Activation.objects.exists()
    assert not AuditEvent.objects.exclude(action="log_in").exists()
    assert not OutboxMessage.objects.exists()
    # Support is told what to look at, not to contact support.
    settings.LICENSE_SIGNING_KEY_FILE = tmp_path / "key.pem"
    signing.create_key_file(settings.LICENSE_SIGNING_KEY_FILE)
    live, _ = services.activate(
        license=lic, installation_id=tmslicense.new_installation_id(), actor=customer
    )
    settings.LICENSE_SIGNING_KEY_FILE = tmp_path / "absent.pem"
    with pytest.raises(services.ActivationError) as refused:
        services.reissue(activation=live, actor=support)
    assert "signing key cannot be read: LICENSE_SIGNING_KEY_FILE: no signing key at" in (
        refused.value.message
    )
    assert "contact support" not in refused.value.message
    live.refresh_from_db()
    assert live.is_live


# A throw-away key on SM2, a curve the cryptography package does not load.
UNSUPPORTED_CURVE_KEY = """-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqBHM9VAYItBG0wawIBAQQg8FMtIpCoj3ENpQPr
iPeikZ4jnNNoryN5+klLcxnFuSehRANCAAR8pq7jcNOzpTdcAeTEHIYgqp1dlpBZ
66a9L3gPEj/pLZ03XbT+lBAS0Px/ENeJJjYCy5J5L1XRu5nZRFdgSzQf
-----END PRIVATE KEY-----
"""


def test_a_key_on_a_curve_not_supported_is_named_as_unusable(client, db, settings, tmp_path):
    from licensing import signing

    key_file = tmp_path / "sm2.pem"
    key_file.write_text(UNSUPPORTED_CURVE_KEY)
    settings.LICENSE_SIGNING_KEY_FILE = key_file
    assert signing.problem() == (
        f"LICENSE_SIGNING_KEY_FILE: {key_file} is not a readable, unencrypted PEM private key."
    )
    assert client.get("/healthz").status_code == 503  # not a 500


def test_a_key_file_replaced_with_its_time_kept_is_read_again(client, db, settings, tmp_path):
    from licensing import signing

    key_file, other = tmp_path / "signing-key.pem", tmp_path / "other.pem"
    first = tmslicense.key_id(signing.create_key_file(key_file))
    second = tmslicense.key_id(signing.create_key_file(other))
    settings.LICENSE_SIGNING_KEY_FILE = key_file
    assert signing.current_kid() == first  # read, and cached
    # A restore (`cp -p`) that puts another file there with the same modification time.
    kept = key_file.stat()

    def replace(text):
        time.sleep(0.05)  # past the file system's clock tick (a few ms), as any real restore is
        key_file.write_text(text)
        os.utime(key_file, ns=(kept.st_atime_ns, kept.st_mtime_ns))

    replace(other.read_text())
    assert signing.current_kid() == second
    replace(UNSUPPORTED_CURVE_KEY)
    assert "is not a readable, unencrypted PEM private key" in signing.problem()
    assert client.get("/healthz").status_code == 503


def test_another_secondary_with_the_same_primary_is_told_the_one_on_file(live, customer, ids):
    with pytest.raises(services.AlreadyActivated) as refused:
        services.activate(
            license=live.license,
            installation_id=ids[0],
            mirrored_installation_id=tmslicense.new_installation_id(),
            actor=customer,
        )
    assert refused.value.field == "mirrored_installation_id"
    assert f"enter {ids[1]} as the Mirrored Installation ID" in refused.value.message
    assert Activation.objects.get() == live


@pytest.mark.parametrize(
    "change", [{"status": "suspended"}, {"expires_at": timezone.now() - timedelta(days=1)}]
)
def test_no_new_file_goes_out_for_a_suspended_or_expired_license(live, customer, change):
    License.objects.filter(pk=live.license_id).update(**change)
    for corrected in ("", tmslicense.new_installation_id()):
        with pytest.raises(services.ActivationError, match="issued only for an active license"):
            services.reissue(
                activation=live,
                actor=customer,
                installation_id=corrected and live.installation_id,
                mirrored_installation_id=corrected,
                reason="typo",
            )
    assert Activation.objects.get() == live and live.is_live
    assert not OutboxMessage.objects.exclude(key=f"activation:{live.serial}").exists()
    services.revoke(activation=live, reason="Contract ended", actor=customer)  # still possible


def test_a_file_lists_its_features_as_the_site_does(make_license, customer):
    """Alphabetically, whatever the order they were typed in: a server's status alike."""
    lic = make_license("standard", features=["thinserver", "multimonitor", "relevance"])
    activation, _ = services.activate(
        license=lic, installation_id=tmslicense.new_installation_id(), actor=customer
    )
    issued = tmslicense.read_license(activation.license_file)
    assert issued.features == ("multimonitor", "relevance", "thinserver")
    assert not lic.changes_since(activation)


def test_the_database_keeps_one_organization_per_name_in_any_case(db):
    from licensing.models import Organization

    Organization.objects.create(name="Acme Plastics")
    with pytest.raises(IntegrityError), transaction.atomic():
        Organization.objects.create(name="ACME PLASTICS")
    assert Organization.objects.count() == 1


def test_a_name_the_database_takes_for_the_same_in_any_case_is_named_when_entered(db):
    """PostgreSQL's lower() takes "istanbul" for "İstanbul" (and K for the Kelvin sign):
    the organization that exists is named, not a constraint's name shown."""
    from django.core.exceptions import ValidationError

    from licensing.models import Organization
    from tests.conftest import require

    require(connection.vendor == "postgresql", "PostgreSQL is not configured: set DATABASE_URL")
    Organization.objects.create(name="İstanbul Makina")
    Organization.objects.create(name="\u212aelvin Tools")  # with the Kelvin sign
    for typed, there in (("istanbul makina", "İstanbul Makina"), ("kelvin tools", "elvin Tools")):
        with pytest.raises(ValidationError, match=f"The organization .*{there} exists already"):
            Organization(name=typed).full_clean()


def test_the_trail_keeps_addresses_and_account_events_only_as_long_as_set(live, customer, settings):
    """Personal data kept no longer than needed: the address an event came from is cleared
    after AUDIT_ADDRESS_KEEP_DAYS (support's "addresses lately" reads 30 days), and an
    account's own events (log-ins, passwords chosen), which name no license, are deleted
    after AUDIT_ACCOUNT_KEEP_DAYS. What was done to a license stays, with who did it."""
    settings.AUDIT_ADDRESS_KEEP_DAYS, settings.AUDIT_ACCOUNT_KEEP_DAYS = 90, 365
    now = timezone.now()

    def event(action, days_ago, ip="198.51.100.23"):
        return AuditEvent.objects.create(
            actor=customer,
            actor_name=person(customer),
            action=action,
            object_repr=str(customer),
            ip_address=ip,
            created_at=now - timedelta(days=days_ago),
        )

    old_activation = AuditEvent.objects.get(action="activate")
    AuditEvent.objects.filter(pk=old_activation.pk).update(created_at=now - timedelta(days=400))
    recent_log_in, old_log_in = event("log_in", 89), event("log_in", 91)
    older_log_in = event("log_in", 366)
    password_change, reset = event("password_change", 366), event("password_reset", 366)
    accepted = event("invitation_accepted", 366)
    kept_password_change = event("password_change", 364)

    assert services.purge_audit(now=now, batch=2) == (3, 4)

    def ip(e):
        return AuditEvent.objects.filter(pk=e.pk).values_list("ip_address", flat=True).first()

    assert not AuditEvent.objects.filter(pk__in=[older_log_in.pk, password_change.pk]).exists()
    assert not AuditEvent.objects.filter(pk__in=[reset.pk, accepted.pk]).exists()
    assert ip(recent_log_in) == "198.51.100.23"  # within 90 days
    assert ip(old_log_in) is None and ip(kept_password_change) is None
    old_activation.refresh_from_db()  # what was done to the license stays, its actor named
    assert old_activation.ip_address is None and old_activation.actor_name == person(customer)
    assert old_activation.details["serial"] == live.serial
    assert services.purge_audit(now=now) == (0, 0)  # nothing left to do
