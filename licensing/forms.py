"""Forms of the activation wizard. Field checks come from tmslicense's normalizers; the
licensing rules come from licensing.services, turned into field errors here."""

from __future__ import annotations

import uuid
from urllib.parse import urlsplit

from crispy_forms.helper import FormHelper
from django import forms
from django.conf import settings
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth import get_user_model
from django.contrib.auth.forms import (
    AuthenticationForm,
    PasswordChangeForm,
    PasswordResetForm,
    SetPasswordForm,
)
from django.core.exceptions import NON_FIELD_ERRORS
from django.forms.renderers import DjangoTemplates
from django.template.loader import render_to_string

import tmslicense

from . import auth, outbox, services, throttle
from .auth import address_forms, same_address

ID_WIDGET = forms.TextInput(
    attrs={
        "autocomplete": "off",
        "autocapitalize": "characters",
        "spellcheck": "false",
        "placeholder": "XXXX-XXXX-XXXX-XXXX-XXXX",
        "class": "font-monospace",
    }
)


def normalized(normalize, value):
    """``value`` in the canonical form of a tmslicense normalizer; its refusal as the field's
    error."""
    try:
        return normalize(value)
    except tmslicense.InvalidIdentifier as error:
        raise forms.ValidationError(error.message, code=error.code) from None


FORM_ERRORS_ID = "form-errors"  # the alert with a form's errors of no one field


class ErrorFirstBoundField(forms.BoundField):
    """A field whose error is read out first, then the page's explanations its form names for
    it (``described_by``: field name to element ids), then its help text: a screen reader reads
    a field's descriptions in the order ``aria-describedby`` names them, and Django names the
    help text first (after a refused form, the news is the error)."""

    @property
    def aria_describedby(self):
        ids = super().aria_describedby
        if ids is None:  # set on the widget
            return None
        errors = [id_ for id_ in ids.split() if id_.endswith("_error")]
        help_text = [id_ for id_ in ids.split() if not id_.endswith("_error")]
        if not errors and self.field.widget.attrs.get("autofocus") and self.form.errors:
            # The page opens here after a refusal said elsewhere (a password to type again
            # after the second one did not match; a pause above the form): read out with it.
            errors = [_first_problem_id(self.form)]
        page = getattr(self.form, "described_by", {}).get(self.name, [])
        return " ".join(errors + page + help_text)


def _first_problem_id(form) -> str:
    if NON_FIELD_ERRORS in form.errors:
        return FORM_ERRORS_ID
    return next(f"{form[n].auto_id}_error" for n in form.fields if n in form.errors)


class FormRenderer(DjangoTemplates):
    """The site's form renderer (``FORM_RENDERER``): Django's, with ``ErrorFirstBoundField``
    for every form."""

    bound_field_class = ErrorFirstBoundField


def autofocus(form, name: str | None = None) -> None:
    """The form's page opens on the field ``name``; by default on its first field with an
    error, else its first field (also when the form's own error, said above its fields, is
    its first problem)."""
    if name is None:
        first = next(iter(form.fields), None)
        name = (
            first
            if NON_FIELD_ERRORS in form.errors
            else next((n for n in form.fields if n in form.errors), first)
        )
    for field_name, field in form.fields.items():
        field.widget.attrs.pop("autofocus", None)
        if field_name == name:
            field.widget.attrs["autofocus"] = True


def add_refusal(form, error: services.ActivationError) -> None:
    """A licensing rule's refusal on ``form``: beside its field when the form has it, else
    above its fields."""
    form.add_error(error.field if error.field in form.fields else None, error.message)


class FocusFirstProblem:
    """A form whose page opens on its first field to fill in, and after an error on the first
    field with one (Django's password forms open on another, or none), or on the first
    password field above it: a password is never shown again, so after "the two passwords
    didn't match" every password field is empty, to be typed again from the first."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        autofocus(
            self, next((n for n in self.fields if not self.initial.get(n)), next(iter(self.fields)))
        )

    def full_clean(self):
        super().full_clean()
        if self.errors:
            emptied = (
                n
                for n, field in self.fields.items()
                if n in self.errors or isinstance(field.widget, forms.PasswordInput)
            )
            autofocus(self, next(emptied, None))


class ProblemsBesideThePassword:
    """What is wrong with a new password (too short, too common) is said under the password,
    where it was typed and where the page's focus goes, not under its repetition (Django's)."""

    def validate_password_for_user(self, user, password_field_name=None):
        super().validate_password_for_user(user, "new_password1")


class NewPasswordForm(FocusFirstProblem, ProblemsBesideThePassword, SetPasswordForm):
    """The page of an e-mailed link: a password reset's, or an invitation's (a first one)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["new_password1"].label = "Password"
        self.fields["new_password2"].label = "The same password again"


def paused(refused: throttle.Pause, tries: str, forgot: str) -> forms.ValidationError:
    """The refusal of a password not tried while paused: an address's pause names it and
    support (a new password does not lift it); an account's says ``forgot``."""
    wait = refused.time_left
    if refused.shared:
        return forms.ValidationError(
            f"Too many failed log-ins from your network's address, {refused.address}. For your "
            f"security, log-ins from it are paused: try again in {wait}. If it cannot wait, "
            f"contact support at {settings.SUPPORT_EMAIL} and name that address.",
            code="rate_limited",
        )
    return forms.ValidationError(
        f"Too many failed {tries}. For your security, try again in {wait}. {forgot}",
        code="rate_limited",
    )


class ChangePasswordForm(FocusFirstProblem, ProblemsBesideThePassword, PasswordChangeForm):
    """Its old password is a log-in try, counted and limited as the log-in's are (one pause
    for both): a session left open or stolen gives no way around them to guess it."""

    error_messages = {
        **PasswordChangeForm.error_messages,
        "password_incorrect": "Your current password was entered incorrectly. Please enter it "
        "again.",
    }

    def __init__(self, *args, request, **kwargs):
        super().__init__(*args, **kwargs)
        self.request = request
        # Worded as the page of an e-mailed link words its two (NewPasswordForm).
        self.fields["old_password"].label = "Current password"
        self.fields["new_password1"].label = "New password"
        self.fields["new_password2"].label = "The same new password again"

    def clean_old_password(self):
        refused, counted = throttle.count_try(self.request, "login", self.user.get_username())

        def pause():
            return paused(
                refused,
                "tries of your password",
                "If you forgot it, log out and reset it by e-mail.",
            )

        if refused and not counted:
            raise pause()
        try:
            old_password = super().clean_old_password()  # a wrong one stays counted
        except forms.ValidationError:
            auth.log_wrong_password(self.request, self.user, "Change password's check")
            if refused:  # let past the ceiling (throttle.count_try): said as a refusal
                raise pause() from None
            raise
        throttle.forget(counted)
        return old_password


class _Form(FocusFirstProblem, forms.Form):
    already_activated = False  # refused: the license is live for other servers

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.helper = FormHelper()
        self.helper.form_tag = False

    def refuse(self, error: services.ActivationError) -> None:
        """A licensing rule's refusal, beside its field when this form has it, else above; the
        page opens on that field."""
        self.already_activated = isinstance(error, services.AlreadyActivated)
        add_refusal(self, error)
        autofocus(self)


class LicenseSearchForm(forms.Form):
    """My licenses' search box (its page is not a form page: the focus goes to the box only
    when what was typed is refused)."""

    q = forms.CharField(
        label="Find a license",
        max_length=100,
        required=False,
        widget=forms.TextInput(
            # Not offered to the next person on a shared PC from the browser's form history.
            attrs={
                "type": "search",
                "class": "form-control",
                "spellcheck": "false",
                "autocomplete": "off",
            }
        ),
        help_text="License number, Installation ID or serial, or a part of one.",
        error_messages={
            "max_length": "That is longer than any license number, Installation ID or serial "
            "(at most %(limit_value)d characters)."
        },
    )

    def full_clean(self):
        super().full_clean()
        if self.errors:
            self.fields["q"].widget.attrs["class"] += " is-invalid"
            autofocus(self)


class LicenseStepForm(_Form):
    license_number = forms.CharField(
        label="License Number",
        max_length=40,
        widget=forms.TextInput(
            attrs={
                "autocomplete": "off",
                "autocapitalize": "characters",
                "spellcheck": "false",
                "placeholder": "TM-XXXX-XXXX-XXXX",
                "class": "font-monospace",
            }
        ),
        help_text="As printed on your license certificate.",
    )
    installation_id = forms.CharField(
        label="Installation ID",
        max_length=200,  # an ID pasted with its label and spaces around its dashes
        widget=ID_WIDGET,
        help_text="Shown at the bottom of the Licensing window of the (primary) ThinManager "
        "Server.",
    )

    def __init__(self, *args, request=None, limit_guessing=True, **kwargs):
        """``limit_guessing``: the number was typed in this request. A number found in an
        earlier step and checked again is no guess: it is neither limited nor counted."""
        super().__init__(*args, **kwargs)
        self.request = request
        self.limit_guessing = limit_guessing
        self.license = None

    def clean_license_number(self):
        return normalized(tmslicense.normalize_license_number, self.cleaned_data["license_number"])

    def clean_installation_id(self):
        return normalized(
            tmslicense.normalize_installation_id, self.cleaned_data["installation_id"]
        )

    def clean(self):
        cleaned = super().clean()
        number = cleaned.get("license_number")
        mistyped = self.has_error("installation_id") and not self.has_error(
            "installation_id", "required"
        )
        if not number or mistyped:
            return cleaned  # a typing mistake is said before anything is looked up
        try:
            self.license = services.find_license(user=self.request.user, number=number)
        except services.LicenseNotFound as error:
            # Only a number not found is a guess: counted, then compared with the limit. A
            # number of the organization's own is found even while guesses are paused (it is
            # listed under My licenses anyway): a paused engineer, or a colleague on the same
            # address, can still activate.
            refused = self.limit_guessing and throttle.record(self.request, "lookup")
            if refused:
                address = refused.address if refused.shared else ""
                raise forms.ValidationError(
                    "Too many license numbers were not found"
                    + (f" from your network's address, {address}" if address else "")
                    + ". For your security, look-ups of other numbers are paused: try again "
                    f"in {refused.time_left}. Your organization's licenses "
                    "and their numbers are listed under My licenses, and can be activated "
                    f"meanwhile. If it cannot wait, contact support at {settings.SUPPORT_EMAIL}"
                    + (" and name that address." if address else "."),
                    code="rate_limited",
                ) from None
            self.add_error("license_number", forms.ValidationError(error.message, code="not_found"))
            return cleaned
        try:
            services.check_activatable(self.license)
            if cleaned.get("installation_id"):
                cleaned["live_activation"] = services.check_first_installation_id(
                    self.license, cleaned["installation_id"]
                )
        except services.ActivationError as error:
            self.refuse(error)
            return cleaned
        cleaned["license"] = self.license
        return cleaned


class MirroredStepForm(_Form):
    mirrored_installation_id = forms.CharField(
        label="Mirrored Installation ID",
        max_length=200,  # an ID pasted with its label and spaces around its dashes
        widget=ID_WIDGET,
        help_text="The Installation ID of the secondary ThinManager Server, from its Licensing "
        "window.",
    )

    live_refused = False  # the ID typed refused as the live activation's other secondary

    def __init__(self, *args, license=None, installation_id="", live_activation=None, **kwargs):
        """``live_activation``: the license's, as step 1 found it (None: nothing live)."""
        super().__init__(*args, **kwargs)
        self.license = license
        self.installation_id = installation_id
        self.live_activation = live_activation
        # The page says what the secondary may do, and whether the license is live (its ids).
        self.described_by = {
            "mirrored_installation_id": ["secondary-role"]
            + (["live-activation"] if live_activation else [])
        }

    def clean(self):
        cleaned = super().clean()
        if "mirrored_installation_id" not in cleaned:
            return cleaned
        try:
            ids = services.installation_ids(
                self.license, self.installation_id, cleaned["mirrored_installation_id"]
            )
        except services.ActivationError as error:
            self.refuse(error)
            return cleaned
        try:
            # Live for another secondary? (Step 1 has checked the primary already.)
            services.check_live_activation(self.live_activation, ids)
        except services.ActivationError as error:
            # It says all the note above the field said: said once, beside the field.
            self.live_refused = True
            self.described_by["mirrored_installation_id"].remove("live-activation")
            self.refuse(error)
        else:
            cleaned["mirrored_installation_id"] = ids[1]
        return cleaned


class ThrottledLogin:
    """A log-in form that tries no password while this account, from this address, or this
    address itself has failed too often (the site's and the admin's log-in). The account is
    named by its username or e-mail address (licensing.auth)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["username"].label = "Username or e-mail"

    def full_clean(self):
        super().full_clean()
        if self.errors and self.data.get("username"):
            # Typed again after a failed try: the password, not the name kept in its field,
            # which names the refusal above the form as its description.
            autofocus(self, "password")
            password = self.fields["password"].widget.attrs
            password.update({"aria-invalid": "true", "aria-describedby": FORM_ERRORS_ID})

    def clean(self):
        username = self.cleaned_data.get("username") or ""
        # Counted before the password is tried, so that simultaneous tries cannot all slip
        # under the limit; taken back when it is right. Beyond the limit it is not tried.
        refused, counted = throttle.count_try(self.request, "login", username)

        def pause():
            return paused(refused, "log-ins", "If you forgot your password, reset it by e-mail.")

        if refused and not counted:
            raise pause()
        try:
            cleaned = super().clean()
        except forms.ValidationError as error:
            if error.code != "invalid_login":  # the right password, of an account not let in
                throttle.forget(counted)
                raise
            if refused:  # let past the ceiling (throttle.count_try): said as a refusal
                raise pause() from None
            if "@" in username:
                # An address two accounts share logs in neither (licensing.auth). Said to
                # whoever types an address, shared or not, so that it tells nothing.
                raise forms.ValidationError(
                    f"{error.message} If a colleague has an account with this e-mail address "
                    "too, neither logs in with the address: use your username.",
                    code="invalid_login",
                    params=error.params,
                ) from None
            raise
        throttle.forget(counted)
        return cleaned


class LoginForm(ThrottledLogin, AuthenticationForm):
    error_messages = {
        **AuthenticationForm.error_messages,
        "invalid_login": "Enter a correct username or e-mail address and password. The "
        "password is case-sensitive.",
    }


class AdminLoginForm(ThrottledLogin, AdminAuthenticationForm):
    error_messages = {
        **AdminAuthenticationForm.error_messages,
        "invalid_login": "Enter a correct username or e-mail address and password of a staff "
        "account. The password is case-sensitive.",
    }


class ResetForm(PasswordResetForm):
    """Django's, in the site's words, opening on its one field; its e-mail goes through the
    outbox like every other (sent after the response, and again while the mail server is
    down), its link shown to nobody and erased once sent."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["email"].label = "E-mail address"
        autofocus(self, "email")

    def get_users(self, email):
        """As Django's, active accounts with a password, by their address in any letter case,
        its domain in either form (see auth.address_forms); and a member invited by support
        who has not chosen one yet (none is usable until then): their invitation's link may
        have run out. The link goes to the account's own address."""
        typed = {form.casefold() for form in address_forms(email)}
        for user in get_user_model().objects.filter(same_address(email), is_active=True):
            if not typed & {form.casefold() for form in address_forms(user.email)}:
                continue  # alike only by the database's case rules (Django's check)
            if user.has_usable_password() or (
                hasattr(user, "membership") and services.awaits_password(user)
            ):
                yield user

    def save(self, *args, request, **kwargs):
        """Sends nothing once this e-mail address, or the address asking, had its share of
        requests (refused ones count too): the page says the same either way, so nothing is
        revealed. The accounts are looked up and the e-mail written once the response is
        sent: an address with an account is answered as fast as one without."""
        if not throttle.record(request, "reset", self.cleaned_data["email"]):
            # The link is on the site's address (SITE_URL), as every e-mail's is.
            site = urlsplit(settings.SITE_URL)
            kwargs.update(domain_override=site.netloc, use_https=site.scheme == "https")
            outbox.after_response(
                lambda: super(ResetForm, self).save(*args, request=request, **kwargs),
                "a password reset e-mail (not sent: the customer may ask again)",
            )

    def send_mail(
        self,
        subject_template_name,
        email_template_name,
        context,
        from_email,
        to_email,
        html_email_template_name=None,
    ):
        outbox.queue(
            key=f"password-reset:{context['user'].pk}:{uuid.uuid4()}",  # see withdraw_invitation
            recipients=[to_email],
            subject="".join(render_to_string(subject_template_name, context).splitlines()),
            template=email_template_name,
            context={**context, "valid": services.link_lifetime()},
            secret=True,
        )
