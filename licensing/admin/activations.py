"""Activations and support's actions on them: revoke, reissue, correct an Installation ID."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

import tmslicense

from .. import services
from ..forms import add_refusal, normalized
from ..models import Activation
from ..throttle import client_ip
from ..views import asked_from_elsewhere, license_file_response
from .common import (
    SupportList,
    action_page,
    expired_file,
    file_in_use,
    issued_by,
    revoked_by,
    servers,
    state,
    support_actions,
)


def _old_file(activation) -> str:
    """What becomes of the file an action revokes on its servers."""
    if expired := expired_file(activation):
        return f"{expired} already."
    return OLD_FILE_KEEPS_WORKING


def _also_on_these_servers(activation) -> str:
    """The organization's other licenses on this file's servers: a server replaced needs
    each of its files corrected."""
    numbers = sorted(
        {f.license.number for f in services.files_also_on(activation, activation.installation_ids)}
    )
    if not numbers:
        return ""
    return (
        f" {', '.join(numbers)} {'is' if len(numbers) == 1 else 'are'} on these servers too: "
        "a server replaced needs each of its files corrected."
    )


def _both_servers(activation) -> str:
    """Of a two-server file's revocation: both servers lose it, the one kept too; one server
    replaced (stolen, broken) is a correction."""
    if not activation.mirrored_installation_id or expired_file(activation):
        return ""  # one server, or refused by both already
    return (
        f" Both servers, {activation.installation_id} and "
        f"{activation.mirrored_installation_id}, stop using it once they have the list. To "
        "take it from one server only (stolen, broken, replaced), Correct an Installation ID "
        "instead: the other keeps the license with a new file."
    )


def _loses_full_function(activation) -> str:
    """What support is told before reissuing a file whose license's values would leave a
    fully functional server a mirror (more seats on a mirrored license than its duplicate
    has, say): as that server's ThinManager would say it; "" when nothing is lost."""
    if services.why_not_redundant(activation):
        return ""  # a mirror already
    why = services.why_not_redundant(activation, updated=True)
    if not why:
        return ""
    server = activation.mirrored_installation_id or activation.installation_id
    return (
        f" With the new file, {server} would no longer be fully functional; its ThinManager "
        f"would say: “{why}”"
    )


class LiveFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "live"

    def lookups(self, request, model_admin):
        return [("yes", "Live"), ("no", "Revoked")]

    def queryset(self, request, queryset):
        if self.value() in ("yes", "no"):
            return queryset.filter(revoked_at__isnull=self.value() == "yes")
        return queryset


_ID_INPUT = forms.TextInput(attrs={"size": 32, "class": "monospace", "autocomplete": "off"})


class ActivationActionForm(forms.Form):
    """What an action page asks for: only the given fields, in this order. Each field's
    problem is said beside it at once, before any is sent to licensing.services (which
    checks again, and decides)."""

    installation_id = forms.CharField(
        label="Corrected Installation ID (primary server)", required=False, widget=_ID_INPUT
    )
    mirrored_installation_id = forms.CharField(
        label="Corrected Mirrored Installation ID (secondary server)",
        required=False,
        widget=_ID_INPUT,
    )
    # Marked required unless optional; licensing.services.check_reason says so when it is
    # left empty.
    reason = forms.CharField(
        max_length=300, required=False, widget=forms.Textarea(attrs={"rows": 3, "required": True})
    )

    def __init__(self, *args, activation, fields, reason_for=None, **kwargs):
        """``reason_for``: what the reason is given for ("revocation", "correction"), which
        then needs one; without it the reason is optional."""
        super().__init__(*args, **kwargs)
        self.activation = activation
        self.reason_for = reason_for
        for name in set(self.fields) - set(fields):
            del self.fields[name]
        for name in {"installation_id", "mirrored_installation_id"} & set(self.fields):
            now = getattr(activation, name)
            self.fields[name].help_text = f"Now {now}. Leave it empty to keep it."
        second = self.fields.get("mirrored_installation_id")
        if second is not None and activation.servers[1][1] == "redundant":
            # An enterprise pair's second server is its redundant one, not a mirror.
            second.label = "Corrected Installation ID (redundant server)"
        if "installation_id" in self.fields and "mirrored_installation_id" not in self.fields:
            # One server: its one ID is the one to correct.
            self.fields["installation_id"].label = "Corrected Installation ID"
            self.fields["installation_id"].help_text = f"Now {activation.installation_id}."
        if "reason" in self.fields and reason_for is None:
            self.fields["reason"].widget.attrs.pop("required", None)
            self.fields["reason"].label = "Reason (optional)"

    def clean_installation_id(self):
        return self._corrected_id("installation_id")

    def clean_mirrored_installation_id(self):
        return self._corrected_id("mirrored_installation_id")

    def _corrected_id(self, name: str) -> str:
        value = self.cleaned_data[name]
        return value and normalized(tmslicense.normalize_installation_id, value)

    def clean_reason(self):
        try:
            return services.check_reason(self.cleaned_data["reason"], of=self.reason_for)
        except services.ActivationError as error:
            raise forms.ValidationError(error.message, code="reason") from None

    def clean(self):
        """A correction's IDs as the new file is to hold them (an ID left empty is kept),
        checked together once each is well formed: asked for when none is given."""
        cleaned = super().clean()
        names = [n for n in ("installation_id", "mirrored_installation_id") if n in self.fields]
        if not names or any(self.has_error(name) for name in names):
            return cleaned
        if not any(cleaned[name] for name in names):
            # Beside the one field of a one-server file; above both of a pair's.
            self.add_error(
                names[0] if len(names) == 1 else None,
                forms.ValidationError(
                    "Enter the corrected ID: the one that was mistyped.", code="required"
                ),
            )
            return cleaned
        for name in names:
            cleaned[name] = cleaned[name] or getattr(self.activation, name)
        try:
            services.corrected_installation_ids(
                self.activation,
                self.activation.license,
                cleaned["installation_id"],
                cleaned.get("mirrored_installation_id", ""),
            )
        except services.ActivationError as error:
            add_refusal(self, error)
        return cleaned


# A license file is verified offline on the ThinManager Server, so revoking it in the portal
# does not stop it there by itself.
OLD_FILE_KEEPS_WORKING = (
    "A revoked file keeps working on a ThinManager Server until the file is removed from it or "
    "the server gets this site's list of revoked files (/revoked.txt), which the customer's "
    "ThinManager administrator adds to it."
)


def _nobody_told(activation) -> str:
    """Said when the organization's members could not be e-mailed: none has a confirmed
    address (licensing.services.contacts)."""
    if services.contacts(activation.license.organization_id):
        return ""
    return " No member has a confirmed e-mail address: nobody was told by e-mail."


@admin.display(description="compared with its license")
def up_to_date(activation):
    """Whether a live file has its license's values (the license's page says so too)."""
    return file_in_use(activation.license, activation) if activation.is_live else "-"


@admin.register(Activation)
class ActivationAdmin(SupportList, admin.ModelAdmin):
    # The servers a column, each ID with its role: two columns of whole IDs overflow a laptop's
    # screen, and "Mirrored Installation ID" named an enterprise license's redundant server.
    list_display = ["serial", "license", servers, "issued_at", state]
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
        # Not its file: that is handed out by file_view only (a live file of an activatable
        # license, recorded), as on the customer's page.
        up_to_date,
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
            path("<int:pk>/file/", view(self.file_view), name="licensing_activation_file"),
            *super().get_urls(),
        ]

    def file_view(self, request, pk):
        """The live file to download, as the customer downloads it (a suspended or expired
        license's is not handed out, as on the customer's page)."""
        if not request.user.has_perm("licensing.view_activation"):
            raise PermissionDenied
        activation = get_object_or_404(Activation.objects.select_related("license"), pk=pk)
        lic = activation.license
        if asked_from_elsewhere(request):
            return redirect("admin:licensing_license_change", activation.license_id)
        if not (activation.is_live and lic.is_activatable()):
            why = f"its license is {lic.state.lower()}" if activation.is_live else "it is revoked"
            self.message_user(
                request, f"The file {activation.serial} is not handed out: {why}.", messages.WARNING
            )
            return redirect("admin:licensing_license_change", activation.license_id)
        return license_file_response(request, activation)

    def _action_page(
        self, request, pk, *, permission, title, effect, fields, run, reason_for=None, issues=False
    ):
        if not request.user.has_perm(f"licensing.{permission}"):
            raise PermissionDenied
        activation = get_object_or_404(
            Activation.objects.select_related("license__organization", "replaced_by"), pk=pk
        )
        done = reverse("admin:licensing_license_change", args=[activation.license_id])
        if request.method == "GET" and activation.is_live and issues:
            # An action that issues a file, opened from an old page or a bookmark while the
            # license is suspended or expired: why not, before any form is filled in. (A
            # revoked activation's page says so itself.)
            try:
                services.check_reissuable(activation, activation.license)
            except services.ActivationError as error:
                self.message_user(request, error.message, messages.WARNING)
                return redirect(done)
        if not activation.license.needs_mirrored_installation_id:
            fields = [name for name in fields if name != "mirrored_installation_id"]
        form = ActivationActionForm(
            request.POST if request.method == "POST" else None,
            activation=activation,
            fields=fields,
            reason_for=reason_for,
        )

        def attempt(data):
            try:
                return run(activation, data)
            except services.ActivationError:
                # Revoked meanwhile (a customer's update, another staff member): the page
                # says when, why and by which file, as it does when opened late.
                activation.refresh_from_db()
                raise

        return action_page(
            self,
            request,
            form,
            attempt,
            done=done,
            template="admin/licensing/activation_action.html",
            context={
                "title": title,
                "effect": effect(activation) if callable(effect) else effect,
                "activation": activation,
            },
        )

    def revoke_view(self, request, pk):
        def run(activation, data):
            services.revoke(
                activation=activation,
                reason=data["reason"],
                actor=request.user,
                ip=client_ip(request),
            )
            return f"Activation {activation.serial} revoked.{_nobody_told(activation)}"

        return self._action_page(
            request,
            pk,
            permission="revoke_activation",
            title="Revoke activation",
            effect=lambda activation: (
                (
                    activation.license.kept_off
                    or "The license can be activated again, for any servers."
                )
                + f" {_old_file(activation)} The organization's members are told by e-mail; the "
                "reason stays with support." + _both_servers(activation)
            ),
            fields=["reason"],
            reason_for="revocation",
            run=run,
        )

    def reissue_view(self, request, pk):
        def run(activation, data):
            new = services.reissue(
                activation=activation,
                actor=request.user,
                ip=client_ip(request),
                reason=data["reason"],
            )
            return f"Reissued as {new.serial}; {activation.serial} is revoked.{_nobody_told(new)}"

        return self._action_page(
            request,
            pk,
            permission="reissue_activation",
            title="Reissue license file",
            effect=lambda activation: (
                "A new file with a new serial and the license's current values, for the same "
                "servers, replaces this one. It is e-mailed to the organization's members; "
                f"importing it on a server replaces the old file there. {_old_file(activation)}"
                + _loses_full_function(activation)
            ),
            fields=["reason"],
            run=run,
            issues=True,
        )

    def correct_view(self, request, pk):
        def run(activation, data):
            new = services.reissue(
                activation=activation,
                installation_id=data["installation_id"],
                mirrored_installation_id=data.get("mirrored_installation_id", ""),
                reason=data["reason"],
                actor=request.user,
                ip=client_ip(request),
            )
            replaced = set(activation.installation_ids) - set(new.installation_ids)
            others = [
                format_html(
                    ' {} is on {} too: <a href="{}">correct it</a> as well.',
                    other.license.number,
                    " and ".join(sorted(replaced & set(other.installation_ids))),
                    reverse("admin:licensing_activation_correct", args=[other.pk]),
                )
                for other in services.files_also_on(activation, replaced)
            ]
            return format_html(
                "Corrected and reissued as {}; {} is revoked.{}{}",
                new.serial,
                activation.serial,
                _nobody_told(new),
                format_html_join("", "{}", ((other,) for other in others)),
            )

        return self._action_page(
            request,
            pk,
            permission="reissue_activation",
            title="Correct an Installation ID",
            effect=lambda activation: (
                "Fill in only the ID that was mistyped, or of the server replaced. A new file "
                "with the corrected ID, with a new serial, replaces this one and is e-mailed to "
                f"the organization's members. {_old_file(activation)}"
                + _also_on_these_servers(activation)
            ),
            fields=["installation_id", "mirrored_installation_id", "reason"],
            reason_for="correction",
            run=run,
            issues=True,
        )

    @admin.action(
        description="Revoke the selected activation (one, with a reason)", permissions=["revoke"]
    )
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
