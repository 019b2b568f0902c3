import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

import tmslicense
from licensing import services, signing
from licensing.models import Activation


class Command(BaseCommand):
    help = (
        "Revoke again each file on a saved copy of the site's list of revoked files "
        "(/revoked.txt) that is live in this database: after restoring a backup older than "
        "the list. The list must be signed by a key of the site's keyring."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", help="the saved /revoked.txt (-: standard input)")
        parser.add_argument(
            "--dry-run", action="store_true", help="say what would be revoked; change nothing"
        )

    stdin = sys.stdin.buffer  # replaced in tests

    def handle(self, *args, file, dry_run=False, **options):
        executor = MigrationExecutor(connection)
        if executor.migration_plan(executor.loader.graph.leaf_nodes()):
            raise CommandError(
                "The database is not migrated to this version (a backup of an older one "
                "restored): run `manage.py migrate` first. Nothing was revoked."
            )
        try:
            text = self.stdin.read() if file == "-" else Path(file).read_bytes()
            serials = tmslicense.verify_revoked_list(text, signing.public_keyring())
        except OSError as error:
            raise CommandError(f"{file}: {error.strerror}: nothing was revoked.") from None
        except tmslicense.LicenseError as error:
            raise CommandError(f"{file}: {str(error).rstrip('.')}: nothing was revoked.") from None
        files, failed = services.revoke_listed(serials, dry_run=dry_run)
        for act in files:
            done = "Would revoke" if dry_run else "Revoked"
            self.stdout.write(f"{done} {act.serial} (license {act.license.number}).")
        known = set(Activation.objects.filter(serial__in=serials).values_list("serial", flat=True))
        if unknown := len(set(serials) - known):
            self.stdout.write(
                f"{unknown} serial(s) on the list are not in this database: files issued after "
                "the backup was taken, which the site cannot list again (servers that took the "
                "list before keep refusing them)."
            )
        if failed:
            raise CommandError(
                "Not revoked, still live (run the command again): " + "; ".join(failed)
            )
        if not files:
            self.stdout.write("No file on the list is live here: nothing to revoke.")
        elif not dry_run:
            self.stdout.write(f"{len(files)} file{'s' if len(files) > 1 else ''} revoked again.")
