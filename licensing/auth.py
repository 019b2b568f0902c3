"""Log-in by username or e-mail address, in any letter case: what a plant engineer remembers."""

from asgiref.sync import sync_to_async
from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.db.models import Q


def find_account(text: str):
    """The account ``text`` names: by its exact username, else by its username or e-mail
    address in any letter case; None when it names none, or two."""
    users = get_user_model()._default_manager
    text = text.strip()
    user = users.filter(username=text).first()
    if user is None:
        found = list(users.filter(Q(username__iexact=text) | Q(email__iexact=text))[:2])
        user = found[0] if len(found) == 1 else None
    return user


def account_key(text: str) -> str:
    """What the log-in limit counts failures against: the account ``text`` names, however it
    is written (username or e-mail address, any letter case), else the text itself."""
    user = find_account(text)
    return f"user:{user.pk}" if user else f"text:{text.strip().lower()}"


class UsernameOrEmailBackend(ModelBackend):
    """Django's model backend, finding the account by its exact username, else by its username
    or e-mail address in any letter case. Text that fits two accounts that way (an address two
    users share, or two usernames differing only in case) logs in neither."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        if username is None or password is None:
            return None
        user = find_account(username)
        if user is None:
            # As long as a real check (Django's own guard against telling accounts apart).
            get_user_model()().set_password(password)
            return None
        if user.check_password(password) and self.user_can_authenticate(user):
            return user
        return None

    async def aauthenticate(self, request, username=None, password=None, **kwargs):
        return await sync_to_async(self.authenticate)(request, username, password, **kwargs)
