import django.db.models.deletion
from django.db import migrations, models


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
    ]
