import django.db.models.deletion
from django.db import migrations, models


def link_replacements(apps, schema_editor):
    """Files reissued or corrected before this field existed: linked from their audit events."""
    Activation = apps.get_model("licensing", "Activation")
    AuditEvent = apps.get_model("licensing", "AuditEvent")
    events = AuditEvent.objects.filter(action__in=["reissue", "correct_installation_id"])
    for details in events.values_list("details", flat=True):
        new = Activation.objects.filter(serial=details.get("serial")).first()
        if new is not None:
            Activation.objects.filter(serial=details.get("replaces")).update(replaced_by=new)


class Migration(migrations.Migration):
    dependencies = [
        ("licensing", "0002_support_group"),
    ]

    operations = [
        migrations.AddField(
            model_name="activation",
            name="replaced_by",
            field=models.OneToOneField(
                blank=True,
                editable=False,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="replaces",
                to="licensing.activation",
            ),
        ),
        migrations.RunPython(link_replacements, migrations.RunPython.noop),
    ]
