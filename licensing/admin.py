"""Support staff's tools: find a license by number, customer or either Installation ID, see its
history, revoke, reissue and correct. Every action goes through licensing.services (audited)
and is permission-checked."""

from __future__ import annotations

from datetime import timedelta

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html

import tmslicense

from . import outbox, services
from .models import Activation, AuditEvent, License, Membership, Organization, OutboxMessage
from .throttle import client_ip


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ["user"]


class AuditedAdmin(admin.ModelAdmin):
    """Writes an audit event for every save made in the admin, with what changed."""

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        name = obj._meta.model_name
        services.audit(
            actor=request.user,
            action=f"{name}_change" if change else f"{name}_create",
            license=obj if isinstance(obj, License) else None,
            obj=obj,
            ip=client_ip(request),
            details={"changed": form.changed_data},
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


class ActivationInline(admin.TabularInline):
    model = Activation
    extra = 0
    can_delete = False
    show_change_link = True
    fields = [
        "serial",
        "installation_id",
        "mirrored_installation_id",
        "issued_at",
        "issued_by",
        "revoked_at",
        "revoked_reason",
        "replaced_by",
    ]
    readonly_fields = fields

    def get_queryset(self, request):
        rows = super().get_queryset(request)
        return rows.select_related("license", "issued_by", "replaced_by__license")

    def has_add_permission(self, request, obj=None):
        return False


class AuditInline(admin.TabularInline):
    model = AuditEvent
    extra = 0
    can_delete = False
    fields = ["created_at", "actor", "action", "object_repr", "details", "ip_address"]
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


class CanonicalSearch:
    """People paste Installation IDs and license numbers in any form: search the canonical one."""

    def get_search_results(self, request, queryset, search_term):
        for normalize in (
            tmslicense.normalize_installation_id,
            tmslicense.normalize_license_number,
        ):
            try:
                search_term = normalize(search_term)
                break
            except tmslicense.InvalidIdentifier:
                continue
        return super().get_search_results(request, queryset, search_term)


class LiveFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "live"

    def lookups(self, request, model_admin):
        return [("yes", "Live"), ("no", "Revoked")]

    def queryset(self, request, queryset):
        if self.value() in ("yes", "no"):
            return queryset.filter(revoked_at__isnull=self.value() == "yes")
        return queryset


@admin.register(License)
class LicenseAdmin(CanonicalSearch, AuditedAdmin):
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


class ActivationActionForm(forms.Form):
    reason = forms.CharField(
        max_length=300, required=False, widget=forms.Textarea(attrs={"rows": 3})
    )
    installation_id = forms.CharField(label="Corrected Installation ID", required=False)
    mirrored_installation_id = forms.CharField(
        label="Corrected Mirrored Installation ID", required=False
    )


@admin.register(Activation)
class ActivationAdmin(CanonicalSearch, admin.ModelAdmin):
    list_display = [
        "serial",
        "license",
        "installation_id",
        "mirrored_installation_id",
        "issued_at",
        "state",
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
        "issued_by",
        "revoked_at",
        "revoked_reason",
        "revoked_by",
        "replaced_by",
        "actions_links",
    ]
    fields = readonly_fields
    actions = ["revoke_selected"]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    @admin.display(description="state")
    def state(self, obj):
        return "live" if obj.is_live else "revoked"

    @admin.display(description="support actions")
    def actions_links(self, obj):
        if not obj.is_live:
            return "–"
        return format_html(
            '<a class="button" href="{}">Revoke</a> <a class="button" href="{}">Reissue</a> '
            '<a class="button" href="{}">Correct an Installation ID</a>',
            reverse("admin:licensing_activation_revoke", args=[obj.pk]),
            reverse("admin:licensing_activation_reissue", args=[obj.pk]),
            reverse("admin:licensing_activation_correct", args=[obj.pk]),
        )

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
            Activation.objects.select_related("license__organization"), pk=pk
        )
        form = ActivationActionForm(request.POST if request.method == "POST" else None)
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
            "fields": fields,
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
            effect="The license file stops being the current one and the license can be "
            "activated again, for any servers. The reason stays with support.",
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
            "servers, replaces this one. It is e-mailed to the organization's members.",
            fields=[],
            run=run,
        )

    def correct_view(self, request, pk):
        def run(activation, data):
            new = services.reissue(
                activation=activation,
                installation_id=data["installation_id"] or activation.installation_id,
                mirrored_installation_id=(
                    data["mirrored_installation_id"] or activation.mirrored_installation_id
                ),
                reason=data["reason"],
                actor=request.user,
                ip=client_ip(request),
            )
            return f"Corrected and reissued as {new.serial}; {activation.serial} is revoked."

        return self._action_page(
            request,
            pk,
            permission="reissue_activation",
            title="Correct an Installation ID",
            effect="Fill in only the ID that was mistyped. A new file for the corrected IDs, "
            "with a new serial, replaces this one and is e-mailed to the organization's members.",
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
                "Revoke one live activation at a time (a reason is needed).",
                messages.WARNING,
            )
            return None
        return redirect("admin:licensing_activation_revoke", ids[0])

    def has_revoke_permission(self, request):
        return request.user.has_perm("licensing.revoke_activation")


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    list_display = ["created_at", "actor", "action", "object_repr", "ip_address"]
    list_filter = ["action"]
    search_fields = ["object_repr", "license__number", "actor__username"]
    readonly_fields = [
        "created_at",
        "actor",
        "action",
        "license",
        "object_repr",
        "details",
        "ip_address",
    ]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(OutboxMessage)
class OutboxMessageAdmin(admin.ModelAdmin):
    list_display = ["created_at", "subject", "status", "attempts", "sent_at", "last_error"]
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

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.action(description="Send the selected messages again", permissions=["change"])
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
