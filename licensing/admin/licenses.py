"""Licenses: the activation history inline, filters, features, expiry and suspension."""

from __future__ import annotations

from datetime import timedelta

from django.contrib import admin, messages
from django.contrib.admin.templatetags.admin_urls import add_preserved_filters
from django.db.models import Exists, OuterRef, Prefetch, Q
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

import tmslicense

from ..models import STATE_RANK, Activation, AuditEvent, License, expiry_shown, in_utc
from ..search import bare, without_roles
from .common import (
    AuditedAdmin,
    SupportList,
    action,
    actor,
    details,
    expired_file,
    file_in_use,
    history_state,
    ip_address,
    issued,
    meant_on_file,
    object_repr,
    servers,
    support_actions,
)
from .license_form import LicenseForm
from .records import OrganizationFilter


class LatestInline(admin.TabularInline):
    """The latest ``shown`` records of a license (newest first), titled with how many there are
    in all and where they all are: a license changed for years stays quick to open."""

    shown = 20
    where_all = ""

    def get_formset(self, request, obj=None, **kwargs):
        formset = super().get_formset(request, obj, **kwargs)
        total = self.get_queryset(request).filter(license=obj).count() if obj else 0
        title = type(self).verbose_name_plural or self.model._meta.verbose_name_plural
        if total > self.shown:
            title = f"{title}: the latest {self.shown} of {total} ({self.where_all})"
        self.verbose_name_plural = title
        shown = self.shown

        class Latest(formset):
            # Read-only: never bound to what a page sends back, but shown as the records are
            # now (a page sent back with an error would otherwise show the rows it was opened
            # with, under the headings of today's: a colleague's new file without its row).
            def __init__(self, data=None, files=None, *args, **kwargs):
                super().__init__(None, None, *args, **kwargs)

            def is_valid(self):
                return True  # nothing in it is edited or saved

            def save(self, commit=True):
                self.new_objects, self.changed_objects, self.deleted_objects = [], [], []
                return []

            def get_queryset(self):
                # One slice, read once (its forms are each taken from it).
                if not hasattr(self, "_latest"):
                    self._latest = super().get_queryset()[:shown]
                return self._latest

        return Latest


class ActivationInline(LatestInline):
    model = Activation
    where_all = "all in Activations, searched by the license number"
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


class AuditInline(LatestInline):
    model = AuditEvent
    where_all = "all in History"
    extra = 0
    can_delete = False
    fields = ["created_at", actor, action, object_repr, details, ip_address]
    readonly_fields = fields
    verbose_name_plural = "history"

    def get_queryset(self, request):
        # Its license names the roles of the Installation IDs in its details. Downloads, which
        # change nothing and come often, are in History and the audit trail, not here.
        return (
            super().get_queryset(request).exclude(action="file_download").select_related("license")
        )

    def has_add_permission(self, request, obj=None):
        return False


class ActivatedFilter(admin.SimpleListFilter):
    title = "activation"
    parameter_name = "activated"

    def lookups(self, request, model_admin):
        return [("yes", "Activated"), ("no", "Not activated")]

    def queryset(self, request, queryset):
        # Looked up in the index of live files, one per license.
        live = Exists(Activation.objects.live().filter(license=OuterRef("pk")))
        if self.value() == "yes":
            return queryset.filter(live)
        if self.value() == "no":
            return queryset.filter(~live)
        return queryset


class PairFilter(admin.SimpleListFilter):
    """Two-server licenses live on a server that another live two-server file pairs with a
    third server, or on the same pair the other way round (issued before activation refused
    them; any customer's): from tmslicense 1.7.0 a server there may lose the ThinManager
    interface, or both. Support corrects one of the files (Correct) or revokes it."""

    title = "pair"
    parameter_name = "pair"

    def lookups(self, request, model_admin):
        return [("conflict", "Another pair shares a server")]

    def queryset(self, request, queryset):
        if self.value() != "conflict":
            return queryset
        primary, secondary = OuterRef("installation_id"), OuterRef("mirrored_installation_id")
        sharing = (
            Activation.objects.live()
            .exclude(mirrored_installation_id="")
            .exclude(license=OuterRef("license"))
            .filter(
                Q(installation_id=primary)
                | Q(installation_id=secondary)
                | Q(mirrored_installation_id=primary)
                | Q(mirrored_installation_id=secondary)
            )
            .exclude(installation_id=primary, mirrored_installation_id=secondary)
        )
        conflict = (
            Activation.objects.live()
            .exclude(mirrored_installation_id="")
            .filter(license=OuterRef("pk"))
            .filter(Exists(sharing))
        )
        return queryset.filter(Exists(conflict))


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


def _suspended(lic: License, live: Activation | None):
    """What a suspension does, and what it does not: the file on the servers works on (a
    license suspended for non-payment does not stop the plant)."""
    text = f"License {lic.number} is suspended: no file is issued or downloaded meanwhile."
    if live is None:
        return text
    if expired := expired_file(live):
        return f"{text} The file on the servers: {expired} already."
    expires = live.expires_at  # the file's
    return format_html(
        '{} The file on the servers ({}) keeps working until {}it is revoked: <a href="{}">'
        "Revoke it</a> if the servers must stop using it.",
        text,
        live.serial,
        f"it expires on {expiry_shown(expires)} or " if expires else "",
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
    message of the save that changed it. The license as saved: a page sent back refused (a
    suspension without its reason) holds the values typed, none of which took effect."""
    live = _live(lic)
    return "none" if live is None else file_in_use(License.objects.get(pk=lic.pk), live)


def _searched_installation_id(request) -> str | None:
    """The Installation ID searched for, in canonical form; one read out with a character
    wrong, the one on file it was meant as (the search shows what that finds); None when the
    search is not one."""
    term = request.GET.get("q", "")
    try:  # as the search reads it: copied with the punctuation around it, or its role
        return tmslicense.normalize_installation_id(bare(without_roles(term)))
    except tmslicense.InvalidIdentifier:
        meant = [m for m in meant_on_file(request, term) if not m.startswith("TM-")]
        return meant[0] if len(meant) == 1 else None


def _where_found(installation_id: str, link):
    """The number column of a list searched by an Installation ID: each license's number (a
    link: ``link(lic)``) with, under it, which of its files carry the ID (a license found by a
    revoked file's ID shows that file, which the live one's servers do not). In the number's
    place, so that every column keeps its own (a sort is kept as a column's place)."""

    @admin.display(description="number", ordering="number")
    def number(lic):
        lines = []
        for activation in lic.searched_activations:
            role = dict(activation.servers)[installation_id]
            state = "live" if activation.is_live else f"revoked {in_utc(activation.revoked_at)}"
            lines.append((activation.serial, state, f" as {role}" if role else ""))
        return format_html(
            '<a class="nowrap" href="{}">{}</a><div class="files-with">files with {}:<br>{}</div>',
            link(lic),
            lic.number,
            installation_id,
            format_html_join(mark_safe("<br>"), "{} ({}){}", lines) or "-",
        )

    return number


@admin.register(License)
class LicenseAdmin(SupportList, AuditedAdmin):
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
    list_filter = [
        OrganizationFilter,
        "kind",
        StateFilter,
        MaintenanceFilter,
        ActivatedFilter,
        PairFilter,
    ]
    search_fields = ["number", "organization__name"]
    found_by_file = "pk"  # an Installation ID or a serial, as a server's window shows it
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
        if not searched:
            return shown
        if hasattr(request, "_found_by_id"):  # one column for the request: the sort finds it
            return request._found_by_id
        # Why each license was found (each file with the ID, in which role), with its number:
        # on a laptop's screen beside the filters (a column of its own was off it).
        context = {"preserved_filters": self.get_preserved_filters(request), "opts": self.opts}

        def link(lic):
            url = reverse("admin:licensing_license_change", args=[lic.pk])
            return add_preserved_filters(context, url)

        request._found_by_id = [_where_found(searched, link), *shown[1:]]
        return request._found_by_id

    def get_list_display_links(self, request, list_display):
        # Searched by an Installation ID, the number column links its number alone.
        if _searched_installation_id(request):
            return None
        return super().get_list_display_links(request, list_display)

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
            expired = expired_file(live)
            messages.warning(
                request,
                format_html(
                    "The license file in use ({}) still has the old values ({}).{} "
                    '<a href="{}">Reissue it</a> so the servers get the change.',
                    live.serial,
                    ", ".join(f"{what}: {old}" for what, old, _ in changes),
                    f" {expired} now." if expired else "",
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
                f"License {obj.number} is active again but expired on {obj.expiry_shown}: "
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
