"""Data for the two fields before (kept apart from their schema changes: PostgreSQL builds a
new field's index at the end of its migration, which it refuses while rows changed in the same
transaction still have foreign-key checks pending)."""

from django.db import migrations
from django.db.models import OuterRef, Subquery
from django.db.models.functions import Substr


def link_messages(apps, schema_editor):
    """Each message about a license file (sent with it, or reporting its revocation) gets its
    activation, found by the serial in its key."""
    OutboxMessage = apps.get_model("licensing", "OutboxMessage")
    Activation = apps.get_model("licensing", "Activation")
    for prefix in ("activation:", "revoked:"):
        serial = Substr(OuterRef("key"), len(prefix) + 1)
        OutboxMessage.objects.filter(key__startswith=prefix).update(
            activation=Subquery(Activation.objects.filter(serial=serial).values("pk")[:1])
        )


def name_organizations(apps, schema_editor):
    """An event of a license: the license's organization. One of no license (an
    organization's edit, members or lifted pauses) named the organization then: found by that
    name, as long as it was not renamed since (another event of no license whose text is an
    organization's name would be counted to it too)."""
    AuditEvent = apps.get_model("licensing", "AuditEvent")
    License = apps.get_model("licensing", "License")
    Organization = apps.get_model("licensing", "Organization")
    AuditEvent.objects.filter(license__isnull=False).update(
        organization=Subquery(
            License.objects.filter(pk=OuterRef("license_id")).values("organization_id")
        )
    )
    AuditEvent.objects.filter(license__isnull=True).update(
        organization=Subquery(
            Organization.objects.filter(name=OuterRef("object_repr")).values("pk")[:1]
        )
    )


def uncancel(apps, schema_editor):
    """Backwards: a cancelled message (its file was revoked) becomes failed, a status the
    field before 0010 holds; it is not sent by itself."""
    apps.get_model("licensing", "OutboxMessage").objects.filter(status="cancelled").update(
        status="failed"
    )


class Migration(migrations.Migration):
    dependencies = [("licensing", "0011_audit_event_organization")]

    operations = [
        migrations.RunPython(link_messages, uncancel),
        migrations.RunPython(name_organizations, migrations.RunPython.noop),
    ]
