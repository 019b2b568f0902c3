"""Each file's expiry in a column of its own, given what each file issued before carries."""

from django.db import migrations, models

import tmslicense


def record_expiry(apps, schema_editor):
    Activation = apps.get_model("licensing", "Activation")
    changed = []
    for activation in Activation.objects.only("pk", "license_file").iterator(chunk_size=500):
        try:
            expires_at = tmslicense.read_license(activation.license_file).expires_at
        except tmslicense.LicenseError:  # a file damaged in the database: none recorded
            continue
        if expires_at is not None:
            changed.append(Activation(pk=activation.pk, expires_at=expires_at))  # no file held
        if len(changed) == 500:
            Activation.objects.bulk_update(changed, ["expires_at"])
            changed = []
    Activation.objects.bulk_update(changed, ["expires_at"])


class Migration(migrations.Migration):
    dependencies = [
        ("licensing", "0024_outbox_message_licenses"),
    ]

    operations = [
        migrations.AddField(
            model_name="activation",
            name="expires_at",
            field=models.DateTimeField(blank=True, editable=False, null=True),
        ),
        migrations.RunPython(record_expiry, migrations.RunPython.noop),
    ]
