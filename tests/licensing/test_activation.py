"""The activation flow through the wizard: one step for standard, two for mirrored and
enterprise, a signed file bound to the IDs, and nothing written on bad input."""

import re

import pytest
from django.contrib.messages import get_messages
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

import tmslicense
from licensing import services, throttle
from licensing.models import Activation, AuditEvent
from tests.factories import LicenseFactory, OrganizationFactory, UserFactory
from tests.licensing.wizard import STEP, step1, step2

OUT_OF_DATE = "was out of date: it had expired, was sent already, or step 1 was sent again"


@pytest.fixture
def ids():
    return tmslicense.new_installation_id(), tmslicense.new_installation_id()


def _download(client, lic):
    response = client.get(f"/licenses/{lic.number}/download/")
    assert response.status_code == 200
    assert response["Content-Disposition"] == f'attachment; filename="{lic.number}.lic"'
    return response.content


def test_activation_requires_login(client, db):
    response = client.get("/activate/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_standard_license_finishes_after_step_one(customer_client, make_license, ids, keyring):
    lic = make_license("standard")
    response = step1(customer_client, lic.number.lower().replace("-", " "), ids[0].lower())
    assert response.status_code == 302
    assert response["Location"] == f"/licenses/{lic.number}/"
    verified = tmslicense.verify_license(_download(customer_client, lic), keyring, ids[0])
    assert verified.kind is tmslicense.Kind.STANDARD
    assert verified.installation_ids == (ids[0],)
    assert verified.customer == "Acme Packaging"
    assert AuditEvent.objects.filter(action="activate", license=lic).count() == 1


@pytest.mark.parametrize(
    ("kind", "second_role"), [("mirrored", "mirror"), ("enterprise", "redundant")]
)
def test_mirrored_and_enterprise_licenses_ask_for_mirrored_installation_id(
    customer_client, make_license, ids, keyring, kind, second_role
):
    lic = make_license(kind)
    response = step1(customer_client, lic.number, ids[0])
    assert response.status_code == 200
    page = response.content.decode()
    assert "Step 2 of 2" in page
    assert "<title>Activate License, step 2 of 2 · " in page  # the step is said with the page
    assert "Mirrored Installation ID" in page
    assert 'id="live-activation"' not in page  # nothing on file to speak of
    assert not Activation.objects.exists()

    response = step2(customer_client, ids[1])
    assert response.status_code == 302
    [message] = get_messages(response.wsgi_request)
    assert str(message).endswith("add it on both ThinManager Servers.")
    text = _download(customer_client, lic)
    for installation_id in ids:
        verified = tmslicense.verify_license(text, keyring, installation_id)
        assert [(s.installation_id, s.role.value) for s in verified.servers] == [
            (ids[0], "primary"),
            (ids[1], second_role),
        ]
    detail = customer_client.get(f"/licenses/{lic.number}/").content.decode()
    assert ids[0] in detail and ids[1] in detail
    assert "primary" in detail and second_role in detail


def test_an_id_pasted_with_its_label_and_spaced_dashes_is_taken_whole(
    customer_client, make_license, ids
):
    """Copied from `tmslicense status` on the server, or read by a phone's text recognition
    with spaces around each dash: 65 characters, all of them taken (a field of 60 cut the
    paste and then said 16 characters were entered)."""
    lic = make_license("mirrored")
    spaced = " - ".join(ids[0].split("-"))
    pasted = f"Synchronized ThinManager Server: {spaced}"
    assert len(pasted) > 60
    page = step1(customer_client, lic.number, pasted).content.decode()
    assert "Step 2 of 2" in page
    assert 'maxlength="60"' not in page
    assert (
        step2(customer_client, f"Installation ID: {' - '.join(ids[1].split('-'))}").status_code
        == 302
    )
    assert Activation.objects.get().installation_ids == tuple(ids)


def test_the_steps_are_sent_to_the_activations_address(customer_client, make_license, ids):
    """Not to the page's own address: a send that fails (the Wi-Fi dropped) then leaves the
    step in the browser's history, and Back returns to it with what was typed."""
    lic = make_license("mirrored")
    for page in (customer_client.get("/activate/"), step1(customer_client, lic.number, ids[0])):
        assert '<form method="post" action="/activate/" novalidate>' in page.content.decode()


def test_mirrored_installation_id_must_differ(customer_client, make_license, ids):
    lic = make_license("mirrored")
    step1(customer_client, lic.number, ids[0])
    response = step2(customer_client, ids[0])
    assert response.status_code == 200
    said = response.context["form"].errors["mirrored_installation_id"][0]
    assert "secondary ThinManager Server" in said
    # The secondary may show the primary's ID indeed: a clone of it, which needs its own.
    assert "a copy of the primary" in said and "on the secondary only" in said
    assert not Activation.objects.exists()


@pytest.mark.parametrize(
    ("number", "installation_id", "field", "words"),
    [
        ("", "VALID", "license_number", "required"),
        ("TM-XXXX", "VALID", "license_number", "characters"),
        ("TYPO", "VALID", "license_number", "typo"),
        ("NUMBER", "", "installation_id", "required"),
        ("NUMBER", "AAAA-BBBB", "installation_id", "20 characters"),
        ("NUMBER", "UUUU-UUUU-UUUU-UUUU-UUUU", "installation_id", "never used"),
        ("NUMBER", "TYPO", "installation_id", "typo"),
    ],
)
def test_bad_input_gets_a_message_beside_the_field_and_writes_nothing(
    customer_client, make_license, ids, number, installation_id, field, words
):
    lic = make_license("standard")
    valid_id = ids[0]
    typo = lambda s: s[:-1] + ("0" if s[-1] != "0" else "1")  # noqa: E731
    number = {"NUMBER": lic.number, "TYPO": typo(lic.number)}.get(number, number)
    installation_id = {"VALID": valid_id, "TYPO": typo(valid_id)}.get(
        installation_id, installation_id
    )
    response = step1(customer_client, number, installation_id)
    assert response.status_code == 200
    errors = response.context["form"].errors[field]
    assert any(words in error for error in errors), errors
    assert not Activation.objects.exists()
    assert not AuditEvent.objects.exclude(action="log_in").exists()  # only the log-in


def test_a_typo_in_the_installation_id_is_said_before_the_number_is_looked_up(
    customer_client, ids, settings
):
    """A mistyped Installation ID is reported alone: the number is not looked up, so an
    engineer who sends the form again and again with it spends no guesses."""
    settings.ACTIVATION_FAILURE_LIMIT = 2
    unknown = tmslicense.new_license_number()
    typo = ids[0][:-1] + ("0" if ids[0][-1] != "0" else "1")
    for _ in range(3):
        response = step1(customer_client, unknown, typo)
        errors = response.context["form"].errors
        assert list(errors) == ["installation_id"], errors
        assert "typo" in errors["installation_id"][0]
    response = step1(customer_client, unknown, ids[0])  # the ID mended: now it is looked up
    assert "No license" in response.context["form"].errors["license_number"][0]


def test_unknown_and_foreign_numbers_get_the_same_message(
    customer_client, make_license, other_customer, ids
):
    foreign = LicenseFactory(organization=other_customer.membership.organization)
    unknown = tmslicense.new_license_number()
    messages = []
    for number in (foreign.number, unknown):
        response = step1(customer_client, number, ids[0])
        error = response.context["form"].errors["license_number"][0]
        messages.append(error.replace(number, "<n>"))
        assert 'id="license-link"' not in response.content.decode()
    assert messages[0] == messages[1]
    assert "No license" in messages[0]
    assert not Activation.objects.exists()


def test_activating_again_with_the_same_ids_is_a_redownload(customer_client, make_license, ids):
    lic = make_license("mirrored")
    step1(customer_client, lic.number, ids[0])
    step2(customer_client, ids[1])
    first = Activation.objects.get()
    step1(customer_client, lic.number, ids[0])
    response = step2(customer_client, ids[1])
    assert response.status_code == 302
    assert list(Activation.objects.all()) == [first]
    assert AuditEvent.objects.filter(action="activate").count() == 1
    [message] = get_messages(response.wsgi_request)
    assert str(message).endswith("for these servers: download its license file below.")
    # Activated again once the license changed: its file is the old one, and the way to a new.
    type(lic).objects.filter(pk=lic.pk).update(seats=lic.seats + 1)
    step1(customer_client, lic.number, ids[0])
    [message] = get_messages(step2(customer_client, ids[1]).wsgi_request)
    assert str(message).endswith(
        "its file was issued before the license changed; get an updated file below."
    )
    assert list(Activation.objects.all()) == [first]


def test_other_ids_while_live_are_refused_with_how_to_get_help(customer_client, make_license, ids):
    lic = make_license("standard")
    step1(customer_client, lic.number, ids[0])
    response = step1(customer_client, lic.number, tmslicense.new_installation_id())
    assert response.status_code == 200
    page = response.content.decode()
    assert "already activated" in page
    assert "contact support" in page
    assert "Step 1 of 2" in page  # as on the first visit, though the kind is known now
    assert _focused(response.content) == ["license-installation_id"]  # the refused field
    assert Activation.objects.count() == 1


def test_suspended_license_is_refused(customer_client, make_license, ids):
    lic = make_license("standard", status="suspended")
    response = step1(customer_client, lic.number, ids[0])
    assert "suspended" in response.context["form"].errors["license_number"][0]
    assert not Activation.objects.exists()


def test_user_without_organization_finds_no_license(client, make_license, ids):
    from tests.factories import UserFactory

    lic = make_license("standard")
    client.force_login(UserFactory())
    response = step1(client, lic.number, ids[0])
    assert "No license" in response.context["form"].errors["license_number"][0]
    assert not Activation.objects.exists()


def test_failed_lookups_are_rate_limited(customer_client, make_license, ids, settings):
    settings.ACTIVATION_FAILURE_LIMIT = 3
    lic = make_license("standard")
    for _ in range(3):
        response = step1(customer_client, tmslicense.new_license_number(), ids[0])
        assert "No license" in response.context["form"].errors["license_number"][0]
    response = step1(customer_client, tmslicense.new_license_number(), ids[0])
    page = response.content.decode()
    assert "Too many license numbers" in page and "My licenses" in page
    assert '<div class="alert alert-block alert-danger" role="alert" id="form-errors">' in page
    # The page opens on the first field, which names the pause above as what describes it.
    field = re.search(r'<input[^>]*name="license-license_number"[^>]*>', page).group()
    assert "autofocus" in field and 'aria-describedby="form-errors ' in field
    assert (
        f"contact support at {settings.SUPPORT_EMAIL}"
        in response.context["form"].errors["__all__"][0]
    )  # who can lift it
    assert not Activation.objects.exists()
    # A number of the organization's own is no guess (My licenses lists it): it activates.
    assert step1(customer_client, lic.number, ids[0]).status_code == 302
    assert Activation.objects.get().license == lic


def test_one_users_mistakes_do_not_pause_colleagues_on_the_same_address(
    customer_client, organization, make_license, ids, settings
):
    settings.ACTIVATION_FAILURE_LIMIT, settings.ACTIVATION_FAILURE_LIMIT_PER_IP = 3, 5
    colleague = Client()  # same address (the test client's), another user
    colleague.force_login(UserFactory(organization=organization))
    for _ in range(3):
        step1(customer_client, tmslicense.new_license_number(), ids[0])
    lic = make_license("standard")
    guess = tmslicense.new_license_number
    assert "Too many" in step1(customer_client, guess(), ids[0]).content.decode()  # 4th: user's
    response = step1(colleague, guess(), ids[0])  # the address's fifth failure
    assert "No license" in response.context["form"].errors["license_number"][0]
    assert "Too many" in step1(colleague, guess(), ids[0]).content.decode()
    # The address is paused for guesses, not for the plant's own licenses.
    assert step1(colleague, lic.number, ids[0]).status_code == 302


def test_a_license_found_in_step_one_is_finished_while_look_ups_are_paused(
    customer_client, make_license, ids, settings, keyring
):
    """Step 2 checks step 1's number again; that is no guess, so a pause that began meanwhile
    (here: wrong numbers typed in another tab) does not stop it."""
    settings.ACTIVATION_FAILURE_LIMIT = 2
    lic = make_license("mirrored")
    step1(customer_client, lic.number, ids[0])
    first_tab = customer_client.wizard_run
    customer_client.wizard_run = ""
    for _ in range(3):
        step1(customer_client, tmslicense.new_license_number(), ids[0])
    paused = step1(customer_client, tmslicense.new_license_number(), ids[0])
    assert "Too many license numbers" in paused.content.decode()
    customer_client.wizard_run = first_tab
    assert step2(customer_client, ids[1]).status_code == 302
    verified = tmslicense.verify_license(_download(customer_client, lic), keyring, ids[1])
    assert verified.installation_ids == ids


def test_successful_lookups_are_not_counted(customer_client, make_license, settings):
    settings.ACTIVATION_FAILURE_LIMIT = 2
    licenses = [make_license("standard") for _ in range(3)]
    for lic in licenses:
        response = step1(customer_client, lic.number, tmslicense.new_installation_id())
        assert response.status_code == 302
    assert Activation.objects.count() == 3


def test_forms_are_csrf_protected(client, customer, make_license, ids):
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(customer)
    lic = make_license("standard")
    # No cookie (blocked, say): refused, and the page says so.
    response = step1(strict, lic.number, ids[0])
    assert response.status_code == 403 and "This page has expired" in response.content.decode()
    # Sent from a page loaded before logging in again (in another tab): back to the start,
    # with why; the browser's Back and reload would send the expired page again.
    page = strict.get("/activate/").content.decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    # A log-in in another tab sets a new token in the cookie, which the page's no longer matches.
    from django.conf import settings
    from django.middleware.csrf import _get_new_csrf_string

    strict.cookies[settings.CSRF_COOKIE_NAME] = _get_new_csrf_string()
    response = strict.post(
        "/activate/",
        {
            "csrfmiddlewaretoken": token,
            "activate_license_view-current_step": "license",
            "license-license_number": lic.number,
            "license-installation_id": ids[0],
        },
    )
    assert (response.status_code, response["Location"]) == (302, "/activate/")
    page = strict.get("/activate/").content.decode()
    assert "That activation page was sent after you logged in again" in page
    assert not Activation.objects.exists()
    # Elsewhere the page says so.
    response = strict.post(f"/licenses/{lic.number}/update-file/")
    assert response.status_code == 403 and "This page has expired" in response.content.decode()


def test_mirrored_license_live_for_another_primary_is_refused_at_step_one(
    customer_client, make_license, ids
):
    lic = make_license("mirrored")
    step1(customer_client, lic.number, ids[0])
    step2(customer_client, ids[1])
    response = step1(customer_client, lic.number, tmslicense.new_installation_id())
    page = response.content.decode()
    assert "Step 1 of 2" in page and 'name="mirrored-mirrored_installation_id"' not in page
    form = response.context["form"]
    assert form.errors["installation_id"] == [
        f"License {lic.number} is already activated for Installation IDs {ids[0]} (primary) "
        f"and {ids[1]} (secondary). To download its file again, enter {ids[0]} as the "
        f"Installation ID and {ids[1]} as the Mirrored Installation ID. To move the license to "
        "other servers, contact support at support@example.com with your license number."
    ]
    assert _focused(response.content) == ["license-installation_id"]
    assert f'href="/licenses/{lic.number}/">{lic.number}</a> has its current file' in page
    assert 'href="mailto:support@example.com"' in page
    assert Activation.objects.count() == 1


def test_the_secondary_servers_id_in_step_one_is_told_which_goes_where(
    customer_client, make_license, ids
):
    lic = make_license("enterprise")
    step1(customer_client, lic.number, ids[0])
    step2(customer_client, ids[1])
    response = step1(customer_client, lic.number, ids[1])
    form = response.context["form"]
    assert form.errors["installation_id"] == [
        f"License {lic.number} is activated with {ids[0]} as the primary server and {ids[1]} "
        f"as the secondary. To download its file again, enter {ids[0]} as the Installation ID "
        f"and {ids[1]} as the Mirrored Installation ID. To swap the servers' roles, contact "
        "support at support@example.com with your license number."
    ]
    assert Activation.objects.count() == 1


def _session_writes(queries):
    """The session's data written (not its end moved on: portal.middleware)."""
    return [
        q
        for q in queries
        if q["sql"].startswith('UPDATE "django_session"') and '"session_data"' in q["sql"]
    ]


def test_the_session_is_written_only_when_the_wizard_state_changes(
    customer_client, make_license, ids
):
    standard, mirrored = make_license("standard"), make_license("mirrored")
    with CaptureQueriesContext(connection) as fresh_page:
        customer_client.get("/activate/")
    with CaptureQueriesContext(connection) as one_step:
        assert step1(customer_client, standard.number, ids[0]).status_code == 302
    with CaptureQueriesContext(connection) as two_steps:
        assert step1(customer_client, mirrored.number, ids[0]).status_code == 200
        assert step2(customer_client, ids[1]).status_code == 302
    assert _session_writes(fresh_page) == _session_writes(one_step) == []
    # Step 1 of two stores the license number; the last step clears it again.
    assert len(_session_writes(two_steps)) == 2
    assert Activation.objects.count() == 2


def _activation_reads(queries):
    return [q for q in queries if q["sql"].startswith('SELECT "licensing_activation".')]


def test_a_license_read_tells_whether_an_activation_is_live(customer_client, make_license, ids):
    """The look-up and the locked re-read carry the live activation's id: a first activation
    reads no activation but the pair's other licenses (is the primary paired already, for
    step 2's page; is one the other way round?); a re-download reads the live one where it
    is checked."""
    lic = make_license("mirrored")
    with CaptureQueriesContext(connection) as first:
        assert step1(customer_client, lic.number, ids[0]).status_code == 200
        assert step2(customer_client, ids[1]).status_code == 302
    with CaptureQueriesContext(connection) as again:
        assert step1(customer_client, lic.number, ids[0]).status_code == 200
        assert step2(customer_client, ids[1]).status_code == 302
    paired, pair = _activation_reads(first)  # step 2's page; whether a pair shares a server
    assert '"installation_id" = ' in paired["sql"]
    assert '"mirrored_installation_id" IN' in pair["sql"]
    # Step 1's early check and step 2's page, then step 2's: step 1 again, the locked re-read.
    assert len(_activation_reads(again)) == 4
    assert Activation.objects.count() == 1


def test_a_step_asked_for_again_at_its_own_address_is_shown_again(
    customer_client, customer, make_license, ids, monkeypatch
):
    """Reload and Back ask for a step at its page's own address (site.js): the step of the
    run under way, as it was, with nothing written; the address of a run finished, unknown,
    or of another session is a fresh start."""
    lic = make_license("mirrored")
    # A page with nothing kept is at its own address (the license's Activate button's too).
    fresh = customer_client.get(f"/activate/?number={lic.number}").content.decode()
    assert 'rel="canonical"' not in fresh and f'value="{lic.number}"' in fresh
    page = step1(customer_client, lic.number, ids[0]).content.decode()
    run = customer_client.wizard_run
    assert f'<link rel="canonical" href="/activate/?wizard_run={run}">' in page
    with CaptureQueriesContext(connection) as again:
        page = customer_client.get(f"/activate/?wizard_run={run}").content.decode()
    assert "Step 2 of 2" in page and ids[0] in page and f'value="{run}"' in page
    assert _session_writes(again) == []
    colleague = Client()
    colleague.force_login(UserFactory(organization=lic.organization))
    page = colleague.get(f"/activate/?wizard_run={run}").content.decode()
    assert "Step 1 of 2" in page and lic.number not in page and run not in page

    # Step 1 again by the wizard's Back: reloaded, as it was; asked for, it counts no try
    # of a number (one moved away meanwhile to another organization, say).
    step2(customer_client, "", back="license")
    monkeypatch.setattr(throttle, "record", lambda *args, **kwargs: pytest.fail("counted"))
    page = customer_client.get(f"/activate/?wizard_run={run}").content.decode()
    assert "Step 1 of 2" in page and f'value="{lic.number}"' in page and ids[0] in page
    lic.organization = OrganizationFactory()
    lic.save()
    assert "No license" in customer_client.get(f"/activate/?wizard_run={run}").content.decode()
    lic.organization = customer.membership.organization
    lic.save()
    monkeypatch.undo()
    step1(customer_client, lic.number, ids[0])
    assert step2(customer_client, ids[1]).status_code == 302  # the run goes on
    run = customer_client.wizard_run
    for gone in (run, "0123456789abcdef"):  # finished; unknown
        page = customer_client.get(f"/activate/?wizard_run={gone}").content.decode()
        assert "Step 1 of 2" in page and gone not in page
    assert Activation.objects.get().installation_ids == ids


def test_two_tabs_activate_two_licenses_without_mixing_them(customer_client, make_license):
    first, second = make_license("mirrored"), make_license("enterprise")
    a = tmslicense.new_installation_id(), tmslicense.new_installation_id()
    b = tmslicense.new_installation_id(), tmslicense.new_installation_id()
    # Each tab opens the page (its own run), and both are at step 2 before either finishes.
    step1(customer_client, first.number, a[0])
    tab_a = customer_client.wizard_run
    customer_client.wizard_run = ""
    step1(customer_client, second.number, b[0])
    tab_b = customer_client.wizard_run
    assert tab_a != tab_b

    customer_client.wizard_run = tab_a
    assert step2(customer_client, a[1]).status_code == 302
    customer_client.wizard_run = tab_b
    assert step2(customer_client, b[1]).status_code == 302
    assert Activation.objects.get(license=first).installation_ids == a
    assert Activation.objects.get(license=second).installation_ids == b


def test_step_two_goes_back_to_step_one_when_its_answer_no_longer_holds(
    customer_client, make_license, ids
):
    lic = make_license("mirrored")
    step1(customer_client, lic.number, ids[0])
    lic.status = lic.Status.SUSPENDED  # by support, while the customer is at step 2
    lic.save()
    response = step2(customer_client, ids[1])
    page = response.content.decode()
    assert response.status_code == 200
    assert "Step 1 of 2" in page and "is suspended" in page
    assert "Enter the Installation ID" not in page
    assert not Activation.objects.exists()


def test_back_from_step_two_keeps_what_was_typed_there(customer_client, make_license, ids):
    lic = make_license("mirrored")
    other = make_license("mirrored")
    step1(customer_client, lic.number, ids[0])
    typed = ids[1].lower()  # unchecked until step 2 is sent
    back = step2(customer_client, typed, back="license")
    page = back.content.decode()
    assert "Step 1 of 2" in page and lic.number in page and ids[0] in page
    assert not Activation.objects.exists()

    # Step 1 again (here with another license): step 2 shows what was typed, with no error.
    page = step1(customer_client, other.number, ids[0]).content.decode()
    assert "Step 2 of 2" in page and f'value="{typed}"' in page
    assert "invalid-feedback" not in page
    assert step2(customer_client, typed).status_code == 302
    assert Activation.objects.get().license == other


def test_a_step_two_page_left_behind_by_back_activates_nothing(customer_client, make_license, ids):
    """Step 2 for X, Back, step 1 again for Y, then the browser's Back to the page of X: what
    is typed there must not activate Y, which that page never showed."""
    shown, other = make_license("mirrored"), make_license("enterprise")
    assert shown.number in step1(customer_client, shown.number, ids[0]).content.decode()
    old_page = customer_client.wizard_run
    step2(customer_client, "", back="license")
    assert other.number in step1(customer_client, other.number, ids[0]).content.decode()
    current_page = customer_client.wizard_run
    assert current_page != old_page

    customer_client.wizard_run = old_page
    page = step2(customer_client, ids[1]).content.decode()
    assert OUT_OF_DATE in page and "Step 1 of 2" in page
    assert not Activation.objects.exists()
    # The page of the license entered last still works.
    customer_client.wizard_run = current_page
    assert step2(customer_client, ids[1])["Location"] == f"/licenses/{other.number}/"
    assert Activation.objects.get().license == other


def test_a_step_two_sent_again_after_the_activation_leads_to_its_license(
    customer_client, make_license, ids
):
    lic = make_license("mirrored")
    step1(customer_client, lic.number, ids[0])
    assert step2(customer_client, ids[1]).status_code == 302
    response = step2(customer_client, ids[1].lower())  # the browser's Back, sent again
    assert response.status_code == 302 and response["Location"] == f"/licenses/{lic.number}/"
    shown = [str(m) for m in get_messages(response.wsgi_request)]
    assert shown[-1] == "That activation was finished already; here is its license."
    assert Activation.objects.get().installation_ids == ids
    # A browser does not restore the field (autocomplete="off"): sent empty, the same.
    assert step2(customer_client, "")["Location"] == f"/licenses/{lic.number}/"
    # Its Back button asks for step 1, and gets it, filled in as it was sent.
    page = step2(customer_client, "", back="license").content.decode()
    assert "Step 1 of 2" in page and f'value="{lic.number}"' in page and f'value="{ids[0]}"' in page
    # Back, another secondary typed (say, a typo noticed): not taken for the one on file; step 2
    # of the same license and primary answers it, beside the field, keeping what was typed.
    other = tmslicense.new_installation_id()
    page = step2(customer_client, other).content.decode()
    assert "Step 2 of 2" in page and "finished already" not in page
    assert "is activated for the primary server" in page and "To download its file again" in page
    assert f'value="{other}"' in page and 'id="live-activation"' not in page  # said once
    assert step2(customer_client, ids[1])["Location"] == f"/licenses/{lic.number}/"  # re-download
    assert Activation.objects.count() == 1
    # Once the license is free again (support revoked its file), that page activates the pair.
    services.revoke(activation=Activation.objects.get(), reason="Secondary replaced", actor=None)
    assert step2(customer_client, other)["Location"] == f"/licenses/{lic.number}/"
    assert Activation.objects.get(revoked_at=None).installation_ids == (ids[0], other)


def test_a_step_two_the_session_does_not_know_is_refused_clearly(
    customer_client, make_license, ids
):
    customer_client.wizard_run = "0123456789abcdef"  # expired, or from another session
    page = step2(customer_client, ids[1]).content.decode()
    assert OUT_OF_DATE in page and "Step 1 of 2" in page
    assert not Activation.objects.exists()


def test_unfinished_activations_kept_in_the_session_are_capped(customer_client, make_license, ids):
    tabs = []
    for _ in range(12):
        customer_client.wizard_run = ""  # a new tab each time
        step1(customer_client, make_license("mirrored").number, tmslicense.new_installation_id())
        tabs.append(customer_client.wizard_run)
    assert list(customer_client.session["wizard_activate_license_view_runs"]) == tabs[2:]
    customer_client.wizard_run = tabs[0]  # the oldest was dropped
    assert OUT_OF_DATE in step2(customer_client, ids[1]).content.decode()
    customer_client.wizard_run = tabs[2]
    assert step2(customer_client, ids[1]).status_code == 302


def test_the_session_keeps_only_a_steps_own_fields(customer_client, make_license, ids):
    """Whatever else a page sends (a forged field, a field repeated) is not kept: one
    customer could otherwise grow the session, and the database, by megabytes a request."""
    lic = make_license("mirrored")
    junk = "x" * 100_000
    customer_client.post(
        "/activate/",
        {
            STEP: "license",
            "license-license_number": ["TM-0000-0000-0001"] * 50 + [lic.number],
            "license-installation_id": ids[0],
            "junk": junk,
        },
    )
    runs = customer_client.session["wizard_activate_license_view_runs"]
    (run,) = runs.values()
    assert run["step_data"] == {
        "license": {"license-license_number": [lic.number], "license-installation_id": [ids[0]]}
    }
    assert len(str(runs)) < 1_000


def test_a_step_that_does_not_exist_is_a_bad_request(customer_client, make_license, ids):
    step1(customer_client, make_license("mirrored").number, ids[0])
    response = customer_client.post(
        "/activate/", {STEP: "bogus", "wizard_run": customer_client.wizard_run}
    )
    assert response.status_code == 400
    assert "Bad request" in response.content.decode()
    assert step2(customer_client, ids[1]).status_code == 302  # the activation goes on


def _focused(page: bytes) -> list[str]:
    """The names of the fields that open with the focus (autofocus)."""
    return [
        name.decode()
        for tag in re.findall(rb"<input[^>]*>", page)
        if b"autofocus" in tag
        for name in re.findall(rb'name="([^"]+)"', tag)
    ]


def test_each_page_opens_on_the_field_to_fill_in_or_correct(customer_client, make_license, ids):
    lic = make_license("mirrored")
    assert _focused(customer_client.get("/activate/").content) == ["license-license_number"]
    response = step1(customer_client, lic.number, ids[0][:-1] + "?")
    assert _focused(response.content) == ["license-installation_id"]
    assert b'id="license-link"' not in response.content  # only for a live license's refusal
    response = step1(customer_client, lic.number, ids[0])
    assert _focused(response.content) == ["mirrored-mirrored_installation_id"]
    response = step2(customer_client, ids[0])  # the same as the first: corrected here
    assert _focused(response.content) == ["mirrored-mirrored_installation_id"]


def test_activate_from_a_license_page_names_the_license(customer_client, make_license, ids):
    lic = make_license("standard")
    page = customer_client.get(f"/licenses/{lic.number}/").content.decode()
    assert f'href="/activate/?number={lic.number}"' in page
    response = customer_client.get(f"/activate/?number={lic.number}")
    assert f'value="{lic.number}"' in response.content.decode()
    assert _focused(response.content) == ["license-installation_id"]
    # Checked when sent, as if typed: another organization's number is not found.
    foreign = LicenseFactory()
    page = customer_client.get(f"/activate/?number={foreign.number}").content.decode()
    assert f'value="{foreign.number}"' in page and foreign.organization.name not in page
    response = step1(customer_client, foreign.number, ids[0])
    assert "No license" in response.content.decode()
    assert not Activation.objects.exists()


def test_ids_in_messages_stay_on_one_line(customer_client, customer, make_license, ids):
    lic = make_license("mirrored")
    services.activate(
        license=lic, installation_id=ids[0], mirrored_installation_id=ids[1], actor=customer
    )
    page = step1(customer_client, lic.number, tmslicense.new_installation_id()).content.decode()
    assert f'<span class="code">{ids[0]}</span>' in page
    assert f'<span class="code">{lic.number}</span>' in page
    # Beside a field: the secondary's ID typed as the first.
    page = step1(customer_client, lic.number, ids[1]).content.decode()
    beside = page.split('id="div_id_license-installation_id"')[1].split("</form>")[0]
    assert f'<span class="code">{ids[1]}</span>' in beside
    # In the refusal on the license's page.
    lic.status = lic.Status.SUSPENDED
    lic.save()
    page = customer_client.get(f"/licenses/{lic.number}/").content.decode()
    refusal = page.split('id="refusal">')[1].split("</div>")[0]
    assert f'<span class="code">{lic.number}</span> is suspended' in refusal


def test_another_secondary_is_refused_beside_step_twos_field_naming_the_one_on_file(
    customer_client, make_license, ids
):
    lic = make_license("mirrored")
    step1(customer_client, lic.number, ids[0])
    step2(customer_client, ids[1])
    other = tmslicense.new_installation_id()
    step1(customer_client, lic.number, ids[0])
    response = step2(customer_client, other)
    form = response.context["form"]
    assert form.errors["mirrored_installation_id"] == [
        f"License {lic.number} is activated for the primary server {ids[0]} with {ids[1]} as "
        f"the secondary. To download its file again, enter {ids[1]} as the Mirrored "
        "Installation ID. To move the license to other servers, contact support at "
        "support@example.com with your license number."
    ]
    page = response.content.decode()
    assert f'value="{other}"' in page  # what was typed stays
    # Said once: the note above the field, which said so before anything was typed (which
    # secondary is on file), gives way to the refusal beside it, which says it all.
    assert 'id="live-activation"' not in page
    page = step1(customer_client, lic.number, ids[0]).content.decode()
    assert 'id="live-activation"' in page and f">{ids[1]}</span> as the secondary" in page
    note = page.split('id="live-activation"')[1].split("</p>")[0]
    assert '<a href="mailto:support@example.com">' in note  # as in every other message
    assert f'for the primary server <span class="installation-id">{ids[0]}</span>, with' in page
    # The right ID finishes it.
    response = step2(customer_client, ids[1])
    assert response.status_code == 302
    assert Activation.objects.count() == 1


def test_a_server_is_in_one_pair_with_one_primary_for_all_its_licenses(
    customer_client, make_license, ids
):
    """A second two-server license on the same pair with the roles the other way round, or
    pairing one of its servers with a third, is refused: back on step 1, or about the
    secondary beside its field on step 2, to be sent again (under tmslicense a server is
    fully functional only with a duplicate of each license it mirrors: such a file could take
    the ThinManager interface from a primary, or from both servers); another customer's pair
    alike, naming neither its license nor a server the customer did not enter. The same pair
    in the same order is another license on it."""
    first = make_license("mirrored")
    step1(customer_client, first.number, ids[0])
    step2(customer_client, ids[1])
    third = tmslicense.new_installation_id()
    for kind, primary, secondary, field, said in (
        (
            "mirrored",
            ids[1],
            ids[0],
            "installation_id",
            (
                f"{ids[0]} is the primary server of this pair for license {first.number}, with "
                f"{ids[1]} as its secondary: a pair has one primary for all its licenses. Enter "
                f"{ids[0]} as the Installation ID and {ids[1]} as the Mirrored Installation ID."
            ),
        ),
        ("enterprise", ids[1], ids[0], "installation_id", "a pair has one primary"),
        (
            "mirrored",
            ids[1],
            third,
            "installation_id",
            (
                f"{ids[1]} is synchronized with {ids[0]} already (license {first.number}): a "
                "ThinManager Server is paired with one other server. To pair it with another "
                "server, contact support at support@example.com with your license number."
            ),
        ),
        (
            "enterprise",
            third,
            ids[0],
            "mirrored_installation_id",
            f"{ids[0]} is synchronized with {ids[1]}",
        ),
    ):
        lic = make_license(kind)
        step1(customer_client, lic.number, primary)
        response = step2(customer_client, secondary)
        form = response.context["form"]
        assert form.prefix == ("mirrored" if field.startswith("mirrored") else "license")
        assert said in form.errors[field][0], (kind, primary, secondary)
        assert lic.activations.count() == 0
    assert AuditEvent.objects.filter(action="activate").count() == 1
    # Refused on step 2, the activation goes on there with another secondary.
    fourth = tmslicense.new_installation_id()
    assert step2(customer_client, fourth)["Location"] == f"/licenses/{lic.number}/"
    assert lic.activations.get().installation_ids == (third, fourth)
    # Another customer's pair: neither its license nor its other server named.
    foreign = LicenseFactory(kind="mirrored")  # of an organization of its own
    others = tmslicense.new_installation_id(), tmslicense.new_installation_id()
    services.activate(
        license=foreign, installation_id=others[0], mirrored_installation_id=others[1], actor=None
    )
    lic = make_license("mirrored")
    step1(customer_client, lic.number, others[1])
    new = tmslicense.new_installation_id()
    [said] = step2(customer_client, new).context["form"].errors["installation_id"]
    assert said.startswith(
        f"{others[1]} is synchronized with another server already (a license of another customer)"
    )
    assert foreign.number not in said and others[0] not in said  # not the customer's to know
    # The same pair in the same order: another license on it.
    lic = make_license("enterprise")
    step1(customer_client, lic.number, ids[0])
    assert step2(customer_client, ids[1]).status_code == 302
    assert lic.activations.live().get().installation_ids == ids
