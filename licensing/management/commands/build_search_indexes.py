import importlib

from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError, connection

# Migration 0021's own build: each index made without locking its table, one left invalid
# by a build cut short made again, the rest kept.
search_indexes = importlib.import_module("licensing.migrations.0021_search_indexes")


class Command(BaseCommand):
    help = (
        "Build support's search indexes (PostgreSQL's pg_trgm): once the extension can be "
        "created, where migrate could not, or to finish a build cut short. The site may run "
        "meanwhile; run it again at will."
    )

    def handle(self, *args, **options):
        if connection.vendor != "postgresql":
            raise CommandError("These indexes exist only on PostgreSQL: SQLite reads its tables.")
        with connection.cursor() as cursor:
            try:
                cursor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
            except DatabaseError as error:
                raise CommandError(
                    f"PostgreSQL's pg_trgm extension could not be created ({error}). Have the "
                    "database's owner or a superuser run CREATE EXTENSION pg_trgm; in this "
                    "database, then run this again."
                ) from None
            cursor.execute("SET statement_timeout = 0")  # a large trail's take longer
            search_indexes._build(cursor)
        self.stdout.write(f"Support's {len(search_indexes.INDEXES)} search indexes are built.")
