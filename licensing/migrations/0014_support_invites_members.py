"""Support staff invite a customer organization's members: an account the member sets up from
an e-mailed link."""

from django.db import migrations

from ._grant import grant_to_support


class Migration(migrations.Migration):
    dependencies = [("licensing", "0013_license_text_and_years")]

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
                    (
                        "invite_member",
                        "Can invite members to an organization by e-mail",
                    ),
                ],
            },
        ),
        migrations.RunPython(grant_to_support("invite_member"), migrations.RunPython.noop),
    ]
