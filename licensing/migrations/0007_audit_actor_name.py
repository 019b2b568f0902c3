from django.db import migrations, models


def name_the_actors(apps, schema_editor):
    """Events written before: their actor's name as it is now (deleted accounts are gone)."""
    AuditEvent = apps.get_model("licensing", "AuditEvent")
    for event in AuditEvent.objects.filter(actor__isnull=False).select_related("actor"):
        user = event.actor
        event.actor_name = f"{user.username} ({user.email})" if user.email else user.username
        event.save(update_fields=["actor_name"])


class Migration(migrations.Migration):
    dependencies = [
        ("licensing", "0006_license_seats_at_least_one"),
    ]

    operations = [
        migrations.AddField(
            model_name="auditevent",
            name="actor_name",
            field=models.CharField(blank=True, default="", max_length=300),
        ),
        migrations.RunPython(name_the_actors, migrations.RunPython.noop),
    ]
