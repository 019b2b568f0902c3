"""Support staff lift a customer organization's log-in and look-up pauses."""

from django.db import migrations

from ._grant import grant_to_support


class Migration(migrations.Migration):
    dependencies = [("licensing", "0007_audit_actor_name")]

    operations = [
        migrations.AlterModelOptions(
            name="organization",
            options={
                "ordering": ["name"],
                "permissions": [
                    (
                        "lift_pauses",
                        "Can lift the log-in and look-up pauses of an organization's members",
                    )
                ],
            },
        ),
        migrations.RunPython(grant_to_support("lift_pauses"), migrations.RunPython.noop),
    ]
