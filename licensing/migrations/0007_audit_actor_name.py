from django.db import migrations, models
from django.db.models import Case, F, OuterRef, Subquery, Value, When
from django.db.models.functions import Concat


def name_the_actors(apps, schema_editor):
    """Events written before: their actor's name as it is now (deleted accounts are gone)."""
    User = apps.get_model("auth", "User")
    name = Case(
        When(email="", then=F("username")),
        default=Concat(
            "username", Value(" ("), "email", Value(")"), output_field=models.CharField()
        ),
        output_field=models.CharField(),
    )
    apps.get_model("licensing", "AuditEvent").objects.filter(actor__isnull=False).update(
        actor_name=Subquery(
            User.objects.filter(pk=OuterRef("actor_id")).annotate(name=name).values("name")[:1]
        )
    )


class Migration(migrations.Migration):
    dependencies = [
        ("licensing", "0006_license_seats_at_least_one"),
    ]

    operations = [
        migrations.AddField(
            model_name="auditevent",
            name="actor_name",
            field=models.CharField(blank=True, default="", max_length=410),
        ),
        migrations.RunPython(name_the_actors, migrations.RunPython.noop),
    ]
