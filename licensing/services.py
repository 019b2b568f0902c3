"""The use cases of the licensing site: one function each, one transaction each.

Views, the wizard, admin actions and management commands all call these; no rule is written
twice. Domain errors carry the message to show and, where it belongs to a form field, the field.
"""

from __future__ import annotations

import ipaddress
import logging
import re
import secrets
import uuid
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.tokens import default_token_generator
from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.db import IntegrityError, OperationalError, connection, transaction
from django.db.models import Exists, Max, OuterRef, Q, Subquery
from django.urls import reverse
from django.utils import timezone
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

import tmslicense
from tmslicense.model import HIDDEN_CHARACTERS, reads_as_blank

from . import outbox, signing, throttle
from .auth import same_address
from .models import (
    EXPIRY_REMINDER,
    MAINTENANCE_REMINDER,
    Activation,
    AuditEvent,
    License,
    Membership,
    Organization,
    OutboxMessage,
    alone,
    expiry_shown,
    last_day,
    one_at_a_time,
    person,
    roles_swapped,
)

log = logging.getLogger(__name__)


class ActivationError(Exception):
    """A request the licensing rules refuse; ``str(error)`` is the message for the customer."""

    field: str | None = None

    def __init__(self, message: str, *, field: str | None = None):
        super().__init__(message)
        self.message = message
        if field is not None:
            self.field = field


class LicenseNotFound(ActivationError):
    field = "license_number"


class LicenseNotActivatable(ActivationError):
    field = "license_number"


class AlreadyActivated(ActivationError):
    """The license is live for other Installation IDs."""


class InvalidInstallationIds(ActivationError):
    pass


def contact_support(why: str = "") -> str:
    """Where the customer gets help, said the same way in every message that sends them."""
    return f"{why or 'Contact support'} at {settings.SUPPORT_EMAIL} with your license number."


# Why a staff account is no member of a customer organization, wherever one would be made so.
STAFF_ARE_NO_MEMBERS = (
    "staff belong to no customer organization (as a member, they would see its licenses as "
    "their own and be sent its e-mails)"
)


def is_support_staff(user) -> bool:
    """Staff who belong to no customer organization: they work in the admin, where customers'
    licenses are; the customers' pages find none for them."""
    return user.is_staff and not hasattr(user, "membership")


def find_license(*, user, number: str) -> License:
    """The license with this number in the user's organization.

    A number that does not exist and one of another organization give the same answer, so
    the site reveals nothing about other customers' licenses.
    """
    canonical = tmslicense.normalize_license_number(number)
    try:
        return (
            License.objects.for_user(user)
            .select_related("organization")
            .with_live_activation_id()
            .get(number=canonical)
        )
    except License.DoesNotExist:
        raise LicenseNotFound(
            f"No license {canonical} was found for your organization. "
            "Check the number on your license certificate."
        ) from None


def check_activatable(lic: License) -> None:
    """A suspended or expired license is neither activated nor downloaded."""
    state = lic.state
    if state == "Suspended":
        raise LicenseNotActivatable(f"License {lic.number} is suspended. {contact_support()}")
    if state == "Expired":
        raise LicenseNotActivatable(
            f"License {lic.number} expired on {lic.expiry_shown}. {contact_support()}"
        )


def check_first_installation_id(lic: License, installation_id: str) -> Activation | None:
    """Early answer for step 1 of a two-server license: a live activation for another primary
    server is refused now, before the Mirrored Installation ID is asked for; returns the live
    activation (None when there is none) for step 2 to check the pair against. A one-server
    license has no step 2, so ``activate`` answers at once (it decides in the end anyway)."""
    if not lic.needs_mirrored_installation_id:
        return None
    live = _live(lic)
    check_live_activation(live, (installation_id,))
    return live


def check_live_activation(live: Activation | None, ids: tuple[str, ...]) -> None:
    """Refuse Installation IDs other than those of the license's live activation (``live``;
    None when nothing is live): the same IDs are a re-download. ``ids`` may be the primary's
    alone (step 1 of a two-server license). The refusal says which ID to enter where when
    only the order or the secondary server differs."""
    if live is None or live.installation_ids[: len(ids)] == ids:
        return
    live_ids = live.installation_ids
    if set(ids) <= set(live_ids) and ids[0] != live_ids[0]:
        # The same servers the other way round (in step 1: the secondary's ID as the first).
        raise AlreadyActivated(
            _swapped_message(live), field="installation_id" if len(ids) == 1 else None
        )
    if len(ids) == 2 and ids[0] == live_ids[0]:
        primary, secondary = live_ids
        raise AlreadyActivated(
            f"License {live.license.number} is activated for the primary server {primary} with "
            f"{secondary} as the secondary. To download its file again, enter {secondary} as "
            "the Mirrored Installation ID. "
            + contact_support("To move the license to other servers, contact support"),
            field="mirrored_installation_id",
        )
    raise AlreadyActivated(_already_activated_message(live), field="installation_id")


def check_pair(lic: License, ids: tuple[str, ...]) -> None:
    """A ThinManager Server is synchronized with one other server, and a pair has one primary
    for all its licenses: a two-server license is not issued for a server that a live file of
    another license (any customer's) pairs with a third server, nor for the pair the other way
    round. (Under tmslicense a server is fully functional only with a duplicate of each
    license it mirrors: such a file could take the ThinManager interface from a primary, or
    from both servers.) Of another organization's file, neither its license nor a server the
    customer did not enter is named."""
    if len(ids) != 2:
        return
    one_at_a_time("server", *sorted(ids))  # two such activations at once: one after the other
    pairs = (
        Activation.objects.live()
        .exclude(mirrored_installation_id="")
        .filter(
            Q(installation_id__in=ids) | Q(mirrored_installation_id__in=ids),
            ~Q(installation_id=ids[0], mirrored_installation_id=ids[1]),
        )
        # Its own: activated meanwhile by another request, which the locking read could not
        # see yet (see _live); the database's constraint answers that one.
        .exclude(license_id=lic.pk)
    )  # the activations' table alone, by its partial indexes: nothing found, the common answer
    found = pairs.values_list("license_id", "installation_id", "mirrored_installation_id")
    other = found.order_by().first()
    if other is None:
        return
    license_id, primary, secondary = other
    theirs = License.objects.filter(pk=license_id, organization_id=lic.organization_id)
    number = theirs.values_list("number", flat=True).first()
    which = f"license {number}" if number else "a license of another customer"
    if {primary, secondary} == set(ids):
        raise InvalidInstallationIds(
            f"{primary} is the primary server of this pair for {which}, with {secondary} as "
            "its secondary: a pair has one primary for all its licenses. Enter "
            f"{primary} as the Installation ID and {secondary} as the Mirrored Installation ID.",
            field="installation_id",
        )
    shared = ids[0] if ids[0] in (primary, secondary) else ids[1]
    partner = (secondary if shared == primary else primary) if number else "another server"
    raise InvalidInstallationIds(
        f"{shared} is synchronized with {partner} already ({which}): a ThinManager Server is "
        "paired with one other server. "
        + contact_support("To pair it with another server, contact support"),
        field="installation_id" if shared == ids[0] else "mirrored_installation_id",
    )


def installation_ids(lic: License, installation_id: str, mirrored_installation_id: str = ""):
    """Canonical Installation IDs for this license's kind, primary first; refuses bad sets."""
    primary = _normalize(installation_id, "installation_id")
    if not lic.needs_mirrored_installation_id:
        if mirrored_installation_id:
            raise InvalidInstallationIds(
                f"A {lic.get_kind_display().lower()} license is bound to one server only.",
                field="mirrored_installation_id",
            )
        return (primary,)
    if not mirrored_installation_id:
        raise InvalidInstallationIds(
            "Enter the Mirrored Installation ID of the secondary ThinManager Server.",
            field="mirrored_installation_id",
        )
    mirror = _normalize(mirrored_installation_id, "mirrored_installation_id")
    if mirror == primary:
        raise InvalidInstallationIds(
            "The Mirrored Installation ID must be the ID of the secondary ThinManager Server; "
            "it is the same as the first Installation ID. If the secondary shows this ID too, "
            "it is a copy of the primary (a cloned virtual machine, say) and needs an ID of "
            "its own: on the secondary only, delete installation.secret and the licenses "
            "folder from its license data folder, then read its new Installation ID.",
            field="mirrored_installation_id",
        )
    return (primary, mirror)


def _normalize(text: str, field: str) -> str:
    try:
        return tmslicense.normalize_installation_id(text)
    except tmslicense.InvalidInstallationId as error:
        raise InvalidInstallationIds(error.message, field=field) from None


def activate(
    *, license: License, installation_id: str, mirrored_installation_id: str = "", actor, ip=None
) -> tuple[Activation, bool]:
    """Activate a license for one or two servers; returns (activation, created).

    Activating again with the same Installation IDs returns the live activation (a
    re-download); other IDs while one is live are refused. The license row is locked, so
    of two simultaneous activations exactly one wins.
    """
    for _attempt in range(2):
        try:
            return _activate_locked(license, installation_id, mirrored_installation_id, actor, ip)
        except IntegrityError as error:
            _refuse_if_account_gone(actor)
            if not _is_second_live_activation(error):
                raise
            # Another activation committed while this one waited for the row's lock (the
            # locking statement's read of the live activation could not see it yet), or ran
            # alongside it on SQLite, which locks no rows. The transaction rolled back; once
            # more, the other one is seen and this is a re-download or a refusal.
    raise AlreadyActivated(f"License {license.number} is busy; try again.")


def _is_second_live_activation(error: IntegrityError) -> bool:
    # PostgreSQL names the constraint; SQLite names the column of its unique index.
    return any(
        name in str(error)
        for name in ("one_live_activation_per_license", "licensing_activation.license_id")
    )


def _refuse_if_account_gone(actor) -> None:
    """After the database refused a customer's file at its commit: the account was deleted
    while the file was being issued (the locked license's read found it a member; its rows
    name the account, gone by the commit). Nothing was written; the customer is told why."""
    if account_gone(actor):
        raise _no_longer_member() from None


def lock_account(user):
    """Lock an account's row until the transaction ends, and read it as it is now; None when
    it was deleted meanwhile. A save of the account (which would insert a deleted one again,
    without its organization) or a record naming it then never meets its deletion half-way."""
    return get_user_model().objects.select_for_update().filter(pk=user.pk).first()


def lock_accounts_to_delete(pks) -> list:
    """Lock accounts about to be deleted, after the files that name them (as issuer or
    revoker): a file being issued or replaced at that moment, which locks its license and
    files first and then needs the account, is waited for and its records seen by the
    deletion; a file issued for an account locked here waits, then is refused as the
    account's. Returns the accounts, locked."""
    named = Q(issued_by__in=pks) | Q(revoked_by__in=pks)
    with _not_waiting_on_a_send(
        "A license file this account issued or revoked is being e-mailed right now: nothing "
        "was deleted; try again in a moment."
    ):
        files = Activation.objects.filter(named).order_by("pk").select_for_update()
        list(files.values_list("pk"))
    return list(get_user_model().objects.filter(pk__in=pks).order_by("pk").select_for_update())


def account_gone(actor) -> bool:
    """Whether an account acting in this request has been deleted since it began (what the
    database's refusal of a record naming it meant)."""
    return not get_user_model().objects.filter(pk=actor.pk).exists()


@transaction.atomic
def _activate_locked(license, installation_id, mirrored_installation_id, actor, ip):
    lic = _locked_license(license.pk, member=actor)
    ids = installation_ids(lic, installation_id, mirrored_installation_id)
    check_activatable(lic)
    live = _live(lic)
    if live is not None:
        check_live_activation(live, ids)
        return live, False
    check_pair(lic, ids)
    return _issue(lic, ids, actor=actor, ip=ip, action="activate"), True


def _locked_license(pk, *, member=None) -> License:
    """The license, re-read with its row locked until the transaction ends (its organization
    is read along, not locked: other licenses of the same customer are not held up). For a
    customer (``member``), only while they are an active member of its organization: one
    removed or deactivated since their request began is refused, not issued a file."""
    licenses = License.objects.select_for_update(of=("self",))
    if member is not None:
        licenses = licenses.filter(
            organization__memberships__user=member, organization__memberships__user__is_active=True
        )
    try:
        return licenses.select_related("organization").with_live_activation_id().get(pk=pk)
    except License.DoesNotExist:
        if member is None:
            raise
        raise _no_longer_member() from None


def _no_longer_member() -> LicenseNotFound:
    return LicenseNotFound(
        "Your account no longer belongs to this license's organization: nothing was done. "
        + contact_support()
    )


SENDING_LOCK_WAIT = "5s"  # PostgreSQL's lock_timeout for a row the worker holds while it e-mails it


@contextmanager
def _not_waiting_on_a_send(refusal: str, error_class=ActivationError):
    """Rows the worker holds while it e-mails them (see outbox.deliver) are waited for a few
    seconds at most, for the rest of the transaction (PostgreSQL), then refused with
    ``refusal``: a mail server that hangs does not hold support's page (nor a license's lock)
    until the statement timeout's 500."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(f"SET LOCAL lock_timeout = '{SENDING_LOCK_WAIT}'")
    try:
        yield
    except OperationalError as error:
        if not outbox.lock_not_available(error):
            raise
        raise error_class(refusal) from None


def _locked_activation(pk) -> Activation:
    """An activation (with its license), its row locked until the transaction ends; the
    worker holds it while it e-mails the activation's file."""
    with _not_waiting_on_a_send(
        "Its license file is being e-mailed right now: try again in a moment."
    ):
        return Activation.objects.select_for_update().select_related("license").get(pk=pk)


def _live(lic: License) -> Activation | None:
    """The live activation of a license read ``with_live_activation_id()``: a query only when
    there is one. Read with the license's lock (``_locked_license``), its file may have been
    replaced while the lock was waited for, which the locking statement's own read of it does
    not see: then the new one. (One activated meanwhile is met by the database's constraint.)"""
    if not lic.live_activation_id:
        return None
    live = lic.activations.get(pk=lic.live_activation_id)
    return live if live.is_live else lic.activations.live().first()


def _already_activated_message(live: Activation) -> str:
    ids = live.installation_ids
    servers = (
        f"Installation IDs {ids[0]} (primary) and {ids[1]} (secondary)"
        if len(ids) > 1
        else f"Installation ID {ids[0]}"
    )
    return (
        f"License {live.license.number} is already activated for {servers}. "
        f"{_to_download_again(ids)} "
        + contact_support("To move the license to other servers, contact support")
    )


def _swapped_message(live: Activation) -> str:
    """The same two servers, entered the other way round."""
    primary, secondary = live.installation_ids
    return (
        f"License {live.license.number} is activated with {primary} as the primary server and "
        f"{secondary} as the secondary. {_to_download_again(live.installation_ids)} "
        + contact_support("To swap the servers' roles, contact support")
    )


def _to_download_again(ids) -> str:
    if len(ids) == 1:
        return f"To download its file again, enter {ids[0]}."
    return (
        f"To download its file again, enter {ids[0]} as the Installation ID and {ids[1]} as "
        "the Mirrored Installation ID."
    )


def _file_subject(lic: License, action: str, replaces: str | None) -> str:
    what = {
        "reissue": "New license file",
        "correct_installation_id": "Corrected license file",
        "update_file": "Updated license file",
    }
    subject = f"{what.get(action, 'License file')} for {lic.number}, {lic.kind_named}"
    return f"{subject} (replaces {replaces})" if replaces else subject


def _issue(
    lic: License, ids, *, actor, ip, action: str, details=None, replaced_expired: str = ""
) -> Activation:
    """Sign and record a file and queue its e-mail: to the customer who activated, or for a
    file that support issued, to the organization's members. ``replaced_expired``: when the
    file it replaces expired, as shown."""
    replaces = (details or {}).get("replaces")
    # A correction names the ID it corrected, or says the two servers' roles were swapped.
    previous = (details or {}).get("previous_installation_ids") or []
    swapped = roles_swapped(previous, ids)
    pairs = zip(previous, ids, strict=False)  # none for a first activation
    corrected = [] if swapped else [(was, new) for was, new in pairs if was != new]
    serial = secrets.token_hex(8).upper()
    customers = action in ("activate", "update_file")  # a refusal is told to them, else support
    try:
        tms = _file_license(lic, ids, serial)
        text, kid = signing.sign(tms)
    except ImproperlyConfigured as error:  # the key file lost or unreadable since the start
        log.error("No license file can be issued: %s", error)
        why = (
            "Try again in a few minutes; " + contact_support("if it cannot wait, contact support")
            if customers
            else f"The site's signing key cannot be read: {error}"
        )
        raise ActivationError(
            f"License files cannot be issued right now: nothing was done. {why}"
        ) from None
    except tmslicense.InvalidPayload as error:
        # Recorded before the site checked what a file may carry (a name with a tab, say):
        # support corrects the record, then the file can be issued.
        fix = contact_support() if customers else "Correct the record first."
        raise LicenseNotActivatable(
            f"License {lic.number} cannot be put into a license file as it is recorded: "
            f"{error} {fix}"
        ) from None
    activation = Activation.objects.create(
        license=lic,
        installation_id=ids[0],
        mirrored_installation_id=ids[1] if len(ids) > 1 else "",
        serial=serial,
        kid=kid,
        license_file=text,
        issued_at=tms.issued_at,
        expires_at=tms.expires_at,
        issued_by=actor,
    )
    audit(
        actor=actor,
        action=action,
        license=lic,
        obj=activation,
        ip=ip,
        details={"serial": serial, "installation_ids": list(ids), **(details or {})},
    )
    outbox.queue(
        key=f"activation:{serial}",
        license=lic,
        activation=activation,
        recipients=[getattr(actor, "email", "")]
        if action == "activate"
        else contacts(lic.organization_id),
        subject=_file_subject(lic, action, replaces),
        template="email/activation.txt",
        context={
            "license": lic,
            "activation": activation,
            "replaces": replaces,
            "replaced_expired": replaced_expired,
            "corrected": corrected,
            "swapped": swapped,
            "changes": (details or {}).get("changes"),
            "revoked_url": _revoked_url() if replaces else "",
            "updated_for": person(actor) if action == "update_file" else "",
            # Said where the e-mail would promise otherwise (an enterprise file's "both fully
            # functional"); the license's page says it for every file.
            "not_redundant": lic.kind == tmslicense.Kind.ENTERPRISE
            and why_not_redundant(activation),
            "url": _license_url(lic),
            **_site(),
        },
        attachment_name=activation.filename,
        attachment=text,
    )
    return activation


def _file_license(lic: License, ids, serial: str) -> tmslicense.License:
    """What a file of this license for these servers says, issued now (InvalidPayload: the
    license cannot be put into a file as recorded)."""
    return tmslicense.License.create(
        serial=serial,
        license_number=lic.number,
        kind=lic.kind,
        installation_ids=ids,
        product=lic.product,
        edition=lic.edition,
        seats=lic.seats,
        features=sorted(lic.features),  # as the site lists them: a server's status alike
        customer=lic.organization.name,
        issued_at=timezone.now(),
        maintenance_end=lic.maintenance_end,
        expires_at=lic.expires_at,
    )


def _planned(lic: License, ids) -> tmslicense.License | None:
    """The file this license would get for these servers now, only asked what it would do;
    None when the license cannot be put into a file as recorded (issuing it says why)."""
    try:
        return _file_license(lic, ids, "0" * 16)
    except tmslicense.InvalidPayload:
        return None


def why_not_redundant(activation: Activation, *, updated: bool = False) -> str | None:
    """Why the server of a file that may be a mirror (a two-server file's secondary; a
    one-server file's server) is one although it holds a license of its own (an enterprise
    file; a standard one), as its ThinManager says it (tmslicense, with the organization's
    live files bound to it: a mirrored license that none of its own duplicates); None when it
    is fully functional, or a mirror by its mirrored licenses alone. Another customer's files
    on the same server are not read. ``updated``: with the license's updated file in its
    place (what "Get an updated file" gives); None also when the license cannot be put into
    a file as recorded (issuing it says why)."""
    server = activation.mirrored_installation_id or activation.installation_id
    planned = _planned(activation.license, activation.installation_ids) if updated else None
    if updated and planned is None:
        return None
    return _not_redundant(server, activation.license.organization_id, planned)


def _not_redundant(server: str, organization_id: int, planned=None) -> str | None:
    """why_not_redundant of ``server`` with the organization's live files bound to it, and
    ``planned`` (a file not issued yet) in place of its license's file there."""
    files = (
        Activation.objects.live().bound_to(server).filter(license__organization_id=organization_id)
    )
    licenses = [file.issued_license for file in files]
    if planned is not None:
        number = planned.license_number
        licenses = [lic for lic in licenses if lic.license_number != number] + [planned]
    caps = tmslicense.capabilities(licenses, server)
    own = any(lic.server(server).role is not tmslicense.Role.MIRROR for lic in caps.licenses)
    if caps.role is tmslicense.Role.MIRROR and own:
        return caps.message(tmslicense.Action.RUN_CONSOLE)
    return None


@dataclass(frozen=True)
class PairedAlready:
    secondary: str  # the server the primary is synchronized with
    number: str  # the license whose file pairs them
    not_redundant: str | None  # an enterprise license's secondary a mirror still: why


def paired_already(lic: License, primary: str) -> PairedAlready | None:
    """For step 2 of a two-server license: the server a live file of another of the
    organization's licenses pairs ``primary`` with (as its secondary: the only one this
    license may take, check_pair), and for an enterprise license, why that server would not
    be fully functional with it, as its ThinManager would say it. None when no file of the
    organization's makes ``primary`` a primary (another customer's is not named)."""
    pair = (
        Activation.objects.live()
        .filter(installation_id=primary, license__organization_id=lic.organization_id)
        .exclude(mirrored_installation_id="")
        .exclude(license_id=lic.pk)
        .values_list("mirrored_installation_id", "license__number")
        .first()
    )
    if pair is None:
        return None
    secondary, number = pair
    not_redundant = None
    if lic.kind == tmslicense.Kind.ENTERPRISE and (planned := _planned(lic, (primary, secondary))):
        not_redundant = _not_redundant(secondary, lic.organization_id, planned)
    return PairedAlready(secondary, number, not_redundant)


def _revoked_url() -> str:
    """Where a ThinManager Server gets the list that makes it refuse a revoked file."""
    return settings.SITE_URL + reverse("revoked")


def contacts(organization_id: int) -> list[str]:
    """Who hears about an organization's licenses: the e-mail addresses of its members; not of
    a member invited who has not chosen a password yet (the address is not confirmed: it may
    be mistyped), nor of a deactivated account. Empty: nobody is e-mailed."""
    members = Membership.objects.filter(organization_id=organization_id).select_related("user")
    return [
        m.user.email
        for m in members
        if m.user.email and m.user.is_active and not awaits_password(m.user)
    ]


def _refuse_half_a_swap(old: Activation, installation_id: str, mirrored_installation_id: str):
    """A correction naming one server twice (its ID typed in the other's field, the other
    left as it was) is half a swap: said so beside the field typed, with how to swap."""
    try:
        ids = [
            tmslicense.normalize_installation_id(i)
            for i in (installation_id, mirrored_installation_id)
            if i
        ]
    except tmslicense.InvalidInstallationId:
        return  # its own message comes from installation_ids()
    if len(ids) < 2 or ids[0] != ids[1] or ids[0] not in old.installation_ids:
        return  # a new ID in both fields: installation_ids() says they must differ
    typed_in_primary = ids[0] == old.mirrored_installation_id
    raise InvalidInstallationIds(
        f"{ids[0]} is already the {'secondary' if typed_in_primary else 'primary'} server's "
        "ID. To swap the two servers, enter each one's ID in the other's field.",
        field="installation_id" if typed_in_primary else "mirrored_installation_id",
    )


REMINDER_DAYS = (30, 7)
LISTED_IN_FULL = 50  # licenses in one reminder; past this many, one line each


@dataclass(frozen=True)
class _Ending:
    """What a reminder is of: a license's maintenance end, or its expiry (when its servers
    stop serving thin clients)."""

    prefix: str  # of its outbox keys: "<prefix>:org:<organization>:<threshold>:<date>[:n]"
    template_one: str
    template_many: str
    subject_one: Callable[[License, date], str]
    subject_many: Callable[[str, date, list[License]], str]  # (how many, the date, which)

    def subject(self, licenses, end, more: bool) -> str:
        if len(licenses) == 1:
            return self.subject_one(licenses[0], end)
        return self.subject_many(f"{len(licenses):,}{' more' if more else ''}", end, licenses)


def _expiring_too(licenses) -> str:
    """Of a maintenance reminder's subject: how many of its licenses expire on that day."""
    count = sum(_expires_with_maintenance(lic) for lic in licenses)
    if not count:
        return ""
    return f"; {count:,} of them expire{'s' if count == 1 else ''} then"


MAINTENANCE = _Ending(
    MAINTENANCE_REMINDER,
    "email/maintenance_reminder.txt",
    "email/maintenance_reminders.txt",
    lambda lic, end: (
        f"License {lic.number} expires and its maintenance ends on {end:%Y-%m-%d}"
        if _expires_with_maintenance(lic)
        else f"Maintenance for license {lic.number} ends on {end:%Y-%m-%d}"
    ),
    lambda count, end, licenses: (
        f"Maintenance for {count} licenses ends on {end:%Y-%m-%d}{_expiring_too(licenses)}"
    ),
)
EXPIRY = _Ending(
    EXPIRY_REMINDER,
    "email/expiry_reminder.txt",
    "email/expiry_reminders.txt",
    lambda lic, end: (
        f"The license file of {lic.number} expires on {expiry_shown(lic.stops_at)}"
        if lic.extended or lic.shortened
        else f"License {lic.number} expires on {expiry_shown(lic.stops_at)}"
    ),
    lambda count, end, licenses: f"{count} licenses expire by the end of {end:%Y-%m-%d} (UTC)",
)


@transaction.atomic
def queue_reminders(*, today=None) -> int:
    """Queue the reminders due today, 30 and 7 days before a maintenance end, and before an
    expiry: of the file a license's servers hold (support may have changed the license's
    since), or of a license not activated (it can be activated no more); one on its
    maintenance end's last day is said by that reminder. One e-mail per organization,
    threshold and date, listing its licenses ending that day; returns how many e-mails were
    queued. Each license is listed once per organization, threshold and date (a day missed by
    the scheduler is caught up); one due only since (added, moved in, its date changed) is
    listed in one more e-mail, without the others."""
    if not alone("reminders", "run"):  # started twice (a second beat): the first does it
        return 0
    today = today or timezone.localdate()
    last = today + timedelta(days=max(REMINDER_DAYS))
    live = Activation.objects.live().filter(license=OuterRef("pk"))
    licenses = License.objects.annotate(
        activated=Exists(live), file_expires=Subquery(live.values("expires_at")[:1])
    )
    # Expired or suspended: nothing to renew.
    maintenance = licenses.in_state("active").filter(
        maintenance_end__gte=today, maintenance_end__lte=last
    )
    # Whose last day (see last_day) is from today to the last: expiring from now on, by the
    # end of the last. A file runs on after its license expired (support shortened it); a
    # suspended license is not reminded of its files.
    after, by = max(_midnight(today), timezone.now()), _midnight(last + DAY)
    files = Activation.objects.live().filter(expires_at__gt=after, expires_at__lte=by)
    expiring = licenses.exclude(status=License.Status.SUSPENDED).filter(
        Q(pk__in=files.values("license_id"))
        | Q(activated=False, expires_at__gt=after, expires_at__lte=by)
    )
    members = {}  # by organization, read once for both
    count = _queue_reminders(MAINTENANCE, maintenance, _maintenance_day, today, members)
    told = _told_before_a_change(expiring)  # after today's maintenance reminders
    return count + _queue_reminders(
        EXPIRY, expiring, lambda lic: _expiry_day(lic, told), today, members
    )


DAY = timedelta(days=1)


def _midnight(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min))


def _servers_stop(lic: License) -> None:
    """Note when the license's servers stop (``stops_at``: its file's expiry; not activated,
    its own; None: never), and whether the license's own expiry is later (``extended``: its
    updated file is to be added) or earlier (``shortened``: no new file after it) than the
    file's, support having changed it since."""
    lic.stops_at = lic.file_expires if lic.activated else lic.expires_at
    own = lic.expires_at and lic.expires_at.replace(microsecond=0)  # a file has seconds
    lic.extended = bool(lic.activated and lic.stops_at and (own is None or own > lic.stops_at))
    lic.shortened = bool(lic.activated and own and (lic.stops_at is None or own < lic.stops_at))


def _maintenance_day(lic: License) -> date:
    _servers_stop(lic)
    return lic.maintenance_end


def _on_the_day(moment: datetime, day: date) -> bool:
    """Whether an expiry falls on ``day``, from its first moment (one date typed for both) to
    its end (the next midnight: "through the maintenance end")."""
    return _midnight(day) <= moment <= _midnight(day + DAY)


def _expires_with_maintenance(lic: License) -> bool:
    """Whether the license's expiry (its file's the same) falls on its maintenance end's day:
    its maintenance reminder says both (see _servers_stop)."""
    return (
        lic.stops_at is not None
        and _on_the_day(lic.stops_at, lic.maintenance_end)
        and not (lic.extended or lic.shortened)
    )


def _expiry_day(lic: License, told: set[int]) -> date | None:
    """The last day the license's servers run on its file (see _servers_stop); None when its
    maintenance reminder says it (not one written before it expired so: ``told``)."""
    _servers_stop(lic)
    if _expires_with_maintenance(lic) and lic.pk not in told:
        return None
    return last_day(lic.stops_at)


def _queue_reminders(ending: _Ending, due, date_of, today, members) -> int:
    reminded = _reminded(due, ending.prefix)
    groups = {}
    for lic in due.select_related("organization"):
        end = date_of(lic)
        if end is None:
            continue
        threshold = min(d for d in REMINDER_DAYS if (end - today).days <= d)
        if (lic.pk, lic.organization_id, f"{threshold}:{end.isoformat()}") not in reminded:
            groups.setdefault((lic.organization, threshold, end), []).append(lic)
    written = OutboxMessage.objects.filter(
        key__startswith=f"{ending.prefix}:org:", organization__in=due.values("organization_id")
    )
    taken = set(written.values_list("key", flat=True))
    reaching = set(written.exclude(_reaching_nobody()).values_list("key", flat=True))
    count = 0
    for (organization, threshold, end), licenses in groups.items():
        if organization.pk not in members:
            members[organization.pk] = contacts(organization.pk)
        key = first = f"{ending.prefix}:org:{organization.pk}:{threshold}:{end.isoformat()}"
        n = 1
        while key in taken:  # one more e-mail for that day: licenses due only since
            n += 1
            key = f"{first}:{n}"
        # "More" licenses after one that went out (or will), not after one that reached nobody.
        more = any(k in reaching for k in [first, *(f"{first}:{m}" for m in range(2, n))])
        message = _queue_reminder(
            ending, key, organization, licenses, members[organization.pk], today, end, more
        )
        count += message is not None
    return count


def _reaching_nobody(via: str = "") -> Q:
    """Reminders that reached nobody and never will, to be written anew: sent to nobody, and
    cancelled (from an earlier day, or its recipients all gone), or still waiting from before
    today (the workers were down: the worker cancels it, see OutboxMessage.outdated), or
    failed before today (the mail server down past the retries: support's Send again would
    find it out of date). ``via``: the path to the message ("outboxmessage__")."""
    Status = OutboxMessage.Status
    earlier = _midnight(timezone.localdate())
    return Q(**{f"{via}delivered_to": []}) & (
        Q(**{f"{via}status": Status.CANCELLED})
        | Q(
            **{
                f"{via}status__in": [Status.PENDING, Status.FAILED],
                f"{via}created_at__lt": earlier,
            }
        )
    )


def _reminded(due, prefix: str) -> set[tuple[int, int, str]]:
    """(license id, organization id, "<threshold>:<date>") of the reminders queued for the
    ``due`` licenses (see _reminders_of)."""
    return {
        (license_id, organization_id, f"{threshold}:{end}")
        for license_id, organization_id, threshold, end, _ in _reminders_of(due, prefix)
    }


def _reminders_of(due, prefix: str):
    """(license id, organization id, threshold, date, when written) of the reminders queued
    for the ``due`` licenses: by the e-mails listing them, and by those written one per
    license before (keyed "reminder:<number>:<threshold>:<date>", the license's
    organization's). Not by one that reached nobody and never will (see _reaching_nobody):
    written anew."""
    listing = OutboxMessage.licenses.through.objects.filter(
        license__in=due.values("pk"), outboxmessage__key__startswith=f"{prefix}:"
    ).exclude(_reaching_nobody("outboxmessage__"))
    own = OutboxMessage.objects.filter(
        license__in=due.values("pk"), key__startswith=f"{prefix}:"
    ).exclude(_reaching_nobody())
    for license_id, organization_id, key, written in [
        *listing.values_list(
            "license_id",
            "outboxmessage__organization_id",
            "outboxmessage__key",
            "outboxmessage__created_at",
        ),
        *own.values_list("license_id", "organization_id", "key", "created_at"),
    ]:
        parts = key.split(":")
        threshold, end = parts[3:5] if parts[1] == "org" else parts[2:4]
        yield license_id, organization_id, threshold, end, written


def _told_before_a_change(due) -> set[int]:
    """Ids of the ``due`` licenses whose last maintenance reminder of their maintenance end
    was written before their expiry last changed (support's change of it, audited, or a new
    file, which carries the license's): it did not say an expiry on that day set since, so
    the expiry's own reminder says it."""
    expiry = str(License._meta.get_field("expires_at").verbose_name)  # as audited
    edits = AuditEvent.objects.filter(
        license__in=due.values("pk"), action="license_change", details__changed__has_key=expiry
    )
    files = Activation.objects.filter(license__in=due.values("pk"))
    changed = {}
    for license_id, at in [
        *edits.values("license_id").annotate(at=Max("created_at")).values_list("license_id", "at"),
        *files.values("license_id").annotate(at=Max("issued_at")).values_list("license_id", "at"),
    ]:
        changed[license_id] = max(at, changed.get(license_id, at))
    ends = dict(due.values_list("pk", "maintenance_end"))
    last_told = {}
    for license_id, _, _, end, written in _reminders_of(due, MAINTENANCE_REMINDER):
        if end == ends[license_id].isoformat():
            last_told[license_id] = max(written, last_told.get(license_id, written))
    return {pk for pk, written in last_told.items() if pk in changed and written < changed[pk]}


def _queue_reminder(
    ending: _Ending, key, organization, licenses, recipients, today, end, more: bool
) -> OutboxMessage | None:
    """One reminder for an organization's licenses ending on the same day: of one license,
    about it (as its other e-mails); of several, a list sorted by number, said to be ``more``
    when it comes after one for that day (licenses due only since)."""
    listed = [
        {
            "license": lic,
            # When its servers stop (they refuse the file from its expiry on), and why.
            "stops": expiry_shown(lic.stops_at),
            "expires_first": lic.stops_at is not None and last_day(lic.stops_at) <= end,
            # Expired already: the extended license's file not taken (see _servers_stop).
            "stopped": lic.stops_at is not None and lic.stops_at <= _midnight(today),
            "expires_on_end": lic.stops_at is not None and _on_the_day(lic.stops_at, end),
            "stops_at": lic.stops_at,
            "activated": lic.activated,
            "extended": lic.extended,
            "shortened": lic.shortened,
            "differs": lic.extended or lic.shortened,  # the file's expiry, not the license's
        }
        for lic in sorted(licenses, key=lambda lic: lic.number)
    ]
    context = {
        "days_left": (end - today).days,
        # On its last day, a file expiring at the next midnight works until the day's end.
        "tonight": ending is EXPIRY
        and any(timezone.localdate(lic.stops_at) != end for lic in licenses),
        "support_email": settings.SUPPORT_EMAIL,
    }
    if len(listed) == 1:  # about the license, as its other e-mails
        about = {"license": licenses[0]}
        template = ending.template_one
        context.update(listed[0], url=_license_url(licenses[0]))
    else:
        about = {"organization": organization}
        template = ending.template_many
        context.update(
            end=end,
            more=more,
            licenses=listed,
            url=settings.SITE_URL + reverse("licensing:license_list"),
            in_full=len(listed) <= LISTED_IN_FULL,
            expiring_first=any(item["expires_first"] for item in listed),
            expiring_later=any(item["stops_at"] and not item["expires_first"] for item in listed),
            working_on=not all(item["expires_first"] for item in listed),
            any_activated=any(item["activated"] for item in listed),
            any_extended=any(item["extended"] for item in listed),
            any_not_activated=any(item["activated"] is False for item in listed),
        )
    message = outbox.queue(
        key=key,
        recipients=recipients,
        subject=ending.subject(licenses, end, more),
        template=template,
        context=context,
        **about,
    )
    if message is not None:
        OutboxMessage.licenses.through.objects.bulk_create(
            OutboxMessage.licenses.through(outboxmessage=message, license=lic) for lic in licenses
        )
    return message


def check_reissuable(activation: Activation, lic: License) -> None:
    """Only a live activation of an active license gets a new file (a suspension must hold:
    no new file goes out, from the site or from support)."""
    if not activation.is_live:
        raise ActivationError(
            f"Activation {activation.serial} is revoked; only a live one is reissued."
        )
    if not lic.is_activatable():
        raise ActivationError(
            f"License {lic.number} is {lic.state.lower()}: a new file is issued only for an "
            "active license. Set its status to Active (or its expiry later) first."
        )


# What a reason may not hold: a license text's hidden characters, but for line breaks and tabs.
_HIDDEN_IN_REASON = re.compile(f"(?![\t\n\r])[{HIDDEN_CHARACTERS}]")


def check_reason(reason: str, *, of: str | None) -> str:
    """The reason support gives for a revocation or a correction (``of``; None where a reason
    is optional, then "" for one that reads as blank), without spaces around it; refused
    beside its field when there is none, or when it holds characters that reorder or hide
    text (the audit trail shows it as typed)."""
    why = (reason or "").strip()
    if _HIDDEN_IN_REASON.search(why):
        raise ActivationError(
            "The reason must not contain control characters, text direction marks or "
            "invisible characters.",
            field="reason",
        )
    if reads_as_blank(why):
        if of:
            raise ActivationError(f"Give a reason for the {of}.", field="reason")
        return ""
    return why


@transaction.atomic
def revoke(*, activation: Activation, reason: str, actor, ip=None) -> Activation:
    """Revoke a live activation; the license can then be activated again."""
    reason = check_reason(reason, of="revocation")
    _locked_license(activation.license_id)
    act = _locked_activation(activation.pk)
    if not act.is_live:
        raise ActivationError(f"Activation {act.serial} is already revoked.")
    act.revoke(reason=reason, by=actor)
    audit(
        actor=actor,
        action="revoke",
        license=act.license,
        obj=act,
        ip=ip,
        details={"serial": act.serial, "reason": act.revoked_reason},
    )
    # The customer hears of it (support's reason stays in the admin).
    outbox.queue(
        key=f"revoked:{act.serial}",
        license=act.license,
        activation=act,
        recipients=contacts(act.license.organization_id),
        subject=f"License file for {act.license.number} revoked",
        template="email/revoked.txt",
        context={
            "license": act.license,
            "activation": act,
            "revoked_url": _revoked_url(),
            "license_url": _license_url(act.license),
            "support_email": settings.SUPPORT_EMAIL,
        },
    )
    return act


RESTORED_REASON = (
    "On the site's list of revoked files saved before its database was restored from an older "
    "backup: revoked again."
)


def revoke_listed(serials, *, dry_run: bool = False) -> tuple[list[Activation], list[str]]:
    """After a restore from a dump older than the last revocations (files revoked since are
    live again in it): revoke again, by the site, each live file whose serial is on the list
    of revoked files saved since (``serials``, verified). Returns the files revoked (with
    ``dry_run``, to be revoked: nothing changed) and, for each that could not be, why."""
    found = Activation.objects.live().filter(serial__in=list(serials)).order_by("pk")
    found = list(found.select_related("license"))
    if dry_run:
        return found, []
    done, failed = [], []
    for act in found:
        try:
            done.append(revoke(activation=act, reason=RESTORED_REASON, actor=None))
        except ActivationError as error:
            if Activation.objects.live().filter(pk=act.pk).exists():  # else: revoked meanwhile
                failed.append(f"{act.serial} (license {act.license.number}): {error.message}")
    return done, failed


def files_also_on(activation: Activation, servers) -> list[Activation]:
    """The organization's live files of its other licenses bound to any of ``servers``: a
    server replaced (its hardware, a new Installation ID) needs each corrected."""
    bound = Q()
    for server in servers:
        bound |= Q(installation_id=server) | Q(mirrored_installation_id=server)
    files = Activation.objects.live().filter(
        bound, license__organization_id=activation.license.organization_id
    )
    return list(files.exclude(license_id=activation.license_id).select_related("license"))


def corrected_installation_ids(
    old: Activation, lic: License, installation_id: str, mirrored_installation_id: str = ""
) -> tuple[str, ...]:
    """Canonical Installation IDs of a correction of ``old`` (each ID given, the one left as
    it was included), primary first; refuses IDs that correct nothing, half a swap, and two
    new servers (a move)."""
    _refuse_half_a_swap(old, installation_id, mirrored_installation_id)
    ids = installation_ids(lic, installation_id, mirrored_installation_id)
    if ids == old.installation_ids:
        # About the pair, not one field: either ID may have been the one left as it was.
        raise InvalidInstallationIds(
            "The corrected Installation IDs are the same as the current ones."
            if len(ids) > 1
            else "The corrected Installation ID is the same as the current one."
        )
    changed = sum(new != was for new, was in zip(ids, old.installation_ids, strict=True))
    if changed > 1 and set(ids) != set(old.installation_ids):
        # Two new servers are a move: the customer activates again once it is revoked.
        raise InvalidInstallationIds(
            "Correct one Installation ID at a time: both differ from the file's. To move "
            "the license to other servers, revoke this activation; the customer then "
            "activates the license again."
        )
    return ids


@transaction.atomic
def reissue(
    *,
    activation: Activation,
    actor,
    ip=None,
    installation_id: str = "",
    mirrored_installation_id: str = "",
    reason: str = "",
) -> Activation:
    """Replace a live activation by a new file (new serial).

    With no IDs given, the same Installation IDs are kept (a reissue; ``reason`` optional);
    with IDs, a mistyped Installation ID is corrected (``reason`` required).
    """
    lic = _locked_license(activation.license_id)
    old = _locked_activation(activation.pk)
    check_reissuable(old, lic)
    if installation_id:
        ids = corrected_installation_ids(old, lic, installation_id, mirrored_installation_id)
        action, why = "correct_installation_id", check_reason(reason, of="correction")
    else:
        ids, action, why = old.installation_ids, "reissue", check_reason(reason, of=None)
        why = why or "Reissued"
    return _replace(old, lic, ids, actor=actor, ip=ip, action=action, why=why)


def update_file(*, license: License, actor, ip=None) -> Activation:
    """A customer's updated file, once support changed the license (seats, features, dates)
    after its current file was issued: a new file for the same servers, the old one revoked,
    as support's reissue. Refused when nothing changed, so it is no way to churn serials."""
    try:
        return _update_file_locked(license, actor, ip)
    except IntegrityError:
        _refuse_if_account_gone(actor)
        raise


@transaction.atomic
def _update_file_locked(license: License, actor, ip) -> Activation:
    lic = _locked_license(license.pk, member=actor)
    check_activatable(lic)
    live = _live(lic)
    if live is None:
        raise ActivationError(f"License {lic.number} has no current file: activate it first.")
    old = _locked_activation(live.pk)
    if not lic.changes_since(old):
        raise ActivationError(
            f"The current file of license {lic.number} is up to date: it has the values of the "
            "license. Download it below."
        )
    why = "Updated: the license changed after this file was issued"
    return _replace(
        old, lic, old.installation_ids, actor=actor, ip=ip, action="update_file", why=why
    )


def _replace(old: Activation, lic: License, ids, *, actor, ip, action: str, why: str):
    """A new file (new serial) in place of a live one, which is revoked and names it."""
    changes = [list(change) for change in lic.changes_since(old)]  # the license's, since
    old.revoke(reason=why, by=actor)
    new = _issue(
        lic,
        ids,
        actor=actor,
        ip=ip,
        action=action,
        details={
            "replaces": old.serial,
            "previous_installation_ids": list(old.installation_ids),
            "reason": why,
            **({"changes": changes} if changes else {}),
        },
        replaced_expired=expiry_shown(old.expires_at) if old.has_expired else "",
    )
    old.replaced_by = new
    old.save(update_fields=["replaced_by"])
    return new


PAUSED_SCOPES = {"login": "log-ins", "lookup": "license look-ups", "reset": "password resets"}
# Why a pause could not be read or lifted, and what that means meanwhile.
CACHE_DOWN = "the rate-limit cache (Redis) is unreachable. While it is, nobody is paused"


def lift_pauses(*, organization, actor, ip=None) -> str:
    """Support lifts the pauses of an organization's members, who call because they cannot log
    in or look up a license: each member's failed log-ins (from every address) and failed
    look-ups are forgotten. What an address counted across accounts stays. Audited with the
    members refused until then. Returns what was done, for support."""
    members = [m.user for m in organization.memberships.select_related("user")]
    if not members:
        raise ActivationError("This organization has no members: nobody is paused.")
    refused = paused_members(organization)
    if refused is None:
        raise ActivationError(f"Nothing was lifted: {CACHE_DOWN}; try again once it is back.")
    lifted = [
        throttle.lift_login_pause(user) & throttle.lift_lookup_pause(user) for user in members
    ]
    if not all(lifted):
        raise ActivationError(
            f"The pauses could not all be lifted (some may have been): {CACHE_DOWN}; try "
            "again once it is back."
        )
    own = [name for name, pauses in refused if not all(p.shared for p in pauses)]
    shared = sorted({p.address for _, pauses in refused for p in pauses if p.shared})
    audit(
        actor=actor,
        action="lift_pauses",
        license=None,
        obj=organization,
        ip=ip,
        details={"members": sorted(person(user) for user in members), "refused": own},
    )
    done = (
        f"{organization}: the pauses of {', '.join(own)} are lifted: they can log in and look "
        "up licenses again."
        if own
        else f"{organization}: none of its members was paused on their own account."
    )
    count = f"{len(members)} member{'s' if len(members) != 1 else ''}"
    done += f" The failed log-ins and look-ups of its {count} are forgotten."
    if shared:
        done += (
            f" Still refused from {', '.join(shared)}, for failures across accounts there: "
            "lift that address's pauses on the organization's page."
        )
    return done


def lift_address_pauses(*, organization, address: str, actor, ip=None) -> str:
    """Support lifts the pauses of an address the organization's people share (a plant behind
    one address), paused for failures across accounts: its failed log-ins and look-ups and
    its password reset requests are forgotten (an IPv6 address's: its /64's). Audited on the
    organization that called. Returns what was done, for support."""
    try:
        # An address, or an IPv6 block as a refusal names it (2001:db8:1:2::/64).
        network = ipaddress.ip_network(address.strip(), strict=False)
    except ValueError:
        network = None
    if network is None or network.prefixlen < (64 if network.version == 6 else 32):
        raise ActivationError(
            "Enter an IP address, such as 203.0.113.7 or 2001:db8::7, or an IPv6 /64 block "
            "as the refusal names it.",
            field="address",
        )
    result = throttle.lift_address_pause(str(network.network_address))
    if result is None:
        raise ActivationError(
            f"The pauses could not be lifted: {CACHE_DOWN}; try again once it is back."
        )
    lifted, paused = result
    paused = [PAUSED_SCOPES[scope] for scope in paused]
    known = lifted in recent_addresses(organization, count=None)  # not only those shown
    audit(
        actor=actor,
        action="lift_address_pauses",
        license=None,
        obj=organization,
        ip=ip,
        details={
            "address": lifted,
            "paused": ", ".join(paused) or "nothing",
            "used by its members lately": "yes" if known else "no",
        },
    )
    done = (
        f"The pauses of {lifted} are lifted ({', '.join(paused)}): log-ins, license look-ups "
        "and password reset requests from it are counted afresh."
        if paused
        else f"Nothing was paused at {lifted}: check the address the refusal named (what it "
        "counted is forgotten all the same)."
    )
    if not known:
        done += f" It is not among the addresses {organization}'s members used lately."
    return done


def paused_members(organization) -> list[tuple[str, list[throttle.Pause]]] | None:
    """The organization's members refused now (log-ins or license look-ups), each with its
    pauses: what support sees before lifting them. None when the rate-limit cache is
    unreachable (then nobody is paused)."""
    members = sorted((m.user for m in organization.memberships.select_related("user")), key=person)
    found = []
    for user in members:
        pauses = throttle.pauses(user)
        if pauses is None:
            return None
        if pauses:
            found.append((person(user), pauses))
    return found


def recent_addresses(organization, *, days: int = 30, count: int | None = 5) -> list[str]:
    """The addresses the organization's members acted from lately (their audited actions),
    the latest first, as pauses count them (an IPv6 one as its /64): where a member who calls
    about a pause probably is."""
    addresses = (
        AuditEvent.objects.filter(
            actor__membership__organization=organization,
            created_at__gte=timezone.now() - timedelta(days=days),
            ip_address__isnull=False,
        )
        .values("ip_address")
        .annotate(last=Max("created_at"))
        .order_by("-last")
        .values_list("ip_address", flat=True)
    )
    blocks = dict.fromkeys(throttle.counted(address) for address in addresses)
    return list(blocks)[:count]


class InvitationRefused(ActivationError):
    field = "email"


def invite_member(*, organization: Organization, email: str, actor, ip=None) -> str:
    """Support opens an account for a customer's engineer: a member of ``organization``, named
    by the e-mail address, with no password until they choose one from the e-mailed link
    (support never knows it). A member who has not chosen one yet is sent a link again.
    Returns what was done, for support."""
    _check_address(email)
    for _attempt in range(2):
        try:
            return _invite(organization, email, actor, ip)
        except IntegrityError as error:
            if "username" not in str(error):
                raise
            # The same address invited at the same moment: once more, it is found.
    raise InvitationRefused(f"{email} is being invited at this moment; try again.")


@transaction.atomic
def _invite(organization, email, actor, ip) -> str:
    User = get_user_model()
    # Locked: a withdrawal under way is waited for (then no account is found, and a new one
    # made), and one that comes next cancels the e-mail written here.
    user = (
        User.objects.filter(same_address(email))
        .select_related("membership")
        .select_for_update(of=("self",))
        .first()
    )
    again = user is not None
    if user is None:
        user = User.objects.create_user(_username(email), email)  # no password: unusable
        Membership.objects.create(user=user, organization=organization)
    elif getattr(user, "membership", None) is None or user.membership.organization != organization:
        whose = (
            f"member of {user.membership.organization}"
            if hasattr(user, "membership")
            else "staff"
            if user.is_staff
            else "in no organization"
        )
        raise InvitationRefused(
            f"An account with the address {email} exists already ({whose}): an account belongs "
            "to one organization. Ask an administrator, or use another address."
        )
    elif not user.is_active:
        raise InvitationRefused(
            f"The account of {email} is deactivated: ask an administrator to activate it."
        )
    elif user.has_usable_password():
        raise InvitationRefused(
            f"{email} is a member of {organization} already and has chosen a password: they "
            "log in with it, or ask for a new one on the log-in page (Forgot your password?)."
        )
    elif not awaits_password(user):
        raise InvitationRefused(
            f"An administrator turned off the password of {email}'s account: ask an administrator."
        )
    audit(
        actor=actor,
        action="member_invite",
        license=None,
        obj=organization,
        ip=ip,
        details={"member": person(user), "again": "yes" if again else "no"},
    )
    valid = link_lifetime()
    token = default_token_generator.make_token(user)
    uid = urlsafe_base64_encode(force_bytes(user.pk))
    if not again:
        # The members hear of a new one: an address mistyped into another's hands shows.
        _tell_members(
            organization, user, "added", f"{user.email} was invited to {organization}'s licenses"
        )
    outbox.queue(
        key=f"invitation:{user.pk}:{uuid.uuid4()}",
        organization=organization,
        recipients=[user.email],
        subject=f"Your account on the {settings.SITE_NAME}",
        template="email/invitation.txt",
        context={
            "organization": organization,
            "user": user,
            "link": settings.SITE_URL + reverse("password_reset_confirm", args=[uid, token]),
            "login_url": settings.SITE_URL + reverse("login"),
            "reset_url": settings.SITE_URL + reverse("password_reset"),
            "valid": valid,
            **_site(),
        },
        secret=True,  # the link sets the password
    )
    if again:
        return f"Invited {user.email} again (no password chosen yet): a new link is on its way."
    return (
        f"Invited {user.email} to {organization}: an e-mail with a link to choose a password "
        f"is on its way (the link works once, for {valid})."
    )


@transaction.atomic
def withdraw_invitation(*, membership: Membership, actor, ip=None) -> str:
    """Support withdraws an invitation not used yet (a mistyped address, say): the account is
    deleted, so its links no longer work, and its e-mails not sent yet are not sent. Members
    told of the invitation are told of its withdrawal."""
    User = get_user_model()
    user = User.objects.select_for_update().filter(pk=membership.user_id).first()  # vs. a save
    if user is None:
        raise InvitationRefused(WITHDRAWN_ALREADY)
    check_invitation(user)
    organization = membership.organization
    audit(
        actor=actor,
        action="member_invite_withdraw",
        license=None,
        obj=organization,
        ip=ip,
        details={"member": person(user)},
    )
    unsent = OutboxMessage.objects.filter(
        Q(key__startswith=f"invitation:{user.pk}:")
        | Q(key__startswith=f"password-reset:{user.pk}:")  # asked for on the log-in page
        | Q(key=f"member-added:{user.pk}"),
        status__in=[OutboxMessage.Status.PENDING, OutboxMessage.Status.FAILED],  # not to be sent
    )
    with _not_waiting_on_a_send(
        "An e-mail of this invitation is being sent right now: try again in a moment.",
        InvitationRefused,
    ):
        unsent.filter(secret=True).update(body="")  # a link is erased, as once sent
        unsent.update(
            status=OutboxMessage.Status.CANCELLED, last_error="The invitation was withdrawn."
        )
    told = OutboxMessage.objects.filter(
        key=f"member-added:{user.pk}", status=OutboxMessage.Status.SENT
    ).exists()
    if told:
        # The members heard of the invitation (and may have asked for this): they hear it ended.
        _tell_members(
            organization,
            user,
            "withdrawn",
            f"The invitation of {user.email} to {organization}'s licenses was withdrawn",
        )
    user.delete()  # and its membership
    return (
        f"Withdrew the invitation of {user.email} to {organization}: its links no longer work."
        + (" Its other members are told." if told else "")
    )


@transaction.atomic
def deactivate_member(*, membership: Membership, actor, ip=None) -> str:
    """Support takes a member's access away (an engineer who left the plant): the account is
    deactivated, kept with its history. It no longer logs in (a session open now ends at its
    next page), sees the organization's licenses or gets its e-mails, and a link to choose a
    password not sent yet is not sent. An administrator can activate it again."""
    User = get_user_model()
    user = User.objects.select_for_update().filter(pk=membership.user_id).first()  # vs. a save
    if user is None or not user.is_active:
        raise InvitationRefused(DEACTIVATED_ALREADY)
    if awaits_password(user):
        raise InvitationRefused(
            f"{user.email} has not chosen a password yet: withdraw the invitation instead."
        )
    organization = membership.organization
    links = OutboxMessage.objects.filter(
        key__startswith=f"password-reset:{user.pk}:",
        status__in=[OutboxMessage.Status.PENDING, OutboxMessage.Status.FAILED],
    )
    with _not_waiting_on_a_send(
        "An e-mail to this member is being sent right now: try again in a moment.",
        InvitationRefused,
    ):
        links.update(body="", status=OutboxMessage.Status.CANCELLED, last_error=DEACTIVATED)
    user.is_active = False
    user.save(update_fields=["is_active"])
    audit(
        actor=actor,
        action="member_deactivate",
        license=None,
        obj=organization,
        ip=ip,
        details={"member": person(user)},
    )
    return (
        f"Deactivated the account of {user.email}: it no longer logs in, sees {organization}'s "
        "licenses or gets its e-mails. An administrator can activate it again."
        + nobody_else_told(organization, user)
    )


def nobody_else_told(organization, user) -> str:
    """Said when no member but ``user`` has a confirmed e-mail address (``contacts``): without
    them, no license e-mail reaches anyone."""
    if any(address != user.email for address in contacts(organization.pk)):
        return ""
    return (
        f" Nobody else in {organization} has a confirmed e-mail address: no license e-mail (new "
        "files, revocations, reminders) reaches anyone until an invited member chooses a "
        "password."
    )


DEACTIVATED = "The account was deactivated."
DEACTIVATED_ALREADY = "That account was deactivated already (or is not this organization's)."


def _tell_members(organization, user, event: str, subject: str) -> None:
    """E-mail the organization's members that ``user`` was invited ("added") or that the
    invitation was withdrawn."""
    outbox.queue(
        key=f"member-{event}:{user.pk}",
        organization=organization,
        recipients=contacts(organization.pk),
        subject=subject,
        template=f"email/member_{event}.txt",
        context={"organization": organization, "user": user, **_site()},
    )


WITHDRAWN_ALREADY = "That invitation was withdrawn already (or is not this organization's)."


def check_invitation(user) -> None:
    """Refuse to withdraw an account in use: only an invitation not used yet is withdrawn."""
    if not awaits_password(user):
        raise InvitationRefused(
            f"The account of {user.email} is in use (a password was chosen), not an "
            "invitation to withdraw: deactivate it instead (Deactivate beside the member)."
        )


def _license_url(lic: License) -> str:
    """The license's page, as an e-mail links to it."""
    return settings.SITE_URL + reverse("licensing:license_detail", args=[lic.number])


def _site() -> dict:
    """What e-mails sent from the admin or a worker say of the site."""
    return {
        "site_name": settings.SITE_NAME,
        "site_url": settings.SITE_URL,
        "support_email": settings.SUPPORT_EMAIL,
        "keyring_url": settings.SITE_URL + reverse("keyring"),
    }


def _check_address(email: str) -> None:
    """Refuses an address whose domain mail servers read otherwise than it is written: with a
    character that shows as nothing (a zero-width space, a soft hyphen) or as another letter
    (a full-width "ｅ"). The e-mail would reach the plain address, while the member, logging
    in with it, would not be found. (Django's address check takes no such character in the
    part before the @.)"""
    domain = email.rpartition("@")[2]
    if domain.isascii():
        return
    try:
        read = domain.encode("idna").decode("idna")
    except UnicodeError:
        read = ""
    if read.lower() != domain.lower():  # not casefold(): ß is not the ss mail is sent to
        shown = email.encode("ascii", "backslashreplace").decode()
        raise InvitationRefused(
            f"The address {shown} holds characters that show as nothing or as other letters "
            f"(mail servers read its domain as {read or 'no domain'}): type it again plainly."
        )


def _username(email: str) -> str:
    """An invited member's user name: the address in lower case, each character a user name
    cannot have (the apostrophe of o'brien@…, say) written as "_". Members log in with their
    address as well, so the name is rarely seen."""
    username = re.sub(r"[^\w.@+-]", "_", email.lower())
    User = get_user_model()
    try:
        User._meta.get_field("username").run_validators(username)
    except ValidationError:
        raise InvitationRefused(
            f"The address {email} is too long for a user name (at most 150 characters): ask "
            "an administrator to make the account."
        ) from None
    # Of the same address, it is an invitation made at this moment: found on the next try.
    if User.objects.filter(username__iexact=username).exclude(email__iexact=email).exists():
        raise InvitationRefused(
            f"The user name {username} belongs to another account (with another e-mail "
            "address): ask an administrator."
        )
    return username


def awaits_password(user) -> bool:
    """An invited member who has not chosen a password yet (nor ever logged in): not one
    whose password an administrator disabled."""
    return user.last_login is None and not user.has_usable_password()


def link_lifetime() -> str:
    """How long a link to choose a password works ("3 days"), as its e-mails say it."""
    seconds = settings.PASSWORD_RESET_TIMEOUT
    days, hours = seconds // 86400, seconds // 3600
    if days:
        return f"{days} day{'s' if days != 1 else ''}"
    return f"{hours} hour{'s' if hours != 1 else ''}" if hours else f"{seconds // 60} minutes"


@transaction.atomic
def send_again(*, message: OutboxMessage, actor, ip=None) -> str | None:
    """Support sends a failed or waiting e-mail again: queued at once and audited, in one
    transaction. None when it is queued, else why not (see ``outbox.retry_now``); one it
    cancels instead (its file was revoked) is audited too."""
    was_cancelled = message.status == OutboxMessage.Status.CANCELLED
    why_not = outbox.retry_now(message)
    cancelled = (
        why_not is not None
        and not was_cancelled
        and OutboxMessage.objects.filter(
            pk=message.pk, status=OutboxMessage.Status.CANCELLED
        ).exists()
    )
    if why_not is None or cancelled:
        audit(
            actor=actor,
            action="outbox_retry" if why_not is None else "outbox_cancel",
            license=message.license,
            obj=message.subject,  # not its status then: "(Failed)" read as a failed retry
            ip=ip,
            details={"key": message.key, **({"why": why_not} if why_not else {})},
            organization_id=message.organization_id,
        )
    return why_not


def audit(
    *, actor, action: str, license: License | None, obj, ip=None, details=None, organization_id=None
):
    """``organization_id``: the organization of an event of no license and no organization."""
    actor = actor if getattr(actor, "is_authenticated", False) else None
    return AuditEvent.objects.create(
        actor=actor,
        actor_name=person(actor) if actor else "",
        action=action,
        license=license,
        organization_id=(
            license.organization_id
            if license
            else obj.pk
            if isinstance(obj, Organization)
            else organization_id
        ),
        object_repr=str(obj)[:200],
        details=details or {},
        ip_address=ip or None,
    )


def purge_audit(*, now=None, batch: int = 1000) -> tuple[int, int]:
    """Personal data the trail needs no longer (docs/operations.md, "Personal data"): the
    address of each event older than ``AUDIT_ADDRESS_KEEP_DAYS`` is cleared, and an account's
    own events (log-ins, passwords chosen), which name no license, are deleted after
    ``AUDIT_ACCOUNT_KEEP_DAYS``. What was done to a license or an organization stays, with who
    did it. Returns how many events lost their address and how many were deleted, in batches
    so that no statement holds many rows at once."""
    now = now or timezone.now()
    events = AuditEvent.objects.order_by()
    own = events.filter(
        action__in=AuditEvent.ACCOUNT_EVENTS,
        created_at__lt=now - timedelta(days=settings.AUDIT_ACCOUNT_KEEP_DAYS),
    )
    deleted = 0
    while ids := list(own.values_list("pk", flat=True)[:batch]):
        deleted += events.filter(pk__in=ids).delete()[0]
    addressed = events.filter(
        ip_address__isnull=False,
        created_at__lt=now - timedelta(days=settings.AUDIT_ADDRESS_KEEP_DAYS),
    )
    cleared = 0
    while ids := list(addressed.values_list("pk", flat=True)[:batch]):
        cleared += events.filter(pk__in=ids).update(ip_address=None)
    if deleted or cleared:
        log.info(
            "audit trail: %s account events older than %s days deleted, the addresses of %s "
            "events older than %s days cleared",
            deleted,
            settings.AUDIT_ACCOUNT_KEEP_DAYS,
            cleared,
            settings.AUDIT_ADDRESS_KEEP_DAYS,
        )
    return cleared, deleted
