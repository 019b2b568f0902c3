"""The public half of each key that signed a file, so that the keyring the site serves lists it
for as long as a file signed with it is in use. The keys the site serves now (its key file's,
and any kept after a rotation) are recorded as it is made: the files issued so far were
signed with them."""

import django.utils.timezone
from django.db import migrations, models


def record_served_keys(apps, schema_editor):
    from django.core.exceptions import ImproperlyConfigured

    import tmslicense
    from licensing import signing

    try:
        keys = signing.served_keys()
    except (ImproperlyConfigured, OSError, tmslicense.KeyringError):
        return  # no key file yet (a new site), or one that cannot be read: check --deploy says
    SigningKey = apps.get_model("licensing", "SigningKey")
    SigningKey.objects.bulk_create(
        [signing.key_row(SigningKey, key) for key in keys], ignore_conflicts=True
    )


class Migration(migrations.Migration):
    dependencies = [("licensing", "0028_support_deactivates_members")]

    operations = [
        migrations.CreateModel(
            name="SigningKey",
            fields=[
                ("kid", models.CharField(max_length=16, primary_key=True, serialize=False)),
                ("public_key", models.CharField(max_length=44)),
                ("first_used_at", models.DateTimeField(default=django.utils.timezone.now)),
            ],
        ),
        migrations.RunPython(record_served_keys, migrations.RunPython.noop),
    ]
