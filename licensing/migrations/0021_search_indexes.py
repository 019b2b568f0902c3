"""Support's searches read indexes on PostgreSQL. Django's search for a part of a text,
``UPPER(column::text) LIKE UPPER('%word%')``, cannot use a b-tree index: each search read the
whole audit trail (every log-in is in it) and would end at the statement timeout within a
year. Trigram indexes (pg_trgm) of those very expressions answer it, as an index of the
address an event came from answers a search by address. They are built without locking the
tables, outside a transaction: an activation writes an audit event meanwhile. SQLite reads
its tables whole, as before."""

import logging

from django.db import DatabaseError, migrations

logger = logging.getLogger(__name__)


def _trigrams(column: str) -> str:
    return f'gin (UPPER("{column}"::text) gin_trgm_ops)'


# name: (table, method and expression). The admin searches the events' own columns, and
# those of the licenses, organizations and files that they point to, each in its own table.
INDEXES = {
    "auditevent_action_trgm": ("licensing_auditevent", _trigrams("action")),
    "auditevent_object_repr_trgm": ("licensing_auditevent", _trigrams("object_repr")),
    "auditevent_actor_name_trgm": ("licensing_auditevent", _trigrams("actor_name")),
    "auditevent_details_trgm": ("licensing_auditevent", _trigrams("details")),
    "auditevent_ip_address": ("licensing_auditevent", 'btree ("ip_address")'),
    "license_number_trgm": ("licensing_license", _trigrams("number")),
    "organization_name_trgm": ("licensing_organization", _trigrams("name")),
    "activation_installation_id_trgm": ("licensing_activation", _trigrams("installation_id")),
    "activation_mirrored_installation_id_trgm": (
        "licensing_activation",
        _trigrams("mirrored_installation_id"),
    ),
    "activation_serial_trgm": ("licensing_activation", _trigrams("serial")),
}


def build_indexes(apps, schema_editor):
    """Without the extension (a database role that may not create it), nothing is built and
    migrate goes on: the searches work, reading whole tables; the log says what to do."""
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        try:
            cursor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        except DatabaseError as error:
            logger.warning(
                "Support's search indexes were not built: PostgreSQL's pg_trgm extension "
                "could not be created (%s). Searches work, reading whole tables, and end at "
                "the statement timeout once the audit trail is large. Have the database's "
                "owner or a superuser run CREATE EXTENSION pg_trgm; in this database, then "
                "run: manage.py build_search_indexes",
                " ".join(str(error).split()),  # one line of the log
            )
            return
        # A large trail's indexes take longer to build than the statement timeout a migrate
        # run by hand may carry (the web's): the builds run without it.
        cursor.execute("SELECT current_setting('statement_timeout')")
        [timeout] = cursor.fetchone()
        cursor.execute("SET statement_timeout = 0")
        try:
            _build(cursor)
        finally:  # the session as it was
            cursor.execute("SELECT set_config('statement_timeout', %s, false)", [timeout])


def _build(cursor):
    for name, (table, using) in INDEXES.items():
        # A build cut short leaves its index invalid, which IF NOT EXISTS would keep.
        cursor.execute(
            "SELECT 1 FROM pg_index WHERE indexrelid = to_regclass(%s) AND NOT indisvalid",
            [name],
        )
        if cursor.fetchone():
            cursor.execute(f'DROP INDEX CONCURRENTLY "{name}"')
        cursor.execute(
            f'CREATE INDEX CONCURRENTLY IF NOT EXISTS "{name}" ON "{table}" USING {using}'
        )
    # The planner's estimates of how many rows hold a word come from the expressions' own
    # statistics, gathered by ANALYZE (a new index does not make autovacuum gather them).
    tables = sorted({table for table, _ in INDEXES.values()})
    cursor.execute("ANALYZE " + ", ".join(f'"{table}"' for table in tables))


def drop_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        for name in INDEXES:
            cursor.execute(f'DROP INDEX CONCURRENTLY IF EXISTS "{name}"')


class Migration(migrations.Migration):
    atomic = False  # CREATE INDEX CONCURRENTLY runs outside a transaction

    dependencies = [
        ("licensing", "0020_organization_name_once_in_any_case"),
    ]

    operations = [
        migrations.RunPython(build_indexes, drop_indexes),
    ]
