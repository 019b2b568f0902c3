"""Log-ins are limited like license-number look-ups: failures per account from one address,
and per address, on the site's log-in and the admin's."""

import pytest
from django.conf import settings as django_settings
from django.core import mail
from django.db import connection
from django.test import Client, TestCase
from django.test.utils import CaptureQueriesContext

from licensing import throttle
from licensing.models import OutboxMessage
from tests.factories import PASSWORD, UserFactory


@pytest.fixture
def limits(settings):
    settings.LOGIN_FAILURE_LIMIT = 3
    settings.LOGIN_FAILURE_LIMIT_PER_IP = 5
    return settings


def log_in(client, username, password, *, path="/accounts/login/", ip="10.0.0.1"):
    return client.post(path, {"username": username, "password": password}, REMOTE_ADDR=ip)


def reset_password(client, user, *, ip="10.0.0.1"):
    """Set a new password with the link the site e-mails, from ``ip``; returns it."""
    with TestCase.captureOnCommitCallbacks(execute=True):  # the outbox hands it over
        client.post("/accounts/password_reset/", {"email": user.email}, REMOTE_ADDR=ip)
    link = next(line for line in mail.outbox[-1].body.splitlines() if "/accounts/reset/" in line)
    form = client.get(link.strip().removeprefix(django_settings.SITE_URL), follow=True)
    new = "Another-plant-password-9"
    data = {"new_password1": new, "new_password2": new}
    assert client.post(form.redirect_chain[-1][0], data, REMOTE_ADDR=ip).status_code == 302
    return new


def test_an_account_is_paused_after_failed_log_ins_from_one_address(client, customer, limits):
    for _ in range(3):
        response = log_in(client, customer.username, "wrong")
        assert response.status_code == 200 and "_auth_user_id" not in client.session
    response = log_in(client, customer.username.upper(), PASSWORD)  # even the right password
    page = response.content.decode()
    assert response.status_code == 200 and "Too many failed log-ins" in page
    assert "_auth_user_id" not in client.session
    # Elsewhere the account still logs in, and a colleague here too.
    assert log_in(client, customer.username, PASSWORD, ip="10.0.0.2").status_code == 302
    client.logout()
    colleague = UserFactory(organization=customer.membership.organization)
    assert log_in(client, colleague.username, PASSWORD).status_code == 302


def test_the_old_password_of_a_password_change_is_a_log_in_try(client, customer, limits):
    """A session left open (or stolen) gives no way around the log-in's limits to guess the
    password: the change's old password counts as a log-in try, and one pause holds both."""
    client.force_login(customer)
    new = {"new_password1": "Another-plant-password-9", "new_password2": "Another-plant-password-9"}

    def change(old, ip="10.0.0.1", **typed):
        data = {"old_password": old, **new, **typed}
        return client.post("/accounts/password_change/", data, REMOTE_ADDR=ip)

    for _ in range(4):  # the right old password is taken back (a new one mistyped here)
        page = change(PASSWORD, new_password2="Mistyped").content.decode()
        assert "didn\u2019t match" in page and "Too many" not in page
    assert "was entered incorrectly" in change("wrong").content.decode()
    assert log_in(Client(), customer.username, PASSWORD).status_code == 302  # one pauses nothing
    for _ in range(2):
        change("wrong")
    refused = change(PASSWORD).content.decode()  # even the right one
    assert "Too many failed tries of your password" in refused
    customer.refresh_from_db()
    assert customer.check_password(PASSWORD)
    assert (
        "Too many failed log-ins" in log_in(Client(), customer.username, PASSWORD).content.decode()
    )
    # An address paused for failures across accounts is named, with support (a new password
    # would not lift it).
    for n in range(5):
        log_in(Client(), f"stranger{n}", "wrong", ip="10.0.0.9")
    refused = change(PASSWORD, ip="10.0.0.9").content.decode()
    assert "from your network&#x27;s address, 10.0.0.9" in refused
    assert django_settings.SUPPORT_EMAIL in refused
    # Support's is the same page, with the same limits.
    admin_change = client.get("/admin/password_change/")
    assert (
        admin_change.status_code == 302 and admin_change["Location"] == "/accounts/password_change/"
    )


def test_a_pause_does_not_tell_which_e_mail_address_belongs_to_a_username(client, db, limits):
    """Counting the account however it is named would link a username to an address: pause
    the username, then see which address is paused too."""
    user = UserFactory(username="maria.lopez", email="maria@plant.example")
    for _ in range(3):
        log_in(client, user.username, "wrong")
    assert "Too many failed log-ins" in log_in(client, user.username, "wrong").content.decode()
    response = log_in(client, "maria@plant.example", "wrong")
    assert "Too many failed log-ins" not in response.content.decode()
    assert "Enter a correct username or e-mail address" in response.content.decode()


def test_a_new_password_by_e_mail_lifts_the_accounts_pause(client, customer, limits):
    """The pause tells a customer who forgot the password to reset it; the new password then
    works at once, under the username and under the e-mail address, from every address (here
    the reset is made on a phone, on another network)."""
    limits.LOGIN_FAILURE_LIMIT_PER_IP = 50  # the address's own pause is not lifted
    for typed in (customer.username, customer.email):
        for _ in range(3):
            log_in(client, typed, "wrong")
        assert "Too many failed log-ins" in log_in(client, typed, PASSWORD).content.decode()
    new = reset_password(client, customer, ip="192.0.2.50")
    for typed in (customer.username, customer.email):
        assert log_in(client, typed, new).status_code == 302
        client.logout()
    # Counting starts again for the account: three more failures pause it again.
    for _ in range(3):
        log_in(client, customer.username, "wrong")
    assert "Too many failed log-ins" in log_in(client, customer.username, new).content.decode()


def test_a_new_password_leaves_the_addresss_own_pause(client, customer, limits):
    for name in ("a", "b", "c", "d", "e"):  # the address is paused, across accounts
        log_in(client, name, "wrong")
    new = reset_password(client, customer)
    assert "Too many failed log-ins" in log_in(client, customer.username, new).content.decode()


def test_an_address_is_paused_after_failed_log_ins_across_accounts(client, customer, limits):
    for name in ("a", "b", "c", "d", "e"):
        log_in(client, name, "wrong")
    response = log_in(client, customer.username, PASSWORD)
    assert "Too many failed log-ins" in response.content.decode()
    assert log_in(client, customer.username, PASSWORD, ip="10.0.0.9").status_code == 302


def test_a_name_typed_with_a_colon_counts_for_no_other_address(client, customer, limits):
    """``5:name`` from 2001:db8::1 is not ``name`` from 2001:db8::1:5."""
    for _ in range(3):
        log_in(client, f"5:{customer.username}", "wrong", ip="2001:db8::1")
    response = log_in(client, customer.username, PASSWORD, ip="2001:db8::1:5")
    assert response.status_code == 302


def test_successful_log_ins_are_not_counted(client, customer, limits):
    for _ in range(5):
        assert log_in(client, customer.username, PASSWORD).status_code == 302
        client.logout()


def test_the_admin_log_in_is_limited_too(client, db, limits):
    staff = UserFactory(is_staff=True, is_superuser=True)
    for _ in range(3):
        log_in(client, staff.username, "wrong", path="/admin/login/")
    response = log_in(client, staff.username, PASSWORD, path="/admin/login/")
    assert response.status_code == 200 and "Too many failed log-ins" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_an_account_logs_in_by_username_or_e_mail_in_any_case(client, db):
    user = UserFactory(username="Maria.Lopez", email="Maria.Lopez@Plant.example")
    for typed in ("Maria.Lopez", "maria.lopez", " MARIA.LOPEZ ", "maria.lopez@plant.example"):
        response = log_in(client, typed, PASSWORD)
        assert response.status_code == 302, typed
        assert client.session["_auth_user_id"] == str(user.pk)
        client.logout()
    page = log_in(client, "maria.lopez@plant.example", "wrong").content.decode()
    assert "Enter a correct username or e-mail address and password" in page


def test_an_address_with_an_international_domain_is_found_in_either_form(client, db, organization):
    """Mail programs show a domain of other letters in its ASCII form (bücher.example as
    xn--bcher-kva.example): the address copied from them logs in and gets a reset link."""
    user = UserFactory(email="Gina@Bücher.example", organization=organization)
    for typed in (
        "gina@xn--bcher-kva.example",
        "GINA@XN--BCHER-KVA.EXAMPLE",
        "GINA@BÜCHER.EXAMPLE",
    ):
        assert log_in(client, typed, PASSWORD).status_code == 302, typed
        assert client.session["_auth_user_id"] == str(user.pk)
        client.logout()
    with TestCase.captureOnCommitCallbacks(execute=True):
        client.post("/accounts/password_reset/", {"email": "gina@xn--bcher-kva.example"})
    assert [m.to for m in mail.outbox] == [["Gina@Bücher.example"]]
    assert "/accounts/reset/" in mail.outbox[0].body


@pytest.mark.parametrize("hidden", ["\u00ad", "\u200b", "\u2060"])
def test_an_address_with_characters_that_show_as_nothing_is_no_account(
    client, customer, settings, hidden
):
    """A domain's other form is its only other form: characters that mail servers drop (a
    soft hyphen, a zero-width space) make another text, which finds no account. Else each
    variant would be a name of its own to the limits: unlimited reset e-mails to one mailbox,
    and the account's own ceiling on failed log-ins never reached."""
    settings.PASSWORD_RESET_LIMIT = 3
    local, domain = customer.email.split("@")
    for n in range(1, 6):
        variant = f"{local}@{hidden * n}{domain}"
        with TestCase.captureOnCommitCallbacks(execute=True):
            client.post("/accounts/password_reset/", {"email": variant}, REMOTE_ADDR=f"10.0.1.{n}")
        assert log_in(client, variant, PASSWORD, ip=f"10.0.2.{n}").status_code == 200
    assert not mail.outbox and "_auth_user_id" not in client.session


def test_a_reset_asked_for_an_address_alike_only_by_the_databases_case_rules_sends_nothing(
    client, db, organization
):
    """PostgreSQL's case-blind comparison takes a dotless "ı" for an "i" (Django's own form
    checks the address again for this): no link is sent to the account it finds so."""
    UserFactory(email="mike@plant.example", organization=organization)
    with TestCase.captureOnCommitCallbacks(execute=True):
        client.post("/accounts/password_reset/", {"email": "mıke@plant.example"})
    assert not mail.outbox


def test_an_address_is_counted_under_one_name_in_any_case_and_form():
    """However an address is written (the database's case rules find "ı" for "i"), its failed
    log-ins and reset requests count under one name; another mailbox's under its own."""
    names = {
        throttle._name(typed)
        for typed in (
            "mike@mill-ivory.example",
            "Mike@MIll-Ivory.Example",
            "mike@mıll-ıvory.example",
            "mike@xn--mll-ivory-vpb.example",
        )
    }
    assert names == {"mike@mill-ivory.example"}
    assert throttle._name("gina@XN--BCHER-KVA.EXAMPLE") == throttle._name("gina@Bücher.example")
    # An ASCII spelling with a dotless ı or a long ſ in it (PostgreSQL finds the account so).
    stored = throttle._name("max@xn--mller-industrie-zvb.de")
    assert throttle._name("max@xn--mller-\u0131ndustr\u0131e-zvb.de") == stored
    assert throttle._name("max@xn--mller-indu\u017ftrie-zvb.de") == stored


def test_an_addresss_two_forms_count_as_one_for_the_limits(client, db, organization, settings):
    settings.PASSWORD_RESET_LIMIT = 2
    UserFactory(email="gina@bücher.example", organization=organization)
    for n, typed in enumerate(["gina@bücher.example", "gina@xn--bcher-kva.example"] * 2):
        with TestCase.captureOnCommitCallbacks(execute=True):
            client.post("/accounts/password_reset/", {"email": typed}, REMOTE_ADDR=f"10.0.3.{n}")
    assert len(mail.outbox) == 2


def test_an_e_mail_address_two_accounts_share_logs_in_neither(client, db):
    UserFactory(username="shift-a", email="control-room@plant.example")
    UserFactory(username="shift-b", email="control-room@plant.example")
    response = log_in(client, "control-room@plant.example", PASSWORD)
    assert response.status_code == 200 and "_auth_user_id" not in client.session
    hint = "If a colleague has an account with this e-mail address too, neither logs in with"
    assert hint in response.content.decode()
    # Said for any address typed, so that it tells nothing; not for a username.
    assert hint in log_in(client, "nobody@plant.example", PASSWORD).content.decode()
    assert hint not in log_in(client, "shift-a", "wrong").content.decode()
    assert log_in(client, "shift-b", PASSWORD).status_code == 302  # by username it works


def test_an_exact_username_wins_over_addresses_that_look_the_same(client, db):
    owner = UserFactory(username="ops@plant.example")
    for n in range(3):
        UserFactory(username=f"ops{n}", email="ops@plant.example")
    assert log_in(client, "ops@plant.example", PASSWORD).status_code == 302
    assert client.session["_auth_user_id"] == str(owner.pk)


def test_the_exact_username_wins_over_one_that_differs_in_case(client, db):
    upper = UserFactory(username="Operator")
    UserFactory(username="operator")
    assert log_in(client, "Operator", PASSWORD).status_code == 302
    assert client.session["_auth_user_id"] == str(upper.pk)
    client.logout()
    assert log_in(client, "OPERATOR", PASSWORD).status_code == 200  # which one? neither


def test_after_a_failed_log_in_the_page_opens_on_the_password(client, customer):
    import re

    page = client.get("/accounts/login/").content.decode()
    assert re.search(r'<input[^>]*name="username"[^>]*autofocus', page)
    page = log_in(client, customer.username, "wrong").content.decode()
    assert re.search(r'<input[^>]*name="password"[^>]*autofocus', page)
    assert not re.search(r'<input[^>]*name="username"[^>]*autofocus', page)
    # The password field names the refusal above the form, which is read out with it.
    password = re.search(r'<input[^>]*name="password"[^>]*>', page).group(0)
    assert 'aria-invalid="true"' in password and 'aria-describedby="form-errors"' in password
    assert re.search(r'<div [^>]*role="alert" id="form-errors">', page)
    assert "<title>Error: Log in · " in page
    admin = log_in(client, customer.username, "wrong", path="/admin/login/").content.decode()
    assert "Enter a correct username or e-mail address and password of a staff account" in admin


def test_a_reset_e_mail_waits_while_the_mail_server_is_down_and_its_link_stays_hidden(
    client, customer, admin_client
):
    from smtplib import SMTPServerDisconnected
    from unittest import mock

    from django.utils import timezone

    from licensing import outbox
    from licensing.models import AuditEvent, OutboxMessage

    with (
        mock.patch(
            "django.core.mail.backends.locmem.EmailBackend.send_messages",
            side_effect=SMTPServerDisconnected("mail server down"),
        ),
        TestCase.captureOnCommitCallbacks(execute=True),
    ):
        response = client.post("/accounts/password_reset/", {"email": customer.email})
    assert response.status_code == 302  # "sent", as for any address: nothing is told
    assert not mail.outbox
    message = OutboxMessage.objects.get(key__startswith="password-reset:")
    assert message.secret and message.status == "pending" and message.attempts == 1
    assert message.recipients == [customer.email] and "/accounts/reset/" in message.body
    # How long the link works, as the invitation says it (the same setting).
    assert "(the link works once, for 3 days):" in message.body

    page = admin_client.get(f"/admin/licensing/outboxmessage/{message.pk}/change/")
    assert "Not shown: it holds a link to choose a password" in page.content.decode()
    assert "/accounts/reset/" not in page.content.decode()
    # Nor can a filter in the address tell what the body holds, a character at a time.
    prefix = message.body[: message.body.index("/accounts/reset/") + 17]
    probe = admin_client.get("/admin/licensing/outboxmessage/", {"body__startswith": prefix})
    assert probe.status_code == 400
    # Nor is it sent again by hand (its link may have expired by then).
    admin_client.post(
        "/admin/licensing/outboxmessage/",
        {"action": "send_again", "_selected_action": [message.pk]},
    )
    assert OutboxMessage.objects.get(pk=message.pk).attempts == 1  # not reset for a retry
    assert not AuditEvent.objects.filter(action="outbox_retry").exists()

    # The mail server is back: the next attempt sends it, and the link is erased here.
    OutboxMessage.objects.filter(pk=message.pk).update(next_attempt_at=timezone.now())
    assert outbox.deliver(message.pk)
    message.refresh_from_db()
    assert message.status == "sent" and message.body == ""
    link = next(line for line in mail.outbox[-1].body.splitlines() if "/accounts/reset/" in line)
    form = client.get(link.strip().removeprefix(django_settings.SITE_URL), follow=True)
    assert "new_password1" in form.content.decode()


def test_password_reset_e_mails_are_limited_per_address_and_per_asker(client, customer, settings):
    """Nobody floods a mailbox with reset e-mails; the page says "sent" all the same."""
    settings.PASSWORD_RESET_LIMIT, settings.PASSWORD_RESET_LIMIT_PER_IP = 2, 3
    colleague = UserFactory(organization=customer.membership.organization)

    def ask(email, ip):
        with TestCase.captureOnCommitCallbacks(execute=True):
            response = client.post("/accounts/password_reset/", {"email": email}, REMOTE_ADDR=ip)
        assert response.status_code == 302 and response["Location"].endswith("/done/")

    for _ in range(3):
        ask(customer.email, "10.0.0.1")
    assert [m.to for m in mail.outbox] == [[customer.email]] * 2  # the third is not sent
    ask(customer.email, "10.0.0.2")  # from elsewhere: the address had its share
    assert len(mail.outbox) == 2
    ask(colleague.email, "10.0.0.1")  # the asker's fourth request in the window
    assert len(mail.outbox) == 2
    ask(colleague.email, "10.0.0.3")
    assert mail.outbox[-1].to == [colleague.email]


def test_a_reset_is_answered_before_its_accounts_are_looked_up(client, customer, monkeypatch):
    """An address with an account and one without get the same work before the response: the
    look-up and the e-mail come after it, so the answer's time tells nothing."""
    from licensing import outbox

    later, at_once = [], outbox.after_response
    monkeypatch.setattr(outbox, "after_response", lambda work, what: later.append(work))
    for email in (customer.email, "nobody@example.com"):
        with CaptureQueriesContext(connection) as queries:
            response = client.post("/accounts/password_reset/", {"email": email})
        assert response.status_code == 302 and response["Location"].endswith("/done/")
        assert not [q for q in queries if "auth_user" in q["sql"]], email
    assert len(later) == 2 and not OutboxMessage.objects.exists()
    monkeypatch.setattr(outbox, "after_response", at_once)
    with TestCase.captureOnCommitCallbacks(execute=True):
        for work in later:
            work()
    assert [m.to for m in mail.outbox] == [[customer.email]]


def test_an_ipv6_address_is_counted_by_its_64_block(client, customer, limits):
    """Walking through the addresses of one /64 (what one customer or one rented server is
    given) gains nothing."""
    for n in range(1, 4):
        log_in(client, customer.username, "wrong", ip=f"2001:db8:1:2::{n}")
    response = log_in(client, customer.username, PASSWORD, ip="2001:db8:1:2:ffff::9")
    assert "Too many failed log-ins" in response.content.decode()
    assert log_in(client, customer.username, PASSWORD, ip="2001:db8:1:3::1").status_code == 302


def test_an_account_has_a_ceiling_across_all_addresses(client, customer, limits):
    limits.LOGIN_FAILURE_LIMIT_PER_ACCOUNT = 6
    for n in range(6):  # two tries from each of three addresses: none paused on its own
        log_in(client, customer.username, "wrong", ip=f"198.51.100.{n // 2}")
    response = log_in(client, customer.username, PASSWORD, ip="203.0.113.1")
    assert "Too many failed log-ins" in response.content.decode()
    new = reset_password(client, customer, ip="203.0.113.1")  # the e-mailed link lifts it
    assert log_in(client, customer.username, new, ip="203.0.113.1").status_code == 302


def test_an_address_the_account_logged_in_from_lately_is_let_past_its_ceiling(
    client, customer, limits
):
    """A guesser from many addresses who paused the account everywhere does not keep its
    owner out where they work: an address the account logged in from in the last 30 days
    is let past the ceiling across addresses (its own limit there still counts); another is
    not."""
    limits.LOGIN_FAILURE_LIMIT_PER_ACCOUNT = 6
    for address in ("192.0.2.10", "2001:db8:1:2::aaaa"):
        assert log_in(client, customer.username, PASSWORD, ip=address).status_code == 302
        client.logout()
    for n in range(6):
        log_in(client, customer.username, "wrong", ip=f"198.51.100.{n // 2}")
    refused = log_in(client, customer.username, PASSWORD, ip="203.0.113.1")
    assert "Too many failed log-ins" in refused.content.decode()
    # Where the owner logged in lately (an IPv6 address's /64: it changes daily): let in.
    for address in ("192.0.2.10", "2001:db8:1:2::bbbb"):
        assert log_in(client, customer.username, PASSWORD, ip=address).status_code == 302
        client.logout()
    # A wrong password there gets the refusal too: the answer tells no guesser which
    # addresses the owner uses.
    wrong = log_in(client, customer.username, "wrong", ip="192.0.2.10")
    assert "Too many failed log-ins" in wrong.content.decode()
    # Changing the password there works as the log-in does.
    client.force_login(customer)
    new = "Another-plant-password-9"
    changed = client.post(
        "/accounts/password_change/",
        {"old_password": PASSWORD, "new_password1": new, "new_password2": new},
        REMOTE_ADDR="192.0.2.10",
    )
    assert changed.status_code == 302
    client.logout()
    for _ in range(limits.LOGIN_FAILURE_LIMIT):  # wrong there too: paused there as anywhere
        log_in(client, customer.username, "wrong", ip="192.0.2.10")
    refused = log_in(client, customer.username, new, ip="192.0.2.10")
    assert "Too many failed log-ins" in refused.content.decode()


def test_refused_tries_do_not_count(client, customer, limits):
    """A try refused while paused is not made: it pauses neither the account elsewhere (its
    ceiling across addresses) nor the address for the colleagues there."""
    limits.LOGIN_FAILURE_LIMIT_PER_ACCOUNT = 6
    for _ in range(3):
        log_in(client, customer.username, "wrong")
    for _ in range(20):
        response = log_in(client, customer.username, "wrong")
        assert "Too many failed log-ins" in response.content.decode()
    assert log_in(client, customer.username, PASSWORD, ip="10.0.0.2").status_code == 302
    client.logout()
    colleague = UserFactory(organization=customer.membership.organization)
    assert log_in(client, colleague.username, PASSWORD).status_code == 302


def test_right_passwords_never_count_towards_a_pause(client, customer, limits):
    for _ in range(5):
        assert log_in(client, customer.username, PASSWORD).status_code == 302
        client.logout()
    for _ in range(2):
        log_in(client, customer.username, "wrong")
    assert log_in(client, customer.username, PASSWORD).status_code == 302


def test_a_name_is_counted_as_the_database_compares_it():
    """PostgreSQL compares names upper-cased ("kımı" finds "kimi"): so are the counters."""
    from licensing import throttle

    assert throttle._name(" KIMI ") == throttle._name("kımı") == throttle._name("kimi") == "kimi"


def test_a_try_taken_back_is_exactly_the_one_counted(rf, customer, limits):
    """The counters a try raised, even if the account's epoch changed since (a reset)."""
    from django.core.cache import cache

    from licensing import throttle

    request = rf.post("/accounts/login/", REMOTE_ADDR="10.0.0.1")
    refused, raised = throttle.count_try(request, "login", customer.username)
    assert refused is None and len(raised) == 3
    throttle.lift_login_pause(customer)  # a new epoch meanwhile
    throttle.forget(raised)
    assert cache.get_many(raised) == dict.fromkeys(raised, 0)


def test_the_password_pages_open_on_the_field_to_fill_then_on_the_first_to_type_again(
    client, customer
):
    import re

    from django.contrib.auth.tokens import default_token_generator
    from django.utils.encoding import force_bytes
    from django.utils.http import urlsafe_base64_encode

    def focused(response):
        return re.findall(r'<input[^>]*name="(\w+)"[^>]*autofocus', response.content.decode())

    def described(response, name):
        field = re.search(rf'<input[^>]*name="{name}"[^>]*>', response.content.decode()).group()
        return re.search(r'aria-describedby="([^"]*)"', field).group(1).split()

    uid = urlsafe_base64_encode(force_bytes(customer.pk))
    token = default_token_generator.make_token(customer)
    link = client.get(f"/accounts/reset/{uid}/{token}/", follow=True)
    assert focused(link) == ["new_password1"]  # Django's opened on none
    used = client.get(f"/accounts/reset/{uid}/{token[:-2]}xx/", follow=True).content.decode()
    assert "<title>This link is no longer valid · " in used
    mismatch = {"new_password1": "Abcdef-12345", "new_password2": "Xbcdef-12345"}
    # Both fields emptied: typed again from the first, which is described by the error said
    # under the second (a screen reader reads the field it opens on, not the error).
    again = client.post(link.redirect_chain[-1][0], mismatch)
    assert focused(again) == ["new_password1"]
    assert described(again, "new_password1")[0] == "id_new_password2_error"
    # A password too short is said under the password, not under its repetition (Django's).
    short = client.post(link.redirect_chain[-1][0], dict.fromkeys(mismatch, "Ab-1"))
    assert focused(short) == ["new_password1"]
    assert list(short.context["form"].errors) == ["new_password1"]

    client.force_login(customer)
    assert focused(client.get("/accounts/password_change/")) == ["old_password"]
    changed = client.post("/accounts/password_change/", {"old_password": PASSWORD, **mismatch})
    assert focused(changed) == ["old_password"]  # all three emptied, to type again
    assert described(changed, "old_password") == ["id_new_password2_error"]
    assert "<title>Error: Change password · " in changed.content.decode()


def test_the_refusals_recorded_for_support_are_the_latest_few_and_never_let_a_try_through(
    rf, customer, limits, caplog
):
    """Tries under one name from many paused addresses keep the record of a few; a record
    that cannot be written, or one of another shape, changes nothing of the refusal."""
    from unittest import mock

    from django.core.cache import cache

    from licensing import throttle

    def refused_from(address):
        request = rf.post("/accounts/login/", REMOTE_ADDR=address)
        for _ in range(limits.LOGIN_FAILURE_LIMIT):
            assert throttle.count_try(request, "login", customer.username)[0] is None
        return throttle.count_try(request, "login", customer.username)[0]

    limits.LOGIN_FAILURE_LIMIT_PER_ACCOUNT = 10**6
    for n in range(throttle.REFUSALS_KEPT + 5):
        assert refused_from(f"10.9.0.{n}").address == f"10.9.0.{n}"
    shown = [p.address for p in throttle.pauses(customer)]
    assert len(shown) == throttle.REFUSALS_KEPT and "10.9.0.24" in shown and "10.9.0.0" not in shown

    # The record cannot be written: refused all the same, the counts taken back.
    real_set = cache.set

    def failing_set(key, *args, **kwargs):
        if ":refused:" in key:
            raise ConnectionError("down")
        return real_set(key, *args, **kwargs)

    with mock.patch.object(cache, "set", failing_set):
        assert refused_from("10.9.1.1").address == "10.9.1.1"
    assert "refusal not recorded" in caplog.text
    request = rf.post("/accounts/login/", REMOTE_ADDR="10.9.1.1")
    assert throttle.count_try(request, "login", customer.username)[0] is not None

    # A record of another shape (another version's): ignored, and replaced by the next.
    marker = throttle._refused_key("login", f"account:{throttle._name(customer.username)}")
    cache.set(marker, {"x": ("old", "shape")})
    assert throttle.pauses(customer) == []
    assert refused_from("10.9.2.2").address == "10.9.2.2"
    assert [p.address for p in throttle.pauses(customer)] == ["10.9.2.2"]


def test_every_log_in_is_audited_with_its_address(client, customer, organization, support):
    """Who logged in, when and from where, on the organization's trail (support's admin log-ins
    too, of no organization); and where its members are, for support to check an address
    against. A failed log-in writes nothing."""
    from django.test import Client

    from licensing import services
    from licensing.models import AuditEvent

    assert log_in(Client(), customer.username, "wrong", ip="10.0.0.8").status_code == 200
    assert not AuditEvent.objects.exists()
    assert log_in(client, customer.email.upper(), PASSWORD, ip="10.0.0.9").status_code == 302
    event = AuditEvent.objects.get(action="log_in")
    assert (event.actor, event.organization, event.ip_address) == (
        customer,
        organization,
        "10.0.0.9",
    )
    assert event.action_in_words == "log in" and event.object_repr == str(organization)
    assert services.recent_addresses(organization) == ["10.0.0.9"]
    customer.refresh_from_db()
    assert customer.last_login is not None and customer.last_login <= event.created_at

    staff = log_in(Client(), support.username, PASSWORD, path="/admin/login/", ip="10.1.1.1")
    assert staff.status_code == 302
    event = AuditEvent.objects.get(action="log_in", actor=support)
    assert (event.organization, event.ip_address) == (None, "10.1.1.1")


def test_a_pause_says_its_time_in_words():
    now = throttle.time.time()  # the rate limits' clock (tests/conftest.py)
    assert throttle.Pause("login", 5, ends=int(now) + 30).time_left == "1 minute"
    assert throttle.Pause("login", 5, ends=int(now) + 600).time_left == "10 minutes"


def test_a_lifted_pause_keeps_the_accounts_names_in_the_cache_for_a_month_not_for_ever(db):
    """Lifting a pause (a password reset, support) starts a new epoch for the account's
    names, its user name and address: kept long enough that the counts of the epoch before
    are gone (a window and a minute), and no longer than a month."""
    import time

    from django.core.cache import cache

    user = UserFactory(username="anna", email="anna@werk.example")
    assert throttle.lift_login_pause(user)
    for name in ("anna", "anna@werk.example"):
        key = cache.make_and_validate_key(throttle._epoch_key(name))
        if hasattr(cache, "_expire_info"):  # local memory
            left = cache._expire_info[key] - time.time()
        else:  # Redis: -1 for a key kept for ever
            left = cache._cache.get_client(key).ttl(key)
        assert 29 * 86400 < left <= 30 * 86400, name


def test_failed_log_ins_and_each_pause_are_logged_for_a_security_team(
    client, customer, limits, caplog
):
    """A guessing run leaves a record a security team reviews later (the pauses live only as
    long as their window): each failed log-in with the name typed and the address, and each
    pause once, when it starts."""
    caplog.set_level("INFO", logger="licensing")
    for _ in range(limits.LOGIN_FAILURE_LIMIT + 2):
        log_in(client, customer.username, "wrong", ip="10.0.0.9")
    failed = [r for r in caplog.records if r.getMessage().startswith("log-in failed")]
    assert len(failed) == limits.LOGIN_FAILURE_LIMIT  # those beyond it are not tried
    assert failed[0].getMessage() == (
        f"log-in failed for account {customer.username!r} from 10.0.0.9"
    )
    paused = [r.getMessage() for r in caplog.records if "paused" in r.getMessage()]
    assert len(paused) == 1  # once, not at every try beyond it
    assert paused[0].startswith(
        f"login tries paused for account {customer.username!r} from 10.0.0.9: "
        f"{limits.LOGIN_FAILURE_LIMIT} in 15 minutes, until "
    )
    assert "wrong" not in caplog.text  # never a password
    # A name that is no account's (a password typed as the name, by mistake) is not logged.
    caplog.clear()
    for _ in range(limits.LOGIN_FAILURE_LIMIT + 1):
        log_in(client, "My-Secret-Pass-1", "x", ip="10.0.0.8")
    assert "secret-pass" not in caplog.text.lower()
    assert "log-in failed for an unknown name from 10.0.0.8" in caplog.text
    assert "login tries paused for an unknown name from 10.0.0.8" in caplog.text
    # The current password tried on Change password (a session left open) is logged too.
    caplog.clear()
    client.force_login(customer)
    client.post(
        "/accounts/password_change/",
        {"old_password": "guess", "new_password1": "N3w-pass-word-1", "new_password2": "x"},
        REMOTE_ADDR="10.0.0.7",
    )
    assert (
        f"Change password's check failed for account {customer.username!r} from 10.0.0.7"
        in caplog.text
    )


def test_a_pause_lifted_by_support_is_logged_again_when_it_starts_again(
    client, customer, limits, caplog
):
    caplog.set_level("WARNING", logger="licensing")
    for n in range(limits.LOGIN_FAILURE_LIMIT_PER_IP + 1):  # a name each: the address's
        log_in(client, f"nobody-{n}", "x", ip="10.0.0.6")
    assert caplog.text.count("login tries paused for address 10.0.0.6") == 1
    assert throttle.lift_address_pause("10.0.0.6")
    for n in range(limits.LOGIN_FAILURE_LIMIT_PER_IP + 1):
        log_in(client, f"nobody-{n}", "x", ip="10.0.0.6")
    assert caplog.text.count("login tries paused for address 10.0.0.6") == 2
