"""A plant's shared control-room PC: one browser, one person after another, often without
logging out. What the first leaves behind gives the next nobody's rights."""

import re
import time
from datetime import timedelta

from django.conf import settings
from django.contrib.sessions.models import Session
from django.core import mail
from django.db import connection
from django.test import Client, TestCase
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from tests.factories import PASSWORD, UserFactory


def log_in(client, user):
    response = client.post("/accounts/login/", {"username": user.username, "password": PASSWORD})
    assert response.status_code == 302
    return response


def test_a_session_ends_with_the_browser_and_after_an_hour_without_use(customer):
    client = Client()
    cookie = log_in(client, customer).cookies[settings.SESSION_COOKIE_NAME]
    assert cookie["expires"] == "" and cookie["max-age"] == ""  # gone when the browser closes
    session = Session.objects.get()
    assert settings.SESSION_COOKIE_AGE == 60 * 60
    left = session.expire_date - timezone.now()
    assert timedelta(minutes=59) < left <= timedelta(minutes=60)  # not two weeks

    # In use, its end moves on, at most once a minute (not a write a page), by writing that
    # end alone: another tab's step of an activation, saved meanwhile, is not written over.
    client.get("/licenses/")
    with CaptureQueriesContext(connection) as queries:
        assert client.get("/licenses/").status_code == 200
    assert not [q for q in queries if "django_session" in q["sql"] and "UPDATE" in q["sql"]]
    client.cookies["seen"] = str(int(time.time()) - 120)
    Session.objects.update(expire_date=timezone.now() + timedelta(minutes=58))
    with CaptureQueriesContext(connection) as queries:
        client.get("/licenses/")
    (update,) = [q["sql"] for q in queries if "UPDATE" in q["sql"] and "django_session" in q["sql"]]
    assert "expire_date" in update and "session_data" not in update
    assert Session.objects.get().expire_date - timezone.now() > timedelta(minutes=59)

    # Unused for an hour: the next person finds the log-in, and why.
    client.cookies["seen"] = str(int(time.time()) - 3601)
    Session.objects.update(expire_date=timezone.now() - timedelta(seconds=1))
    response = client.get("/licenses/", follow=True)
    assert response.redirect_chain == [("/accounts/login/?next=/licenses/", 302)]
    page = response.content.decode()
    assert "You were logged out after 60 minutes without use." in page
    assert customer.username not in page
    # Said once, and not to someone who logged out.
    assert "without use" not in client.get("/accounts/login/").content.decode()
    log_in(client, customer)
    client.post("/accounts/logout/")
    response = client.get("/licenses/", follow=True)
    assert "without use" not in response.content.decode()


def test_a_form_sent_after_the_session_ended_says_it_was_not_saved(customer):
    client = Client()
    log_in(client, customer)
    client.get("/licenses/")
    client.cookies["seen"] = str(int(time.time()) - 3601)
    Session.objects.all().delete()  # expired unused, and purged
    new = {"old_password": PASSWORD, "new_password1": "N3w-pass-word", "new_password2": "x"}
    response = client.post("/accounts/password_change/", new, follow=True)
    assert (
        "You were logged out after 60 minutes without use: what you sent was not saved."
        in response.content.decode()
    )


def test_a_session_ended_elsewhere_is_not_said_to_have_gone_unused(customer):
    """Logged out everywhere, or a new password, from another browser: the shared PC's next
    page does not blame an hour without use."""
    shared_pc, home = Client(), Client()
    log_in(shared_pc, customer)
    shared_pc.get("/licenses/")
    log_in(home, customer)
    new = "A-new-password-for-home-3"
    home.post(
        "/accounts/password_change/",
        {"old_password": PASSWORD, "new_password1": new, "new_password2": new},
    )
    page = shared_pc.get("/licenses/", follow=True).content.decode()
    assert "without use" not in page
    assert "Your log-in ended (you logged out everywhere, or the password was changed" in page


def test_support_is_logged_out_alike(support):
    client = Client()
    client.post("/admin/login/", {"username": support.username, "password": PASSWORD})
    assert client.get("/admin/").status_code == 200
    client.cookies["seen"] = str(int(time.time()) - 3601)
    Session.objects.update(expire_date=timezone.now() - timedelta(seconds=1))
    response = client.get("/admin/licensing/license/", follow=True)
    assert response.redirect_chain[0][0].startswith("/admin/login/")
    assert "You were logged out after 60 minutes without use." in response.content.decode()


def test_a_reset_link_opened_before_someone_logs_in_sets_nobody_elses_password(
    customer, organization
):
    """Alice opened her e-mailed link and was called away; Bob logs in as himself on the same
    PC and opens it from the history: it no longer sets her password. The page names the
    account it sets the password of."""
    alice = UserFactory(organization=organization, username="alice", email="alice@plant.example")
    client = Client()
    with TestCase.captureOnCommitCallbacks(execute=True):
        client.post("/accounts/password_reset/", {"email": alice.email})
    link = re.search(r"/accounts/reset/\S+", mail.outbox[-1].body).group()
    form = client.get(link, follow=True)
    page = form.content.decode()
    assert "Choose your password" in page
    assert "For the account alice (alice@plant.example)." in page
    set_password = form.redirect_chain[-1][0]

    log_in(client, customer)  # Bob, as himself
    page = client.get(set_password).content.decode()
    assert "This link is no longer valid" in page
    new = {"new_password1": "Bobs-choice-for-alice-7", "new_password2": "Bobs-choice-for-alice-7"}
    client.post(set_password, new)
    alice.refresh_from_db()
    assert alice.check_password(PASSWORD)


def test_a_log_in_page_left_open_logs_the_next_person_in_as_themselves(customer, organization):
    """The log-in page was open in one tab when Demo logged in in another; Bob types his own
    name and password in the first: he is not taken into Demo's session."""
    bob = UserFactory(organization=organization, username="bob", email="bob@plant.example")
    client = Client(enforce_csrf_checks=True)
    client.force_login(customer)  # the other tab
    form = {"username": "bob", "password": PASSWORD, "csrfmiddlewaretoken": "stale"}
    response = client.post("/accounts/login/?next=/activate/", form, follow=True)
    assert response.redirect_chain == [("/accounts/login/?next=/activate/", 302)]
    page = response.content.decode()
    assert response.context["user"] == customer  # nothing done as Bob, nothing as Demo
    assert (
        f"That log-in page had expired: {customer.username} logged in since, in this or "
        "another tab. To log in as bob, enter the password again."
    ) in page
    # Logging in from the fresh page replaces Demo's session with Bob's.
    token = client.cookies[settings.CSRF_COOKIE_NAME].value
    response = client.post(
        "/accounts/login/?next=/activate/", {**form, "csrfmiddlewaretoken": token}
    )
    assert response.status_code == 302 and response["Location"] == "/activate/"
    assert client.get("/licenses/").context["user"] == bob
    # Typed as the one logged in (the name or e-mail address, in any case): on, as before.
    client.force_login(customer)
    form["username"] = customer.email.upper()
    response = client.post("/accounts/login/?next=/activate/", form)
    assert response["Location"] == "/activate/"


def test_the_search_box_is_not_filled_in_for_the_next_person(customer_client, make_license):
    make_license("standard")
    page = customer_client.get("/licenses/").content.decode()
    box = re.search(r'<input[^>]*name="q"[^>]*>', page).group()
    assert 'autocomplete="off"' in box


def test_a_password_change_says_it_ended_the_other_sessions(customer):
    shared_pc, home = Client(), Client()
    log_in(shared_pc, customer)
    log_in(home, customer)
    new = "A-new-password-for-home-3"
    response = home.post(
        "/accounts/password_change/",
        {"old_password": PASSWORD, "new_password1": new, "new_password2": new},
        follow=True,
    )
    assert "logged out everywhere else" in response.content.decode()
    assert shared_pc.get("/licenses/").status_code == 302


def test_a_user_logs_out_everywhere_without_changing_the_password(customer, organization):
    """Left logged in on the shared PC, the engineer logs out of every browser from home;
    a colleague's session stays, and the trail says it."""
    from licensing.models import AuditEvent

    colleague = UserFactory(organization=organization)
    shared_pc, home, theirs = Client(), Client(), Client()
    for client, user in ((shared_pc, customer), (home, customer), (theirs, colleague)):
        log_in(client, user)
    for page in ("/accounts/logout/", "/accounts/password_change/"):
        assert 'name="everywhere"' in home.get(page).content.decode(), page
    response = home.post("/accounts/logout/", {"everywhere": "1"}, follow=True)
    assert "You are logged out in every browser" in response.content.decode()
    assert shared_pc.get("/licenses/").status_code == 302
    assert home.get("/licenses/").status_code == 302
    assert theirs.get("/licenses/").status_code == 200
    event = AuditEvent.objects.get(action="log_out_everywhere")
    assert event.actor == customer and event.organization == organization
    assert event.details == {"sessions": 2}


def test_a_seen_cookie_from_elsewhere_neither_ends_a_session_in_use_nor_breaks_a_page(customer):
    """Set by another site of a parent domain, or a clock set back: a time ahead, or a number
    too long to read, is taken as not known (the session's end is moved on)."""
    client = Client()
    log_in(client, customer)
    for forged in (str(int(time.time()) + 10**9), "9" * 5000, "-5", "soon"):
        client.cookies["seen"] = forged
        Session.objects.update(expire_date=timezone.now() + timedelta(minutes=2))
        assert client.get("/licenses/").status_code == 200
        assert Session.objects.get().expire_date - timezone.now() > timedelta(minutes=59)
    assert client.get("/accounts/login/").status_code == 200


def test_after_the_session_ended_log_out_and_a_session_from_before_say_no_more_than_known(
    customer,
):
    client = Client()
    log_in(client, customer)
    client.get("/licenses/")
    client.cookies["seen"] = str(int(time.time()) - 3601)
    Session.objects.all().delete()
    page = client.post("/accounts/logout/", follow=True).content.decode()
    assert "not saved" not in page and "without use" not in page
    # A session given before its end was moved on by the cookie: why is not known.
    log_in(client, customer)
    del client.cookies["seen"]
    Session.objects.all().delete()
    page = client.get("/licenses/", follow=True).content.decode()
    assert "Your log-in ended." in page and "without use" not in page


def test_sessions_are_kept_in_the_database(settings):
    """A session's end is moved on by its row, and a log-out everywhere reads the rows: an
    engine that keeps them elsewhere is refused."""
    from licensing.checks import sessions_in_the_database

    assert sessions_in_the_database(None) == []
    settings.SESSION_ENGINE = "django.contrib.sessions.backends.cache"
    (error,) = sessions_in_the_database(None)
    assert error.id == "licensing.E005" and "kept in the database" in error.msg
