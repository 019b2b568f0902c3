"""Support staff add a new customer as an organization, and correct its name (audited): what
they do before adding its licenses and inviting its engineers."""

from django.db import migrations

from ._grant import grant_to_support


class Migration(migrations.Migration):
    dependencies = [("licensing", "0015_audit_event_action_index")]

    operations = [
        migrations.RunPython(grant_to_support("add_organization"), migrations.RunPython.noop),
        migrations.RunPython(grant_to_support("change_organization"), migrations.RunPython.noop),
    ]
