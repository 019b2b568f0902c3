"""Django's own lists of user accounts and groups (superusers only: support has no permission
on them), refusing what a hand-made address or POST holds that their queries cannot take, as
support's lists do; every change of an account or a group audited, as support's changes are:
an account's e-mail address decides where license files and password-reset links go, a
group what its members may do."""

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.forms import UserChangeForm
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import Http404
from django.shortcuts import redirect

from .. import services
from ..models import Membership
from ..throttle import client_ip
from .common import (
    LockedWhenSaved,
    UnchangedSinceOpened,
    WrongFiltersRefused,
    person_trail,
    saved,
)


class AccountForm(UnchangedSinceOpened, UserChangeForm):
    # A log-in meanwhile changes the account but nothing its page writes (its password is
    # changed on a page of its own).
    opened_ignores = ("password", "last_login")

    def clean_is_staff(self):
        staff = self.cleaned_data["is_staff"]
        if staff and "is_staff" in self.changed_data:
            membership = Membership.objects.filter(user=self.instance).first()
            if membership is not None:  # as the organization's page refuses adding staff
                raise forms.ValidationError(
                    f"{self.instance.username} is a member of {membership.organization}: "
                    f"{services.STAFF_ARE_NO_MEMBERS}. Remove them from it first (its page, "
                    "Members), then make them staff."
                )
        return staff


class AccountAdmin(WrongFiltersRefused, LockedWhenSaved, UserAdmin):
    form = AccountForm
    # Its page carries the digest of what it showed (an account deactivated meanwhile).
    fieldsets = [
        (None, {"fields": [*UserAdmin.fieldsets[0][1]["fields"], "opened"]}),
        *UserAdmin.fieldsets[1:],
    ]
    # Facts, not settings (an edit would also have cut their fractions of a second).
    readonly_fields = ["last_login", "date_joined"]

    def history_view(self, request, object_id, extra_context=None):
        """What the account did, on the audit trail (what was done to it is on its
        organization's), not the admin's own log of edits."""
        account = self.get_object(request, unquote(object_id))
        if account is None:
            raise Http404
        if not self.has_view_or_change_permission(request, account):
            raise PermissionDenied
        return redirect(person_trail(account.pk))

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)  # its groups saved: now compared
        details = saved(form.instance, form, change, secret=("password",))
        if details is not None:
            self._audit(request, form.instance, "change" if change else "create", details)

    @transaction.atomic
    def user_change_password(self, request, id, form_url=""):
        before = self.get_object(request, unquote(id))
        response = super().user_change_password(request, id, form_url)
        after = self.get_object(request, unquote(id))
        if None not in (before, after) and after.password != before.password:  # saved
            what = "password_set" if after.has_usable_password() else "password_off"
            self._audit(request, after, what)
        return response

    # The accounts are locked before the deletion reads what names them (files, events): read
    # unlocked, a record committed meanwhile made the deletion's commit fail (a 500). A file
    # being e-mailed is waited for a few seconds at most: then the page says why, not a 500.
    def delete_view(self, request, object_id, extra_context=None):
        try:
            return super().delete_view(request, object_id, extra_context)
        except services.ActivationError as error:  # rolled back
            self.message_user(request, error.message, messages.ERROR)
            return redirect(request.get_full_path())

    def response_action(self, request, queryset):
        try:
            return super().response_action(request, queryset)
        except services.ActivationError as error:  # "Delete selected", rolled back
            self.message_user(request, error.message, messages.ERROR)
            return redirect(request.get_full_path())

    def delete_model(self, request, obj):  # in the delete page's transaction
        services.lock_accounts_to_delete([obj.pk])
        self._audit(request, obj, "delete")
        super().delete_model(request, obj)

    @transaction.atomic
    def delete_queryset(self, request, queryset):
        # By their keys: a list filtered by group is DISTINCT, which cannot be locked.
        users = services.lock_accounts_to_delete(list(queryset.values_list("pk", flat=True)))
        for user in users:
            self._audit(request, user, "delete")
        super().delete_queryset(
            request, get_user_model().objects.filter(pk__in=[u.pk for u in users])
        )

    @staticmethod
    def _audit(request, user, what: str, details=None) -> None:
        _audit(
            request,
            user,
            f"user_{what}",
            details,
            # On its organization's trail (read before a deletion takes its membership).
            organization_id=Membership.objects.filter(user=user)
            .values_list("organization_id", flat=True)
            .first(),
        )


class AccountGroupAdmin(WrongFiltersRefused, GroupAdmin):
    """A group grants rights (support's are one): its changes, creation and deletion are
    audited, with the permissions before and after."""

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)  # its permissions saved
        details = saved(form.instance, form, change)
        if details is not None:
            _audit(request, form.instance, f"group_{'change' if change else 'create'}", details)

    def delete_model(self, request, obj):
        self._audit_deletion(request, [obj])
        super().delete_model(request, obj)

    @transaction.atomic
    def delete_queryset(self, request, queryset):
        self._audit_deletion(request, queryset)
        super().delete_queryset(request, queryset)

    @staticmethod
    def _audit_deletion(request, groups) -> None:
        for group in groups:
            granted = sorted(str(p) for p in group.permissions.all())
            _audit(request, group, "group_delete", {"permissions": granted})


def _audit(request, obj, action: str, details=None, organization_id=None) -> None:
    services.audit(
        actor=request.user,
        action=action,
        license=None,
        obj=obj,
        ip=client_ip(request),
        details=details,
        organization_id=organization_id,
    )


for model, model_admin in ((get_user_model(), AccountAdmin), (Group, AccountGroupAdmin)):
    admin.site.unregister(model)
    admin.site.register(model, model_admin)
