"""Organizations and licenses: members, the activation history inline, filters, features."""

from __future__ import annotations

import re
from datetime import time, timedelta

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.widgets import AdminSplitDateTime
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Prefetch, Q
from django.shortcuts import get_object_or_404, redirect
from django.urls import path, reverse
from django.utils import timezone
from django.utils.functional import SimpleLazyObject
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

import tmslicense

from .. import services
from ..models import (
    STATE_RANK,
    Activation,
    AuditEvent,
    License,
    Membership,
    Organization,
    listed_features,
    validate_license_text,
)
from ..throttle import client_ip
from .common import (
    AuditedAdmin,
    AuditTrailHistory,
    CanonicalSearch,
    action,
    action_page,
    actor,
    details,
    file_in_use,
    history_state,
    ip_address,
    issued,
    member,
    member_email,
    object_repr,
    servers,
    support_actions,
)


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ["user"]
    readonly_fields = [member, member_email, "withdraw_link"]

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("user")

    def get_fields(self, request, obj=None):
        self.user = request.user  # who is looking decides which links show
        if self.has_change_permission(request, obj):
            return ["user", member_email, "withdraw_link"]
        return [member, "withdraw_link"]  # support: no link to the user, which it may not open

    @admin.display(description="invitation")
    def withdraw_link(self, membership):
        if not (
            self.user.has_perm("licensing.invite_member")
            and services.awaits_password(membership.user)
        ):
            return "–"
        url = reverse(
            "admin:licensing_organization_withdraw",
            args=[membership.organization_id, membership.pk],
        )
        return format_html(
            '<a class="button support-action" href="{}" aria-label="Withdraw the invitation of '
            '{}">Withdraw</a>',
            url,
            membership.user.email,
        )


INVITE = "Invite a member"


class InviteForm(forms.Form):
    email = forms.EmailField(
        label="E-mail address",
        max_length=254,
        help_text="The member's own address: the link to choose a password goes there, and "
        "it is their user name.",
        widget=forms.EmailInput(attrs={"size": 40, "autocomplete": "off"}),
    )


LIFT_ADDRESS = "Lift an address's pauses"
LIFT_MEMBERS = "Lift the members' pauses"


def _organization(request, pk, permission: str) -> Organization:
    """The organization of one of support's action pages, for a user with the permission."""
    if not request.user.has_perm(f"licensing.{permission}"):
        raise PermissionDenied
    return get_object_or_404(Organization, pk=pk)


UNKNOWN_ADDRESS = "not an address its members used lately"


def _pause(pause, known: set[str]) -> str:
    """A member's pause as support reads it; ``known``: the addresses the organization's
    members used lately (a log-in under a member's name may be tried from anywhere)."""
    where = f"from {pause.address}" if pause.address else "from every address"
    if pause.address and pause.address not in known:
        where += f" ({UNKNOWN_ADDRESS})"
    if pause.shared:
        where += f", for failures across accounts there ({LIFT_ADDRESS})"
    what = services.PAUSED_SCOPES[pause.scope]
    return f"{what} refused {where} for the next {pause.time_left}"


def _refused_now(organization, *, addresses: bool = False) -> list[tuple[str, list[str]]]:
    """What support's lift pages list under "Refused now", each with its details: the members
    refused, with how; or (``addresses``) the addresses its members are refused from for
    failures across accounts, with what."""
    paused = services.paused_members(organization)
    if paused is None:
        return [(f"Not known: {services.CACHE_DOWN}.", [])]
    known = set(services.recent_addresses(organization, count=None))
    if not addresses:
        members = [(f"{name}:", [_pause(p, known) for p in pauses]) for name, pauses in paused]
        return members or [("None of its members is refused now.", [])]
    shared = {}
    for _, pauses in paused:
        for p in pauses:
            if p.shared:
                what = f"{services.PAUSED_SCOPES[p.scope]} for the next {p.time_left}"
                shared.setdefault(p.address, {})[what] = None
    return [
        (address if address in known else f"{address} ({UNKNOWN_ADDRESS})", list(what))
        for address, what in shared.items()
    ] or [("No address is refused now for failures across its members' accounts.", [])]


class AddressForm(forms.Form):
    address = forms.CharField(
        label="IP address",
        max_length=100,
        widget=forms.TextInput(attrs={"size": 40, "autocomplete": "off"}),
    )


@admin.register(Organization)
class OrganizationAdmin(AuditTrailHistory, CanonicalSearch, AuditedAdmin):
    # A caller names the organization, their own e-mail address or user name, a license, or
    # reads a server's Installation ID from its Licensing window.
    search_fields = [
        "name",
        "memberships__user__email",
        "memberships__user__username",
        "licenses__number",
        "licenses__activations__installation_id",
        "licenses__activations__mirrored_installation_id",
    ]
    list_display = ["name", "created_at"]
    readonly_fields = ["created_at"]  # when it was added, not typed
    inlines = [MembershipInline]
    actions = ["lift_pauses"]

    @admin.action(description=LIFT_MEMBERS, permissions=["lift_pauses"])
    def lift_pauses(self, request, queryset):
        for organization in queryset:
            try:
                done = services.lift_pauses(
                    organization=organization, actor=request.user, ip=client_ip(request)
                )
            except services.ActivationError as error:
                self.message_user(request, f"{organization}: {error}", messages.ERROR)
                continue
            self.message_user(request, done, messages.SUCCESS)

    def has_lift_pauses_permission(self, request):
        return request.user.has_perm("licensing.lift_pauses")

    def get_urls(self):
        invite = self.admin_site.admin_view(self.invite_view)
        withdraw = self.admin_site.admin_view(self.withdraw_view)
        lift = self.admin_site.admin_view(self.lift_view)
        lift_address = self.admin_site.admin_view(self.lift_address_view)
        return [
            path("<int:pk>/invite/", invite, name="licensing_organization_invite"),
            path("<int:pk>/lift/", lift, name="licensing_organization_lift"),
            path(
                "<int:pk>/lift-address/", lift_address, name="licensing_organization_lift_address"
            ),
            path(
                "<int:pk>/withdraw/<int:membership_pk>/",
                withdraw,
                name="licensing_organization_withdraw",
            ),
            *super().get_urls(),
        ]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        actions = [
            ("invite", INVITE, "invite_member"),
            ("lift", LIFT_MEMBERS, "lift_pauses"),
            ("lift_address", LIFT_ADDRESS, "lift_pauses"),
        ]
        links = [
            (reverse(f"admin:licensing_organization_{name}", args=[object_id]), label)
            for name, label, permission in actions
            if object_id.isdigit() and request.user.has_perm(f"licensing.{permission}")
        ]
        if object_id.isdigit() and request.user.has_perm("licensing.view_license"):
            url = reverse("admin:licensing_license_changelist")
            links.insert(0, (f"{url}?organization__id__exact={object_id}", "Licenses"))
        extra_context = {**(extra_context or {}), "support_actions": links}
        return super().change_view(request, object_id, form_url, extra_context)

    def invite_view(self, request, pk):
        organization = _organization(request, pk, "invite_member")
        return self._organization_action(
            request,
            organization,
            InviteForm(request.POST if request.method == "POST" else None),
            lambda data: services.invite_member(
                organization=organization,
                email=data["email"],
                actor=request.user,
                ip=client_ip(request),
            ),
            title=INVITE,
            effect=f"A new member of {organization} gets an e-mail with a link to choose a "
            "password; nobody else knows it. They then log in with their e-mail address and "
            "see the organization's licenses; its other members are told. A member who has "
            "not chosen a password yet is sent a link again.",
        )

    def withdraw_view(self, request, pk, membership_pk):
        organization = _organization(request, pk, "invite_member")
        membership = (
            organization.memberships.select_related("user").filter(pk=membership_pk).first()
        )
        # Back after a withdrawal, another tab's, or an account in use: nothing to withdraw.
        try:
            if membership is None:
                raise services.InvitationRefused(services.WITHDRAWN_ALREADY)
            services.check_invitation(membership.user)
        except services.InvitationRefused as error:
            self.message_user(request, error.message, messages.WARNING)
            return redirect("admin:licensing_organization_change", organization.pk)
        return self._organization_action(
            request,
            organization,
            forms.Form(request.POST if request.method == "POST" else None),
            lambda data: services.withdraw_invitation(
                membership=membership, actor=request.user, ip=client_ip(request)
            ),
            title="Withdraw invitation",
            effect=f"The account of {membership.user.email}, invited and not used yet, will "
            "be deleted: its links stop working.",
        )

    def lift_view(self, request, pk):
        organization = _organization(request, pk, "lift_pauses")
        return self._organization_action(
            request,
            organization,
            forms.Form(request.POST if request.method == "POST" else None),
            lambda data: services.lift_pauses(
                organization=organization, actor=request.user, ip=client_ip(request)
            ),
            title=LIFT_MEMBERS,
            effect=f"Each member of {organization} is let log in again, from every address, "
            "and look up license numbers again: their failed log-ins and look-ups are "
            f"forgotten. An address paused across accounts stays paused: {LIFT_ADDRESS}.",
            status=lambda: _refused_now(organization),
        )

    def lift_address_view(self, request, pk):
        organization = _organization(request, pk, "lift_pauses")
        form = AddressForm(request.POST if request.method == "POST" else None)
        recent = services.recent_addresses(organization)
        form.fields["address"].help_text = (
            "The one a paused log-in or look-up names. Its members acted lately from "
            + (", ".join(recent) if recent else "no address known")
            + "."
        )
        return self._organization_action(
            request,
            organization,
            form,
            lambda data: services.lift_address_pauses(
                organization=organization,
                address=data["address"],
                actor=request.user,
                ip=client_ip(request),
            ),
            title=LIFT_ADDRESS,
            effect="Everyone behind this address (a whole plant may share one) is let log in, "
            "look up license numbers and ask for password resets again: the failures counted "
            "for it across accounts are forgotten. A member's own pause is lifted with "
            f"{LIFT_MEMBERS}.",
            status=lambda: _refused_now(organization, addresses=True),
        )

    def _organization_action(self, request, organization, form, run, *, title, effect, status=None):
        """``status``: what the page lists under "Refused now", read only when it is shown
        (not when the action is done and the page left)."""
        return action_page(
            self,
            request,
            form,
            run,
            done=reverse("admin:licensing_organization_change", args=[organization.pk]),
            template="admin/licensing/organization_action.html",
            context={
                "title": title,
                "effect": effect,
                "organization": organization,
                "status": SimpleLazyObject(status) if status else (),
            },
        )

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


class ActivationInline(admin.TabularInline):
    model = Activation
    extra = 0
    can_delete = False
    show_change_link = True
    # Few columns, so that the support actions stay in view on a laptop's screen.
    fields = ["serial", history_state, servers, issued, "actions_links"]
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
        button = '<a class="button support-action" href="{}">{}</a>'
        return format_html_join(mark_safe("<br>"), button, links) or "–"

    def has_add_permission(self, request, obj=None):
        return False


class AuditInline(admin.TabularInline):
    model = AuditEvent
    extra = 0
    can_delete = False
    fields = ["created_at", actor, action, object_repr, details, ip_address]
    readonly_fields = fields
    verbose_name_plural = "history"

    def get_queryset(self, request):
        # Its license names the roles of the Installation IDs in its details.
        return super().get_queryset(request).select_related("license")

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


class StateFilter(admin.SimpleListFilter):
    """What the customer sees: an active license past its expiry is Expired."""

    title = "state"
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return [("active", "Active"), ("suspended", "Suspended"), ("expired", "Expired")]

    def queryset(self, request, queryset):
        known = self.value() in dict(self.lookup_choices)
        return queryset.in_state(self.value()) if known else queryset


@admin.display(description="state", ordering=STATE_RANK)
def state(lic):
    return lic.state


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


class FeatureListField(forms.CharField):
    """Feature names typed as a list ("relevance, multimonitor"), kept as a JSON list of text
    as tmslicense writes them into the file."""

    def prepare_value(self, value):
        return listed_features(value) if isinstance(value, list) else value

    def has_changed(self, initial, data):
        # Shown in another order than stored: saved as it was, that is no change to record.
        try:
            return sorted(initial or []) != sorted(self.to_python(data))
        except ValidationError:
            return True

    def to_python(self, value):
        # Brackets and quotes are separators too: the JSON list the admin used to ask for
        # ('["relevance"]') still means what it did.
        names = [name for name in re.split(r'[\s,\[\]"]+', super().to_python(value)) if name]
        for name in names:
            try:
                validate_license_text(name)
            except ValidationError as error:
                raise ValidationError(f"{name!r}: {error.message}", code=error.code) from None
        twice = sorted({name for name in names if names.count(name) > 1})
        if twice:
            # tmslicense refuses a file that lists a feature twice.
            raise ValidationError(
                "Listed twice: %(names)s. List each feature once.",
                code="duplicate",
                params={"names": ", ".join(twice)},
            )
        return names


class DateAndOptionalTimeWidget(AdminSplitDateTime):
    """Shows a time of 00:00 as an empty box, as it was entered: clearing the date then
    clears the expiry."""

    def decompress(self, value):
        date, clock = super().decompress(value)
        return [date, None if clock == time(0, 0) else clock]


class DateAndOptionalTimeField(forms.SplitDateTimeField):
    """A date, and a time that may be left empty: 00:00, the start of that day."""

    def __init__(self, **kwargs):
        super().__init__(
            require_all_fields=False,
            widget=DateAndOptionalTimeWidget,
            error_messages={"incomplete": "Enter the date too, or leave both empty."},
            **kwargs,
        )
        self.fields[1].required = False
        # The admin's widget shows "Date:" and "Time:" as bare text: name each box.
        date, clock = self.widget.widgets
        date.attrs["aria-label"] = f"{self.label}: date"
        clock.attrs["aria-label"] = f"{self.label}: time (optional)"

    def compress(self, data_list):
        if data_list and data_list[0] and not data_list[1]:
            data_list = [data_list[0], time(0, 0)]
        return super().compress(data_list)


class LicenseForm(forms.ModelForm):
    # Longer than the stored form: a number from an order is pasted in any form (spaces, lower
    # case, no dashes) and stored canonical. Fixed once the license is saved (read-only).
    number = forms.CharField(
        max_length=40,
        initial=tmslicense.new_license_number,
        widget=forms.TextInput(attrs={"size": 24, "class": "monospace"}),
        help_text="A new number is offered; one from an order may be pasted in any form.",
    )
    # At least one: said the same for 0 and -1 (the model's field alone would let the form
    # say "at least 0" first).
    seats = forms.IntegerField(min_value=1)
    features = FeatureListField(
        required=False,
        help_text="Feature names, separated by commas or spaces, e.g. relevance, multimonitor.",
        widget=forms.TextInput(attrs={"size": 60}),
    )
    expires_at = DateAndOptionalTimeField(
        required=False,
        label="Expires at",
        help_text="Empty: never. A date alone expires at 00:00, the start of that day.",
    )
    reason = forms.CharField(
        required=False,
        max_length=300,
        label="Why",
        widget=forms.Textarea(attrs={"rows": 2, "cols": 60}),
        help_text="Kept in the audit trail with the change; needed when the license becomes "
        "suspended, expired or active again.",
    )

    def clean_number(self):
        try:
            return tmslicense.normalize_license_number(self.cleaned_data["number"])
        except tmslicense.InvalidLicenseNumber as error:
            raise forms.ValidationError(error.message, code=error.code) from None

    def clean(self):
        cleaned = super().clean()
        if not self.instance.pk or (cleaned.get("reason") or "").strip():
            return cleaned
        # What customers see (Active, Suspended, Expired) changes by the status or the expiry.
        before = self.instance
        after = License(
            status=cleaned.get("status", before.status),
            expires_at=cleaned.get("expires_at", before.expires_at),
        )
        becomes = after.state
        if becomes == before.state and after.is_expired() and not before.is_expired():
            becomes = "Expired"  # suspended still, and expired once the suspension is lifted
        if becomes != before.state:
            self.add_error(
                "reason",
                f"Say why the license becomes {becomes.lower()} (it is {before.state.lower()}): "
                "the reason is kept in the audit trail.",
            )
        return cleaned


def _suspended(lic: License, live: Activation | None):
    """What a suspension does, and what it does not: the file on the servers works on (a
    license suspended for non-payment does not stop the plant)."""
    text = f"License {lic.number} is suspended: no file is issued or downloaded meanwhile."
    if live is None:
        return text
    expires = live.issued_license.expires_at
    return format_html(
        '{} The file on the servers ({}) keeps working until {}it is revoked: <a href="{}">'
        "Revoke it</a> if the servers must stop using it.",
        text,
        live.serial,
        f"it expires on {expires:%Y-%m-%d} or " if expires else "",
        reverse("admin:licensing_activation_revoke", args=[live.pk]),
    )


def _live(lic: License) -> Activation | None:
    """The license's live activation, read with the admin's queryset of licenses."""
    return lic.live_activations[0] if lic.live_activations else None


@admin.display(description="servers of the live file")
def live_servers(lic):
    """Shows why a search by Installation ID found the license, and whether the file there
    has old values (the license's page says which)."""
    live = _live(lic)
    if live is None:
        return "-"
    if lic.changes_since(live):
        return format_html("{}<br><strong>file out of date</strong>", servers(live))
    return servers(live)


@admin.display(description="license file in use")
def live_file(lic):
    """Whether the file on the servers has the license's values: kept in view after the
    message of the save that changed it."""
    live = _live(lic)
    return "none" if live is None else file_in_use(lic, live)


def _searched_installation_id(request) -> str | None:
    """The Installation ID searched for, in canonical form; None when the search is not one."""
    try:
        return tmslicense.normalize_installation_id(request.GET.get("q", ""))
    except tmslicense.InvalidIdentifier:
        return None


def _where_found(installation_id: str):
    """A column saying which files of each license carry the Installation ID searched for: a
    license found by a revoked file's ID shows that file, which the live one's servers do not."""

    @admin.display(description=f"files with {installation_id}")
    def column(lic):
        lines = []
        for activation in lic.searched_activations:
            role = dict(activation.servers)[installation_id]
            state = (
                "live"
                if activation.is_live
                else f"revoked {timezone.localtime(activation.revoked_at):%Y-%m-%d}"
            )
            lines.append((activation.serial, state, f" as {role}" if role else ""))
        return format_html_join(mark_safe("<br>"), "{} ({}){}", lines) or "-"

    column.__name__ = "files_with_id"  # the column's CSS class
    return column


@admin.register(License)
class LicenseAdmin(AuditTrailHistory, CanonicalSearch, AuditedAdmin):
    form = LicenseForm
    list_display = [
        "number",
        "organization",
        "kind",
        state,
        "seats",
        "maintenance_end",
        live_servers,
    ]
    list_filter = ["kind", StateFilter, MaintenanceFilter, ActivatedFilter]
    search_fields = [
        "number",
        "organization__name",
        "activations__installation_id",
        "activations__mirrored_installation_id",
        "activations__serial",  # as a server's Licensing window shows it
    ]
    autocomplete_fields = ["organization"]
    inlines = [ActivationInline, AuditInline]

    def get_queryset(self, request):
        live = Prefetch("activations", Activation.objects.live(), to_attr="live_activations")
        queryset = super().get_queryset(request).prefetch_related(live)
        searched = _searched_installation_id(request)
        if searched:
            with_id = Activation.objects.filter(
                Q(installation_id=searched) | Q(mirrored_installation_id=searched)
            ).order_by("-issued_at", "-pk")
            queryset = queryset.prefetch_related(
                Prefetch("activations", with_id, to_attr="searched_activations")
            )
        return queryset

    def get_list_display(self, request):
        searched = _searched_installation_id(request)
        shown = super().get_list_display(request)
        return [*shown, _where_found(searched)] if searched else shown

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        # What a file carries reaches the servers only with a new file (the customer's page
        # lists the same differences).
        live = obj.live_activation if change else None
        changes = obj.changes_since(live) if live is not None else []
        if "status" in form.changed_data and obj.status == License.Status.SUSPENDED:
            # Says what becomes of the file in use, old values or not.
            messages.warning(request, _suspended(obj, live))
        elif changes and not obj.is_activatable():
            messages.warning(
                request,
                f"The license file in use ({live.serial}) still has the old values. No new file "
                f"goes out while the license is {obj.state.lower()}: revoke the file if the "
                "servers must stop using it.",
            )
        elif changes:
            url = reverse("admin:licensing_activation_reissue", args=[live.pk])
            messages.warning(
                request,
                format_html(
                    "The license file in use ({}) still has the old values ({}). "
                    '<a href="{}">Reissue it</a> so the servers get the change.',
                    live.serial,
                    ", ".join(f"{what}: {old}" for what, old, _ in changes),
                    url,
                ),
            )
        # Allowed (a license may be entered late), but seldom meant: said at once.
        if "maintenance_end" in form.changed_data and obj.maintenance_end < timezone.localdate():
            messages.warning(request, f"Maintenance for {obj.number} ended already.")
        lifted = "status" in form.changed_data and obj.status == License.Status.ACTIVE
        if lifted and obj.is_expired():
            messages.warning(
                request,
                f"License {obj.number} is active again but expired on {obj.expires_at:%Y-%m-%d}: "
                "customers can neither activate it nor download its file until its expiry is "
                "later.",
            )
        elif "expires_at" in form.changed_data and obj.is_expired():
            messages.warning(
                request,
                f"License {obj.number} has expired already: customers can neither activate it "
                "nor download its file.",
            )

    def get_fields(self, request, obj=None):
        # "Why" goes with a change; a new license's audit event records its values. A license
        # being added has no creation time yet.
        fields = super().get_fields(request, obj)
        return fields if obj else [f for f in fields if f not in ("reason", "created_at")]

    def get_inlines(self, request, obj):
        # A license being added has no files and no history yet.
        return self.inlines if obj else []

    def get_changeform_initial_data(self, request):
        # No edition is taken for granted: "Standard" beside an enterprise kind misled customers.
        return {**super().get_changeform_initial_data(request), "edition": ""}

    def get_readonly_fields(self, request, obj=None):
        # The number and kind of an issued license are part of its files: fixed once saved.
        # Beside them, whether the file in use has the license's values.
        if obj is None:
            return ["created_at"]
        return ["number", "kind", "organization", "created_at", live_file]

    def has_delete_permission(self, request, obj=None):
        return False
