from django.db import migrations, models

import tmslicense.ids


class Migration(migrations.Migration):
    dependencies = [
        ("licensing", "0003_activation_replaced_by"),
    ]

    operations = [
        migrations.AlterField(
            model_name="license",
            name="number",
            field=models.CharField(
                default=tmslicense.ids.new_license_number, max_length=17, unique=True
            ),
        ),
    ]
