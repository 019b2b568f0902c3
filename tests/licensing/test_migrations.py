"""Migrations that change data, run against a database holding what they must fix."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

import tmslicense

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = [("licensing", "0005_support_adds_licenses")]
AFTER = [("licensing", "0006_license_seats_at_least_one")]


def migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


def test_a_license_saved_with_no_seats_gets_one_and_an_audit_event():
    try:
        apps = migrate(BEFORE)
        Organization = apps.get_model("licensing", "Organization")
        License = apps.get_model("licensing", "License")
        org = Organization.objects.create(name="Old Data Inc.")
        empty = License.objects.create(
            number=tmslicense.new_license_number(),
            organization=org,
            kind="standard",
            seats=0,
            maintenance_end="2030-01-01",
        )
        apps = migrate(AFTER)
        License = apps.get_model("licensing", "License")
        AuditEvent = apps.get_model("licensing", "AuditEvent")
        assert License.objects.get(pk=empty.pk).seats == 1
        event = AuditEvent.objects.get(license_id=empty.pk)
        assert event.details == {
            "changed": {"seats": [0, 1]},
            "reason": "a license has at least one seat",
        }
    finally:
        migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())


def test_events_written_before_name_their_actor():
    try:
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
    finally:
        migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())
