"""The audit trail's action indexed: every log-in is audited now, and the trail is filtered
by action."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("licensing", "0014_support_invites_members"),
    ]

    operations = [
        migrations.AlterField(
            model_name="auditevent",
            name="action",
            field=models.CharField(db_index=True, max_length=40),
        ),
    ]
