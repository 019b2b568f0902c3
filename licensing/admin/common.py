"""What the support admin's pages share: people shown as text, audited saves, the search
for IDs and numbers typed in any form, the actions on a live activation and the pages of
support's actions."""

from __future__ import annotations

import hashlib
import json

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.options import IncorrectLookupParameters
from django.core.exceptions import FieldDoesNotExist, PermissionDenied
from django.core.serializers.json import DjangoJSONEncoder
from django.db import DataError, connection
from django.db.models import Model, Q
from django.forms.models import model_to_dict
from django.http import Http404, HttpResponseBadRequest
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.formats import date_format
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe
from django.utils.text import smart_split, unescape_string_literal

from .. import services
from ..forms import add_refusal, autofocus
from ..models import (
    Activation,
    License,
    Organization,
    expiry_shown,
    in_utc,
    listed_features,
    person,
    with_roles,
)
from ..search import (
    bare,
    canonical,
    may_be_in_a_file,
    one_character_off,
    search_forms,
    typo_in,
    without_roles,
)
from ..templatetags.message_text import message_text
from ..throttle import client_ip


def _person(user) -> str:
    # As text, never a link: support may not open users, and needs the customers' addresses.
    return "–" if user is None else person(user)


@admin.display(description="issued by")
def issued_by(activation):
    return _person(activation.issued_by)


@admin.display(description="revoked by")
def revoked_by(activation):
    return _person(activation.revoked_by)


@admin.display(description="time", ordering="created_at")
def when(event):
    """To the second: matched against a firewall's or a server's log."""
    return date_format(timezone.localtime(event.created_at), r"Y-m-d H:i:s \U\T\C")


@admin.display(description="actor")
def actor(event):
    """Who acted, as named then; a link to what they did (the trail filtered by them)."""
    if event.actor_id is None:  # the site, or an account deleted since
        return event.actor_name or "–"
    return format_html('<a href="{}">{}</a>', person_trail(event.actor_id), event.actor_name)


def person_trail(user_id: int) -> str:
    return f"{reverse('admin:licensing_auditevent_changelist')}?actor={user_id}"


@admin.display(description="action", ordering="action")
def action(event):
    return event.action_in_words


@admin.display(description="object")
def object_repr(event):
    return message_text(event.object_repr)  # a license number in it kept on one line


@admin.display(description="IP address")
def ip_address(event):
    return event.ip_address or "-"


def _plain(value) -> str:
    if isinstance(value, list):
        return ", ".join(_plain(v) for v in value) or "none"
    if isinstance(value, dict):
        return "; ".join(f"{k}: {_plain(v)}" for k, v in value.items())
    if isinstance(value, str) and (moment := _moment(value)):
        # As the JSON keeps it ("2031-06-30T00:00:00Z"), shown as files and pages write an
        # expiry: to the second when it has seconds (a change of seconds is a change).
        return expiry_shown(moment)
    return "none" if value in (None, "") else str(value)


def _moment(text: str):
    """A time with its zone written as ISO text, else None (a reason typed as
    "2031-02-30T10:00" stays text)."""
    try:
        moment = parse_datetime(text) if "T" in text else None
    except ValueError:
        return None
    return moment if moment is not None and moment.tzinfo is not None else None


def _listed(field: str, value):
    """A license's features in the order they are listed everywhere else."""
    return listed_features(value) if field == "features" and isinstance(value, list) else value


def _servers(event, installation_ids):
    """An activation's IDs as an audit event keeps them, each with its role in the event's
    license (a swap of the roles reads as one); as kept when they do not fit its kind."""
    kind = event.license.tms_kind if event.license else None
    if kind is None or len(installation_ids) != len(kind.server_roles):
        return _plain(installation_ids)
    return format_html_join(
        ", ", "{}", ((server(i, role),) for i, role in with_roles(kind, installation_ids))
    )


@admin.display(description="details")
def details(event):
    """An audit event's details a line each; a change as its old and new value."""
    lines = []
    for key, value in event.details.items():
        if key == "changed" and isinstance(value, dict):  # rows of an inline: a list
            lines += [
                f"{f}: {_plain(_listed(f, old))} → {_plain(_listed(f, new))}"
                for f, (old, new) in value.items()
            ]
        elif key == "changes" and isinstance(value, list):  # a replaced file's: (what, old, new)
            lines += [f"{what}: {old} → {new}" for what, old, new in value]
        elif key == "values":
            lines += [f"{f}: {_plain(_listed(f, v))}" for f, v in value.items()]
        elif key == "previous_installation_ids" and value == event.details.get("installation_ids"):
            continue  # a reissue's or an update's: the same servers, said once
        elif key in ("installation_ids", "previous_installation_ids"):
            lines.append(format_html("{}: {}", key.replace("_", " "), _servers(event, value)))
        else:
            lines.append(f"{key.replace('_', ' ')}: {_plain(value)}")
    return format_html_join(mark_safe("<br>"), "{}", ((line,) for line in lines)) or "–"


@admin.display(description="member")
def member(membership):
    invited = " (invited: no password yet)" if services.awaits_password(membership.user) else ""
    return _person(membership.user) + invited


@admin.display(description="e-mail address")
def member_email(membership):
    return membership.user.email if membership.user_id else "–"


def _label(obj, name: str) -> str:
    """A model field by its name in words ("maintenance end")."""
    try:
        return str(obj._meta.get_field(name).verbose_name)
    except FieldDoesNotExist:
        return name.replace("_", " ")


def _shown(value):
    """A related object by its name; a many-to-many field's (a list of them) by their names."""
    if isinstance(value, list) and all(isinstance(v, Model) for v in value):
        return sorted(str(v) for v in value)
    return str(value) if isinstance(value, Model) else value


def _json_value(value):
    """Dates as ISO strings, as the audit's JSON keeps them."""
    return json.loads(json.dumps(value, cls=DjangoJSONEncoder))


def opened(obj: Model, ignored=()) -> str:
    """A digest of a record's values as stored, which its admin page carries; "" for a new one.
    Fields named in ``ignored`` (those its page cannot write) are left out."""
    if obj.pk is None:
        return ""
    # A list is a set here (a license's features, an account's groups by their keys): saved
    # in another order, it is unchanged.
    values = {
        k: sorted(getattr(x, "pk", x) for x in v) if isinstance(v, list) else v
        for k, v in model_to_dict(obj, exclude=ignored).items()
    }
    values = json.dumps(values, cls=DjangoJSONEncoder, sort_keys=True)
    return hashlib.sha256(values.encode()).hexdigest()[:32]


class UnchangedSinceOpened(forms.ModelForm):
    """A page saved over a colleague's change made since it was opened would undo that change
    unseen (the page sends every field as it showed it): the page carries a digest of what it
    showed, and the save is refused when the record changed meanwhile. The record is read
    locked when the page is sent (``AuditedAdmin.get_object``), so that a save under way is
    waited for and then compared against."""

    opened = forms.CharField(widget=forms.HiddenInput, required=False)
    opened_ignores = ()  # fields that change without the page and that it cannot write

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["opened"].initial = opened(self.instance, self.opened_ignores)

    def clean(self):
        cleaned = super().clean()
        # The instance holds the stored values until the form is cleaned.
        if self.data.get(self.add_prefix("opened"), "") != opened(
            self.instance, self.opened_ignores
        ):
            raise forms.ValidationError(
                f"{self.instance} was changed by someone else since this page was opened: "
                "nothing was saved. Open it again to see the change, then make yours.",
                code="changed_meanwhile",
            )
        return cleaned


def saved(obj: Model, form, change: bool, *, secret=()) -> dict | None:
    """What an admin form's save did, for its audit event: a change as each changed field's old
    and new value (None when nothing changed), a new object as every value it was given,
    defaults included, related ones (and many: an account's groups) by name. Fields named in
    ``secret`` are left out."""
    if change:
        # form.initial holds the values from before, in model_to_dict's form.
        fields = [f for f in form.changed_data if f not in secret]
        new = model_to_dict(obj, fields=fields)
        pairs = {f: _json_value([_shown(form.initial.get(f)), _shown(new.get(f))]) for f in fields}
        changed = {_label(obj, f): pair for f, pair in pairs.items() if pair[0] != pair[1]}
        return {"changed": changed} if changed else None
    values = {
        str(f.verbose_name): _shown(
            list(getattr(obj, f.name).all()) if f.many_to_many else getattr(obj, f.name)
        )
        for f in [*obj._meta.concrete_fields, *obj._meta.many_to_many]
        if f.name in form.fields and f.name not in secret
    }
    return {"values": _json_value(values)}


class LockedWhenSaved:
    """An admin whose page is saved reads its record locked (``UnchangedSinceOpened``); its
    deletion is not (it locks what it deletes in its own order: an account's files first)."""

    def changeform_view(self, request, *args, **kwargs):
        request.saves_its_record = True
        return super().changeform_view(request, *args, **kwargs)

    def get_object(self, request, object_id, from_field=None):
        obj = super().get_object(request, object_id, from_field)
        saving = request.method == "POST" and getattr(request, "saves_its_record", False)
        if obj is not None and saving and connection.in_atomic_block:
            # The admin's save runs in one transaction: read again, locked until it ends.
            # (None when deleted meanwhile: the admin's "does not exist" page.)
            obj = self.get_queryset(request).select_for_update(of=("self",)).filter(pk=obj.pk)
            obj = obj.first()
        return obj


class AuditedAdmin(LockedWhenSaved, admin.ModelAdmin):
    """Writes an audit event for every save made in the admin, with what changed; refuses a
    save over a change made since its page was opened (``UnchangedSinceOpened``)."""

    form = UnchangedSinceOpened

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        details = saved(obj, form, change)
        if details is None:
            return  # saved as it was: nothing to record
        if why := (form.cleaned_data.get("reason") or "").strip():
            details["reason"] = why
        services.audit(
            actor=request.user,
            action=f"{obj._meta.model_name}_{'change' if change else 'create'}",
            license=obj if isinstance(obj, License) else None,
            obj=obj,
            ip=client_ip(request),
            details=details,
        )

    def save_formset(self, request, form, formset, change):
        # The rows as they were, read before they are saved (a form's instance holds the new
        # values already): a row given another user records who lost access too.
        rows = [f.instance.pk for f in formset.initial_forms if f.instance.pk is not None]
        before = {o.pk: str(o) for o in formset.model._default_manager.filter(pk__in=rows)}
        super().save_formset(request, form, formset, change)
        changes = {
            "added": [str(o) for o in formset.new_objects],
            "replaced": [
                f"{before[o.pk]} → {o}"
                for o, _ in formset.changed_objects
                if before[o.pk] != str(o)
            ],
            "deleted": [str(o) for o in formset.deleted_objects],
        }
        if any(changes.values()):
            services.audit(
                actor=request.user,
                action=f"{formset.model._meta.model_name}_change",
                license=form.instance if isinstance(form.instance, License) else None,
                obj=form.instance,
                ip=client_ip(request),
                details=changes,
            )


@admin.display(description="state")
def state(activation):
    return "live" if activation.is_live else "revoked"


def server(installation_id: str, role: str):
    """An Installation ID, unbroken, with its role (for two servers) on the same line."""
    return format_html(
        '<span class="nowrap"><span class="installation-id">{}</span>{}</span>',
        installation_id,
        f" ({role})" if role else "",
    )


@admin.display(description="servers")
def servers(activation):
    """Each Installation ID with its role on a line of its own."""
    return format_html_join(
        mark_safe("<br>"), "{}", ((server(i, role),) for i, role in activation.servers)
    )


@admin.display(description="issued")
def issued(activation):
    return format_html(
        '<span class="nowrap">{}</span><br>{}',
        in_utc(activation.issued_at),
        _person(activation.issued_by),
    )


@admin.display(description="state")
def history_state(activation):
    """Live, or when and why it was revoked and what replaced it."""
    if activation.is_live:
        return "live"
    text = format_html(
        'revoked <span class="nowrap">{}</span>: {}',
        in_utc(activation.revoked_at),
        activation.revoked_reason,
    )
    if activation.replaced_by_id:
        url = reverse("admin:licensing_activation_change", args=[activation.replaced_by_id])
        text = format_html(
            '{}<br>replaced by <a href="{}">{}</a>', text, url, activation.replaced_by.serial
        )
    return text


# (label, URL name, permission) of each support action on a live activation.
SUPPORT_ACTIONS = [
    ("Revoke", "admin:licensing_activation_revoke", "licensing.revoke_activation"),
    ("Reissue", "admin:licensing_activation_reissue", "licensing.reissue_activation"),
    (
        "Correct an Installation ID",
        "admin:licensing_activation_correct",
        "licensing.reissue_activation",
    ),
    # The file as it is, for support to send again ("I lost the e-mail"): no new serial.
    ("Download the file", "admin:licensing_activation_file", "licensing.view_activation"),
]


def expired_file(live) -> str:
    """That the live file ``live`` expired (its servers refuse it), or ""."""
    if not live.has_expired:
        return ""
    return f"{live.serial} expired on {expiry_shown(live.expires_at)}: the servers refuse it"


def file_in_use(lic, live):
    """What the live file ``live`` on the servers has the old way (as the customer's page
    lists it) and how a new file gets there, or that it is up to date; that it expired; and
    why its server that may be a mirror is one although it holds licenses of its own (as
    the customer's page says it: services.why_not_redundant)."""
    text = _file_values(lic, live)
    if expired := expired_file(live):
        text = format_html("{}.<br>{}", expired, text)
    if why := services.why_not_redundant(live):
        server = live.mirrored_installation_id or live.installation_id
        text = format_html(
            "{}<br>{} holds licenses of its own but is a mirror; its ThinManager says: “{}”",
            text,
            server,
            why,
        )
    return text


def _file_values(lic, live):
    changes = lic.changes_since(live)
    if not changes:
        return f"{live.serial}: up to date"
    if lic.is_activatable():
        way = format_html(
            '<a href="{}">Reissue it</a>, or the customer gets an updated file from the '
            "license's page.",
            reverse("admin:licensing_activation_reissue", args=[live.pk]),
        )
    else:
        way = (
            f"No new file goes out while the license is {lic.state.lower()}: revoke the file if "
            "the servers must stop using it."
        )
    lines = [(f"{what}: in the file {old}; now {new}",) for what, old, new in changes]
    return format_html(
        "{} still has the old values:<br>{}<br>{}",
        live.serial,
        format_html_join(mark_safe("<br>"), "{}", lines),
        way,
    )


def support_actions(activation, user) -> list[tuple[str, str]]:
    """(URL, label) of the actions this user may take on the activation: none once revoked;
    only Revoke while its license is suspended or expired (no new file goes out then)."""
    return [
        (reverse(name, args=[activation.pk]), label)
        for label, name, permission in SUPPORT_ACTIONS
        if activation.pk  # not a blank row of a page sent back with errors
        and activation.is_live
        and user.has_perm(permission)
        and (name.endswith("_revoke") or activation.license.is_activatable())
    ]


SEARCH_WORDS = 20  # in one search of support's lists


class CanonicalSearch:
    """People paste Installation IDs and license numbers in any form: the term, and each of its
    words, is searched in each of its forms (licensing.search.search_forms). As Django's search,
    each word (a quoted phrase as one) is in one of the search fields.

    ``found_by_file``: the relation (``license``) that finds a record by the licenses with a
    file (live or revoked) whose Installation ID or serial, read from a server's Licensing
    window, holds a word of the term: each word is found in the fields or in the files (a
    word too short to be a part of one, in the fields alone: licensing.search.may_be_in_a_file).

    A record's own fields are searched in its row; what a relation leads to (its license, an
    organization's members and licenses, an e-mail's licenses, the files) in a search of its
    own table, never a join: a join repeats a record once per file, member or license it has
    (a large customer's members times licenses at every search, and Django's DISTINCT over
    every column to list it once). On PostgreSQL each of these reads an index
    (licensing/migrations/0021)."""

    found_by_file = None

    def get_search_results(self, request, queryset, search_term):
        if len(list(smart_split(search_term))) > SEARCH_WORDS:
            # A text pasted whole (an e-mail, say): each word is one more condition for the
            # database to plan, and hundreds outlast the statement timeout (a 500).
            if getattr(request.resolver_match, "url_name", "").endswith("_changelist"):
                messages.error(
                    request,
                    f"Search for at most {SEARCH_WORDS} words (a license number, an "
                    "Installation ID, a name or an address): nothing was searched.",
                )
            return queryset.none(), False
        if not search_term.strip():
            return queryset, False
        fields, holding = self.get_search_fields(request), {}

        def held(form: str) -> Q:  # each form searched once, however often it comes
            if form not in holding:
                holding[form] = _holding(self.model, fields, form)
                if self.found_by_file and may_be_in_a_file(form):
                    files = Activation.objects.holding(form).values("license_id")
                    licenses = License.objects.filter(pk__in=files)
                    holding[form] |= _pointing_to(self.model, self.found_by_file, licenses)
            return holding[form]

        # The term's words as typed, each in one of its forms; or, read whole, an ID typed
        # with spaces between its groups.
        words = _words(search_term)
        readings = [[search_forms(word) for word in words]]
        if len(words) > 1 and (whole := canonical(bare(without_roles(search_term)))):
            readings.append([[whole]])
        found = Q.create(
            [
                Q.create([Q.create([held(f) for f in forms], connector=Q.OR) for forms in reading])
                for reading in readings
            ],
            connector=Q.OR,
        )
        found = queryset.filter(found)
        listing = getattr(request.resolver_match, "url_name", "").endswith("_changelist")
        typo = listing and typo_in(search_term)
        if typo and not found.exists():
            # Read out or typed with one character wrong: say so, not only "0 results", and
            # show what the ID or number one character different finds (on the phone).
            said = f"Nothing found for {search_term.strip()}. {typo}"
            # Searched for as typed only when a file or a license holds one (a few dozen
            # candidates, seldom more than one on file): each would be a whole search.
            if meant := meant_on_file(request, search_term):
                forms = [f for candidate in meant for f in search_forms(candidate)]
                near = queryset.filter(Q.create([held(f) for f in forms], connector=Q.OR))
                if near.exists():
                    found = near
                    said += f" Shown: what one character different finds: {', '.join(meant)}."
            messages.warning(request, said)
        return found, False  # no join: each record once


def meant_on_file(request, term: str) -> list[str]:
    """The Installation IDs and license numbers one character different from ``term`` (a
    typo: licensing.search.one_character_off) that a file or a license holds; read once per
    request (the list's search and its columns ask)."""
    known = request.__dict__.setdefault("_meant_on_file", {})
    if term not in known:
        known[term] = _on_file(one_character_off(term))
    return known[term]


def _on_file(candidates: list[str]) -> list[str]:
    """Those of ``candidates`` (Installation IDs, license numbers) that a file or a license
    holds, in one statement each."""
    ids = [c for c in candidates if not c.startswith("TM-")]
    numbers = [c for c in candidates if c.startswith("TM-")]
    held = set(License.objects.filter(number__in=numbers).values_list("number", flat=True))
    if ids:
        files = Activation.objects.filter(
            Q(installation_id__in=ids) | Q(mirrored_installation_id__in=ids)
        ).values_list("installation_id", "mirrored_installation_id")
        held |= {i for pair in files for i in pair} & set(ids)
    return sorted(held)


def _words(term: str) -> list[str]:
    """The words of a search, as Django's search reads them (a quoted phrase is one), but a
    server's role written beside its ID."""
    words = []
    for word in smart_split(without_roles(term)):
        if word[0] in "\"'" and word[0] == word[-1]:
            word = unescape_string_literal(word)
        words.append(word)
    return words


def _holding(model, fields, word) -> Q:
    """The records whose search fields hold the word: their own in their row, those a
    relation leads to (an event's license, an organization's members) in a search of their
    own table."""
    own, related = [], {}
    for name in fields:
        relation, _, rest = name.partition("__")
        if rest:
            related.setdefault(relation, []).append(rest)
        else:
            own.append(name)
    found = Q.create([(f"{name}__icontains", word) for name in own], connector=Q.OR)
    for relation, names in related.items():
        other = model._meta.get_field(relation).related_model
        found |= _pointing_to(
            model, relation, other._default_manager.filter(_holding(other, names, word))
        )
    return found


def _pointing_to(model, relation: str, records) -> Q:
    """The records of ``model`` whose ``relation`` ("pk": the record itself) leads to one of
    ``records`` (a query of the related model), without a join."""
    if relation == "pk":
        return _among("pk", records.values_list("pk", flat=True))
    field = model._meta.get_field(relation)
    if field.many_to_many:  # the table of links between them (an e-mail's licenses)
        links = field.remote_field.through._default_manager.filter(
            **{f"{field.m2m_reverse_field_name()}__in": records.values("pk")}
        )
        return _among("pk", links.values_list(field.m2m_field_name(), flat=True))
    if field.concrete:  # its own key to them (an event's license)
        return _among(relation, records.values_list("pk", flat=True))
    # Theirs to it (an organization's members, or licenses).
    return _among("pk", records.values_list(field.field.attname, flat=True))


FEW_KEYS = 1000


def _among(lookup: str, keys) -> Q:
    """The records whose ``lookup`` is one of the keys a query gives. Read first: a few (at
    most FEW_KEYS) are given as a list, each found by its index (PostgreSQL tests a list
    given by a hash, but the result of a query inside another key by key: a word in most
    customers' names made it test each file against 38,000 licenses); more, as the query
    itself, which PostgreSQL tests by a hash of its keys, reading the table (a word found in
    most records is found in most of it)."""
    keys = keys.order_by()
    few = list(keys[: FEW_KEYS + 1])
    return Q(**{f"{lookup}__in": few if len(few) <= FEW_KEYS else keys})


class WrongFiltersRefused:
    """What a list's address or a hand-made POST can hold that its queries cannot take is
    refused as wrong, not a 500: a year or month past what a date holds (Django raises a
    ValueError or OverflowError building the query) and a value PostgreSQL refuses (a time
    zone 16 hours off: a DataError) are wrong filters, as any other (the list says so); a
    regular expression (``number__regex=(``) is no filter of the lists (a 400); an action's
    selection that names a record by anything but its id is a bad request."""

    def lookup_allowed(self, lookup, value, request=None):
        if lookup.rsplit("__", 1)[-1] in ("regex", "iregex"):
            return False
        return super().lookup_allowed(lookup, value, request)

    def get_changelist_instance(self, request):
        try:
            return super().get_changelist_instance(request)
        except (OverflowError, ValueError, DataError):
            raise IncorrectLookupParameters from None

    def response_action(self, request, queryset):
        selected = request.POST.getlist(helpers.ACTION_CHECKBOX_NAME)
        if not all(pk.isascii() and pk.isdigit() for pk in selected):
            return HttpResponseBadRequest("The selection names no record.")
        return super().response_action(request, queryset)


class AuditTrailHistory:
    """History opens the audit trail, the customers' activations included, not the admin's
    own log of edits (which knows nothing of them): a license's (also for its activations,
    events and e-mails), else an organization's (also for its events)."""

    def history_view(self, request, object_id, extra_context=None):
        obj = self.get_object(request, object_id)
        if obj is None:
            raise Http404
        if not self.has_view_or_change_permission(request, obj):
            raise PermissionDenied
        url = reverse("admin:licensing_auditevent_changelist")
        lic = obj if isinstance(obj, License) else getattr(obj, "license", None)
        if lic:  # the sidebar then names it
            return redirect(f"{url}?license={lic.pk}")
        organization_id = (
            obj.pk if isinstance(obj, Organization) else getattr(obj, "organization_id", None)
        )
        return redirect(f"{url}?organization={organization_id}" if organization_id else url)


class SupportList(WrongFiltersRefused, AuditTrailHistory, CanonicalSearch):
    """What each of support's lists is: searched in every form an ID or number is pasted in,
    its History the audit trail, and what a hand-made address or POST holds that its queries
    cannot take refused as wrong."""


def action_page(model_admin, request, form, run, *, done: str, template: str, context: dict):
    """The page of one of support's actions: its form, sent to ``run`` (a licensing.services
    call given the cleaned data, which returns what was done or refuses with why); then back
    to ``done`` with that message, or the page again with the refusal beside its field."""
    if request.method == "POST" and form.is_valid():
        try:
            result = run(form.cleaned_data)
        except services.ActivationError as error:
            add_refusal(form, error)
        else:
            model_admin.message_user(request, result, messages.SUCCESS)
            return redirect(done)
    autofocus(form)  # on the field with the error, else the first
    context = {
        **model_admin.admin_site.each_context(request),
        "opts": model_admin.model._meta,
        "form": form,
        "back": done,
        **context,
    }
    return TemplateResponse(request, template, context)
