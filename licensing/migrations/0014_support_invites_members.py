"""Support staff invite a customer organization's members: an account the member sets up from
an e-mailed link."""

from django.db import migrations


def grant(apps, schema_editor):
    from django.contrib.auth.management import create_permissions

    # Permissions are normally created after all migrations; the group needs this one now.
    app_config = apps.get_app_config("licensing")
    app_config.models_module = True
    create_permissions(app_config, apps=apps, verbosity=0)
    app_config.models_module = None
    group = apps.get_model("auth", "Group").objects.filter(name="support").first()
    if group is not None:
        group.permissions.add(
            apps.get_model("auth", "Permission").objects.get(
                content_type__app_label="licensing", codename="invite_member"
            )
        )


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
        migrations.RunPython(grant, migrations.RunPython.noop),
    ]
