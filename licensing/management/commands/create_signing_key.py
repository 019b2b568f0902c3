from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

import tmslicense
from licensing import signing


class Command(BaseCommand):
    help = (
        "Create an Ed25519 signing key at LICENSE_SIGNING_KEY_FILE (or --path) and print its "
        "public keyring. The private key itself is never printed."
    )

    def add_arguments(self, parser):
        parser.add_argument("--path", help="where to write the key (default: the setting)")
        parser.add_argument(
            "--if-missing", action="store_true", help="do nothing when the key file exists"
        )

    def handle(self, *args, path=None, if_missing=False, **options):
        target = Path(path or settings.LICENSE_SIGNING_KEY_FILE)
        if target.exists():
            if if_missing:
                return
            raise CommandError(f"{target} exists; refusing to overwrite a signing key.")
        key = signing.create_key_file(target)
        self.stdout.write(f"Created signing key {target} (kid {tmslicense.key_id(key)}).")
        self.stdout.write("Public keyring for ThinManager Servers:")
        self.stdout.write(tmslicense.Keyring([key.public_key()]).to_json())
