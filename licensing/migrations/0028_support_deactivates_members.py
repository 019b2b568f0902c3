"""Support deactivates a customer organization's member (an engineer who left the plant): the
account is kept, with its history, and no longer logs in."""

from django.db import migrations

from ._grant import grant_to_support


class Migration(migrations.Migration):
    dependencies = [("licensing", "0027_activation_list_and_expiry_indexes")]

    operations = [
        migrations.AlterModelOptions(
            name="organization",
            options={
                "ordering": ["name"],
                "permissions": [
                    (
                        "lift_pauses",
                        "Can lift the log-in and look-up pauses of an organization's members",
                    ),
                    ("invite_member", "Can invite members to an organization by e-mail"),
                    (
                        "deactivate_member",
                        "Can deactivate the account of an organization's member",
                    ),
                ],
            },
        ),
        migrations.RunPython(grant_to_support("deactivate_member"), migrations.RunPython.noop),
    ]
