"""Support staff in the Django admin: search, history, and audited, permission-checked actions."""

import re

import pytest
from django.contrib.auth.models import Group
from django.db import connection
from django.test.utils import CaptureQueriesContext

import tmslicense
from licensing import services
from licensing.models import Activation, AuditEvent
from tests.factories import UserFactory


@pytest.fixture
def support(db):
    user = UserFactory(is_staff=True)
    user.groups.add(Group.objects.get(name="support"))
    return user


@pytest.fixture
def support_client(client, support):
    client.force_login(support)
    return client


@pytest.fixture
def live(make_license, customer):
    activation, _ = services.activate(
        license=make_license("mirrored"),
        installation_id=tmslicense.new_installation_id(),
        mirrored_installation_id=tmslicense.new_installation_id(),
        actor=customer,
    )
    return activation


def test_support_group_has_exactly_the_permissions_it_needs(db):
    codenames = set(
        Group.objects.get(name="support").permissions.values_list("codename", flat=True)
    )
    assert {
        "view_license",
        "change_license",
        "revoke_activation",
        "reissue_activation",
        "view_auditevent",
    } <= codenames
    assert not {c for c in codenames if c.startswith("delete_")}
    assert "add_activation" not in codenames and "change_activation" not in codenames
    assert not {c for c in codenames if c.endswith("_user") or c.endswith("_group")}


@pytest.mark.parametrize("which", ["installation_id", "mirrored_installation_id", "number"])
def test_support_finds_a_license_by_either_installation_id_or_number(
    support_client, live, make_license, which
):
    make_license("standard")  # another license that must not match
    term = live.license.number if which == "number" else getattr(live, which)
    response = support_client.get(
        "/admin/licensing/license/", {"q": term.lower().replace("-", " ")}
    )
    assert response.status_code == 200
    assert list(response.context["cl"].result_list) == [live.license]


def test_activations_are_found_by_a_pasted_id_and_filtered_live_or_revoked(
    support_client, live, customer
):
    pasted = live.mirrored_installation_id.lower().replace("-", "")
    found = support_client.get("/admin/licensing/activation/", {"q": pasted})
    assert list(found.context["cl"].result_list) == [live]
    new = services.reissue(activation=live, actor=customer)
    for value, expected in (("yes", [new]), ("no", [live])):
        page = support_client.get("/admin/licensing/activation/", {"live": value})
        assert list(page.context["cl"].result_list) == expected


def test_license_page_shows_activation_history_inline(support_client, live):
    page = support_client.get(f"/admin/licensing/license/{live.license_id}/change/")
    assert page.status_code == 200
    body = page.content.decode()
    assert live.serial in body and live.mirrored_installation_id in body


def test_license_page_reads_its_history_in_a_fixed_number_of_queries(
    support_client, live, customer, django_assert_max_num_queries
):
    """Who issued each file, what replaced it and who acted in the history are read along
    with the rows, not once per row."""
    url = f"/admin/licensing/license/{live.license_id}/change/"
    support_client.get(url)  # warm: content types, permissions
    with CaptureQueriesContext(connection) as one:
        support_client.get(url)
    activation = live
    for _ in range(5):
        activation = services.reissue(activation=activation, actor=customer)
    with django_assert_max_num_queries(len(one)):
        page = support_client.get(url)
    assert activation.serial in page.content.decode()


def test_issued_files_are_read_only(support_client, live):
    response = support_client.post(
        f"/admin/licensing/activation/{live.pk}/change/", {"license_file": "tampered"}
    )
    assert response.status_code == 403
    live.refresh_from_db()
    assert live.license_file.startswith("-----BEGIN TMS LICENSE FILE-----")


def test_revoke_requires_a_reason_and_is_audited(support_client, support, live):
    url = f"/admin/licensing/activation/{live.pk}/revoke/"
    page = support_client.get(url).content.decode()
    back = f'href="/admin/licensing/license/{live.license_id}/change/"'
    assert page.count(back) == 2  # the breadcrumb to the license, and Cancel
    assert "can be activated again" in page and live.license.organization.name in page
    response = support_client.post(url, {"reason": ""})
    assert response.status_code == 200
    assert "reason" in response.content.decode()
    live.refresh_from_db()
    assert live.is_live

    response = support_client.post(url, {"reason": "Hardware returned"}, REMOTE_ADDR="10.1.2.3")
    assert response.status_code == 302
    live.refresh_from_db()
    assert not live.is_live and live.revoked_by == support
    event = AuditEvent.objects.get(action="revoke")
    assert event.actor == support and event.ip_address == "10.1.2.3"


def test_reissue_and_correct_are_audited(support_client, support, live, keyring):
    support_client.post(f"/admin/licensing/activation/{live.pk}/reissue/", {})
    reissued = live.license.live_activation
    assert reissued.serial != live.serial

    fixed = tmslicense.new_installation_id()
    response = support_client.post(
        f"/admin/licensing/activation/{reissued.pk}/correct/",
        {"mirrored_installation_id": fixed.lower(), "reason": "Typo in the secondary ID"},
    )
    assert response.status_code == 302
    corrected = live.license.live_activation
    assert corrected.installation_ids == (live.installation_id, fixed)
    tmslicense.verify_license(corrected.license_file, keyring, fixed)
    actions = list(AuditEvent.objects.filter(actor=support).values_list("action", flat=True))
    assert sorted(actions) == ["correct_installation_id", "reissue"]


def test_correct_with_a_mistyped_id_writes_nothing(support_client, live):
    bad = live.installation_id[:-1] + ("0" if live.installation_id[-1] != "0" else "1")
    response = support_client.post(
        f"/admin/licensing/activation/{live.pk}/correct/",
        {"installation_id": bad, "reason": "fix"},
    )
    assert response.status_code == 200
    assert "typo" in response.content.decode()
    assert Activation.objects.count() == 1 and live.license.live_activation == live


def test_staff_without_the_permission_cannot_revoke(client, live):
    clerk = UserFactory(is_staff=True)
    client.force_login(clerk)
    response = client.post(f"/admin/licensing/activation/{live.pk}/revoke/", {"reason": "x"})
    assert response.status_code == 403
    assert "Not allowed" in response.content.decode()  # the site's page, not a bare one
    live.refresh_from_db()
    assert live.is_live


def test_customer_cannot_reach_the_admin(customer_client, live):
    response = customer_client.get(f"/admin/licensing/activation/{live.pk}/revoke/")
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


def test_license_changes_are_audited(support_client, support, live):
    lic = live.license
    response = support_client.post(
        f"/admin/licensing/license/{lic.pk}/change/",
        {
            "product": lic.product,
            "edition": lic.edition,
            "seats": 40,
            "features": '["relevance"]',
            "maintenance_end": "2030-01-31",
            "expires_at_0": "",
            "expires_at_1": "",
            "status": "suspended",
            "activations-TOTAL_FORMS": 0,
            "activations-INITIAL_FORMS": 0,
            "audit_events-TOTAL_FORMS": 0,
            "audit_events-INITIAL_FORMS": 0,
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    event = AuditEvent.objects.get(action="license_change")
    assert event.actor == support
    assert set(event.details["changed"]) >= {"seats", "status", "maintenance_end"}
    # Seats and maintenance end are in the file the servers use: support is told to reissue.
    page = support_client.get(response["Location"]).content.decode()
    assert f"The license file in use ({live.serial}) still has the old values" in page
    assert f"/admin/licensing/activation/{live.pk}/reissue/" in page


def test_support_sees_failed_email_and_sends_it_again(
    support_client, support, live, django_capture_on_commit_callbacks
):
    from unittest import mock

    from licensing.models import OutboxMessage

    message = OutboxMessage.objects.get()
    OutboxMessage.objects.filter(pk=message.pk).update(
        status="failed", attempts=6, last_error="SMTPServerDisconnected"
    )
    page = support_client.get("/admin/licensing/outboxmessage/", {"status__exact": "failed"})
    assert "SMTPServerDisconnected" in page.content.decode()
    with (
        mock.patch("licensing.tasks.deliver_message.delay") as delay,
        django_capture_on_commit_callbacks(execute=True),
    ):
        response = support_client.post(
            "/admin/licensing/outboxmessage/",
            {"action": "send_again", "_selected_action": [message.pk]},
        )
    assert response.status_code == 302
    message.refresh_from_db()
    assert message.status == "pending" and message.attempts == 0
    delay.assert_called_once_with(message.pk)
    assert AuditEvent.objects.get(action="outbox_retry").actor == support


def test_membership_changes_are_audited(admin_client, admin_user, organization):
    newcomer = UserFactory()
    response = admin_client.post(
        f"/admin/licensing/organization/{organization.pk}/change/",
        {
            "name": organization.name,
            "created_at_0": "2026-01-01",
            "created_at_1": "00:00:00",
            "memberships-TOTAL_FORMS": 1,
            "memberships-INITIAL_FORMS": 0,
            "memberships-0-user": newcomer.pk,
            "memberships-0-organization": organization.pk,
        },
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    assert newcomer.membership.organization == organization
    event = AuditEvent.objects.get(action="membership_change")
    assert event.actor == admin_user
    assert event.details["added"] == [str(newcomer.membership)]


def test_licenses_are_filtered_by_when_maintenance_ends(support_client, make_license):
    from datetime import timedelta

    from django.utils import timezone

    today = timezone.localdate()
    days = (-1, 0, 30, 31, 90, 91)
    numbers = {d: make_license(maintenance_end=today + timedelta(days=d)).number for d in days}
    expected = {
        "ended": {-1},
        "30": {0, 30},
        "90": {0, 30, 31, 90},
        "later": {91},
    }
    for value, ends in expected.items():
        page = support_client.get("/admin/licensing/license/", {"maintenance": value})
        shown = {d for d, number in numbers.items() if number in page.content.decode()}
        assert shown == ends, value


def test_outbox_is_found_by_recipient(support_client, live, customer):
    url = "/admin/licensing/outboxmessage/"
    assert live.license.number in support_client.get(url, {"q": customer.email}).content.decode()
    page = support_client.get(url, {"q": "nobody@example.org"}).content.decode()
    assert live.license.number not in page


def test_renaming_an_organization_with_files_in_use_says_to_reissue(
    admin_client, live, customer, make_license, other_customer
):
    organization = live.license.organization
    unactivated = make_license("standard")
    elsewhere, _ = services.activate(
        license=make_license("standard", organization=other_customer.membership.organization),
        installation_id=tmslicense.new_installation_id(),
        actor=other_customer,
    )
    elsewhere = elsewhere.license
    membership = customer.membership
    response = admin_client.post(
        f"/admin/licensing/organization/{organization.pk}/change/",
        {
            "name": "Acme Packaging GmbH",
            "created_at_0": "2026-01-01",
            "created_at_1": "00:00:00",
            "memberships-TOTAL_FORMS": 1,
            "memberships-INITIAL_FORMS": 1,
            "memberships-0-id": membership.pk,
            "memberships-0-user": customer.pk,
            "memberships-0-organization": organization.pk,
        },
        follow=True,
    )
    page = response.content.decode()
    assert "1 license file(s) in use still name the customer as before" in page
    link = re.search(r'href="([^"]+)">Reissue them', page).group(1).replace("&amp;", "&")
    listed = admin_client.get(link).content.decode()
    assert live.license.number in listed
    assert unactivated.number not in listed and elsewhere.number not in listed


def test_adding_a_license_offers_a_fresh_number(admin_client, organization):
    from licensing.models import License

    page = admin_client.get("/admin/licensing/license/add/").content.decode()
    offered = re.search(r'name="number" value="([^"]+)"', page).group(1)
    assert tmslicense.normalize_license_number(offered) == offered
    again = re.search(
        r'name="number" value="([^"]+)"',
        admin_client.get("/admin/licensing/license/add/").content.decode(),
    ).group(1)
    assert again != offered
    response = admin_client.post(
        "/admin/licensing/license/add/",
        {
            "number": offered.lower().replace("-", " "),  # as typed from an order: stored canonical
            "organization": organization.pk,
            "kind": "standard",
            "product": "ThinManager",
            "edition": "Standard",
            "seats": 5,
            "features": "[]",
            "maintenance_end": "2030-01-31",
            "status": "active",
            "activations-TOTAL_FORMS": 0,
            "activations-INITIAL_FORMS": 0,
            "audit_events-TOTAL_FORMS": 0,
            "audit_events-INITIAL_FORMS": 0,
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    assert License.objects.get(number=offered).organization == organization
