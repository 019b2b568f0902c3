"""Thin views: read input, call licensing.services, render or redirect."""

from __future__ import annotations

import base64
import csv
import hashlib
import re
from datetime import UTC
from functools import wraps

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.contrib.auth.mixins import LoginRequiredMixin
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import BadRequest, ImproperlyConfigured, PermissionDenied
from django.core.paginator import Paginator
from django.db import IntegrityError, transaction
from django.db.models import Max, Prefetch
from django.http import HttpResponse, HttpResponseServerError
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.views import csrf
from django.views.decorators.http import require_GET
from formtools.wizard.views import SessionWizardView

import tmslicense
from portal.middleware import content_security_policy

from . import auth, services, signing, spreadsheet, throttle
from .forms import (
    ChangePasswordForm,
    LicenseSearchForm,
    LicenseStepForm,
    LoginForm,
    MirroredStepForm,
    NewPasswordForm,
)
from .models import Activation, License, Membership, expiry_shown
from .search import typo_in


def canonical_number(view):
    """A license's address typed otherwise (lower case, dashes left out) leads to the one the
    site spells; a number that is no license number is passed on as it was, to be a 404."""

    @wraps(view)
    def wrapper(request, number):
        try:
            canonical = tmslicense.normalize_license_number(number)
        except tmslicense.InvalidLicenseNumber:
            canonical = number
        if canonical != number:
            return redirect(request.resolver_match.view_name, number=canonical)
        return view(request, number)

    return wrapper


def log_in_to(page):
    """``login_required`` for a download: once logged in, ``page(request, ...)``, the page
    that offers it. (A file sent in answer to the log-in form leaves that form on screen, and
    each Log in pressed there downloads it again.)"""

    def decorator(view):
        @wraps(view)
        def wrapper(request, *args, **kwargs):
            if not request.user.is_authenticated:
                return redirect_to_login(page(request, *args, **kwargs))
            return view(request, *args, **kwargs)

        return wrapper

    return decorator


def _query(request) -> str:
    return f"?{request.GET.urlencode()}" if request.GET else ""


def get_license_for_user(user, number: str) -> License:
    """The organization's license by number, or 404 for anyone else's (or none)."""
    return get_object_or_404(
        License.objects.for_user(user).select_related("organization"), number=number
    )


def home(request):
    return redirect("licensing:license_list" if request.user.is_authenticated else "login")


LICENSES_PER_PAGE = 50


def _found(request):
    """My licenses' search (its form, the term or None when refused) and what it finds: the
    organization's licenses with their live files, in the order of their numbers."""
    search = LicenseSearchForm(request.GET)
    term = search.cleaned_data["q"] if search.is_valid() else None
    found = License.objects.for_user(request.user)
    if term is None:  # refused: what it finds is no answer
        found = found.none()
    elif term:
        found = found.found_by(term)
    found = (
        found.select_related("organization")
        .prefetch_related(
            Prefetch("activations", queryset=Activation.objects.live(), to_attr="live_activations")
        )
        .annotate(last_revoked_at=Max("activations__revoked_at"))
        .order_by("number")  # a query with an aggregate loses the model's ordering
    )
    return search, term, found


def _mark_files_out_of_date(licenses) -> None:
    for lic in licenses:
        # The file in use was issued before support changed the license (no updated file can
        # be had while the license is suspended or expired: its page says why instead).
        lic.file_out_of_date = lic.is_activatable() and any(
            lic.changes_since(live) for live in lic.live_activations
        )
        # What stops first: the license's expiry (no file is issued after it), or its file's
        # (its servers refuse it then), issued before the license was extended; or its file
        # expired already.
        files = [a.expires_at for a in lic.live_activations if a.expires_at]
        ends = [at for at in (lic.expires_at, *files) if at]
        lic.works_until = expiry_shown(min(ends)) if ends else None
        lic.file_expired = min(ends) <= timezone.now() if files else False
        lic.file_in_use = _file_in_use(lic, lic.live_activations)


def _file_in_use(lic: License, live) -> str:
    """Until when the file on a license's servers works, said of a license not active: support
    suspended it, or moved its expiry into the past, after the file was issued ("" when it is
    active, or has no file)."""
    if lic.is_activatable() or not live:
        return ""
    ends = live[0].expires_at
    if ends is None:
        return "The file on your servers does not expire."
    if ends <= timezone.now():
        return f"The file on your servers expired on {expiry_shown(ends)}."
    return f"The file on your servers works until {expiry_shown(ends)}."


@login_required
def license_list(request):
    search, term, found = _found(request)
    page = Paginator(found, LICENSES_PER_PAGE).get_page(request.GET.get("page"))
    _mark_files_out_of_date(page)
    context = {
        "page": page,
        "pages": page.paginator.get_elided_page_range(page.number, on_each_side=2, on_ends=1),
        "search": search,
        "term": term,
        "typo": typo_in(term) if term and not page.paginator.count else None,
        "support_staff": services.is_support_staff(request.user),
    }
    return render(request, "licensing/license_list.html", context)


SPREADSHEET_COLUMNS = [
    "License number",
    "Kind",
    "Status",
    "Product",
    "Edition",
    "Seats",
    "Features",
    "Maintenance end",
    "Expires (UTC)",
    "Installation ID",
    "Mirrored Installation ID",
    "Serial",
    "Issued (UTC)",
    "File out of date",
    # Columns added later come last: a sheet that reads them by position keeps working.
    "File expires (UTC)",
]


def _minute(moment) -> str:
    """A time in a spreadsheet's cell, in UTC as its column's name says ("never": no expiry)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M") if moment else "never"


@log_in_to(lambda request: reverse("licensing:license_list") + _query(request))
@require_GET
def license_export(request):
    """My licenses (all a search found, not only the page shown) as a CSV file: what a plant's
    asset register keeps of each, its servers and current file."""
    search, term, found = _found(request)
    if term is None:
        raise BadRequest(search.errors["q"][0])
    licenses = list(found)
    _mark_files_out_of_date(licenses)
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    day = timezone.now().strftime("%Y-%m-%d")
    response["Content-Disposition"] = f'attachment; filename="licenses-{day}.csv"'
    response.write(spreadsheet.BOM)
    writer = csv.writer(response)
    writer.writerow(SPREADSHEET_COLUMNS)
    for lic in licenses:
        live = lic.live_activations[0] if lic.live_activations else None
        ids = live.installation_ids if live else ()
        writer.writerow(
            spreadsheet.cell(value)
            for value in (
                lic.number,
                lic.get_kind_display(),
                lic.state,
                lic.product,
                lic.edition,
                lic.seats,
                lic.listed_features,
                lic.maintenance_end.isoformat(),
                _minute(lic.expires_at),
                ids[0] if ids else "",
                ids[1] if len(ids) > 1 else "",
                live.serial if live else "",
                _minute(live.issued_at) if live else "",
                "yes" if lic.file_out_of_date else "",
                _minute(live.expires_at) if live else "",
            )
        )
    return response


@login_required
def members(request):
    """Who in the organization sees, activates and downloads its licenses (support adds and
    removes them)."""
    membership = getattr(request.user, "membership", None)
    people = (
        Membership.objects.filter(organization_id=membership.organization_id, user__is_active=True)
        .select_related("user")
        .order_by("user__email", "user__username")
        if membership
        else []
    )
    context = {
        "organization": membership.organization if membership else None,
        "members": [(m.user, services.awaits_password(m.user)) for m in people],
        "support_staff": services.is_support_staff(request.user),
    }
    return render(request, "licensing/members.html", context)


def _refusal(lic: License) -> str:
    """Why the license's file may not be downloaded now ("" when it may)."""
    try:
        services.check_activatable(lic)
    except services.ActivationError as error:
        return error.message
    return ""


@login_required
@canonical_number
def license_detail(request, number):
    lic = get_license_for_user(request.user, number)
    activations = list(lic.activations.select_related("issued_by", "replaced_by", "replaces"))
    for activation in activations:
        activation.issued_by_shown = activation.issued_by_words(request.user)
    live = next((a for a in activations if a.is_live), None)
    refusal = _refusal(lic)
    # No updated file can be had while the license is suspended or expired.
    changes = lic.changes_since(live) if live and not refusal else []
    not_redundant = live and services.why_not_redundant(live)
    return render(
        request,
        "licensing/license_detail.html",
        {
            "license": lic,
            "activations": activations,
            "live": live,
            "refusal": refusal,
            "changes": changes,
            "not_redundant": not_redundant,
            # Said before the click: the updated file would take a server's full function.
            "update_not_redundant": changes
            and not not_redundant
            and services.why_not_redundant(live, updated=True),
            "file_in_use": _file_in_use(lic, [live] if live else []),
            # The license extended after its file expired: the updated file, not that one.
            "file_expired": live
            and not refusal
            and live.has_expired
            and expiry_shown(live.expires_at),
        },
    )


@login_required
@canonical_number
def update_file(request, number):
    """The license changed after its file was issued: a new file, for the same servers. A GET
    (the button's address after a log-in that interrupted it) shows the license's page."""
    lic = get_license_for_user(request.user, number)
    if request.method != "POST":
        return redirect("licensing:license_detail", number=lic.number)
    try:
        new = services.update_file(license=lic, actor=request.user, ip=throttle.client_ip(request))
    except services.ActivationError as error:
        messages.error(request, error.message)
    else:
        messages.success(
            request,
            f"Here is the updated license file of {lic.number}, serial {new.serial}: download it "
            f"and add it on {_servers(new)} in place of the old one, which is revoked.",
        )
    return redirect("licensing:license_detail", number=lic.number)


def _servers(activation: Activation) -> str:
    """Where a file is added, in a message."""
    if activation.mirrored_installation_id:
        return "both ThinManager Servers"
    return "the ThinManager Server"


@log_in_to(lambda request, number: reverse("licensing:license_detail", args=[number]))
@require_GET
@canonical_number
def download(request, number):
    lic = get_license_for_user(request.user, number)
    activation = lic.activations.live().first()
    refused = activation is None or activation.has_expired  # servers refuse an expired one
    if refused or not lic.is_activatable() or asked_from_elsewhere(request):
        # The license's page says why (revoked meanwhile, expired, say), where the button
        # would be, and offers the updated file if there is one.
        return redirect("licensing:license_detail", number=lic.number)
    return license_file_response(request, activation)


def asked_from_elsewhere(request) -> bool:
    """Whether the browser says another page than this site's own asked for this (a link or
    an image there, on another site or on another host or port of this one: "same-site"): a
    file is not downloaded, nor a download recorded, that nobody here chose; the license's
    page offers it. A browser that does not say is let through."""
    return request.headers.get("Sec-Fetch-Site", "none") not in ("same-origin", "none")


def license_file_response(request, activation: Activation) -> HttpResponse:
    """An activation's file as a download named after its license (the customer's, and
    support's to send again), recorded: who had a copy of a file, and when."""
    try:
        services.audit(
            actor=request.user,
            action="file_download",
            license=activation.license,
            obj=activation,
            ip=throttle.client_ip(request),
            details={"serial": activation.serial},
        )
    except IntegrityError:
        if services.account_gone(request.user):  # deleted since the request began
            raise PermissionDenied(
                "Your account no longer exists: nothing was downloaded."
            ) from None
        raise
    response = HttpResponse(activation.license_file, content_type="application/x-tms-license")
    response["Content-Disposition"] = f'attachment; filename="{activation.filename}"'
    response["Cache-Control"] = "no-store"
    return response


class LoginView(auth_views.LoginView):
    """The site's log-in; support staff, who belong to no customer organization, go on to
    the admin."""

    authentication_form = LoginForm

    def get_default_redirect_url(self):
        if services.is_support_staff(self.request.user):
            return reverse("admin:index")
        return super().get_default_redirect_url()


def csrf_failure(request, reason=""):
    """A form sent from a page no longer valid ("Page expired"). A log-in form left open in
    another tab, sent once logged in there: the user is in, so on to where it led; sent by
    another user, the log-in page again. A page of
    the activation, whose state went with the old session: back to its start, with why (the
    browser's Back and reload would send the expired page again)."""
    if request.user.is_authenticated and request.path == reverse("login"):
        user, typed = request.user, request.POST.get("username", "").strip()[:254]
        if auth.find_account(typed) != user:
            # Someone else, at a page opened before: logged in anew from a fresh page, not
            # taken into that session (a shared PC).
            messages.warning(
                request,
                f"That log-in page had expired: {user.get_username()} logged in since, in this "
                f"or another tab. To log in as {typed or 'another user'}, enter the password "
                "again.",
            )
            return redirect(request.get_full_path())
        messages.info(request, f"You are logged in already, as {user.get_username()}.")
        view = LoginView()
        view.setup(request)
        return redirect(view.get_success_url())  # its next, checked, or the user's start
    # The page's token is not the cookie's ("CSRF token ... incorrect."): a log-in since the
    # page was loaded changed it. No cookie ("CSRF cookie not set.") or a foreign origin would
    # fail again the same way: those get the "Page expired" page.
    if request.path == reverse("licensing:activate") and reason.startswith("CSRF token"):
        messages.warning(
            request,
            "That activation page was sent after you logged in again (in this or another tab): "
            "nothing was activated. Enter the License Number and Installation ID again.",
        )
        return redirect("licensing:activate")
    return csrf.csrf_failure(request, reason, template_name="403_csrf.html")


class PasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    form_class = NewPasswordForm

    def form_valid(self, form):
        with transaction.atomic():
            # The account's row is locked while its password is saved: an invitation
            # withdrawn meanwhile (its account deleted) is not brought back by the save, and
            # the link, checked again on the row as it is now, works once: sent from two
            # tabs at once, the second finds the password the first set.
            account = services.lock_account(form.user)
            token = self.request.session.get(auth_views.INTERNAL_RESET_SESSION_TOKEN)
            if account is None or not self.token_generator.check_token(account, token):
                self.validlink = False
                return self.render_to_response(self.get_context_data(form=None))
            form.user = account
            invited = services.awaits_password(form.user)
            response = super().form_valid(form)
            auth.audit_account(
                self.request, form.user, "invitation_accepted" if invited else "password_reset"
            )
        # The log-in page sends a paused customer here: the new password works at once.
        throttle.lift_login_pause(form.user)
        return response


class PasswordChangeView(auth_views.PasswordChangeView):
    form_class = ChangePasswordForm

    def get_form_kwargs(self):
        return {**super().get_form_kwargs(), "request": self.request}

    @transaction.atomic
    def form_valid(self, form):
        # The account's row is locked while its password is saved, and saved as it is now:
        # one deleted or deactivated since the request began is not brought back by the save.
        account = services.lock_account(form.user)
        if account is None or not account.is_active:
            logout(self.request)
            gone = "deleted" if account is None else "deactivated"
            messages.error(self.request, f"Your account was {gone}: nothing was changed.")
            return redirect("login")
        form.user = account
        response = super().form_valid(form)
        auth.audit_account(self.request, form.user, "password_change")
        return response


class LogoutView(auth_views.LogoutView):
    """Log-out is a POST (the bar's button); a link or a typed address asks first. Sent with
    ``everywhere``, every session of the account ends (auth.end_sessions)."""

    http_method_names = ["get", "post", "options"]

    def get(self, request, *args, **kwargs):
        # From the admin (next_page: its log-in), back to it; from the site, to the site's.
        if not request.user.is_authenticated:
            return redirect(self.next_page or settings.LOGIN_URL)
        stay = "admin:index" if self.next_page else "licensing:license_list"
        return render(request, "registration/logout_confirm.html", {"stay": reverse(stay)})

    def post(self, request, *args, **kwargs):
        was_in = request.user.is_authenticated
        everywhere = was_in and request.POST.get("everywhere") and auth.end_sessions(request)
        response = super().post(request, *args, **kwargs)
        if everywhere:
            messages.info(
                request, f"You are logged out in every browser ({everywhere} sessions ended)."
            )
        elif was_in:
            messages.info(request, "You are logged out.")
        return response


@require_GET
def keyring_json(request):
    """The public keys a TMS trusts (never the private key)."""
    keyring = signing.public_keyring()
    if not keyring:  # no key file to read, no kept keys, no file in use: no keyring to give
        return _unavailable("its keyring")
    response = HttpResponse(keyring.to_json(), content_type="application/json")
    response["Cache-Control"] = "max-age=300"  # public, as the revocation list
    return response


@require_GET
def revoked_txt(request):
    """The serials of every revoked license file, one per line, the oldest first, signed: what a
    ThinManager Server adds to its ``revoked.txt`` to refuse a file that was revoked or
    replaced (``python -m tmslicense revoked``)."""
    serials = (
        Activation.objects.revoked().order_by("revoked_at", "pk").values_list("serial", flat=True)
    )
    try:
        signed = signing.sign_revoked(serials.iterator())
    except ImproperlyConfigured:  # no key file to read (check --deploy and /healthz say why)
        return _unavailable("its list of revoked files")
    response = HttpResponse(signed, content_type="text/plain; charset=utf-8")
    response["Cache-Control"] = "max-age=300"
    return response


def _unavailable(what: str) -> HttpResponse:
    """A public file the site cannot give now: a server's download is told to try again,
    and no cache keeps the answer."""
    response = HttpResponse(
        f"The license site cannot give {what} right now: try again later.",
        status=503,
        content_type="text/plain; charset=utf-8",
    )
    response["Cache-Control"] = "no-store"
    return response


def server_error(request):
    """The 500 page, named after the site; rendered without context processors or the
    database, which may be what failed."""
    context = {"site_title": settings.SITE_NAME, "support_email": settings.SUPPORT_EMAIL}
    page = render_to_string("500.html", context)
    response = HttpResponseServerError(page)
    # Its style is inline (a failing static file must not take it along), allowed by its hash.
    style = re.search(r"<style>(.*?)</style>", page, re.DOTALL).group(1)
    digest = base64.b64encode(hashlib.sha256(style.encode()).digest()).decode()
    response["Content-Security-Policy"] = content_security_policy(style_src=[f"'sha256-{digest}'"])
    return response


def _needs_mirrored_step(wizard) -> bool:
    # Until the license is known, the flow may have two steps.
    if wizard.storage.get_step_data("license") is None:
        return True
    data = wizard.get_cleaned_data_for_step("license")
    return data is None or data["license"].needs_mirrored_installation_id


def _frozen(data, prefix: str) -> frozenset:
    """What a step's form reads of ``data``: its own fields' values (each field's last), so that
    the page sent and the session's copy of it (get_form_step_data) build one form."""
    return frozenset(
        (name, tuple(values[-1:])) for name, values in data.lists() if name.startswith(f"{prefix}-")
    )


class _StepRefused(Exception):
    """The activation's last step, shown again with its refusal: its run goes on."""

    def __init__(self, response):
        super().__init__()
        self.response = response


class ActivateLicenseView(LoginRequiredMixin, SessionWizardView):
    storage_name = "licensing.wizard_storage.WizardSessionStorage"
    form_list = [("license", LicenseStepForm), ("mirrored", MirroredStepForm)]
    condition_dict = {"mirrored": _needs_mirrored_step}
    template_name = "licensing/activate.html"

    def handle_no_permission(self):
        if self.request.method == "POST":
            messages.warning(
                self.request,
                "You were logged out before that page was sent (in another tab, or after a long "
                "time without use): nothing was activated. Log in, then enter the activation "
                "again.",
            )
        return super().handle_no_permission()

    def get(self, request, *args, **kwargs):
        # A step asked for again at its page's own address (Reload, Back: see site.js) while
        # its run is under way; else a fresh start: a new run, nothing stored (no session
        # write) until step 1 is sent.
        if self.storage.is_new:
            self.storage.new_run()
        # As it was: step 1 after the wizard's Back holds what was sent (as formtools shows it).
        return self.render(self.get_form(data=self.storage.get_step_data(self.steps.current)))

    def post(self, request, *args, **kwargs):
        sent_step = request.POST.get(f"{self.prefix}-current_step", self.steps.first)
        if sent_step not in self.form_list:
            raise BadRequest("No such step of the activation.")  # a page forged, not a browser's
        if sent_step != self.steps.first and self._finished_already():
            messages.info(request, "That activation was finished already; here is its license.")
            return redirect("licensing:license_detail", number=self.storage.finished["number"])
        if self.storage.is_new and sent_step != self.steps.first:
            finished = self.storage.finished
            if finished and finished["secondary"] and "wizard_goto_step" not in request.POST:
                # Its step 2 sent again with another ID (Back, another secondary typed): step 2
                # of the same License Number and Installation ID, answered as any step 2 is.
                prefix = self.get_form_prefix("license")
                self.storage.set_step_data(
                    "license",
                    {
                        f"{prefix}-license_number": [finished["number"]],
                        f"{prefix}-installation_id": [finished["primary"]],
                    },
                )
                self.storage.current_step = "mirrored"
                return super().post(request, *args, **kwargs)
            if finished:
                # Its Back button: step 1 as it was sent.
                messages.info(
                    request,
                    f"That activation of license {finished['number']} was finished already. Its "
                    "License Number and Installation ID are filled in again: submit them to go "
                    "on.",
                )
                self.refill = {
                    "license_number": finished["number"],
                    "installation_id": finished.get("primary", ""),
                }
            else:
                # A later step of an activation the session no longer knows: expired, or
                # left behind when step 1 was sent again.
                messages.warning(
                    request,
                    "That activation page was out of date: it had expired, was sent already, "
                    "or step 1 was sent again since. Enter the License Number and Installation "
                    "ID again.",
                )
            return self.render(self.get_form())
        return super().post(request, *args, **kwargs)

    def _finished_already(self) -> bool:
        """Step 2 sent again after its activation finished (the browser's Back), as it was or
        empty (a browser does not restore the field). Another ID there is a new request, of a
        step 1 the session no longer knows."""
        finished = self.storage.finished
        if not finished or "wizard_goto_step" in self.request.POST:  # Back: to step 1
            return False
        prefix = self.get_form_prefix("mirrored")
        typed = self.request.POST.get(f"{prefix}-mirrored_installation_id", "").strip()
        try:
            return not typed or tmslicense.normalize_installation_id(typed) == finished["secondary"]
        except tmslicense.InvalidInstallationId:
            return False

    def render(self, form=None, **kwargs):
        if self.steps.current == "mirrored":
            first = self.get_form("license", data=self.storage.get_step_data("license"))
            if not first.is_valid():
                # Step 2 stands on step 1's answer, which no longer holds (the license was
                # suspended or activated elsewhere meanwhile): back to step 1, with why.
                self.storage.current_step = "license"
                form = first
        return super().render(form, **kwargs)

    def process_step(self, form):
        if self.steps.current == self.steps.first:
            self.storage.new_run()  # see WizardSessionStorage
        return super().process_step(form)

    def get_form_step_data(self, form):
        # What the session keeps of a step: its fields' values, not whatever else was sent.
        return {
            key: form.data.getlist(key)[-1:]
            for key in map(form.add_prefix, form.fields)
            if key in form.data
        }

    def get_form(self, step=None, data=None, files=None):
        """Each step's data is built into a form and validated once per request. formtools asks
        for step 1 up to four times in one request (the step itself, step 2's condition, the
        final re-validation); its answer must not change half-way, since another activation may
        commit meanwhile."""
        step = step or self.steps.current
        if data is None:
            return super().get_form(step, data, files)
        # Step 2's form is also built from step 1's answer.
        first = self.storage.get_step_data("license") if step != "license" else None
        key = (
            step,
            _frozen(data, self.get_form_prefix(step)),
            first and _frozen(first, self.get_form_prefix("license")),
        )
        forms = self.__dict__.setdefault("_bound_forms", {})
        if key not in forms:
            forms[key] = super().get_form(step, data, files)
        return forms[key]

    def render_goto_step(self, goto_step, **kwargs):
        # Back keeps what was typed on this page, unchecked, to show it again on the way back.
        step = self.steps.current
        prefix = self.get_form_prefix(step)
        self.storage.extra_data["typed"] = {
            step: {
                name: self.request.POST[f"{prefix}-{name}"][:200]
                for name in self.get_form_list()[step].base_fields
                if self.request.POST.get(f"{prefix}-{name}")
            }
        }
        return super().render_goto_step(goto_step, **kwargs)

    refill: dict = {}  # step 1 of a finished activation, filled in again (see post)

    def get_form_initial(self, step):
        initial = dict(self.storage.extra_data.get("typed", {}).get(step, {}))
        if step == "license":
            initial.update(self.refill)
        if step == "license" and self.request.method == "GET":
            # "Activate" on a license's page names the license (checked when sent, as if typed).
            initial.setdefault("license_number", self.request.GET.get("number", "")[:40])
        return initial

    def get_form_kwargs(self, step=None):
        if step == "license":
            # Typed in this request only when step 1 is the step sent (a page asked for again
            # shows what was sent before: no try).
            sent = self.request.method == "POST" and self.steps.current == "license"
            return {"request": self.request, "limit_guessing": sent}
        data = self.get_cleaned_data_for_step("license") or {}
        return {
            "license": data.get("license"),
            "installation_id": data.get("installation_id", ""),
            "live_activation": data.get("live_activation"),
        }

    def get_context_data(self, form, **kwargs):
        context = super().get_context_data(form=form, **kwargs)
        context["wizard_run"] = self.storage.run
        context["wizard_run_kept"] = self.storage.kept
        context["support_staff"] = services.is_support_staff(self.request.user)
        if self.steps.current == "mirrored":
            context["license"] = form.license
            context["installation_id"] = form.installation_id
            context["paired"] = services.paired_already(form.license, form.installation_id)
            context["move_license"] = services.contact_support(
                "To move the license to another secondary server, contact support"
            )
        return context

    def render_done(self, form, **kwargs):
        # formtools forgets the run once done() returns; a step refused (see done) keeps it.
        try:
            return super().render_done(form, **kwargs)
        except _StepRefused as refused:
            return refused.response

    def done(self, form_list, form_dict, **kwargs):
        first = form_dict["license"].cleaned_data
        second = form_dict["mirrored"].cleaned_data if "mirrored" in form_dict else {}
        try:
            activation, created = services.activate(
                license=first["license"],
                installation_id=first["installation_id"],
                mirrored_installation_id=second.get("mirrored_installation_id", ""),
                actor=self.request.user,
                ip=throttle.client_ip(self.request),
            )
        except services.ActivationError as error:
            if error.field == "mirrored_installation_id" and "mirrored" in form_dict:
                # The secondary is paired otherwise (or live with another primary meanwhile):
                # step 2 again, refused beside its field, to be sent again with another ID.
                form_dict["mirrored"].refuse(error)
                raise _StepRefused(self.render(form_dict["mirrored"])) from None
            # Live for other servers, the license changed meanwhile, or the primary is
            # paired otherwise: back to step 1, with why.
            self.storage.current_step = "license"
            form = self.get_form(step="license", data=self.storage.get_step_data("license"))
            form.is_valid()
            form.refuse(error)
            return self.render(form)
        self.storage.finish(activation)
        if created:
            messages.success(
                self.request,
                f"License {activation.license.number} is activated. Download the license file "
                f"and add it on {_servers(activation)}.",
            )
        else:
            where = "these servers" if len(activation.installation_ids) > 1 else "this server"
            lic = activation.license
            messages.info(
                self.request,
                f"License {lic.number} was already activated for {where}: "
                + (
                    "its file was issued before the license changed; get an updated file below."
                    if lic.changes_since(activation)
                    else "download its license file below."
                ),
            )
        return redirect("licensing:license_detail", number=activation.license.number)
