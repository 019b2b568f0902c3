"""Support staff's tools: find a license by number, customer or either Installation ID, see its
history, revoke, reissue and correct. Every action goes through licensing.services (audited)
and is permission-checked."""

from __future__ import annotations

import json
import re
from datetime import timedelta

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.db.models import Q
from django.forms.models import model_to_dict
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join

import tmslicense

from . import outbox, services
from .models import Activation, AuditEvent, License, Membership, Organization, OutboxMessage
from .throttle import client_ip


def _person(user) -> str:
    # As text, never a link: support may not open users, and needs the customers' addresses.
    if user is None:
        return "–"
    return f"{user.username} ({user.email})" if user.email else user.username


@admin.display(description="issued by")
def issued_by(activation):
    return _person(activation.issued_by)


@admin.display(description="revoked by")
def revoked_by(activation):
    return _person(activation.revoked_by)


@admin.display(description="actor")
def actor(event):
    return _person(event.actor)


@admin.display(description="member")
def member(membership):
    return _person(membership.user)


@admin.display(description="e-mail address")
def member_email(membership):
    return membership.user.email if membership.user_id else "–"


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ["user"]
    readonly_fields = [member, member_email]

    def get_fields(self, request, obj=None):
        if self.has_change_permission(request, obj):
            return ["user", member_email]
        return [member]  # support: without the link to the user, which it may not open


def _json_value(value):
    """Dates as ISO strings, as the audit's JSON keeps them."""
    return json.loads(json.dumps(value, cls=DjangoJSONEncoder))


class AuditedAdmin(admin.ModelAdmin):
    """Writes an audit event for every save made in the admin, with what changed."""

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        name = obj._meta.model_name
        # form.initial holds the values from before, in model_to_dict's form (an FK as its pk).
        new = model_to_dict(obj, fields=form.changed_data)
        changed = {f: [form.initial.get(f), new.get(f)] for f in form.changed_data}
        services.audit(
            actor=request.user,
            action=f"{name}_change" if change else f"{name}_create",
            license=obj if isinstance(obj, License) else None,
            obj=obj,
            ip=client_ip(request),
            details={"changed": _json_value(changed)},
        )

    def save_formset(self, request, form, formset, change):
        super().save_formset(request, form, formset, change)
        changes = {
            "added": [str(o) for o in formset.new_objects],
            "changed": [str(o) for o, _ in formset.changed_objects],
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


@admin.register(Organization)
class OrganizationAdmin(AuditedAdmin):
    search_fields = ["name"]
    list_display = ["name", "created_at"]
    inlines = [MembershipInline]

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        if change and "name" in form.changed_data:
            # The customer's name is written into every file issued for its licenses.
            live = Activation.objects.live().filter(license__organization=obj).count()
            if live:
                url = reverse("admin:licensing_license_changelist")
                messages.warning(
                    request,
                    format_html(
                        "{} license file(s) in use still name the customer as before. "
                        '<a href="{}?organization__id__exact={}&amp;activated=yes">Reissue '
                        "them</a> so the servers show the new name.",
                        live,
                        url,
                        obj.pk,
                    ),
                )


@admin.display(description="state")
def state(activation):
    return "live" if activation.is_live else "revoked"


def _unbroken(text):
    return format_html('<span style="white-space: nowrap">{}</span>', text)


@admin.display(description="Installation ID")
def installation_id(activation):
    return _unbroken(activation.installation_id)


@admin.display(description="Mirrored Installation ID")
def mirrored_installation_id(activation):
    return _unbroken(activation.mirrored_installation_id or "–")


# (label, URL name, permission) of each support action on a live activation.
SUPPORT_ACTIONS = [
    ("Revoke", "admin:licensing_activation_revoke", "licensing.revoke_activation"),
    ("Reissue", "admin:licensing_activation_reissue", "licensing.reissue_activation"),
    (
        "Correct an Installation ID",
        "admin:licensing_activation_correct",
        "licensing.reissue_activation",
    ),
]


def support_actions(activation, user) -> list[tuple[str, str]]:
    """(URL, label) of the actions this user may take on the activation (none once revoked)."""
    return [
        (reverse(name, args=[activation.pk]), label)
        for label, name, permission in SUPPORT_ACTIONS
        if activation.is_live and user.has_perm(permission)
    ]


class ActivationInline(admin.TabularInline):
    model = Activation
    extra = 0
    can_delete = False
    show_change_link = True
    fields = [
        "serial",
        state,
        installation_id,
        mirrored_installation_id,
        "issued_at",
        issued_by,
        "revoked_at",
        "revoked_reason",
        "replaced_by",
        "actions_links",
    ]
    readonly_fields = fields

    def get_queryset(self, request):
        rows = super().get_queryset(request)
        return rows.select_related("license", "issued_by", "replaced_by__license")

    def get_formset(self, request, obj=None, **kwargs):
        # The admin makes an inline per request: who is looking decides which links show.
        self.user = request.user
        return super().get_formset(request, obj, **kwargs)

    @admin.display(description="support actions")
    def actions_links(self, activation):
        links = support_actions(activation, self.user)
        return format_html_join(" ", '<a class="button" href="{}">{}</a>', links) or "–"

    def has_add_permission(self, request, obj=None):
        return False


class AuditInline(admin.TabularInline):
    model = AuditEvent
    extra = 0
    can_delete = False
    fields = ["created_at", actor, "action", "object_repr", "details", "ip_address"]
    readonly_fields = fields
    verbose_name_plural = "history"

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("actor")

    def has_add_permission(self, request, obj=None):
        return False


class ActivatedFilter(admin.SimpleListFilter):
    title = "activation"
    parameter_name = "activated"

    def lookups(self, request, model_admin):
        return [("yes", "Activated"), ("no", "Not activated")]

    def queryset(self, request, queryset):
        live = Q(activations__revoked_at__isnull=True) & Q(activations__isnull=False)
        if self.value() == "yes":
            return queryset.filter(live).distinct()
        if self.value() == "no":
            return queryset.exclude(live)
        return queryset


class MaintenanceFilter(admin.SimpleListFilter):
    title = "maintenance end"
    parameter_name = "maintenance"
    WINDOWS = {"30": 30, "90": 90}

    def lookups(self, request, model_admin):
        return [
            ("ended", "Ended"),
            ("30", "Ends within 30 days"),
            ("90", "Ends within 90 days"),
            ("later", "Ends later"),
        ]

    def queryset(self, request, queryset):
        today = timezone.localdate()
        if self.value() == "ended":
            return queryset.filter(maintenance_end__lt=today)
        if self.value() in self.WINDOWS:
            end = today + timedelta(days=self.WINDOWS[self.value()])
            return queryset.filter(maintenance_end__gte=today, maintenance_end__lte=end)
        if self.value() == "later":
            return queryset.filter(
                maintenance_end__gt=today + timedelta(days=max(self.WINDOWS.values()))
            )
        return queryset


_SYMBOLS = re.compile("[0-9A-HJKMNP-TV-Z]{4,}")  # of IDs and license numbers
_FOLD = str.maketrans("OIL", "011")  # read as tmslicense reads them


class CanonicalSearch:
    """People paste Installation IDs and license numbers in any form: search the canonical one.

    The beginning of one typed without dashes (``ykwha8j4``, 4 characters or more) is also
    looked for as stored, with a dash after every 4 characters (``YKWH-A8J4``)."""

    def get_search_results(self, request, queryset, search_term):
        for normalize in (
            tmslicense.normalize_installation_id,
            tmslicense.normalize_license_number,
        ):
            try:
                canonical = normalize(search_term)
            except tmslicense.InvalidIdentifier:
                continue
            return super().get_search_results(request, queryset, canonical)
        found, duplicates = super().get_search_results(request, queryset, search_term)
        symbols = re.sub(r"[\s-]", "", search_term).upper().translate(_FOLD)
        if not _SYMBOLS.fullmatch(symbols):
            return found, duplicates
        grouped = "-".join(symbols[i : i + 4] for i in range(0, len(symbols), 4))
        also, _ = super().get_search_results(request, queryset, grouped)
        return found | also, True


class LiveFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "live"

    def lookups(self, request, model_admin):
        return [("yes", "Live"), ("no", "Revoked")]

    def queryset(self, request, queryset):
        if self.value() in ("yes", "no"):
            return queryset.filter(revoked_at__isnull=self.value() == "yes")
        return queryset


class FeatureListField(forms.CharField):
    """Feature names typed as a list ("relevance, multimonitor"), kept as a JSON list of text
    as tmslicense writes them into the file."""

    def prepare_value(self, value):
        return ", ".join(value) if isinstance(value, list) else value

    def to_python(self, value):
        # Brackets and quotes are separators too: the JSON list the admin used to ask for
        # ('["relevance"]') still means what it did.
        names = [name for name in re.split(r'[\s,\[\]"]+', super().to_python(value)) if name]
        twice = sorted({name for name in names if names.count(name) > 1})
        if twice:
            # tmslicense refuses a file that lists a feature twice.
            raise ValidationError(
                "Listed twice: %(names)s. List each feature once.",
                code="duplicate",
                params={"names": ", ".join(twice)},
            )
        return names


class LicenseForm(forms.ModelForm):
    features = FeatureListField(
        required=False,
        help_text="Feature names, separated by commas or spaces, e.g. relevance, multimonitor.",
        widget=forms.TextInput(attrs={"size": 60}),
    )


@admin.register(License)
class LicenseAdmin(CanonicalSearch, AuditedAdmin):
    form = LicenseForm
    list_display = ["number", "organization", "kind", "status", "seats", "maintenance_end"]
    list_filter = ["kind", "status", MaintenanceFilter, ActivatedFilter]
    search_fields = [
        "number",
        "organization__name",
        "activations__installation_id",
        "activations__mirrored_installation_id",
    ]
    autocomplete_fields = ["organization"]
    inlines = [ActivationInline, AuditInline]

    # Written into every file issued for the license: a change reaches the servers only
    # with a new file.
    FILE_FIELDS = {"product", "edition", "seats", "features", "maintenance_end", "expires_at"}

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        live = obj.live_activation if change and self.FILE_FIELDS & set(form.changed_data) else None
        if live is not None:
            url = reverse("admin:licensing_activation_reissue", args=[live.pk])
            messages.warning(
                request,
                format_html(
                    "The license file in use ({}) still has the old values. "
                    '<a href="{}">Reissue it</a> so the servers get the change.',
                    live.serial,
                    url,
                ),
            )

    def get_readonly_fields(self, request, obj=None):
        # The number and kind of an issued license are part of its files: fixed once saved.
        return ["number", "kind", "organization", "created_at"] if obj else ["created_at"]

    def has_delete_permission(self, request, obj=None):
        return False


# Room for a 24-character ID pasted with spaces around it, in a font that tells 0 from O.
_ID_INPUT = forms.TextInput(
    attrs={"size": 32, "style": "font-family: monospace", "autocomplete": "off"}
)


class ActivationActionForm(forms.Form):
    """What an action page asks for: only the given fields, in this order."""

    installation_id = forms.CharField(
        label="Corrected Installation ID", required=False, widget=_ID_INPUT
    )
    mirrored_installation_id = forms.CharField(
        label="Corrected Mirrored Installation ID", required=False, widget=_ID_INPUT
    )
    reason = forms.CharField(
        max_length=300, required=False, widget=forms.Textarea(attrs={"rows": 3})
    )

    def __init__(self, *args, fields, **kwargs):
        super().__init__(*args, **kwargs)
        for name in set(self.fields) - set(fields):
            del self.fields[name]


# A license file is verified offline on the ThinManager Server, so revoking it in the portal
# does not stop it there by itself.
OLD_FILE_KEEPS_WORKING = (
    "A revoked file keeps working on a ThinManager Server until that server gets the list of "
    "revoked serials (this site's /revoked.txt, kept as revoked.txt in the server's data "
    "folder) or the file is removed from it."
)


@admin.register(Activation)
class ActivationAdmin(CanonicalSearch, admin.ModelAdmin):
    list_display = [
        "serial",
        "license",
        "installation_id",
        "mirrored_installation_id",
        "issued_at",
        state,
    ]
    list_filter = ["license__kind", LiveFilter]
    search_fields = [
        "serial",
        "license__number",
        "installation_id",
        "mirrored_installation_id",
        "license__organization__name",
    ]
    readonly_fields = [
        "license",
        "installation_id",
        "mirrored_installation_id",
        "serial",
        "kid",
        "license_file",
        "issued_at",
        issued_by,
        "revoked_at",
        "revoked_reason",
        revoked_by,
        "replaced_by",
    ]
    fields = readonly_fields
    actions = ["revoke_selected"]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def change_view(self, request, object_id, form_url="", extra_context=None):
        # The actions this user may take, at the top of the page (its object tools).
        activation = self.get_object(request, object_id)
        links = support_actions(activation, request.user) if activation else []
        extra_context = {**(extra_context or {}), "support_actions": links}
        return super().change_view(request, object_id, form_url, extra_context)

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("<int:pk>/revoke/", view(self.revoke_view), name="licensing_activation_revoke"),
            path("<int:pk>/reissue/", view(self.reissue_view), name="licensing_activation_reissue"),
            path("<int:pk>/correct/", view(self.correct_view), name="licensing_activation_correct"),
            *super().get_urls(),
        ]

    def _action_page(self, request, pk, *, permission, title, effect, fields, run):
        if not request.user.has_perm(f"licensing.{permission}"):
            raise PermissionDenied
        activation = get_object_or_404(
            Activation.objects.select_related("license__organization", "replaced_by"), pk=pk
        )
        if not activation.license.needs_mirrored_installation_id:
            fields = [name for name in fields if name != "mirrored_installation_id"]
        form = ActivationActionForm(
            request.POST if request.method == "POST" else None, fields=fields
        )
        if request.method == "POST" and form.is_valid():
            try:
                result = run(activation, form.cleaned_data)
            except services.ActivationError as error:
                form.add_error(error.field if error.field in form.fields else None, error.message)
            else:
                self.message_user(request, result, messages.SUCCESS)
                return redirect("admin:licensing_license_change", activation.license_id)
        context = {
            **self.admin_site.each_context(request),
            "title": title,
            "effect": effect,
            "activation": activation,
            "form": form,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/licensing/activation_action.html", context)

    def revoke_view(self, request, pk):
        def run(activation, data):
            services.revoke(
                activation=activation,
                reason=data["reason"],
                actor=request.user,
                ip=client_ip(request),
            )
            return f"Activation {activation.serial} revoked."

        return self._action_page(
            request,
            pk,
            permission="revoke_activation",
            title="Revoke activation",
            effect="The license can be activated again, for any servers. "
            f"{OLD_FILE_KEEPS_WORKING} The reason stays with support.",
            fields=["reason"],
            run=run,
        )

    def reissue_view(self, request, pk):
        def run(activation, data):
            new = services.reissue(activation=activation, actor=request.user, ip=client_ip(request))
            return f"Reissued as {new.serial}; {activation.serial} is revoked."

        return self._action_page(
            request,
            pk,
            permission="reissue_activation",
            title="Reissue license file",
            effect="A new file with a new serial and the license's current values, for the same "
            "servers, replaces this one. It is e-mailed to the organization's members; importing "
            f"it on a server replaces the old file there. {OLD_FILE_KEEPS_WORKING}",
            fields=[],
            run=run,
        )

    def correct_view(self, request, pk):
        def run(activation, data):
            try:
                new = services.reissue(
                    activation=activation,
                    installation_id=data["installation_id"] or activation.installation_id,
                    mirrored_installation_id=(
                        data.get("mirrored_installation_id") or activation.mirrored_installation_id
                    ),
                    reason=data["reason"],
                    actor=request.user,
                    ip=client_ip(request),
                )
            except services.InvalidInstallationIds as error:
                if error.field == "installation_id" and not data["installation_id"]:
                    # Not about the Installation ID, which was left as it is: about the pair
                    # ("the same as the current ones"), so about the form as a whole.
                    raise services.InvalidInstallationIds(error.message) from None
                raise
            return f"Corrected and reissued as {new.serial}; {activation.serial} is revoked."

        return self._action_page(
            request,
            pk,
            permission="reissue_activation",
            title="Correct an Installation ID",
            effect="Fill in only the ID that was mistyped. A new file for the corrected IDs, "
            "with a new serial, replaces this one and is e-mailed to the organization's members. "
            f"{OLD_FILE_KEEPS_WORKING}",
            fields=["installation_id", "mirrored_installation_id", "reason"],
            run=run,
        )

    @admin.action(description="Revoke selected activations", permissions=["revoke"])
    def revoke_selected(self, request, queryset):
        # Revocation needs a reason, given on each activation's own page.
        ids = list(queryset.filter(revoked_at__isnull=True).values_list("pk", flat=True))
        if len(ids) != 1:
            self.message_user(
                request,
                "The selection holds no live activation: those selected are revoked already."
                if not ids
                else "Revoke one live activation at a time (a reason is needed).",
                messages.WARNING,
            )
            return None
        return redirect("admin:licensing_activation_revoke", ids[0])

    def has_revoke_permission(self, request):
        return request.user.has_perm("licensing.revoke_activation")


@admin.register(AuditEvent)
class AuditEventAdmin(CanonicalSearch, admin.ModelAdmin):
    list_display = ["created_at", "actor", "action", "object_repr", "ip_address"]
    list_filter = ["action"]
    search_fields = [
        "object_repr",
        "license__number",
        "license__organization__name",
        "license__activations__installation_id",
        "license__activations__mirrored_installation_id",
        "actor__username",
    ]
    readonly_fields = [
        "created_at",
        actor,
        "action",
        "license",
        "object_repr",
        "details",
        "ip_address",
    ]
    fields = readonly_fields

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.display(description="recipients")
def recipients(message):
    return ", ".join(message.recipients)


@admin.register(OutboxMessage)
class OutboxMessageAdmin(CanonicalSearch, admin.ModelAdmin):
    list_display = [
        "created_at",
        "subject",
        recipients,
        "status",
        "attempts",
        "sent_at",
        "last_error",
    ]
    list_filter = ["status"]
    search_fields = ["subject", "key", "license__number", "recipients"]
    readonly_fields = [
        "key",
        "license",
        "recipients",
        "subject",
        "body",
        "attachment_name",
        "status",
        "attempts",
        "last_error",
        "created_at",
        "queued_at",
        "next_attempt_at",
        "sent_at",
    ]
    exclude = ["attachment"]
    actions = ["send_again"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False  # a message is what was sent: nothing in it is edited

    def has_delete_permission(self, request, obj=None):
        return False

    def has_send_again_permission(self, request):
        return request.user.has_perm("licensing.change_outboxmessage")

    @admin.action(description="Send the selected messages again", permissions=["send_again"])
    def send_again(self, request, queryset):
        messages_ = list(queryset.exclude(status=OutboxMessage.Status.SENT))
        for message in messages_:
            outbox.retry_now(message)
            services.audit(
                actor=request.user,
                action="outbox_retry",
                license=message.license,
                obj=message,
                ip=client_ip(request),
                details={"key": message.key},
            )
        self.message_user(request, f"{len(messages_)} message(s) queued again.")
