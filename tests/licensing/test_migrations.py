"""Migrations that change data, run against a database holding what they must fix."""

import io
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.core.management import CommandError, call_command
from django.db import IntegrityError, connection
from django.db.migrations.executor import MigrationExecutor

import tmslicense
from tests.conftest import require

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = [("licensing", "0005_support_adds_licenses")]
AFTER = [("licensing", "0006_license_seats_at_least_one")]


def _migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


@pytest.fixture
def migrate():
    """Migrates to the targets given and returns their models; the latest again afterwards."""
    yield _migrate
    _migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())


def _old_license(apps, organization_name: str, seats: int = 1):
    """A license (and its organization) written with the models of ``apps``."""
    organization = apps.get_model("licensing", "Organization").objects.create(
        name=organization_name
    )
    return apps.get_model("licensing", "License").objects.create(
        number=tmslicense.new_license_number(),
        organization=organization,
        kind="standard",
        seats=seats,
        maintenance_end="2030-01-01",
    )


def test_a_license_saved_with_no_seats_gets_one_and_an_audit_event(migrate):
    empty = _old_license(migrate(BEFORE), "Old Data Inc.", seats=0)
    apps = migrate(AFTER)
    License = apps.get_model("licensing", "License")
    AuditEvent = apps.get_model("licensing", "AuditEvent")
    assert License.objects.get(pk=empty.pk).seats == 1
    event = AuditEvent.objects.get(license_id=empty.pk)
    assert event.details == {
        "changed": {"seats": [0, 1]},
        "reason": "a license has at least one seat",
    }


def test_events_written_before_name_their_actor(migrate):
    apps = migrate([("licensing", "0006_license_seats_at_least_one")])
    User = apps.get_model("auth", "User")
    AuditEvent = apps.get_model("licensing", "AuditEvent")
    agent = User.objects.create(username="agent", email="agent@example.com")
    by_agent = AuditEvent.objects.create(action="revoke", actor=agent, object_repr="x")
    by_nobody = AuditEvent.objects.create(action="license_change", object_repr="y")
    apps = migrate([("licensing", "0007_audit_actor_name")])
    AuditEvent = apps.get_model("licensing", "AuditEvent")
    assert AuditEvent.objects.get(pk=by_agent.pk).actor_name == "agent (agent@example.com)"
    assert AuditEvent.objects.get(pk=by_nobody.pk).actor_name == ""


def test_messages_and_events_are_linked_and_cancelled_messages_go_back_as_failed(migrate):
    apps = migrate([("licensing", "0009_outbox_secret_body")])
    Activation = apps.get_model("licensing", "Activation")
    OutboxMessage = apps.get_model("licensing", "OutboxMessage")
    AuditEvent = apps.get_model("licensing", "AuditEvent")
    lic = _old_license(apps, "Old Mail Inc.")

    def activation(serial, **kwargs):
        return Activation.objects.create(
            license=lic,
            installation_id=tmslicense.new_installation_id(),
            serial=serial,
            kid="k",
            license_file="x",
            issued_at="2026-01-01T00:00:00Z",
            **kwargs,
        )

    live = activation("AAAA000000000001")
    revoked = activation(
        "AAAA000000000002", revoked_at="2026-02-01T00:00:00Z", revoked_reason="Moved"
    )

    def message(key, **kwargs):
        return OutboxMessage.objects.create(
            key=key, license=lic, recipients=["a@example.com"], subject=key, body="b", **kwargs
        ).pk

    messages = [
        message(f"activation:{live.serial}", attachment="file"),
        message(f"activation:{revoked.serial}", attachment="file", status="failed"),
        message(f"revoked:{revoked.serial}"),
        message("reminder:TM-X:30:2030-01-01"),
    ]
    events = [
        AuditEvent.objects.create(action="activate", license=lic, object_repr="x").pk,
        AuditEvent.objects.create(action="lift_pauses", object_repr="Old Mail Inc.").pk,
        AuditEvent.objects.create(action="outbox_retry", object_repr="Reset (failed)").pk,
    ]
    apps = migrate([("licensing", "0012_link_messages_and_events")])
    OutboxMessage = apps.get_model("licensing", "OutboxMessage")
    AuditEvent = apps.get_model("licensing", "AuditEvent")
    linked = [OutboxMessage.objects.get(pk=pk).activation_id for pk in messages]
    assert linked == [live.pk, revoked.pk, revoked.pk, None]
    assert [AuditEvent.objects.get(pk=pk).organization_id for pk in events] == [
        lic.organization_id,
        lic.organization_id,
        None,
    ]

    # Backwards, a message cancelled since (its file revoked) fits the old field again.
    OutboxMessage.objects.filter(pk=messages[1]).update(status="cancelled")
    apps = migrate([("licensing", "0009_outbox_secret_body")])
    OutboxMessage = apps.get_model("licensing", "OutboxMessage")
    assert OutboxMessage.objects.get(pk=messages[1]).status == "failed"


def test_messages_written_before_are_for_their_licenses_organization(migrate):
    apps = migrate([("licensing", "0018_activation_revoked_in_order")])
    lic = _old_license(apps, "Old Mail Ltd.")
    OutboxMessage = apps.get_model("licensing", "OutboxMessage")
    about = OutboxMessage.objects.create(key="reminder:old", license=lic, subject="s", body="b")
    reset = OutboxMessage.objects.create(key="password-reset:old", subject="s", body="b")
    OutboxMessage = migrate([("licensing", "0019_outbox_organization")]).get_model(
        "licensing", "OutboxMessage"
    )
    assert OutboxMessage.objects.get(pk=about.pk).organization_id == lic.organization_id
    assert OutboxMessage.objects.get(pk=reset.pk).organization_id is None


def test_names_that_differ_only_in_case_are_named_before_the_constraint(migrate):
    apps = migrate([("licensing", "0019_outbox_organization")])
    Organization = apps.get_model("licensing", "Organization")
    first = Organization.objects.create(name="Acme Plastics")
    Organization.objects.create(name="ACME plastics")
    with pytest.raises(RuntimeError) as refused:
        migrate([("licensing", "0020_organization_name_once_in_any_case")])
    said = str(refused.value)
    assert f"'Acme Plastics' (id {first.pk}), 'ACME plastics' (id " in said
    # The site does not start until the migrations ran: the command it gives renames one, on
    # the schema as it is then (today's model, the database before this migration).
    command = re.search(r'python manage.py shell -c "(.+?)"', said)[1]
    assert f"pk={first.pk}" in command and "NEW NAME" in command
    call_command("shell", command=command.replace("NEW NAME", "Acme Plastics GmbH"))
    assert Organization.objects.get(pk=first.pk).name == "Acme Plastics GmbH"
    migrate([("licensing", "0020_organization_name_once_in_any_case")])


SEARCH_INDEXES = [("licensing", "0021_search_indexes")]


def _search_indexes():
    """The search indexes of the database, each with whether it is valid."""
    with connection.cursor() as cursor:
        if connection.vendor != "postgresql":
            cursor.execute("SELECT name, 1 FROM sqlite_master WHERE type = 'index'")
        else:
            cursor.execute(
                "SELECT c.relname, i.indisvalid FROM pg_index i "
                "JOIN pg_class c ON c.oid = i.indexrelid"
            )
        return {name: valid for name, valid in cursor.fetchall() if name.endswith("_trgm")}


def test_the_search_indexes_are_built_on_postgresql_and_sqlite_goes_without(migrate):
    migrate([("licensing", "0020_organization_name_once_in_any_case")])
    assert _search_indexes() == {}
    migrate(SEARCH_INDEXES)
    if connection.vendor == "postgresql":
        assert len(_search_indexes()) == 9 and all(_search_indexes().values())
    else:
        assert _search_indexes() == {}


def test_a_search_index_whose_build_was_cut_short_is_built_again(migrate):
    require(connection.vendor == "postgresql", "PostgreSQL is not configured: set DATABASE_URL")
    apps = migrate([("licensing", "0020_organization_name_once_in_any_case")])
    AuditEvent = apps.get_model("licensing", "AuditEvent")
    for _ in range(2):
        AuditEvent.objects.create(action="log_in", object_repr="x")
    with connection.cursor() as cursor, pytest.raises(IntegrityError):
        # Fails half-way, leaving the index invalid, as a build stopped by a timeout does.
        cursor.execute(
            "CREATE UNIQUE INDEX CONCURRENTLY auditevent_action_trgm "
            "ON licensing_auditevent (action)"
        )
    assert _search_indexes() == {"auditevent_action_trgm": False}
    migrate(SEARCH_INDEXES)
    assert len(_search_indexes()) == 9 and all(_search_indexes().values())


def test_the_search_indexes_of_a_large_trail_outlast_no_statement_timeout(migrate):
    """Built by a migrate run by hand, with the web's statement timeout in its environment:
    the builds of a large trail's indexes take longer, and run without it."""
    require(connection.vendor == "postgresql", "PostgreSQL is not configured: set DATABASE_URL")
    apps = migrate([("licensing", "0020_organization_name_once_in_any_case")])
    AuditEvent = apps.get_model("licensing", "AuditEvent")
    AuditEvent.objects.bulk_create(
        AuditEvent(action="log_in", object_repr=f"user {n}", details={"n": n}) for n in range(30000)
    )
    with connection.cursor() as cursor:
        cursor.execute("SET statement_timeout = '100ms'")
    try:
        migrate(SEARCH_INDEXES)
        with connection.cursor() as cursor:  # the session's own limit, as it was
            cursor.execute("SHOW statement_timeout")
            assert cursor.fetchone() == ("100ms",)
    finally:
        with connection.cursor() as cursor:
            cursor.execute("RESET statement_timeout")
    assert len(_search_indexes()) == 9 and all(_search_indexes().values())


def test_without_the_trigram_extension_migrate_goes_on_and_says_so(migrate, caplog):
    """pg_trgm is trusted (the database's owner creates it), but a role may lack even that.
    (Run as the site's role, no superuser, as CI's is: a superuser creates it regardless.)"""
    require(connection.vendor == "postgresql", "PostgreSQL is not configured: set DATABASE_URL")
    database = connection.ops.quote_name(connection.settings_dict["NAME"])
    migrate([("licensing", "0020_organization_name_once_in_any_case")])
    with connection.cursor() as cursor:
        cursor.execute("DROP EXTENSION pg_trgm")
        cursor.execute(f"REVOKE CREATE ON DATABASE {database} FROM CURRENT_USER")
    try:
        migrate(SEARCH_INDEXES)
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"GRANT CREATE ON DATABASE {database} TO CURRENT_USER")
    assert _search_indexes() == {}
    assert "Support's search indexes were not built" in caplog.text
    assert "permission denied to create extension" in caplog.text
    assert "CREATE EXTENSION pg_trgm;" in caplog.text
    assert "then run: manage.py build_search_indexes" in caplog.text
    # Once the extension can be created, the command builds them: with the later migrations'
    # data in place (going back to 0020 emptied the reminders' list of licenses, so that
    # customers were reminded again).
    _migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())
    out = io.StringIO()
    call_command("build_search_indexes", stdout=out)
    assert len(_search_indexes()) == 9 and all(_search_indexes().values())
    assert out.getvalue() == "Support's 10 search indexes are built.\n"
    call_command("build_search_indexes", stdout=out)  # again: nothing to do, no error


def test_the_search_indexes_command_says_sqlite_has_none(tmp_path):
    result = subprocess.run(
        [sys.executable, "manage.py", "build_search_indexes"],
        cwd=Path(__file__).resolve().parents[2],
        env={**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'site.sqlite3'}"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "CommandError: These indexes exist only on PostgreSQL: SQLite reads its tables."
    )


def test_each_file_gets_its_expiry_as_recorded_in_it(migrate):
    """Reminders find the files that expire soon by a column of their own: files issued
    before it are given what they carry (a damaged one is given none, not a failed migrate)."""
    from datetime import UTC, date, datetime

    apps = migrate([("licensing", "0024_outbox_message_licenses")])
    Activation = apps.get_model("licensing", "Activation")
    lic = _old_license(apps, "Old Files Inc.")
    key = Ed25519PrivateKey.generate()

    def issued(serial, expires_at, text=None):
        tms = tmslicense.License.create(
            serial=serial,
            license_number=lic.number,
            kind="standard",
            installation_ids=[tmslicense.new_installation_id()],
            product="ThinManager",
            edition="Premium",
            seats=1,
            features=[],
            customer="Old Files Inc.",
            issued_at=datetime(2026, 1, 1, tzinfo=UTC),
            maintenance_end=date(2027, 1, 1),
            expires_at=expires_at,
        )
        return Activation.objects.create(
            license=lic,
            installation_id=tms.installation_ids[0],
            serial=serial,
            kid="k",
            license_file=text or tmslicense.sign_license(tms, key, tmslicense.key_id(key)),
            issued_at=tms.issued_at,
            revoked_at=tms.issued_at,  # one live file per license: the others revoked
            revoked_reason="Replaced",
        )

    term = issued("AAAA000000000011", datetime(2027, 3, 1, 12, tzinfo=UTC))
    never = issued("AAAA000000000012", None)
    damaged = issued("AAAA000000000013", None, text="not a file")
    apps = migrate([("licensing", "0025_activation_expires_at")])
    Activation = apps.get_model("licensing", "Activation")
    expiry = dict(Activation.objects.values_list("pk", "expires_at"))
    assert expiry == {
        term.pk: datetime(2027, 3, 1, 12, tzinfo=UTC),
        never.pk: None,
        damaged.pk: None,
    }


def test_the_keys_served_when_the_site_is_upgraded_are_kept_as_the_files_keys(migrate, settings):
    """Files issued before the site kept each key's public half were signed with the keys it
    serves then: kept, so that the keyring lists them once their key file is gone."""
    from licensing import signing

    migrate([("licensing", "0028_support_deactivates_members")])
    apps = migrate([("licensing", "0029_signing_key")])
    kept = apps.get_model("licensing", "SigningKey").objects.values_list("kid", flat=True)
    assert list(kept) == [signing.current_kid()]


def test_revoke_listed_refuses_a_database_not_migrated_yet(migrate, tmp_path):
    """A backup of an older version restored: the list is applied once the database is
    migrated (the site's keyring and the files' columns are read), not half-way."""
    migrate([("licensing", "0028_support_deactivates_members")])
    listed = tmp_path / "revoked.txt"
    listed.write_text("# Revoked\n")
    with pytest.raises(CommandError, match=r"run `manage.py migrate` first\. Nothing was revoked"):
        call_command("revoke_listed", str(listed))
