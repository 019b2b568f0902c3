"""Django's own lists of user accounts and groups (superusers only: support has no permission
on them), refusing what a hand-made address or POST holds that their queries cannot take, as
support's lists do."""

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import Group

from .common import WrongFiltersRefused


class AccountAdmin(WrongFiltersRefused, UserAdmin):
    pass


class AccountGroupAdmin(WrongFiltersRefused, GroupAdmin):
    pass


for model, model_admin in ((get_user_model(), AccountAdmin), (Group, AccountGroupAdmin)):
    admin.site.unregister(model)
    admin.site.register(model, model_admin)
