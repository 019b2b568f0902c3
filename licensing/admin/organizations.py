"""Organizations: their members, invitations, and the pauses of the guessing limits."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect
from django.urls import path, reverse
from django.utils.functional import SimpleLazyObject
from django.utils.html import format_html

from .. import services
from ..models import Activation, Membership, Organization
from ..throttle import client_ip
from .common import (
    AuditedAdmin,
    SupportList,
    action_page,
    member,
    member_email,
)


class MembershipForm(forms.ModelForm):
    def clean_user(self):
        user = self.cleaned_data["user"]
        if user.is_staff and "user" in self.changed_data:  # not a member made staff since
            why = services.STAFF_ARE_NO_MEMBERS
            raise forms.ValidationError(f"{user.username} is staff: {why}.")
        theirs = Membership.objects.filter(user=user).exclude(pk=self.instance.pk)
        if other := theirs.select_related("organization").first():
            # Said instead of "Membership with this User already exists."
            raise forms.ValidationError(
                f"{user.username} is a member of {other.organization} already: an account "
                "belongs to one organization. To move them, remove them there first (save "
                "that page), then add them here."
            )
        return user


class MembershipInline(admin.TabularInline):
    model = Membership
    form = MembershipForm
    extra = 0
    autocomplete_fields = ["user"]
    readonly_fields = [member, member_email, "access"]

    def get_queryset(self, request):
        # Each row is shown by its user and organization (Membership.__str__).
        return super().get_queryset(request).select_related("user", "organization")

    def get_fields(self, request, obj=None):
        self.user = request.user  # who is looking decides which links show
        if self.has_change_permission(request, obj):
            return ["user", member_email, "access"]
        return [member, "access"]  # support: no link to the user, which it may not open

    @admin.display(description="access")
    def access(self, membership):
        """An invitation not used yet is withdrawn; an account in use is deactivated."""
        user = membership.user
        if not user.is_active:
            return "deactivated"
        invited = services.awaits_password(user)
        name, what = ("withdraw", "invitation") if invited else ("deactivate", "account")
        permission = "invite_member" if invited else "deactivate_member"
        label = name.capitalize()
        if not self.user.has_perm(f"licensing.{permission}"):
            return "–"
        url = reverse(
            f"admin:licensing_organization_{name}", args=[membership.organization_id, membership.pk]
        )
        return format_html(
            '<a class="button support-action" href="{}" aria-label="{} the {} of {}">{}</a>',
            url,
            label,
            what,
            user.email,
            label,
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
class OrganizationAdmin(SupportList, AuditedAdmin):
    # A caller names the organization, their own e-mail address or user name, a license, or
    # reads a server's Installation ID from its Licensing window.
    search_fields = [
        "name",
        "memberships__user__email",
        "memberships__user__username",
        "licenses__number",
    ]
    found_by_file = "licenses"
    list_display = ["name", "created_at"]
    readonly_fields = ["created_at"]  # when it was added, not typed
    inlines = [MembershipInline]
    actions = ["lift_pauses"]

    def get_search_results(self, request, queryset, search_term):
        if getattr(request.resolver_match, "url_name", "") == "autocomplete":
            # The license form's Organization field, at each key: by its name alone.
            return queryset.filter(name__icontains=search_term.strip()), False
        return super().get_search_results(request, queryset, search_term)

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

    def has_delete_permission(self, request, obj=None):
        # A customer stays, as its licenses and audit trail do (a deletion would be an
        # unaudited change, and leave its events naming nothing).
        return False

    def has_lift_pauses_permission(self, request):
        return request.user.has_perm("licensing.lift_pauses")

    def get_urls(self):
        invite = self.admin_site.admin_view(self.invite_view)
        withdraw = self.admin_site.admin_view(self.withdraw_view)
        deactivate = self.admin_site.admin_view(self.deactivate_view)
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
            path(
                "<int:pk>/deactivate/<int:membership_pk>/",
                deactivate,
                name="licensing_organization_deactivate",
            ),
            *super().get_urls(),
        ]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        actions = [
            ("invite", INVITE, "invite_member"),
            ("lift", LIFT_MEMBERS, "lift_pauses"),
            ("lift_address", LIFT_ADDRESS, "lift_pauses"),
        ]
        an_id = object_id.isascii() and object_id.isdigit()  # as the pages' routes take ("²" not)
        links = [
            (reverse(f"admin:licensing_organization_{name}", args=[object_id]), label)
            for name, label, permission in actions
            if an_id and request.user.has_perm(f"licensing.{permission}")
        ]
        if an_id and request.user.has_perm("licensing.view_license"):
            url = reverse("admin:licensing_license_changelist")
            links.insert(0, (f"{url}?organization={object_id}", "Licenses"))
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
        def check(user):
            if user is None:
                raise services.InvitationRefused(services.WITHDRAWN_ALREADY)
            services.check_invitation(user)  # not an account in use

        return self._member_action(
            request,
            pk,
            membership_pk,
            "invite_member",
            check,
            services.withdraw_invitation,
            title="Withdraw invitation",
            effect=lambda user, organization: (
                f"The account of {user.email}, invited and not used yet, will be deleted: its "
                "links stop working. The members told of the invitation are told of its "
                "withdrawal."
            ),
        )

    def deactivate_view(self, request, pk, membership_pk):
        def check(user):
            if user is None or not user.is_active:
                raise services.InvitationRefused(services.DEACTIVATED_ALREADY)

        return self._member_action(
            request,
            pk,
            membership_pk,
            "deactivate_member",
            check,
            services.deactivate_member,
            title="Deactivate member",
            effect=lambda user, organization: (
                f"{user.email} will no longer log in, see {organization}'s licenses or get its "
                "e-mails; a session open now ends at its next page. The account is kept, with "
                "its history: an administrator can activate it again."
                + services.nobody_else_told(organization, user)
            ),
        )

    def _member_action(self, request, pk, membership_pk, permission, check, run, *, title, effect):
        """The page of an action on one of the organization's members: back to the
        organization's page, told why, when ``check`` refuses it (Back after it was done,
        another tab's, or a member it is not for)."""
        organization = _organization(request, pk, permission)
        membership = (
            organization.memberships.select_related("user").filter(pk=membership_pk).first()
        )
        try:
            check(membership.user if membership else None)
        except services.InvitationRefused as error:
            self.message_user(request, error.message, messages.WARNING)
            return redirect("admin:licensing_organization_change", organization.pk)
        return self._organization_action(
            request,
            organization,
            forms.Form(request.POST if request.method == "POST" else None),
            lambda data: run(membership=membership, actor=request.user, ip=client_ip(request)),
            title=title,
            effect=effect(membership.user, organization),
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
            # The customer's name is written into every file issued for its licenses: those
            # in use with another name (renamed back, a file already has the new one) and a
            # license that can get a new file now (not suspended or expired).
            live = Activation.objects.live().filter(license__organization=obj)
            stale = [
                a for a in live.select_related("license") if a.issued_license.customer != obj.name
            ]
            reissuable = sum(a.license.is_activatable() for a in stale)
            if reissuable:
                url = reverse("admin:licensing_license_changelist")
                messages.warning(
                    request,
                    format_html(
                        "{} license file(s) in use still name the customer as before. "
                        '<a href="{}?organization={}&amp;activated=yes">Reissue them</a> so '
                        "the servers show the new name.",
                        reissuable,
                        url,
                        obj.pk,
                    ),
                )
            if len(stale) > reissuable:
                messages.warning(
                    request,
                    f"{len(stale) - reissuable} license file(s) in use of suspended or expired "
                    "licenses name the customer as before: no new file goes out for them until "
                    "they are active again.",
                )
