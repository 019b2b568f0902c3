"""Customers, licenses, activations and the audit trail, with their invariants in the database."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import connection, models
from django.db.models import Case, F, Field, ForeignObject, Q, Value, When
from django.db.models.expressions import RawSQL
from django.db.models.functions import Lower, Now
from django.db.models.lookups import In
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.functional import cached_property

import tmslicense

from .search import may_be_in_a_file, search_forms

# Canonical forms, as produced by tmslicense's normalizers (the check character is
# verified there; the database keeps anything non-canonical out).
_SYMBOL = "[0-9A-HJKMNP-TV-Z]"
INSTALLATION_ID_RE = rf"^{_SYMBOL}{{4}}(-{_SYMBOL}{{4}}){{4}}$"
LICENSE_NUMBER_RE = rf"^TM-{_SYMBOL}{{4}}(-{_SYMBOL}{{4}}){{2}}$"


def validate_license_text(value: str) -> None:
    """Text that goes into license files (a name, product, edition, feature) as tmslicense
    accepts it: checked when it is entered, not refused later when a file is signed."""
    problem = tmslicense.text_problem(value)
    if problem:
        raise ValidationError(f"This field {problem}.", code="license_text")


def expiry_shown(value) -> str:
    """When a license (or its file) stops working, wherever it is shown, as a server's
    messages write it ("2027-06-30 00:00 UTC": a date alone reads as that whole day, which an
    expiry set without a time does not include); "never"."""
    return "never" if value is None else tmslicense.utc_time(value)


def in_utc(moment) -> str:
    """A moment to the minute, as every page shows one (DATETIME_FORMAT): "2026-11-28 20:25
    UTC". (An expiry is shown as files write it: see expiry_shown.)"""
    return date_format(timezone.localtime(moment), "DATETIME_FORMAT")


def last_day(expires_at) -> date:
    """The last day a license (or its file) works, in the site's time zone: one that expires
    at midnight works through the day before."""
    return timezone.localdate(expires_at - timedelta(microseconds=1))


def listed_features(features) -> str:
    """Features as customers and support read them, wherever they are listed: in alphabetical
    order, since they are a set (the order typed, or written into a file, means nothing);
    "" for none."""
    return ", ".join(sorted(features))


def validate_license_year(value) -> None:
    """A date or time that goes into license files: in the years they can carry."""
    if value.year not in tmslicense.YEARS:
        raise ValidationError(
            "Enter a date in the years %(first)s to %(last)s.",
            code="license_year",
            params={"first": tmslicense.YEARS[0], "last": tmslicense.YEARS[-1]},
        )


@Field.register_lookup
@ForeignObject.register_lookup
class Among(In):
    """``in`` a subquery, which PostgreSQL reads first and then looks up in an index as
    ``= ANY(ARRAY(...))``: ``IN (subquery)`` under an OR is tested row by row, over the whole
    table. For the searches' semi-joins (a record found by its license's files)."""

    lookup_name = "among"

    def as_postgresql(self, compiler, connection):
        if self.rhs_is_direct_value():
            return self.as_sql(compiler, connection)
        lhs, lhs_params = self.process_lhs(compiler, connection)
        rhs, rhs_params = self.process_rhs(compiler, connection)
        return f"{lhs} = ANY(ARRAY{rhs})", (*lhs_params, *rhs_params)


def one_at_a_time(scope: str, *keys: str) -> None:
    """Two transactions about one thing (``keys``, in a fixed order: staff adding one name or
    number, two activations for one server) at the same moment: the second waits here until
    the first ends (the admin's page is one transaction), then finds what it did, and gets
    the form's error rather than the database's (a 500) or a check passed by both. SQLite's
    transactions take the write lock at once: one at a time anyway."""
    if connection.vendor == "postgresql" and keys:
        locks = ", ".join(["pg_advisory_xact_lock(hashtext(%s), hashtext(%s))"] * len(keys))
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT {locks}", [part for key in keys for part in (scope, key)])  # noqa: S608 - placeholders only


def alone(scope: str, key: str) -> bool:
    """Whether this transaction is the only one doing ``key`` now (a daily run started twice:
    the second has nothing to do). SQLite's transactions take the write lock at once: one at a
    time anyway."""
    if connection.vendor != "postgresql":
        return True
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_xact_lock(hashtext(%s), hashtext(%s))", [scope, key])
        return cursor.fetchone()[0]


class Organization(models.Model):
    # The customer's name in its license files.
    name = models.CharField(max_length=200, unique=True, validators=[validate_license_text])
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]
        constraints = [
            # Its form names the organization that exists already (clean); this keeps two
            # saved at once, or written otherwise, out too.
            models.UniqueConstraint(Lower("name"), name="organization_name_once_in_any_case"),
        ]
        permissions = [
            ("lift_pauses", "Can lift the log-in and look-up pauses of an organization's members"),
            ("invite_member", "Can invite members to an organization by e-mail"),
            ("deactivate_member", "Can deactivate the account of an organization's member"),
        ]

    def __str__(self):
        return self.name

    def clean(self):
        # Spaces as one (two would print as one in the Licensing window: the same name twice),
        # and no second customer by a name that reads the same in other case.
        self.name = " ".join(self.name.split())
        one_at_a_time("organization", self.name.lower())
        # As the database compares (the constraint's lower(), which takes "istanbul" for
        # "İstanbul" on PostgreSQL) and in any case.
        same = (
            Organization.objects.alias(key=Lower("name"))
            .filter(Q(name__iexact=self.name) | Q(key=Lower(Value(self.name))))
            .exclude(pk=self.pk)
            .first()
        )
        if same is not None:
            raise ValidationError(
                {"name": f"The organization {same.name} exists already: a customer is added once."}
            )


class Membership(models.Model):
    """A customer user belongs to exactly one organization and sees only its licenses."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="membership"
    )
    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="memberships"
    )

    def __str__(self):
        return f"{self.user} @ {self.organization}"


class Kind(models.TextChoices):
    STANDARD = tmslicense.Kind.STANDARD.value, "Standard"
    MIRRORED = tmslicense.Kind.MIRRORED.value, "Mirrored"
    ENTERPRISE = tmslicense.Kind.ENTERPRISE.value, "Enterprise (full redundancy)"


# Constant SQL because Django takes as long to build the same Subquery as to run a query of its
# own (0.4 ms), in every activation.
_LIVE_ACTIVATION_ID = RawSQL(  # noqa: S611 - constant SQL, no input in it
    'SELECT "id" FROM "licensing_activation" '
    'WHERE "license_id" = "licensing_license"."id" AND "revoked_at" IS NULL',
    (),
)


class LicenseQuerySet(models.QuerySet):
    def for_user(self, user):
        if not user.is_authenticated:
            return self.none()
        return self.filter(organization__memberships__user=user)

    def found_by(self, term: str):
        """Licenses whose number, or one of whose files' Installation IDs or serials (a file
        of the past too: its license's history names it), holds the term in one of its forms
        (long enough to be a part of one: ``may_be_in_a_file``). The files are searched apart:
        a join would list a license once per file."""
        found = Q()
        for form in search_forms(term):
            found |= Q(number__icontains=form)
            if may_be_in_a_file(form):
                files = Activation.objects.holding(form).values("license_id")
                found |= Q(pk__among=files)
        return self.filter(found)

    def with_live_activation_id(self):
        """Each license with the id of its live activation (``live_activation_id``, None when
        nothing is live), read in the same statement. Its SQL names the license table, so it
        is for a query of licenses itself, not one used inside another query."""
        return self.annotate(live_activation_id=_LIVE_ACTIVATION_ID)

    def in_state(self, state: str):
        """Licenses in a state as customers see it (``License.state``, lower case): a suspended
        license is Suspended whatever its expiry; an active one past its expiry, Expired."""
        suspended = Q(status=License.Status.SUSPENDED)
        expired = Q(expires_at__isnull=False, expires_at__lte=timezone.now())
        if state == "active":
            return self.exclude(suspended | expired)
        if state == "suspended":
            return self.filter(suspended)
        if state == "expired":
            return self.filter(expired).exclude(suspended)
        raise ValueError(f"No license state {state!r}")


class License(models.Model):
    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        SUSPENDED = "suspended", "Suspended"

    # A fresh number is offered when support adds a license; one from an order can replace it.
    number = models.CharField(max_length=17, unique=True, default=tmslicense.new_license_number)
    organization = models.ForeignKey(
        Organization, on_delete=models.PROTECT, related_name="licenses"
    )
    kind = models.CharField(
        max_length=12,
        choices=Kind.choices,
        help_text="Part of its files: fixed once saved. For another kind, add a new license; "
        "then revoke this one's file and suspend it, with the reason.",
    )
    product = models.CharField(
        max_length=100, default="ThinManager", validators=[validate_license_text]
    )
    edition = models.CharField(
        max_length=100,
        default="Standard",
        help_text="The product edition bought (Standard, Premium, ...); not the kind.",
        validators=[validate_license_text],
    )
    seats = models.PositiveIntegerField(validators=[MinValueValidator(1)])
    features = models.JSONField(default=list, blank=True)
    maintenance_end = models.DateField(validators=[validate_license_year])
    expires_at = models.DateTimeField(null=True, blank=True, validators=[validate_license_year])
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.ACTIVE)
    created_at = models.DateTimeField(default=timezone.now)

    objects = LicenseQuerySet.as_manager()

    class Meta:
        ordering = ["number"]
        constraints = [
            models.CheckConstraint(
                condition=Q(number__regex=LICENSE_NUMBER_RE), name="license_number_canonical"
            ),
            models.CheckConstraint(condition=Q(seats__gte=1), name="license_seats_at_least_one"),
            models.CheckConstraint(condition=Q(kind__in=Kind.values), name="license_kind_known"),
        ]

    def __str__(self):
        return self.number

    @property
    def listed_features(self) -> str:
        return listed_features(self.features)

    @property
    def tms_kind(self) -> tmslicense.Kind:
        return tmslicense.Kind(self.kind)

    @property
    def needs_mirrored_installation_id(self) -> bool:
        return self.tms_kind.needs_mirrored_installation_id

    @property
    def live_activation(self) -> Activation | None:
        return self.activations.filter(revoked_at__isnull=True).first()

    @property
    def expiry_shown(self) -> str:
        return expiry_shown(self.expires_at)

    def is_expired(self) -> bool:
        return self.expires_at is not None and self.expires_at <= timezone.now()

    def is_activatable(self) -> bool:
        """Active and not expired: the only state in which a file is issued."""
        return self.state == "Active"

    @property
    def kept_off(self) -> str:
        """Why a license not active cannot be activated again, and until what; "" for an
        active one."""
        if self.is_activatable():
            return ""
        until = "extended its expiry"
        if self.status == self.Status.SUSPENDED:
            until = "lifted the suspension" + (f" and {until}" if self.is_expired() else "")
        return (
            f"The license is {self.state.lower()}: it cannot be activated again until support "
            f"has {until}."
        )

    @property
    def description(self) -> str:
        """What the license is, each part named, for e-mails: "ThinManager Premium edition,
        mirrored license" (an edition may be named as a kind is)."""
        return f"{self.product} {self.edition} edition, {self.kind_named}"

    @property
    def kind_named(self) -> str:
        """The kind named as one, "mirrored license": an edition may be called "Standard" too."""
        return f"{self.get_kind_display().lower()} license"

    @property
    def state(self) -> str:
        """What the customer sees: Suspended, Expired or Active."""
        if self.status == self.Status.SUSPENDED:
            return "Suspended"
        return "Expired" if self.is_expired() else "Active"

    def changes_since(self, activation: Activation) -> list[tuple[str, str, str]]:
        """What changed after ``activation``'s file was issued, which the file (and so the
        servers) still has the old way: (what, in the file, now)."""
        issued = activation.issued_license
        expires = self.expires_at and self.expires_at.replace(microsecond=0)
        pairs = [
            ("Product", issued.product, self.product),
            ("Edition", issued.edition, self.edition),
            ("Seats", issued.seats, self.seats),
            # Features are a set: the same ones in another order are no change.
            ("Features", listed_features(issued.features), listed_features(self.features)),
            ("Maintenance end", issued.maintenance_end, self.maintenance_end),
            ("Expires", issued.expires_at, expires),
            ("Customer name", issued.customer, self.organization.name),
        ]
        return [(what, _shown(old), _shown(new)) for what, old, new in pairs if old != new]

    def clean(self):
        try:
            self.number = tmslicense.normalize_license_number(self.number)
        except tmslicense.InvalidLicenseNumber as error:
            raise ValidationError({"number": error.message}) from None
        one_at_a_time("license", self.number)  # then the number's uniqueness is checked


class ActivationQuerySet(models.QuerySet):
    def live(self):
        return self.filter(revoked_at__isnull=True)

    def revoked(self):
        return self.filter(revoked_at__isnull=False)

    def bound_to(self, installation_id: str):
        """Files of a server: as its primary or its secondary (live ones, by their indexes)."""
        return self.filter(
            Q(installation_id=installation_id) | Q(mirrored_installation_id=installation_id)
        )

    def holding(self, text: str):
        """Files (live or revoked) whose Installation ID or serial holds the text, in any case."""
        return self.filter(
            Q(installation_id__icontains=text)
            | Q(mirrored_installation_id__icontains=text)
            | Q(serial__icontains=text)
        ).order_by()


# License.state in SQL, to sort by: Active, Expired, Suspended.
STATE_RANK = Case(
    When(status=License.Status.SUSPENDED, then=2),
    When(expires_at__lte=Now(), then=1),
    default=0,
)


def roles_swapped(before, after) -> bool:
    """Whether a file for the servers ``after`` swaps the roles of those of ``before``."""
    return set(before) == set(after) and list(before) != list(after)


class Activation(models.Model):
    """One issue of a license file, bound to one or two Installation IDs."""

    license = models.ForeignKey(License, on_delete=models.PROTECT, related_name="activations")
    installation_id = models.CharField("Installation ID", max_length=24)
    mirrored_installation_id = models.CharField(
        "Mirrored Installation ID", max_length=24, blank=True, default=""
    )
    serial = models.CharField(max_length=40, unique=True)
    kid = models.CharField("signing key id", max_length=32)
    license_file = models.TextField()
    issued_at = models.DateTimeField(default=timezone.now)
    # When the file stops working on its servers (as it says; None: never), beside it so that
    # reminders find the files expiring soon: support may extend a license without a new file.
    expires_at = models.DateTimeField(null=True, blank=True, editable=False)
    issued_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_reason = models.CharField(max_length=300, blank=True, default="")
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    # The file that support issued in this one's place (a reissue or a corrected ID).
    replaced_by = models.OneToOneField(
        "self",
        null=True,
        blank=True,
        editable=False,
        on_delete=models.PROTECT,
        related_name="replaces",
    )

    objects = ActivationQuerySet.as_manager()

    class Meta:
        ordering = ["-issued_at", "-id"]
        permissions = [
            ("revoke_activation", "Can revoke an activation"),
            ("reissue_activation", "Can reissue an activation or correct its Installation IDs"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["license"],
                condition=Q(revoked_at__isnull=True),
                name="one_live_activation_per_license",
            ),
            models.CheckConstraint(
                condition=~Q(installation_id=F("mirrored_installation_id")),
                name="activation_installation_ids_differ",
            ),
            models.CheckConstraint(
                condition=Q(installation_id__regex=INSTALLATION_ID_RE),
                name="activation_installation_id_canonical",
            ),
            models.CheckConstraint(
                condition=Q(mirrored_installation_id="")
                | Q(mirrored_installation_id__regex=INSTALLATION_ID_RE),
                name="activation_mirrored_installation_id_canonical",
            ),
            models.CheckConstraint(
                condition=Q(revoked_at__isnull=True, revoked_reason="")
                | (Q(revoked_at__isnull=False) & ~Q(revoked_reason="")),
                name="activation_revocation_has_reason",
            ),
        ]
        indexes = [
            # /revoked.txt, read by every server: the revoked files alone, in their order.
            models.Index(
                fields=["revoked_at", "id"],
                condition=Q(revoked_at__isnull=False),
                name="activation_revoked_in_order",
            ),
            # A server's live files: a new pair's check for live pairs sharing a server
            # (services.check_pair), and what a secondary holds (services.why_not_redundant).
            models.Index(
                fields=["installation_id"],
                condition=Q(revoked_at__isnull=True),
                name="activation_live_primary",
            ),
            models.Index(
                fields=["mirrored_installation_id"],
                condition=Q(revoked_at__isnull=True) & ~Q(mirrored_installation_id=""),
                name="activation_live_pair_secondary",
            ),
            # Support's list of files, newest first: a page of it without sorting them all.
            models.Index(fields=["-issued_at", "-id"], name="activation_issued_order"),
            # The live files expiring soon, for the expiry reminders (services.queue_reminders).
            models.Index(
                fields=["expires_at"],
                condition=Q(revoked_at__isnull=True, expires_at__isnull=False),
                name="activation_live_expiry",
            ),
        ]

    def __str__(self):
        return f"{self.license.number} / {self.serial}"

    @property
    def is_live(self) -> bool:
        return self.revoked_at is None

    @property
    def has_expired(self) -> bool:
        """Whether the file expired: its servers refuse it."""
        return self.expires_at is not None and self.expires_at <= timezone.now()

    @property
    def is_replacement(self) -> bool:
        """Issued in place of another file: support's reissue or correction, or a customer's
        updated file (``services.update_file``)."""
        return hasattr(self, "replaces")

    def issued_by_words(self, viewer) -> str:
        """Who issued the file, as the customer ``viewer`` reads it: "by you", a colleague as
        e-mails name one (``person``), or "by support" for any staff member, a member of the
        organization too (support's names stay in the admin); nothing for an account deleted
        since."""
        issuer = self.issued_by
        if issuer is None:
            return ""
        if issuer.pk == viewer.pk:
            return "by you"
        return "by support" if issuer.is_staff else f"by {person(issuer)}"

    @property
    def installation_ids(self) -> tuple[str, ...]:
        return tuple(i for i in (self.installation_id, self.mirrored_installation_id) if i)

    @property
    def replaced_how(self) -> str:
        """How the file that replaced this one differs in its servers: "" (not at all, or not
        replaced), "roles swapped" or "Installation ID corrected"."""
        new = self.replaced_by.installation_ids if self.replaced_by else self.installation_ids
        if new == self.installation_ids:
            return ""
        if roles_swapped(self.installation_ids, new):
            return "roles swapped"
        return "Installation ID corrected"

    @cached_property
    def issued_license(self) -> tmslicense.License:
        """What the issued file says (read back from it; the site signed it)."""
        return tmslicense.read_license(self.license_file)

    def revoke(self, *, reason: str, by) -> None:
        """Mark revoked (callers lock the row and audit: see licensing.services). Its file is
        e-mailed no more: see ``OutboxMessage.outdated``."""
        self.revoked_at = timezone.now()
        self.revoked_reason = reason[:300]
        self.revoked_by = by
        self.save(update_fields=["revoked_at", "revoked_reason", "revoked_by"])

    @property
    def servers(self) -> list[tuple[str, str]]:
        """(Installation ID, role) of each server, primary first: the license's Location."""
        return with_roles(self.license.tms_kind, self.installation_ids)

    @property
    def filename(self) -> str:
        return f"{self.license.number}.lic"


def with_roles(kind: tmslicense.Kind, installation_ids) -> list[tuple[str, str]]:
    """(Installation ID, role) of each server a file of this kind is bound to, in the file's
    order (primary first). A one-server license's server has no role to name ("")."""
    if len(installation_ids) == 1:
        return [(installation_ids[0], "")]
    return [(i, r.value) for i, r in zip(installation_ids, kind.server_roles, strict=True)]


def person(user) -> str:
    """A user as support reads them: username, with the e-mail address when there is one."""
    if not user.email or user.email.lower() == user.username.lower():
        return user.email or user.username  # an invited member's user name is the address
    return f"{user.username} ({user.email})"


class AuditEvent(models.Model):
    """Who changed what, when and from where. Written by the services, never edited: only
    its address is cleared, and an account's own events deleted, when no longer needed
    (services.purge_audit)."""

    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Who it was, as they were named then: kept when the account is deleted later.
    actor_name = models.CharField(max_length=410, blank=True, default="")  # 150 + 254 + " ()"
    # Indexed: the trail is filtered by it, and the admin lists the actions recorded so far.
    action = models.CharField(max_length=40, db_index=True)
    license = models.ForeignKey(
        License, null=True, blank=True, on_delete=models.PROTECT, related_name="audit_events"
    )
    # The organization concerned: the license's, or the organization itself (its edits, its
    # members, lifted pauses). Its trail whatever it was named then.
    organization = models.ForeignKey(
        Organization, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    object_repr = models.CharField(max_length=200)
    details = models.JSONField(default=dict, blank=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self):
        return f"{in_utc(self.created_at)} {self.action_in_words} {self.object_repr}"

    # An account's own events (auth.audit_account), which name no license.
    ACCOUNT_EVENTS = (
        "log_in",
        "password_change",
        "password_reset",
        "invitation_accepted",
        "log_out_everywhere",
    )

    WORDS = {
        "correct_installation_id": "correct Installation ID",
        "outbox_retry": "send again",
        "outbox_cancel": "send again: cancelled",
        "member_invite": "invite member",
        "member_invite_withdraw": "withdraw invitation",
        "member_deactivate": "deactivate member",
        "user_password_set": "set password",
        "user_password_off": "turn off password log-in",
    }

    @classmethod
    def words(cls, action: str) -> str:
        """An action in words: "revoke", "license change", "correct Installation ID"."""
        return cls.WORDS.get(action, action.replace("_", " "))

    @property
    def action_in_words(self) -> str:
        return self.words(self.action)


class SigningKey(models.Model):
    """The public half of each key that signed a file (licensing.signing): the keyring the
    site serves lists it for as long as a file signed with it is in use, whatever key file
    is mounted then (retired, replaced, lost)."""

    kid = models.CharField(max_length=16, primary_key=True)
    public_key = models.CharField(max_length=44)  # the 32 raw bytes, base64 as keyrings write it
    first_used_at = models.DateTimeField(default=timezone.now)

    def __str__(self):
        return self.kid


# The first part of a reminder's outbox key, of a maintenance end and of an expiry (services).
MAINTENANCE_REMINDER, EXPIRY_REMINDER = "reminder", "expiry"


class OutboxMessage(models.Model):
    """An e-mail written in the same transaction as the change it reports (transactional
    outbox): it goes out after commit, and the sweep resends what the broker lost."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"  # its license file was revoked before it went out

    # What makes this message unique ("activation:<serial>",
    # "reminder:org:<organization>:30:<date>", "expiry:org:…"): the same event never writes
    # two messages.
    key = models.CharField(max_length=120, unique=True)
    # The license it is about; None for one about several (a reminder listing them: see
    # ``licenses``) or none.
    license = models.ForeignKey(
        License, null=True, blank=True, on_delete=models.PROTECT, related_name="messages"
    )
    # The licenses a reminder lists: each is reminded once per kind (maintenance, expiry),
    # organization, threshold and date.
    licenses = models.ManyToManyField(License, blank=True, editable=False, related_name="reminders")
    # The license file the message carries, or whose revocation it reports.
    activation = models.ForeignKey(
        Activation,
        null=True,
        blank=True,
        editable=False,
        on_delete=models.PROTECT,
        related_name="messages",
    )
    # Whose members it is for (a license's e-mails, the members' notices, an invitation): sent
    # only to who is still an active member when it goes out. None: a password reset.
    organization = models.ForeignKey(
        Organization, null=True, blank=True, on_delete=models.CASCADE, related_name="messages"
    )
    recipients = models.JSONField(default=list)
    # Of the recipients: those the mail server accepted it for, and those it is not sent to,
    # each with why (refused for good by the mail server, or no longer a member); the rest
    # are still to be sent it.
    delivered_to = models.JSONField(default=list, blank=True, editable=False)
    undelivered = models.JSONField(default=dict, blank=True, editable=False)
    subject = models.CharField(max_length=200)
    body = models.TextField()
    # The body holds a secret (a password reset link): not shown in the admin, erased once sent.
    secret = models.BooleanField(default=False, editable=False)
    attachment_name = models.CharField(max_length=100, blank=True, default="")
    attachment = models.TextField(blank=True, default="")
    status = models.CharField(max_length=9, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)
    queued_at = models.DateTimeField(null=True, blank=True)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["status", "next_attempt_at"])]
        constraints = [
            models.CheckConstraint(
                condition=Q(status="sent", sent_at__isnull=False)
                | (~Q(status="sent") & Q(sent_at__isnull=True)),
                name="outbox_sent_has_time",
            )
        ]

    def __str__(self):
        return f"{self.subject} ({self.get_status_display()})"

    @property
    def to_send(self) -> list[str]:
        """The recipients it is still to be sent to."""
        done = {*self.delivered_to, *self.undelivered}
        return [r for r in self.recipients if r not in done]

    @property
    def refused_for_good(self) -> bool:
        """Whether the mail server refused a recipient for good (5xx; see outbox)."""
        return any(why.startswith("refused") for why in self.undelivered.values())

    @property
    def outdated(self) -> str:
        """Why it must not go out now (else ""): it carries a license file revoked since (the
        customer would get a file the servers refuse), or it is a reminder from an earlier day
        (it counts the days left from the day it was written: "in 7 days", "today")."""
        if self.attachment and self.activation_id and self.activation.revoked_at:
            return (
                f"Not sent: license file {self.activation.serial} was revoked before it went out."
            )
        written = timezone.localdate(self.created_at)
        reminder = self.is_reminder
        if reminder and written != timezone.localdate():
            return (
                f"Not sent: a reminder written on {written:%Y-%m-%d} counts the days left from "
                "then. What is still due is written anew at once, counting from today."
            )
        if reminder and (changed := self._changed_since_written()):
            return (
                f"Not sent: license {changed} changed since this reminder was written (renewed, "
                "extended, suspended or its file replaced). The reminders due now are written "
                "anew at once."
            )
        return ""

    @property
    def is_reminder(self) -> bool:
        return self.key.split(":", 1)[0] in (MAINTENANCE_REMINDER, EXPIRY_REMINDER)

    def _changed_since_written(self) -> str | None:
        """The number of a license the reminder lists that changed since it was written (each
        change is audited: its dates, status, file), whose reminder may then say what is no
        longer so; None when none did."""
        listed = list(self.licenses.values_list("pk", flat=True)) or [self.license_id]
        since = AuditEvent.objects.filter(license_id__in=listed, created_at__gt=self.created_at)
        return since.values_list("license__number", flat=True).first()


def _shown(value) -> str:
    if value is None or value == "":
        return "never" if value is None else "none"
    if isinstance(value, datetime):
        return expiry_shown(value)
    if hasattr(value, "strftime"):
        return f"{value:%Y-%m-%d}"
    return str(value)
