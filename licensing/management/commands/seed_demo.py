"""Demo data for a first look: idempotent, safe to run on every start of ``make run``."""

from datetime import date, timedelta

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction

from licensing.models import AuditEvent, Kind, License, Membership, Organization
from tmslicense.ids import INSTALLATION_ID, LICENSE_NUMBER

DEMO_PASSWORD = "demo-password-1"  # noqa: S105 - a documented demo login, local only

# Readable demo identifiers: chosen symbols plus their check character ("O" reads as zero).
# The edition is what was bought, the kind how many servers and in which roles: no edition
# repeats its license's kind ("ThinManager Standard, Standard" read as one said twice).
PRODUCT = "ThinManager"
LICENSES = [
    # (number symbols, kind, edition, seats, the edition an earlier version gave it)
    ("DEMO0000001", Kind.STANDARD, "Premium", 10, "Standard"),
    ("DEMO0000002", Kind.MIRRORED, "Standard", 25, "Premium"),
    ("DEMO0000003", Kind.ENTERPRISE, "Premium", 50, "Enterprise"),
]
OTHER_LICENSE = "0THER000001"
OTHER_EDITION, OTHER_EARLIER_EDITION = "Premium", "Standard"
# Two servers to activate for, and two more to try a refusal, a correction or a second license.
SAMPLE_IDS = [
    "DEMO000000000000001",
    "DEMO000000000000002",
    "DEMO000000000000003",
    "DEMO000000000000004",
]


class Command(BaseCommand):
    help = "Create a demo organization, customer and support users, and licenses of every kind."

    def add_arguments(self, parser):
        parser.add_argument(
            "--any-database",
            action="store_true",
            help="add the demo data to a database other than the embedded SQLite one (a test "
            "site nobody else reaches): its accounts' password is published",
        )

    @transaction.atomic
    def handle(self, *args, **options):
        if connection.vendor != "sqlite" and not options["any_database"]:
            raise CommandError(
                "seed_demo makes accounts whose password is published (demo and support, "
                f"{DEMO_PASSWORD}), a staff account among them: it runs on the embedded SQLite "
                f"database of `make run` only. This is {connection.vendor}: nothing was "
                "added. To add them here anyway (a test site nobody else reaches), run it with "
                "--any-database."
            )
        User = get_user_model()
        org, _ = Organization.objects.get_or_create(name="Demo Plant Inc.")
        other, _ = Organization.objects.get_or_create(name="Other Plant Ltd.")
        customer = self._user(User, "demo", "demo@example.com")
        Membership.objects.get_or_create(user=customer, defaults={"organization": org})
        support = self._user(User, "support", "support@example.com", staff=True)
        support.groups.add(Group.objects.get(name="support"))

        for i, (stem, kind, edition, seats, earlier) in enumerate(LICENSES):
            self._license(
                stem,
                earlier,
                organization=org,
                kind=kind,
                edition=edition,
                seats=seats,
                features=["relevance", "multimonitor"] if i else [],
                maintenance_end=date.today() + timedelta(days=365),
            )
        self._license(
            OTHER_LICENSE,
            OTHER_EARLIER_EDITION,
            organization=other,
            kind=Kind.STANDARD,
            edition=OTHER_EDITION,
            seats=5,
            maintenance_end=date.today() + timedelta(days=30),
        )
        ids = [INSTALLATION_ID.complete(stem) for stem in SAMPLE_IDS]

        self.stdout.write("Demo data is ready.")
        self.stdout.write(f"  Customer login: demo / {DEMO_PASSWORD} (e-mail demo@example.com)")
        self.stdout.write(f"  Support login:  support / {DEMO_PASSWORD} (Django admin at /admin/)")
        self.stdout.write(
            "  (the passwords set on the first run; python manage.py changepassword USER sets "
            "another)"
        )
        kinds = list(Kind)
        for lic in sorted(
            License.objects.filter(organization=org),
            key=lambda lic: (kinds.index(lic.kind), lic.number),
        ):
            self.stdout.write(f"  {lic.get_kind_display():<30} {lic.number}")
        other_number = LICENSE_NUMBER.complete(OTHER_LICENSE)
        label = "Another customer's license"
        self.stdout.write(f"  {label:<30} {other_number} (demo is told it does not exist)")
        self.stdout.write(f"  Sample Installation IDs: {ids[0]} (primary), {ids[1]} (secondary)")
        self.stdout.write(f"                           {ids[2]}, {ids[3]} (other servers)")
        self.stdout.write(
            "  A file to import on a server of your own is activated with that server's ID: see "
            "README.md.\n  E-mails the site sends (license files, password-reset links) are "
            "printed in the terminal of the server (make run's)."
        )

    @staticmethod
    def _license(stem: str, earlier_edition: str, **values) -> None:
        """A demo license, made once. One an earlier version made (its edition repeating its
        kind) gets this version's edition, unless it was changed since (support trying the
        admin): that is kept."""
        number = LICENSE_NUMBER.complete(stem)
        lic, made = License.objects.get_or_create(
            number=number, defaults={"product": PRODUCT, **values}
        )
        changed = AuditEvent.objects.filter(license=lic, action="license_change").exists()
        if not made and not changed and (lic.product, lic.edition) == (PRODUCT, earlier_edition):
            License.objects.filter(pk=lic.pk).update(edition=values["edition"])

    def _user(self, User, username, email, staff=False):
        user, created = User.objects.get_or_create(
            username=username, defaults={"email": email, "is_staff": staff}
        )
        if created:
            user.set_password(DEMO_PASSWORD)
            user.save()
        return user
