"""Log-in by username or e-mail address, in any letter case: what a plant engineer remembers."""

from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.db.models import Q


class UsernameOrEmailBackend(ModelBackend):
    """Django's model backend, finding the account by its username or its e-mail address
    regardless of case. Text that fits two accounts (an address two users share) logs in
    neither, unless it is one's exact username."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        if username is None or password is None:
            return None
        users = get_user_model()._default_manager
        text = username.strip()
        found = list(users.filter(Q(username__iexact=text) | Q(email__iexact=text))[:3])
        exact = [user for user in found if user.get_username() == text]
        user = exact[0] if exact else found[0] if len(found) == 1 else None
        if user is None:
            users.model().set_password(password)  # as long as a real check (Django's own guard)
            return None
        if user.check_password(password) and self.user_can_authenticate(user):
            return user
        return None
