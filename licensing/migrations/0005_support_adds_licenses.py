"""Support staff add licenses (from an order), as the admin offers them a fresh number."""

from django.db import migrations


def grant(apps, schema_editor):
    Permission = apps.get_model("auth", "Permission")
    group = apps.get_model("auth", "Group").objects.filter(name="support").first()
    if group is not None:
        group.permissions.add(
            *Permission.objects.filter(content_type__app_label="licensing", codename="add_license")
        )


def revoke(apps, schema_editor):
    Permission = apps.get_model("auth", "Permission")
    group = apps.get_model("auth", "Group").objects.filter(name="support").first()
    if group is not None:
        group.permissions.remove(
            *Permission.objects.filter(content_type__app_label="licensing", codename="add_license")
        )


class Migration(migrations.Migration):
    dependencies = [("licensing", "0004_license_number_default")]

    operations = [migrations.RunPython(grant, revoke)]
