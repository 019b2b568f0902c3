"""Support staff in the Django admin: search, history, and audited, permission-checked actions."""

import csv
import html
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from django.contrib.admin import site
from django.contrib.auth.models import Group, Permission
from django.contrib.messages import get_messages
from django.contrib.staticfiles import finders
from django.db import connection
from django.test import Client, RequestFactory
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

import tmslicense
from licensing import services
from licensing.admin.common import SEARCH_WORDS, opened
from licensing.admin.licenses import LatestInline
from licensing.models import (
    Activation,
    AuditEvent,
    License,
    Membership,
    Organization,
    OutboxMessage,
    expiry_shown,
    listed_features,
)
from tests.conftest import require
from tests.factories import PASSWORD, LicenseFactory, OrganizationFactory, UserFactory
from tests.licensing.wizard import step1


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
        "add_license",
        "change_license",
        "revoke_activation",
        "reissue_activation",
        "view_auditevent",
        "lift_pauses",
        "invite_member",
        "deactivate_member",
        "add_organization",
        "change_organization",
    } <= codenames
    assert not {c for c in codenames if c.startswith("delete_")}
    assert "add_activation" not in codenames and "change_activation" not in codenames
    assert not {c for c in codenames if c.endswith("_user") or c.endswith("_group")}


def test_support_adds_a_customer_and_corrects_its_name_audited(support_client, support):
    form = {"name": "Harbor Mills", "memberships-TOTAL_FORMS": 0, "memberships-INITIAL_FORMS": 0}
    response = support_client.post("/admin/licensing/organization/add/", form)
    assert response.status_code == 302, response.content.decode()[:2000]
    added = Organization.objects.get(name="Harbor Mills")
    assert AuditEvent.objects.get(action="organization_create").actor == support
    url = f"/admin/licensing/organization/{added.pk}/change/"
    response = support_client.post(url, {**form, "name": "Harbour Mills", "opened": opened(added)})
    assert response.status_code == 302, response.content.decode()[:2000]
    event = AuditEvent.objects.get(action="organization_change")
    assert event.details["changed"] == {"name": ["Harbor Mills", "Harbour Mills"]}
    # Members stay invited by e-mail, never added as accounts here; nothing is deleted.
    page = support_client.get(url).content.decode()
    assert 'name="memberships-MAX_NUM_FORMS" value="0"' in page and "deletelink" not in page
    # The same customer twice, in other case or spacing, is refused; spaces count as one.
    for name in ("harbour mills", " Harbour  Mills "):
        response = support_client.post("/admin/licensing/organization/add/", {**form, "name": name})
        assert response.status_code == 200
        assert response.context["adminform"].form.errors["name"] == [
            "The organization Harbour Mills exists already: a customer is added once."
        ]
    renamed = {**form, "name": "Harbour   Mills  Ltd", "opened": opened(Organization.objects.get())}
    response = support_client.post(url, renamed)
    assert response.status_code == 302
    assert Organization.objects.get(pk=added.pk).name == "Harbour Mills Ltd"


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
    # The list shows why: the live file's servers.
    page = response.content.decode()
    assert f'class="installation-id">{live.mirrored_installation_id}</span> (mirror)' in page


def test_a_search_by_installation_id_keeps_each_columns_place_and_its_sort(
    support_client, live, make_license, customer
):
    """The list's sort is kept as a column's place (?o=4): found by a whole Installation ID,
    the list shows which files hold it beside each number, and every column where it was, so
    a sort chosen before (by state, say) sorts the same column after, and the other way."""
    url = "/admin/licensing/license/"
    plain = support_client.get(url, {"o": "4"}).context["cl"]
    searched = support_client.get(url, {"o": "4", "q": live.installation_id}).context["cl"]
    names = [getattr(c, "__name__", c) for c in plain.list_display]
    assert [getattr(c, "__name__", c) for c in searched.list_display] == names
    assert plain.get_ordering_field_columns() == searched.get_ordering_field_columns()
    page = support_client.get(url, {"q": live.installation_id}).content.decode()
    change = f"/admin/licensing/license/{live.license_id}/change/"
    assert (
        f'<a class="nowrap" href="{change}?_changelist_filters=q%3D{live.installation_id}">' in page
    )
    assert f"{live.serial} (live) as primary" in page
    # Its number is sorted by as before, and the files show for the ID copied with its role.
    assert 'class="sortable column-number' in page
    page = support_client.get(url, {"q": f"{live.installation_id}. (primary)"}).content.decode()
    assert f"{live.serial} (live) as primary" in page


def test_a_name_that_reads_as_a_license_number_is_searched_as_typed(support_client, make_license):
    name = "Metro Paper SA"
    assert tmslicense.normalize_license_number(name) == "TM-METR-0PAP-ERSA"
    lic = make_license(organization=OrganizationFactory(name=name))
    make_license()  # another organization's license, which must not match
    response = support_client.get("/admin/licensing/license/", {"q": name})
    assert list(response.context["cl"].result_list) == [lic]


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


def test_every_time_in_the_admin_says_utc(support_client, live, customer):
    """Support on the telephone with a plant in another time zone reads times as the
    customer's pages and e-mails write them: in UTC, and saying so."""
    services.revoke(activation=live, reason="Server scrapped", actor=customer)
    live.refresh_from_db()
    issued = f"{timezone.localtime(live.issued_at):%Y-%m-%d %H:%M} UTC"
    revoked = f"{timezone.localtime(live.revoked_at):%Y-%m-%d %H:%M} UTC"
    page = support_client.get(f"/admin/licensing/license/{live.license_id}/change/").text
    assert issued in page and f'revoked <span class="nowrap">{revoked}</span>' in page
    assert issued in support_client.get("/admin/licensing/activation/").text
    event = AuditEvent.objects.filter(action="revoke").get()
    trail = support_client.get("/admin/licensing/auditevent/").text
    assert f"{timezone.localtime(event.created_at):%Y-%m-%d %H:%M:%S} UTC" in trail  # to the second
    action_page = f"/admin/licensing/activation/{live.pk}/reissue/"
    assert f"revoked on {revoked}" in support_client.get(action_page).text
    found = support_client.get("/admin/licensing/license/", {"q": live.installation_id}).text
    assert f"{live.serial} (revoked {revoked})" in found


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
    assert '<label for="id_reason" class="required">Reason:</label>' in page  # shown required
    assert "members are told by e-mail" in page and "{#" not in page
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
    # The members' e-mail says when a server refuses the file, in the product's words.
    body = OutboxMessage.objects.get(key=f"revoked:{live.serial}").body
    assert "list of revoked license files (http://127.0.0.1:8000/revoked.txt)" in body
    assert "keeps working where it is installed" in body and "python" not in body


@pytest.mark.parametrize("action", ["revoke", "reissue"])
def test_a_reason_that_reorders_or_hides_text_is_refused_and_nothing_changes(
    support_client, live, action
):
    """The audit trail and support's pages show a reason as typed: a right-to-left override
    would show "Customer request" for another text. Line breaks are a reason's own."""
    url = f"/admin/licensing/activation/{live.pk}/{action}/"
    for reason in ("Customer \u202erequest", "Swap\u200bped", "Bell\x07"):
        response = support_client.post(url, {"reason": reason})
        assert response.status_code == 200
        assert "must not contain control characters" in response.content.decode()
    live.refresh_from_db()
    assert live.is_live and not AuditEvent.objects.filter(action=action).exists()
    response = support_client.post(url, {"reason": "Disk replaced.\r\nTicket 4711"})
    assert response.status_code == 302


def test_a_reason_that_reads_as_blank_is_no_reason(support_client, live):
    url = f"/admin/licensing/activation/{live.pk}/revoke/"
    # Joiners, a Hangul filler, the blank Braille pattern: letters of their own, shown as nothing.
    for reason in ("\u200d", "\u200c \u3164", "\u2800"):
        response = support_client.post(url, {"reason": reason})
        assert response.status_code == 200
        assert "Give a reason for the revocation." in response.content.decode(), reason
    live.refresh_from_db()
    assert live.is_live and not AuditEvent.objects.filter(action="revoke").exists()


@pytest.mark.parametrize("action", ["revoke", "reissue"])
def test_an_action_that_loses_to_a_new_file_meanwhile_names_the_new_file(
    support_client, customer, live, action, monkeypatch
):
    """Support sent the page while the file was live; the customer's updated file committed
    while support's request waited for the license's lock. "Already revoked" alone would read
    as done: the page says what replaced it (live, for the same servers)."""
    url = f"/admin/licensing/activation/{live.pk}/{action}/"
    live.license.seats += 1
    live.license.save()
    first = getattr(services, action)
    replaced = []

    def customer_first(**kwargs):  # the customer's request, between support's read and lock
        replaced.append(services.update_file(license=live.license, actor=customer))
        return first(**kwargs)

    monkeypatch.setattr(services, action, customer_first)
    response = support_client.post(url, {"reason": "stolen server, stop it"})
    page = response.content.decode()
    assert response.status_code == 200
    assert "This activation was revoked on" in page
    new = replaced[0]
    assert f'and replaced by\n  <a href="/admin/licensing/activation/{new.pk}/change/">' in page
    assert "Only a live activation can be revoked, reissued or corrected." in page
    new.refresh_from_db()
    assert new.is_live


@pytest.mark.parametrize(
    ("header", "recorded"),
    [
        ("203.0.113.7", "203.0.113.7"),
        ("198.51.100.66, 203.0.113.7", "203.0.113.7"),  # the first came with the request
        ("unknown", "10.9.8.7"),
        # A link-local address with its interface (the zone), which no address column holds.
        ("fe80::1234:5678:9abc:def0%enx00e04c680123", "fe80::1234:5678:9abc:def0"),
    ],
)
def test_behind_a_proxy_the_audit_records_the_clients_address(
    support_client, live, settings, header, recorded
):
    """The proxy's header names the client: the address the proxy added, last; those before it
    came with the request, and anyone can write them. One that holds no address is not taken
    for one (nor does it make the audited write fail)."""
    settings.CLIENT_IP_HEADER = "HTTP_X_FORWARDED_FOR"
    response = support_client.post(
        f"/admin/licensing/activation/{live.pk}/revoke/",
        {"reason": "Hardware returned"},
        REMOTE_ADDR="10.9.8.7",
        HTTP_X_FORWARDED_FOR=header,
    )
    assert response.status_code == 302
    assert AuditEvent.objects.get(action="revoke").ip_address == recorded


@pytest.mark.parametrize(
    ("remote", "recorded"),
    [
        ("fe80::1234:5678:9abc:def0%enx00e04c680123", "fe80::1234:5678:9abc:def0"),
        ("fe80::1%eth0", "fe80::1"),
        ("not an address", None),
    ],
)
def test_the_connections_address_is_recorded_without_its_interface(
    client, customer, remote, recorded
):
    """A log-in from a link-local address given with its interface: recorded (and the log-in
    audited) without it; an address that is none is not recorded."""
    response = client.post(
        "/accounts/login/",
        {"username": customer.username, "password": PASSWORD},
        REMOTE_ADDR=remote,
    )
    assert response.status_code == 302
    assert AuditEvent.objects.get(action="log_in").ip_address == recorded


def test_the_longest_names_fit_the_audit_trail(live, support):
    support.username, support.email = "u" * 150, "e" * 242 + "@example.com"
    support.save()
    services.revoke(activation=live, reason="Hardware returned", actor=support)
    recorded = AuditEvent.objects.get(action="revoke").actor_name
    assert recorded == f"{support.username} ({support.email})" and len(recorded) == 407


def test_the_audit_trail_names_a_staff_member_whose_account_was_deleted(
    admin_client, support, live
):
    services.revoke(activation=live, reason="Hardware returned", actor=support)
    name = f"{support.username} ({support.email})"
    support.delete()
    listed = admin_client.get("/admin/licensing/auditevent/", {"q": support.username})
    assert list(listed.context["cl"].result_list) == [AuditEvent.objects.get(action="revoke")]
    assert f'<td class="field-actor">{name}</td>' in listed.content.decode()


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
    actions = list(
        AuditEvent.objects.filter(actor=support)
        .exclude(action="log_in")
        .values_list("action", flat=True)
    )
    assert sorted(actions) == ["correct_installation_id", "reissue"]


def test_correcting_a_replaced_server_names_the_other_files_on_it(
    support_client, customer, make_license
):
    """A plant replaced its primary's hardware and calls for one license: its other licenses
    on the old server are named, on the page and once corrected (with a link to correct
    each), not left there unseen."""
    ids = tmslicense.new_installation_id(), tmslicense.new_installation_id()
    first, second = make_license("mirrored"), make_license("enterprise")
    for lic in (first, second):
        services.activate(
            license=lic, installation_id=ids[0], mirrored_installation_id=ids[1], actor=customer
        )
    live, other = first.activations.get(), second.activations.get()
    url = f"/admin/licensing/activation/{live.pk}/correct/"
    page = html.unescape(re.sub(r"<[^>]+>", " ", support_client.get(url).content.decode()))
    assert f"{second.number} is on these servers too" in page
    new = tmslicense.new_installation_id()
    response = support_client.post(
        url, {"installation_id": new, "reason": "Primary replaced"}, follow=True
    )
    [message] = [str(m) for m in response.context["messages"]]
    assert (
        f"{second.number} is on {ids[0]} too: "
        f'<a href="/admin/licensing/activation/{other.pk}/correct/">correct it</a> as well'
    ) in message


def test_revoking_a_two_server_file_says_both_servers_lose_it(support_client, live):
    """A plant calls: one of its two servers was stolen. Revoking the file takes it from the
    server kept too: the page says so, and that a correction takes it from one only."""
    page = html.unescape(
        support_client.get(f"/admin/licensing/activation/{live.pk}/revoke/").content.decode()
    )
    assert (
        f"Both servers, {live.installation_id} and {live.mirrored_installation_id}, stop using "
        "it once they have the list. To take it from one server only (stolen, broken, "
        "replaced), Correct an Installation ID instead" in page
    )


def test_correct_with_a_mistyped_id_writes_nothing(support_client, live):
    bad = live.installation_id[:-1] + ("0" if live.installation_id[-1] != "0" else "1")
    response = support_client.post(
        f"/admin/licensing/activation/{live.pk}/correct/",
        {"installation_id": bad, "reason": "fix"},
    )
    assert response.status_code == 200
    assert "typo" in response.content.decode()
    assert Activation.objects.count() == 1 and live.license.live_activation == live


def _refused(text: str) -> str:
    """What tmslicense says of an Installation ID typed as ``text``."""
    with pytest.raises(tmslicense.InvalidInstallationId) as refusal:
        tmslicense.normalize_installation_id(text)
    return refusal.value.message


def _field_row(body: str, name: str) -> str:
    """The HTML of a field's row on an action page: its label, box and errors."""
    row = re.search(rf'<div class="form-row errors field-{name}">(.*?)</div>\s*</div>', body, re.S)
    assert row, f"no error beside {name}"
    return row.group(1)


# How each ID is mistyped below: a character wrong (the check character finds it), cut short.
MISTYPED = {
    "installation_id": lambda typed: typed[:-1] + ("0" if typed[-1] != "0" else "1"),
    "mirrored_installation_id": lambda typed: typed[:9],
}


@pytest.mark.parametrize(
    ("mistyped", "reason"),
    [(["installation_id"], ""), (["installation_id", "mirrored_installation_id"], "  ")],
)
def test_correct_page_says_each_fields_problem_at_once_and_writes_nothing(
    support_client, live, mistyped, reason
):
    posted = {name: MISTYPED[name](getattr(live, name)) for name in mistyped}
    expected = {name: _refused(posted[name]) for name in mistyped}
    expected["reason"] = "Give a reason for the correction."
    activations, events = Activation.objects.count(), AuditEvent.objects.count()
    response = support_client.post(
        f"/admin/licensing/activation/{live.pk}/correct/", {**posted, "reason": reason}
    )
    assert response.status_code == 200
    assert response.context["form"].errors == {name: [m] for name, m in expected.items()}
    body = response.content.decode()
    for name, message in expected.items():
        row = _field_row(body, name)
        assert f'name="{name}"' in row and html.escape(message) in row
    assert (Activation.objects.count(), AuditEvent.objects.count()) == (activations, events)
    assert live.license.live_activation == live


def test_correct_page_asks_for_an_id_and_a_reason_at_once(support_client, live):
    opened = support_client.get(f"/admin/licensing/activation/{live.pk}/correct/")
    assert "<title>Correct an Installation ID | " in opened.content.decode()
    response = support_client.post(f"/admin/licensing/activation/{live.pk}/correct/", {})
    # Sent back with errors: its title says so first, as the admin's change forms' do.
    assert "<title>Error: Correct an Installation ID | " in response.content.decode()
    form = response.context["form"]
    assert form.non_field_errors() == ["Enter the corrected ID: the one that was mistyped."]
    assert form.errors["reason"] == ["Give a reason for the correction."]
    # The page opens where its first problem is said: above the IDs, on the first of them.
    assert "autofocus" in form.fields["installation_id"].widget.attrs
    assert "autofocus" not in form.fields["reason"].widget.attrs
    assert "Give a reason for the correction." in _field_row(response.content.decode(), "reason")
    assert (
        Activation.objects.count() == 1 and AuditEvent.objects.exclude(action="log_in").count() == 1
    )


def test_correct_page_says_half_a_swap_and_a_missing_reason_at_once(support_client, live):
    response = support_client.post(
        f"/admin/licensing/activation/{live.pk}/correct/",
        {"installation_id": live.mirrored_installation_id, "reason": ""},
    )
    errors = response.context["form"].errors
    assert "is already the secondary server's ID" in errors["installation_id"][0]
    assert errors["reason"] == ["Give a reason for the correction."]
    assert (
        Activation.objects.count() == 1 and AuditEvent.objects.exclude(action="log_in").count() == 1
    )


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


def opened_page(client, url) -> dict:
    """What a browser sends back of a page opened now: its hidden digest of what it showed."""
    page = client.get(url).content.decode()
    return {"opened": re.search(r'name="opened" value="(\w+)"', page).group(1)}


@pytest.mark.parametrize("what", ["license", "organization"])
def test_a_page_saved_over_a_change_made_since_it_was_opened_is_refused(
    support_client, support, live, what
):
    lic = live.license
    colleague = Client()
    other = UserFactory(is_staff=True)
    other.groups.set(support.groups.all())
    colleague.force_login(other)
    if what == "license":
        url = f"/admin/licensing/license/{lic.pk}/change/"
        mine, theirs = license_form(lic, seats=17), license_form(lic, seats=12)
    else:
        url = f"/admin/licensing/organization/{lic.organization_id}/change/"
        form = {"memberships-TOTAL_FORMS": 0, "memberships-INITIAL_FORMS": 0}
        mine, theirs = {**form, "name": "Acme Mills"}, {**form, "name": "Acme Paper"}
    mine |= opened_page(support_client, url)
    theirs |= opened_page(colleague, url)
    assert colleague.post(url, theirs).status_code == 302
    refused = support_client.post(url, mine)
    assert refused.status_code == 200
    assert refused.context["adminform"].form.non_field_errors() == [
        f"{lic if what == 'license' else 'Acme Paper'} was changed by someone else since this "
        "page was opened: nothing was saved. Open it again to see the change, then make yours."
    ]
    lic.refresh_from_db()
    assert (lic.seats, lic.organization.name) == (
        (12, lic.organization.name) if what == "license" else (lic.seats, "Acme Paper")
    )
    assert AuditEvent.objects.filter(action=f"{what}_change").count() == 1
    # Opened again, it is saved.
    assert support_client.post(url, mine | opened_page(support_client, url)).status_code == 302


def test_a_save_that_changes_nothing_leaves_a_colleagues_page_valid(
    support_client, support, make_license
):
    """Features stored in another order than the page lists them: saved as shown, nothing
    changed (nothing audited), and a colleague's page opened before is still saved."""
    lic = make_license("standard", features=["relevance", "multimonitor"])
    url = f"/admin/licensing/license/{lic.pk}/change/"
    colleague = Client()
    other = UserFactory(is_staff=True)
    other.groups.set(support.groups.all())
    colleague.force_login(other)
    theirs = license_form(lic, seats=12, features="multimonitor, relevance")
    theirs |= opened_page(colleague, url)
    mine = license_form(lic, features="multimonitor, relevance") | opened_page(support_client, url)
    assert support_client.post(url, mine).status_code == 302
    assert not AuditEvent.objects.filter(action="license_change").exists()
    assert colleague.post(url, theirs).status_code == 302
    assert License.objects.get(pk=lic.pk).seats == 12


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
            "status": "active",
            "activations-TOTAL_FORMS": 0,
            "activations-INITIAL_FORMS": 0,
            "audit_events-TOTAL_FORMS": 0,
            "audit_events-INITIAL_FORMS": 0,
            "opened": opened(lic),
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    event = AuditEvent.objects.get(action="license_change")
    assert event.actor == support
    assert set(event.details["changed"]) == {"seats", "maintenance end"}
    # Seats and maintenance end are in the file the servers use: support is told to reissue.
    page = support_client.get(response["Location"]).content.decode()
    assert f"The license file in use ({live.serial}) still has the old values" in page
    assert f"Seats: {live.issued_license.seats}" in page
    assert f"/admin/licensing/activation/{live.pk}/reissue/" in page


def test_a_change_that_no_file_carries_asks_for_no_reissue(support_client, live):
    lic = live.license
    url = f"/admin/licensing/license/{lic.pk}/change/"
    changed = license_form(lic, status="suspended", reason="Invoice unpaid")
    response = support_client.post(url, changed, follow=True)
    assert response.redirect_chain  # saved
    assert "still has the old values" not in response.content.decode()


def test_support_sees_failed_email_and_sends_it_again(
    support_client, support, live, django_capture_on_commit_callbacks
):
    from unittest import mock

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
    event = AuditEvent.objects.get(action="outbox_retry")
    # Named by its subject: its status then ("Failed") read as if sending it again failed.
    assert (event.actor, event.object_repr) == (support, message.subject)

    # Once its file is revoked, it is not sent again, and the page says why.
    OutboxMessage.objects.filter(pk=message.pk).update(status="failed")
    services.revoke(activation=live, reason="Server retired", actor=support)
    response = support_client.post(
        "/admin/licensing/outboxmessage/",
        {"action": "send_again", "_selected_action": [message.pk]},
        follow=True,
    )
    assert (
        f"is not sent again. Not sent: license file {live.serial} was revoked before it went out."
        in response.content.decode()
    )
    assert OutboxMessage.objects.get(pk=message.pk).status == "cancelled"
    assert AuditEvent.objects.filter(action="outbox_retry").count() == 1
    cancelled = AuditEvent.objects.get(action="outbox_cancel")  # a change too, audited
    assert cancelled.actor == support and cancelled.license == live.license
    assert cancelled.details["why"].endswith("was revoked before it went out.")
    # The trail finds each by the words it shows for it.
    for words, action in [
        ("Send  again", "outbox_retry"),
        ("send again: cancelled", "outbox_cancel"),
    ]:
        page = support_client.get("/admin/licensing/auditevent/", {"q": words})
        assert [e.action for e in page.context["cl"].result_list] == [action]


def test_a_member_notice_sent_again_is_in_its_organizations_trail(
    support, organization, customer, django_capture_on_commit_callbacks
):
    """A message of no license (here the members' notice of an invitation) is audited with
    the organization of the members it goes to: the organization's History shows it."""
    services.invite_member(organization=organization, email="eng@acme.example", actor=support)
    notice = OutboxMessage.objects.get(key__startswith="member-added:")
    OutboxMessage.objects.filter(pk=notice.pk).update(status="failed")
    notice.refresh_from_db()
    assert services.send_again(message=notice, actor=support) is None
    assert AuditEvent.objects.get(action="outbox_retry").organization == organization


def test_nothing_of_a_customers_record_can_be_deleted_even_by_a_superuser(
    admin_client, live, customer
):
    """A customer, its licenses, files, e-mails and audit trail stay (a deletion would be an
    unaudited change, and leave the trail's events naming nothing)."""
    organization = live.license.organization
    records = {
        "organization": organization,
        "license": live.license,
        "activation": live,
        "outboxmessage": live.license.messages.first(),
        "auditevent": AuditEvent.objects.filter(license=live.license).first(),
    }
    for name, record in records.items():
        url = f"/admin/licensing/{name}/"
        assert admin_client.get(f"{url}{record.pk}/delete/").status_code == 403, name
        listed = admin_client.get(url)
        assert "delete_selected" not in listed.content.decode(), name
        admin_client.post(
            url, {"action": "delete_selected", "_selected_action": [record.pk], "post": "yes"}
        )
        assert type(record).objects.filter(pk=record.pk).exists(), name
    assert Membership.objects.filter(user=customer, organization=organization).exists()


def test_membership_changes_are_audited(admin_client, admin_user, organization):
    def save_member_row(user, row=None):
        """The organization's page saved with one member row: a new one, or ``row`` changed."""
        return admin_client.post(
            f"/admin/licensing/organization/{organization.pk}/change/",
            organization_form(organization, rows=[(row, user)]),
        )

    newcomer = UserFactory()
    response = save_member_row(newcomer)
    assert response.status_code == 302, response.content.decode()[:3000]
    assert newcomer.membership.organization == organization
    event = AuditEvent.objects.get(action="membership_change")
    assert event.actor == admin_user
    assert event.details["added"] == [str(newcomer.membership)]
    # The row given another user: who lost access is on the trail too.
    other = UserFactory()
    was = str(newcomer.membership)
    response = save_member_row(other, row=newcomer.membership)
    assert response.status_code == 302, response.content.decode()[:3000]
    event = AuditEvent.objects.filter(action="membership_change").latest("pk")
    assert event.details == {
        "added": [],
        "replaced": [f"{was} → {other.membership}"],
        "deleted": [],
    }
    # Shown on the trail, with an event kept in the earlier form (rows "changed" as a list).
    AuditEvent.objects.create(
        action="membership_change", object_repr="old", details={"changed": [was]}
    )
    page = admin_client.get("/admin/licensing/auditevent/")
    assert page.status_code == 200
    assert f"replaced: {was} → {other.membership}" in page.content.decode()
    assert f"changed: {was}" in page.content.decode()
    # A member of another organization: the refusal names it, and what to do.
    elsewhere = UserFactory(organization=OrganizationFactory(name="Rival Foods"))
    response = save_member_row(elsewhere)
    assert response.status_code == 200
    text = " ".join(response.content.decode().split())
    assert f"{elsewhere.username} is a member of Rival Foods" in text
    assert "remove them there first" in text
    assert elsewhere.membership.organization.name == "Rival Foods"
    # Support staff belong to no customer: as a member, one would see that customer's licenses
    # as theirs and be sent its e-mails.
    response = save_member_row(admin_user)
    assert response.status_code == 200
    assert "is staff: staff belong to no customer organization" in response.content.decode()
    assert not Membership.objects.filter(user=admin_user).exists()
    # A member made staff since is said where that is chosen, not at every save of the
    # organization's page with their row unchanged.
    elsewhere.is_staff = True
    elsewhere.save()
    rival = elsewhere.membership.organization
    response = admin_client.post(
        f"/admin/licensing/organization/{rival.pk}/change/",
        organization_form(rival, "Rival Foods Ltd", rows=[(elsewhere.membership, elsewhere)]),
    )
    assert response.status_code == 302, response.content.decode()[:2000]


def test_licenses_on_pairs_that_share_a_server_are_listed(
    support_client, make_license, monkeypatch
):
    """Issued before activation refused them: support finds the two-server licenses whose
    servers another live two-server file pairs otherwise (the other way round, or one of
    them with a third server), any customer's (tmslicense 1.7.0 may take the console from
    one server or both); a pair in the same order, a revoked file and a one-server license
    are not listed."""
    monkeypatch.setattr(services, "check_pair", lambda lic, ids: None)  # issued before it
    a, b, c, d = (tmslicense.new_installation_id() for _ in range(4))

    def live(kind, *ids, organization=None):
        lic = make_license(kind, **({"organization": organization} if organization else {}))
        services.activate(
            license=lic,
            installation_id=ids[0],
            mirrored_installation_id="".join(ids[1:]),
            actor=None,
        )
        return lic

    first = live("mirrored", a, b)
    crossed = live("enterprise", b, a, organization=OrganizationFactory())
    same_order = live("mirrored", a, b)
    chained = live("mirrored", b, c)
    live("standard", c)
    alone = live("mirrored", d, tmslicense.new_installation_id())
    revoked = live("mirrored", d, a)
    services.revoke(activation=revoked.live_activation, reason="Retired", actor=None)
    page = support_client.get("/admin/licensing/license/", {"pair": "conflict"}).content.decode()
    # A number on its own, not "TM-…" inside an Installation ID shown (a group ending in TM).
    number = r"(?<![0-9A-Z-])TM-[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}(?![0-9A-Z-])"
    listed = set(re.findall(number, page))
    assert listed == {first.number, crossed.number, same_order.number, chained.number}
    assert alone.number not in listed


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
    original = organization.name
    unactivated = make_license("standard")
    elsewhere, _ = services.activate(
        license=make_license("standard", organization=other_customer.membership.organization),
        installation_id=tmslicense.new_installation_id(),
        actor=other_customer,
    )
    elsewhere = elsewhere.license
    membership = customer.membership

    def rename(name):
        response = admin_client.post(
            f"/admin/licensing/organization/{organization.pk}/change/",
            organization_form(organization, name, rows=[(membership, customer)]),
            follow=True,
        )
        assert response.status_code == 200
        return response.content.decode()

    page = rename("Acme Packaging GmbH")
    assert "1 license file(s) in use still name the customer as before" in page
    assert "suspended or expired" not in page
    link = re.search(r'href="([^"]+)">Reissue them', page).group(1).replace("&amp;", "&")
    listed = admin_client.get(link).content.decode()
    assert live.license.number in listed
    assert unactivated.number not in listed and elsewhere.number not in listed
    # The sidebar names the organization, whose filter can be cleared.
    sidebar = listed.split('id="changelist-filter"')[-1]
    assert "Acme Packaging GmbH</a></li>" in sidebar and "Clear all filters" in sidebar
    # Renamed back: the file in use has that name; nothing to reissue.
    page = rename(original)
    assert "as before" not in page
    # A suspended license's file cannot be reissued now: said apart.
    live.license.status = "suspended"
    live.license.save()
    page = rename("Acme Packaging AG")
    assert "still name the customer as before" not in page
    assert (
        "1 license file(s) in use of suspended or expired licenses name the customer as "
        "before: no new file goes out for them until they are active again." in page
    )


def test_support_adds_a_license_with_a_fresh_number(support_client, support, organization):
    """Support adds licenses from orders: the add page offers a fresh number."""
    from licensing.models import License

    admin_client = support_client
    page = admin_client.get("/admin/licensing/license/add/").content.decode()
    # No files, history or creation time before the license exists.
    assert "js-inline-admin-formset" not in page and "Created at" not in page
    offered = re.search(r'name="number" value="([^"]+)"', page).group(1)
    assert tmslicense.normalize_license_number(offered) == offered
    again = re.search(
        r'name="number" value="([^"]+)"',
        admin_client.get("/admin/licensing/license/add/").content.decode(),
    ).group(1)
    assert again != offered
    response = admin_client.post(
        "/admin/licensing/license/add/",
        # The number as typed from an order, longer than stored: stored canonical.
        new_license_form(organization, number=" - ".join(offered.lower().split("-"))),
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    added = License.objects.get(number=offered)
    assert added.organization == organization
    page = admin_client.get(f"/admin/licensing/license/{added.pk}/change/").content.decode()
    assert "js-inline-admin-formset" in page and "Created at" in page
    created = AuditEvent.objects.get(action="license_create")
    assert created.actor == support
    # Every value it was given, defaults included, the organization by name.
    values = created.details["values"]
    assert values["organization"] == organization.name and values["edition"] == "Standard"
    assert values["maintenance end"] == "2030-01-31" and values["features"] == []
    page = admin_client.get(f"/admin/licensing/auditevent/{created.pk}/change/").content.decode()
    assert f"organization: {organization.name}<br>" in page and "features: none" in page

    # An Installation ID pasted as the number: the library's own message, nothing saved.
    pasted = tmslicense.new_installation_id()
    response = admin_client.post(
        "/admin/licensing/license/add/", new_license_form(organization, number=pasted)
    )
    assert response.status_code == 200
    expected = ""
    try:
        tmslicense.normalize_license_number(pasted)
    except tmslicense.InvalidLicenseNumber as error:
        expected = error.message
    assert expected and expected in response.content.decode()
    assert License.objects.count() == 1


def new_license_form(organization, **values):
    """The license add form as the admin posts it: a standard license but for ``values``."""
    return {
        "number": tmslicense.new_license_number(),
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
        **values,
    }


def organization_form(organization, name=None, rows=()):
    """The organization change form as the admin posts it, its name ``name`` (unchanged when
    None) and one member row for each (membership, user) of ``rows`` (a new row: None)."""
    data = {
        "opened": opened(Organization.objects.get(pk=organization.pk)),  # the page opened now
        "name": organization.name if name is None else name,
        "created_at_0": "2026-01-01",
        "created_at_1": "00:00:00",
        "memberships-TOTAL_FORMS": len(rows),
        "memberships-INITIAL_FORMS": sum(row is not None for row, _ in rows),
    }
    for n, (row, user) in enumerate(rows):
        data[f"memberships-{n}-user"] = user.pk
        data[f"memberships-{n}-organization"] = organization.pk
        if row is not None:
            data[f"memberships-{n}-id"] = row.pk
    return data


def license_form(lic, **changes):
    """The license change form as the admin posts it, unchanged but for ``changes``."""
    return {
        "product": lic.product,
        "edition": lic.edition,
        "seats": lic.seats,
        "features": json.dumps(lic.features),
        "maintenance_end": lic.maintenance_end.isoformat(),
        "expires_at_0": "",
        "expires_at_1": "",
        "status": lic.status,
        "activations-TOTAL_FORMS": 0,
        "activations-INITIAL_FORMS": 0,
        "audit_events-TOTAL_FORMS": 0,
        "audit_events-INITIAL_FORMS": 0,
        "opened": opened(License.objects.get(pk=lic.pk)),  # the page opened now
        **changes,
    }


@pytest.mark.parametrize(
    "changes",
    [
        {"maintenance_end": "05/11/2032"},  # 11 May or 5 November?
        {"maintenance_end": "05/11/32"},
        {"expires_at_0": "01/07/2033"},
    ],
)
def test_dates_are_written_one_way_in_the_admin(support_client, live, changes):
    """Dates are typed as the site shows them (2032-11-05): a date in a day/month or
    month/day order (Django's American defaults read 01/07 as 7 January) is refused with the
    way to write it, and nothing is saved."""
    lic = live.license
    before = (lic.maintenance_end, lic.expires_at)
    response = support_client.post(
        f"/admin/licensing/license/{lic.pk}/change/", license_form(lic, **changes)
    )
    assert response.status_code == 200
    assert "written as 2032-11-05" in response.content.decode()
    lic.refresh_from_db()
    assert (lic.maintenance_end, lic.expires_at) == before
    assert not AuditEvent.objects.filter(action="license_change").exists()


def test_license_change_audit_says_what_each_field_was_and_became(support_client, live):
    lic = live.license
    response = support_client.post(
        f"/admin/licensing/license/{lic.pk}/change/",
        license_form(
            lic, status="suspended", seats=30, maintenance_end="2031-06-30", reason=" Audit "
        ),
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    assert AuditEvent.objects.get(action="license_change").details == {
        "reason": "Audit",
        "changed": {
            "status": ["active", "suspended"],
            "seats": [10, 30],
            "maintenance end": [lic.maintenance_end.isoformat(), "2031-06-30"],
        },
    }


def test_saving_a_license_unchanged_records_nothing(support_client, live):
    lic = live.license
    response = support_client.post(
        f"/admin/licensing/license/{lic.pk}/change/", license_form(lic, _continue="1")
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    assert not AuditEvent.objects.filter(action="license_change").exists()


def test_the_kind_of_a_saved_license_says_how_to_get_another(support_client, live):
    """A customer bought the wrong kind: the kind cannot change (it is in the files), and the
    page says what to do instead."""
    page = support_client.get(f"/admin/licensing/license/{live.license_id}/change/")
    text = " ".join(page.content.decode().split())
    assert "Mirrored" in text
    assert "For another kind, add a new license" in text


def test_a_reason_with_no_change_is_refused_not_dropped(support_client, live):
    """A reason is kept with the change it explains: typed alone (a note of a call, say), the
    page said the license was changed and the reason went nowhere."""
    lic = live.license
    url = f"/admin/licensing/license/{lic.pk}/change/"
    events = AuditEvent.objects.count()
    response = support_client.post(url, license_form(lic, reason="Customer asks about seats"))
    assert response.status_code == 200
    assert "Nothing else was changed" in response.context["adminform"].form.errors["reason"][0]
    assert AuditEvent.objects.count() == events
    # With a change, it is kept.
    response = support_client.post(url, license_form(lic, seats=12, reason="Two more seats"))
    assert response.status_code == 302
    assert AuditEvent.objects.get(action="license_change").details["reason"] == "Two more seats"


def test_people_are_shown_by_name_and_email_without_links_to_users(
    support_client, support, live, customer
):
    services.revoke(activation=live, reason="Hardware returned", actor=support)
    customer_shown = f"{customer.username} ({customer.email})"
    support_shown = f"{support.username} ({support.email})"
    pages = {
        f"/admin/licensing/license/{live.license_id}/change/": [customer_shown, support_shown],
        f"/admin/licensing/activation/{live.pk}/change/": [customer_shown, support_shown],
        f"/admin/licensing/auditevent/{AuditEvent.objects.get(action='revoke').pk}/change/": [
            support_shown
        ],
        f"/admin/licensing/organization/{customer.membership.organization_id}/change/": [
            customer_shown
        ],
    }
    for url, shown in pages.items():
        page = support_client.get(url)
        assert page.status_code == 200, url
        body = page.content.decode()
        assert all(person in body for person in shown), url
        assert "/admin/auth/user/" not in body, url


def test_correcting_a_standard_license_asks_for_its_one_installation_id_first(
    support_client, make_license, customer
):
    activation, _ = services.activate(
        license=make_license("standard"),
        installation_id=tmslicense.new_installation_id(),
        actor=customer,
    )
    page = support_client.get(f"/admin/licensing/activation/{activation.pk}/correct/")
    body = page.content.decode()
    assert list(page.context["form"].fields) == ["installation_id", "reason"]
    assert "Mirrored" not in body.split('<form method="post"')[1]
    assert body.index('name="installation_id"') < body.index('name="reason"')
    wide = re.search(r'<input[^>]*name="installation_id"[^>]*>', body).group(0)
    assert 'size="32"' in wide and 'class="monospace"' in wide
    assert ">Corrected Installation ID:</label>" in body  # no role for the one server
    # Its one ID is the one to correct: not to be left empty.
    assert f"Now {activation.installation_id}.<" in body and "Leave it empty" not in body
    same = support_client.post(
        f"/admin/licensing/activation/{activation.pk}/correct/",
        {"installation_id": activation.installation_id, "reason": "Typo"},
    )
    assert same.context["form"].non_field_errors() == [
        "The corrected Installation ID is the same as the current one."
    ]
    # The page opens on the ID, which names the refusal above it as what describes it.
    body = same.content.decode()
    field = re.search(r'<input[^>]*name="installation_id"[^>]*>', body).group(0)
    assert "autofocus" in field and 'aria-describedby="form-errors ' in field
    assert '<div id="form-errors">' in body


@pytest.mark.parametrize("typed_in", ["installation_id", "mirrored_installation_id"])
def test_one_servers_id_typed_in_the_others_field_says_how_to_swap(support_client, live, typed_in):
    other = "mirrored_installation_id" if typed_in == "installation_id" else "installation_id"
    response = support_client.post(
        f"/admin/licensing/activation/{live.pk}/correct/",
        {typed_in: getattr(live, other).lower(), "reason": "Typo"},
    )
    role = "secondary" if typed_in == "installation_id" else "primary"
    assert response.context["form"].errors[typed_in] == [
        f"{getattr(live, other)} is already the {role} server's ID. To swap the two servers, "
        "enter each one's ID in the other's field."
    ]
    # A new ID typed in both fields is no swap: the two must differ.
    new = tmslicense.new_installation_id()
    response = support_client.post(
        f"/admin/licensing/activation/{live.pk}/correct/",
        {"installation_id": new, "mirrored_installation_id": new, "reason": "Typo"},
    )
    errors = response.context["form"].errors["mirrored_installation_id"]
    assert errors and "is already" not in errors[0] and "same as the first" in errors[0]
    assert Activation.objects.count() == 1


def test_correct_page_shows_each_error_with_its_own_field(support_client, live):
    typo = live.mirrored_installation_id[:-1] + (
        "0" if live.mirrored_installation_id[-1] != "0" else "1"
    )
    response = support_client.post(
        f"/admin/licensing/activation/{live.pk}/correct/",
        {"mirrored_installation_id": typo, "reason": "Typo"},
    )
    body = response.content.decode()
    row = re.search(
        r'<div class="form-row errors field-mirrored_installation_id">(.*?)</div>\s*</div>',
        body,
        re.S,
    )
    assert row and "typo" in row.group(1) and 'name="mirrored_installation_id"' in row.group(1)
    assert 'class="form-row errors field-installation_id"' not in body
    mirrored = re.search(r'<input[^>]*name="mirrored_installation_id"[^>]*>', body).group(0)
    assert "autofocus" in mirrored  # the page opens on the field to correct
    first = re.search(r'<input[^>]*name="installation_id"[^>]*>', body).group(0)
    assert "autofocus" not in first
    assert body.index('name="mirrored_installation_id"') < body.index("typo")  # under it
    # Each field says which server it is for and what it holds now.
    assert "Corrected Mirrored Installation ID (secondary server)" in body
    assert f"Now {live.installation_id}. Leave it empty to keep it." in body
    assert f"Now {live.mirrored_installation_id}. Leave it empty to keep it." in body


def test_correcting_an_enterprise_pair_names_its_second_server_redundant(
    support_client, make_license, customer
):
    activation, _ = services.activate(
        license=make_license("enterprise"),
        installation_id=tmslicense.new_installation_id(),
        mirrored_installation_id=tmslicense.new_installation_id(),
        actor=customer,
    )
    body = support_client.get(f"/admin/licensing/activation/{activation.pk}/correct/")
    body = body.content.decode()
    assert ">Corrected Installation ID (redundant server):</label>" in body
    assert "Mirrored" not in body.split('<form method="post"')[1]


def test_correcting_to_the_same_ids_is_an_error_of_the_form_not_of_the_first_id(
    support_client, live
):
    response = support_client.post(
        f"/admin/licensing/activation/{live.pk}/correct/",
        {"mirrored_installation_id": live.mirrored_installation_id, "reason": "Typo"},
    )
    form = response.context["form"]
    assert form.non_field_errors() == [
        "The corrected Installation IDs are the same as the current ones."
    ]
    assert "installation_id" not in form.errors
    assert Activation.objects.count() == 1


def test_correcting_with_no_id_filled_in_asks_for_one(support_client, live, customer, make_license):
    url = f"/admin/licensing/activation/{live.pk}/correct/"
    response = support_client.post(url, {"reason": "Typo"})
    assert response.context["form"].non_field_errors() == [
        "Enter the corrected ID: the one that was mistyped."
    ]
    assert (
        Activation.objects.count() == 1 and AuditEvent.objects.exclude(action="log_in").count() == 1
    )
    # A one-server file's one ID: asked for beside its field, where the page's focus goes.
    one, _ = services.activate(
        license=make_license("standard"),
        installation_id=tmslicense.new_installation_id(),
        actor=customer,
    )
    response = support_client.post(
        f"/admin/licensing/activation/{one.pk}/correct/", {"reason": "Typo"}
    )
    form = response.context["form"]
    assert form.errors == {
        "installation_id": ["Enter the corrected ID: the one that was mistyped."]
    }
    assert "autofocus" in str(form["installation_id"])


def test_license_page_offers_support_actions_on_its_live_activation(
    support_client, client, live, customer
):
    new = services.reissue(activation=live, actor=customer)
    url = f"/admin/licensing/license/{live.license_id}/change/"
    body = support_client.get(url).content.decode()
    for action in ("revoke", "reissue", "correct"):
        assert f'href="/admin/licensing/activation/{new.pk}/{action}/"' in body
        assert f"/admin/licensing/activation/{live.pk}/{action}/" not in body
    states = re.findall(r'<td class="field-history_state">\s*<p>(\w+)', body)
    assert states == ["live", "revoked"]
    assert "Reissued<br>replaced by" in body and f'{new.pk}/change/">{new.serial}</a>' in body
    installation_id = f'class="installation-id">{new.installation_id}</span> (primary)'
    assert installation_id in body
    # The activation's own page offers the same actions, at the top.
    own = support_client.get(f"/admin/licensing/activation/{new.pk}/change/").content.decode()
    assert f'href="/admin/licensing/activation/{new.pk}/revoke/"' in own
    old = support_client.get(f"/admin/licensing/activation/{live.pk}/change/").content.decode()
    assert "/revoke/" not in old

    clerk = UserFactory(is_staff=True)
    clerk.user_permissions.add(
        *Permission.objects.filter(codename__in=["view_license", "view_activation"])
    )
    client.force_login(clerk)
    for page in (client.get(url), client.get(f"/admin/licensing/activation/{new.pk}/change/")):
        assert page.status_code == 200
        assert "/revoke/" not in page.content.decode()


def test_support_downloads_the_live_file_to_send_it_again(support_client, client, live, keyring):
    """ "I lost the e-mail": the same file, no new serial, nothing revoked."""
    url = f"/admin/licensing/activation/{live.pk}/file/"
    page = f"/admin/licensing/activation/{live.pk}/change/"
    own = support_client.get(page).content.decode()
    assert f'href="{url}"' in own
    # Handed out only by its download: checked and recorded, not on the page to copy.
    assert "BEGIN TMS LICENSE FILE" not in own
    response = support_client.get(url)
    assert response["Content-Disposition"] == f'attachment; filename="{live.filename}"'
    assert tmslicense.verify_license(response.content, keyring, live.installation_id).serial == (
        live.serial
    )
    assert Activation.objects.get().is_live
    event = AuditEvent.objects.get(action="file_download")
    assert event.actor.is_staff and event.details == {"serial": live.serial}
    # In the license's History, not among the changes on its page (downloads come often).
    license_url = f"/admin/licensing/license/{live.license_id}/"
    assert "file download" not in support_client.get(f"{license_url}change/").content.decode()
    history = support_client.get(f"{license_url}history/", follow=True).content.decode()
    assert "file download" in history
    # Not handed out once its license is suspended, as on the customer's page.
    License.objects.filter(pk=live.license_id).update(status=License.Status.SUSPENDED)
    response = support_client.get(url, follow=True)
    assert b"BEGIN TMS LICENSE FILE" not in response.content
    assert "is not handed out: its license is suspended." in (response.content.decode())
    assert b"BEGIN TMS LICENSE FILE" not in support_client.get(page).content
    # Staff without the permission to view activations get nothing.
    client.force_login(UserFactory(is_staff=True))
    assert client.get(url).status_code == 403
    assert AuditEvent.objects.filter(action="file_download").count() == 1  # those given a file


@pytest.mark.parametrize("action", ["revoke", "reissue", "correct"])
def test_action_pages_name_the_role_of_each_server(support_client, live, action):
    body = support_client.get(f"/admin/licensing/activation/{live.pk}/{action}/").content.decode()
    for installation_id, role in (
        (live.installation_id, "primary"),
        (live.mirrored_installation_id, "mirror"),
    ):
        assert f'class="installation-id">{installation_id}</span> ({role})' in body


@pytest.mark.parametrize("action", ["revoke", "reissue", "correct"])
def test_action_pages_of_a_revoked_activation_say_so_and_offer_nothing_to_send(
    support_client, live, customer, action
):
    new = services.reissue(activation=live, actor=customer)
    body = support_client.get(f"/admin/licensing/activation/{live.pk}/{action}/").content.decode()
    assert "This activation was revoked" in body
    assert f'<a href="/admin/licensing/activation/{new.pk}/change/">{new.serial}</a>' in body
    assert 'type="submit" class="default"' not in body and 'method="post" novalidate' not in body


def test_revoking_only_revoked_activations_says_none_of_them_is_live(support_client, support, live):
    services.revoke(activation=live, reason="Hardware returned", actor=support)
    response = support_client.post(
        "/admin/licensing/activation/",
        {"action": "revoke_selected", "_selected_action": [live.pk]},
        follow=True,
    )
    assert "The selection holds no live activation" in response.content.decode()


@pytest.mark.parametrize("action", ["revoke", "reissue", "correct"])
def test_action_pages_say_the_old_file_works_until_the_server_has_the_revoked_list(
    support_client, live, action
):
    body = support_client.get(f"/admin/licensing/activation/{live.pk}/{action}/").content.decode()
    assert "keeps working on a ThinManager Server" in body and "revoked.txt" in body


def test_outbox_message_is_view_only_and_its_list_shows_recipients(support_client, live, customer):
    message = OutboxMessage.objects.get()
    url = f"/admin/licensing/outboxmessage/{message.pk}/change/"
    body = support_client.get(url).content.decode()
    assert "View outbox message" in body and 'name="_save"' not in body
    assert support_client.post(url, {}).status_code == 403
    listed = support_client.get("/admin/licensing/outboxmessage/").content.decode()
    assert f'<td class="field-recipients">{customer.email}</td>' in listed
    assert body.count("Recipients:") == 1 and f'["{customer.email}"]' not in body
    # Whom it went to, when some recipients were not sent it.
    assert re.search(r"Sent to:</label>\s*<div[^>]*>nobody yet<", body)
    OutboxMessage.objects.filter(pk=message.pk).update(
        status="sent", sent_at=timezone.now(), delivered_to=["a@plant.example"]
    )
    body = support_client.get(url).content.decode()
    assert re.search(r"Sent to:</label>\s*<div[^>]*>a@plant.example<", body)
    assert "Next attempt" not in body  # none comes: sent (or failed)
    OutboxMessage.objects.filter(pk=message.pk).update(status="pending", sent_at=None)
    assert "Next attempt" in support_client.get(url).content.decode()
    # Why one was not sent is in view beside its status, before the columns after it.
    columns = re.findall(r'<th scope="col" class="[^"]*column-(\w+)', listed)
    assert columns.index("last_error") == columns.index("status") + 1


def found(client, what, term):
    page = client.get(f"/admin/licensing/{what}/", {"q": term})
    assert page.status_code == 200
    return list(page.context["cl"].result_list)


def test_audit_events_are_found_by_installation_id_organization_or_bare_number(
    support_client, live, make_license, other_customer
):
    services.activate(
        license=make_license("standard", organization=other_customer.membership.organization),
        installation_id=tmslicense.new_installation_id(),
        actor=other_customer,
    )
    bare_number = live.license.number.removeprefix("TM-").replace("-", "").lower()
    for term in (
        live.mirrored_installation_id.lower().replace("-", ""),
        live.license.organization.name,
        bare_number,
    ):
        events = found(support_client, "auditevent", term)
        assert events and {e.license for e in events} == {live.license}, term
    messages = found(support_client, "outboxmessage", bare_number)
    assert messages and {m.license for m in messages} == {live.license}


def test_a_reminder_listing_several_licenses_is_found_shown_and_sent_again(
    support_client, make_license, customer, organization
):
    """A maintenance reminder of several licenses is about none alone: found by each one's
    number, shown with its organization, its History the organization's trail."""
    end = timezone.localdate() + timedelta(days=20)
    listed = [make_license("standard", maintenance_end=end) for _ in range(2)]
    services.queue_reminders()
    message = OutboxMessage.objects.get()
    assert message.license is None
    for lic in listed:
        assert found(support_client, "outboxmessage", lic.number) == [message]
    body = support_client.get(f"/admin/licensing/outboxmessage/{message.pk}/change/")
    assert re.search(rf"Organization:</label>\s*<div[^>]*><a [^>]*>{organization.name}<", body.text)
    response = support_client.get(f"/admin/licensing/outboxmessage/{message.pk}/history/")
    assert response["Location"] == f"/admin/licensing/auditevent/?organization={organization.pk}"
    OutboxMessage.objects.filter(pk=message.pk).update(status="failed", attempts=6)
    response = support_client.post(
        "/admin/licensing/outboxmessage/",
        {"action": "send_again", "_selected_action": [message.pk]},
    )
    assert response.status_code == 302
    assert OutboxMessage.objects.get(pk=message.pk).status in ("pending", "sent")
    assert AuditEvent.objects.get(action="outbox_retry").organization_id == organization.pk


@pytest.mark.parametrize(
    ("what", "rows"),
    [
        ("auditevent", lambda lic: AuditEvent.objects.filter(license=lic)),
        ("license", lambda lic: [lic]),
        ("organization", lambda lic: [lic.organization]),
    ],
)
def test_a_server_id_or_serial_finds_its_license_records_once_each_without_a_join(
    support_client, live, customer, what, rows
):
    """A license with many files: each record is listed once, and the files are searched
    apart, not joined to the records (a join repeats each one per file, at every search)."""
    for _ in range(3):
        services.reissue(activation=live.license.live_activation, actor=customer)
    for term in (live.installation_id.lower(), live.serial):
        with CaptureQueriesContext(connection) as queries:
            listed = found(support_client, what, term)
        assert sorted(listed, key=lambda row: row.pk) == sorted(
            rows(live.license), key=lambda row: row.pk
        )
        assert not any('JOIN "licensing_activation"' in q["sql"] for q in queries), term


@pytest.mark.parametrize("what", ["license", "organization", "auditevent"])
def test_each_word_of_a_search_is_found_in_a_field_or_a_file(support_client, live, what):
    lic = live.license
    records = {
        "license": [lic],
        "organization": [lic.organization],
        "auditevent": list(AuditEvent.objects.filter(license=lic)),
    }[what]
    for term in (
        f"{lic.organization.name.split()[0]} {live.installation_id[:9]}",  # a name and an ID
        f"{live.installation_id[:9]} {live.mirrored_installation_id[:9]}",  # both servers
        f'"{live.serial}"',  # quoted, as Django's search reads quotes
    ):
        assert found(support_client, what, term) == records, term
    assert found(support_client, what, f"{live.installation_id[:9]} Nowhere") == []


@pytest.mark.parametrize("what", ["license", "organization"])
def test_a_short_word_of_a_name_is_not_searched_in_other_customers_files(support_client, what):
    """ "12" of "Plant 12 Manufacturing" is in most serials and Installation IDs: a word shorter
    than the beginning of an Installation ID searched for is looked for in the fields alone."""
    other = UserFactory(organization=OrganizationFactory(name="Plant 7 Manufacturing"))
    rival, _ = services.activate(
        license=LicenseFactory(organization=other.membership.organization),
        installation_id=tmslicense.new_installation_id(),
        actor=other,
    )
    # A piece of its serial that none of its own fields holds, in another customer's name.
    own = f"{rival.license.number} {rival.license.organization} {other.email}".upper()
    word = next(piece for i in range(15) if (piece := rival.serial[i : i + 2]) not in own)
    plant = OrganizationFactory(name=f"Plant {word} Manufacturing")
    mine = LicenseFactory(organization=plant)

    def records(lic):
        return [lic] if what == "license" else [lic.organization]

    assert found(support_client, what, plant.name) == records(mine)
    # A part of a serial long enough to be one is searched in the files still.
    assert found(support_client, what, f"Plant {rival.serial[:4]}") == records(rival.license)


def test_the_words_of_a_search_share_their_joins(support_client, live):
    """Each word joined an organization's members and licenses anew: three words of a name
    took minutes with a few thousand rows."""

    def joins(term):
        with CaptureQueriesContext(connection) as queries:
            found(support_client, "organization", term)
        return max(q["sql"].count("JOIN") for q in queries)

    assert joins("Acme Packaging Ltd") == joins("Acme")


@pytest.mark.parametrize(
    "what", ["license", "organization", "activation", "outboxmessage", "auditevent"]
)
def test_a_search_reads_each_table_apart_never_a_join_that_repeats_records(
    support_client, live, customer, what
):
    """A record with many members, licenses or files is listed once, and found without
    joining them (a join of an organization's members and licenses read 100,000 rows per
    search for a large customer, and its DISTINCT every column of the e-mails)."""
    organization = live.license.organization
    for _ in range(3):
        UserFactory(organization=organization, email=f"eng{_}@{customer.email.split('@')[1]}")
        services.reissue(activation=live.license.live_activation, actor=customer)
    terms = [organization.name, live.license.number, customer.email, live.installation_id]
    for term in terms:
        with CaptureQueriesContext(connection) as queries:
            listed = found(support_client, what, term)
        assert len(listed) == len(set(listed)), term
        searches = [query["sql"] for query in queries if "LIKE" in query["sql"]]
        assert searches, term
        for sql in searches:
            assert "DISTINCT" not in sql, term
            if sql.startswith("SELECT COUNT("):
                assert "JOIN" not in sql, (term, sql)


@pytest.mark.parametrize(
    ("what", "records"),
    [
        ("license", lambda live: [live.license]),
        ("organization", lambda live: [live.license.organization]),
        ("activation", lambda live: [live]),
    ],
)
def test_each_word_is_found_in_every_form_it_is_typed_in(support_client, live, what, records):
    """An ID or a number typed without its dashes (or with O for 0) is found beside another
    word too, as it is alone: each word is searched in each of its forms."""
    lic = live.license
    name = lic.organization.name.split()[0].lower()
    bare = live.installation_id.replace("-", "").lower()
    other_bare = live.mirrored_installation_id.replace("-", "").lower()
    number = lic.number.removeprefix("TM-").replace("-", "").lower()
    for term in (f"{name} {bare}", f"{bare} {other_bare}", f"{name} {number}"):
        assert found(support_client, what, term) == records(live), term


@pytest.mark.parametrize("what", ["license", "activation", "organization"])
def test_an_id_or_serial_copied_with_the_punctuation_around_it_is_found(support_client, live, what):
    """Copied from a sentence of an e-mail ("serial …, bound to ….") or from the admin's own
    list of servers ("… (primary)"): the punctuation around a word is no part of it."""
    primary, mirror = live.installation_ids
    expected = {"license": live.license, "activation": live, "organization": None}[what]
    expected = expected or live.license.organization
    for term in (
        f"{primary}.",
        f"{live.serial},",
        f"{primary} (primary)",
        f"{primary} (primary, this server)",  # as tmslicense status writes a location
        f"{mirror} (secondary)",  # as the site's refusals name a pair's second server
        f"\u201c{primary}\u201d",  # in typographic quotes, as a mail program writes them
        f"{primary}, {mirror}",
        f"({live.license.number})",
    ):
        assert found(support_client, what, term) == [expected], term


def test_a_quoted_phrase_is_searched_as_one_and_counts_as_words(support_client, make_license):
    """A phrase in quotes narrows the search ("12 Mills": not every name with 12 and Mills);
    a text pasted in quotes is no way around the limit of words."""
    mine = make_license(organization=OrganizationFactory(name="Plant 12 Mills"))
    make_license(organization=OrganizationFactory(name="Mills of Plant 12"))
    assert found(support_client, "license", '"12 Mills"') == [mine]
    assert len(found(support_client, "license", "12 Mills")) == 2
    pasted = '"' + " ".join(f"word{n}" for n in range(SEARCH_WORDS + 1)) + '"'
    with CaptureQueriesContext(connection) as queries:
        assert found(support_client, "license", pasted) == []
    assert len(queries) < 30


def test_a_typo_in_one_word_of_a_search_is_said(support_client, live):
    typo = live.installation_id[:-1] + ("0" if live.installation_id[-1] != "0" else "1")
    name = live.license.organization.name.split()[0]
    for term in (f"{name} {typo}", f"{typo}.", f"{live.mirrored_installation_id} {typo}"):
        page = support_client.get("/admin/licensing/license/", {"q": term}).content.decode()
        assert "This Installation ID contains a typo" in page, term
        assert typo in page.split("contains a typo")[0].rsplit("Nothing found for", 1)[1], term


@pytest.mark.parametrize("what", ["license", "activation", "auditevent"])
def test_the_beginning_of_an_installation_id_without_dashes_is_found(
    support_client, live, make_license, customer, what
):
    services.activate(
        license=make_license("standard"),
        installation_id=tmslicense.new_installation_id(),
        actor=customer,
    )
    rows = found(support_client, what, live.installation_id.replace("-", "")[:8].lower())
    licenses = {row if what == "license" else row.license for row in rows}
    assert licenses == {live.license}


def test_features_are_typed_as_names_separated_by_commas_or_spaces(support_client, live):
    lic = live.license
    url = f"/admin/licensing/license/{lic.pk}/change/"
    assert 'name="features" value="relevance"' in support_client.get(url).content.decode()
    response = support_client.post(
        url, license_form(lic, features="relevance, multimonitor  thinserver")
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    lic.refresh_from_db()
    assert lic.features == ["relevance", "multimonitor", "thinserver"]
    # Listed in the order the customer's page lists them; saved as shown, nothing changed.
    page = support_client.get(url).content.decode()
    assert 'value="multimonitor, relevance, thinserver"' in page
    support_client.post(url, license_form(lic, features="multimonitor, relevance, thinserver"))
    assert AuditEvent.objects.filter(action="license_change").count() == 1
    # Semicolons and the commas of other scripts separate too (full-width, ideographic).
    from licensing.admin.license_form import FeatureListField

    for typed in ("relevance; multimonitor", "relevance，multimonitor", "relevance、multimonitor"):
        assert FeatureListField().clean(typed) == ["relevance", "multimonitor"], typed
    event = AuditEvent.objects.get(action="license_change")
    page = support_client.get(f"/admin/licensing/auditevent/{event.pk}/change/").content.decode()
    assert "features: relevance → multimonitor, relevance, thinserver" in page


def test_features_too_long_for_a_license_file_are_refused(support_client, live):
    """A document pasted into the box: the file would be larger than a server takes."""
    lic = live.license
    pasted = ", ".join(f"feature{i:04d}" for i in range(400))  # 4,400 characters
    response = support_client.post(
        f"/admin/licensing/license/{lic.pk}/change/", license_form(lic, features=pasted)
    )
    assert response.status_code == 200
    assert "The features take 4,400 characters; at most 4,000" in response.content.decode()
    lic.refresh_from_db()
    assert lic.features == ["relevance"]
    # A license recorded with more before the limit is still edited (suspended, say), and
    # features stored before a separator was added are kept as they are.
    older = pasted.split(", ") + ["a;b", "b"]  # "a;b" would now read as "a" and "b" again
    License.objects.filter(pk=lic.pk).update(features=older)
    lic.refresh_from_db()
    response = support_client.post(
        f"/admin/licensing/license/{lic.pk}/change/",
        license_form(lic, seats=lic.seats + 1, features=listed_features(older)),
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    lic.refresh_from_db()
    assert sorted(lic.features) == sorted(older)


def test_a_feature_listed_twice_is_refused(support_client, live):
    lic = live.license
    response = support_client.post(
        f"/admin/licensing/license/{lic.pk}/change/",
        license_form(lic, features="relevance multimonitor relevance"),
    )
    assert response.status_code == 200
    assert "Listed twice: relevance. List each feature once." in response.content.decode()
    lic.refresh_from_db()
    assert lic.features == ["relevance"]
    # The same in another case, or with a character that shows as nothing: a TMS compares
    # names exactly, and would know only one of them.
    for typed, said in [
        ("relevance multimonitor Relevance", "Listed twice: Relevance, relevance."),
        (
            "relevance relevance\u200b",
            "must not contain control characters, line breaks, text "
            "direction marks or invisible characters",
        ),
    ]:
        response = support_client.post(
            f"/admin/licensing/license/{lic.pk}/change/", license_form(lic, features=typed)
        )
        assert response.status_code == 200
        assert said in response.content.decode()
        lic.refresh_from_db()
        assert lic.features == ["relevance"]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"product": "ThinManager\x1b[2J"}, "product"),
        ({"edition": "Premium\u202eevil"}, "edition"),
        ({"features": "relevance multi\x07monitor"}, "features"),
        ({"maintenance_end": "1999-12-31"}, "maintenance_end"),
        ({"expires_at_0": "9999-12-31", "expires_at_1": "12:00", "reason": "Test"}, "expires_at"),
    ],
)
def test_what_a_license_file_cannot_carry_is_refused_when_entered(
    support_client, live, change, field
):
    # Else every activation of the license would be refused when its file is signed.
    lic = live.license
    response = support_client.post(
        f"/admin/licensing/license/{lic.pk}/change/", license_form(lic, **change)
    )
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors[field]
    assert any("control characters" in e or "years 2000 to 9998" in e for e in errors), errors
    assert getattr(License.objects.get(pk=lic.pk), field) == getattr(lic, field)
    assert not AuditEvent.objects.filter(action="license_change").exists()


def test_an_organization_name_with_a_line_break_is_refused(admin_client, organization):
    response = admin_client.post(
        f"/admin/licensing/organization/{organization.pk}/change/",
        organization_form(organization, "Acme\rThis server: primary"),
    )
    assert response.status_code == 200
    assert "line breaks" in str(response.context["adminform"].form.errors["name"])
    organization.refresh_from_db()
    assert organization.name == "Acme Packaging"


@pytest.mark.parametrize(
    ("date", "time", "expected"),
    [("2031-06-30", "", "2031-06-30 00:00"), ("2031-06-30", "17:30", "2031-06-30 17:30")],
)
def test_an_expiry_may_be_a_date_alone(support_client, live, date, time, expected):
    lic = live.license
    url = f"/admin/licensing/license/{lic.pk}/change/"
    response = support_client.post(url, license_form(lic, expires_at_0=date, expires_at_1=time))
    assert response.status_code == 302, response.content.decode()[:2000]
    lic.refresh_from_db()
    assert f"{timezone.localtime(lic.expires_at):%Y-%m-%d %H:%M}" == expected


def test_an_expiry_of_a_date_alone_is_shown_so_and_cleared_with_its_date(support_client, live):
    lic = live.license
    url = f"/admin/licensing/license/{lic.pk}/change/"
    support_client.post(url, license_form(lic, expires_at_0="2031-06-30", reason="Rental"))
    page = support_client.get(url).content.decode()
    assert re.search(r'name="expires_at_0"[^>]*value="2031-06-30"', page)
    assert re.search(r'<input[^>]*name="expires_at_1"(?![^>]*value=)[^>]*>', page)  # empty
    response = support_client.post(url, license_form(lic, reason="Bought"))
    assert response.status_code == 302, response.content.decode()[:2000]
    lic.refresh_from_db()
    assert lic.expires_at is None
    # The trail shows the moment as the form does, not as the JSON keeps it; text that only
    # looks like one stays text.
    trail = support_client.get(url).content.decode()
    assert "expires at: 2031-06-30 00:00 UTC → none" in trail and "2031-06-30T" not in trail
    for reason in ("2031-02-30T10:00Z", "2031-06-30T10:00"):
        support_client.post(url, license_form(lic, status="suspended", reason=reason))
        support_client.post(url, license_form(lic, status="active", reason="Paid"))
        trail = support_client.get("/admin/licensing/auditevent/")
        assert trail.status_code == 200 and f"reason: {reason}" in trail.content.decode()


def test_an_expiry_with_seconds_is_kept_by_a_save_that_does_not_change_it(support_client, live):
    """The page shows an expiry's time to the second when it has seconds (one from before,
    or the clock's "Now"), so that saving the page as it is does not cut them off: a change
    of the license, an "out of date" file and a reissue asked for, none meant."""
    lic = live.license
    expiry = datetime(2031, 6, 30, 14, 23, 47, tzinfo=UTC)
    License.objects.filter(pk=lic.pk).update(expires_at=expiry)
    url = f"/admin/licensing/license/{lic.pk}/change/"
    page = support_client.get(url).content.decode()
    shown = {
        name: re.search(rf'name="{name}"[^>]*value="([^"]*)"', page)[1]
        for name in ("expires_at_0", "expires_at_1")
    }
    assert shown == {"expires_at_0": "2031-06-30", "expires_at_1": "14:23:47"}
    lic.refresh_from_db()
    response = support_client.post(url, license_form(lic, seats=lic.seats + 1, **shown))
    assert response.status_code == 302, response.content.decode()[:2000]
    lic.refresh_from_db()
    assert lic.expires_at == expiry
    changed = AuditEvent.objects.get(action="license_change").details["changed"]
    assert list(changed) == ["seats"]
    # A change of the seconds alone is a change, and the trail says it to the second.
    support_client.post(url, license_form(lic, expires_at_0="2031-06-30", expires_at_1="14:23"))
    trail = support_client.get("/admin/licensing/auditevent/").text
    assert "expires at: 2031-06-30 14:23:47 UTC → 2031-06-30 14:23 UTC" in trail


def test_an_expiry_time_without_a_date_is_refused(support_client, live):
    lic = live.license
    url = f"/admin/licensing/license/{lic.pk}/change/"
    response = support_client.post(url, license_form(lic, expires_at_1="17:30"))
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["expires_at"] == [
        "Enter the date too, or leave both empty."
    ]
    lic.refresh_from_db()
    assert lic.expires_at is None


def test_a_license_history_button_opens_its_audit_trail(
    support_client, live, customer, make_license
):
    other, _ = services.activate(
        license=make_license("standard"),
        installation_id=tmslicense.new_installation_id(),
        actor=customer,
    )
    services.reissue(activation=live, actor=customer)
    response = support_client.get(f"/admin/licensing/license/{live.license_id}/history/")
    assert response.status_code == 302
    trail = support_client.get(response["Location"])
    events = trail.context["cl"].result_list
    assert {e.action for e in events} == {"activate", "reissue"}
    assert {e.license for e in events} == {live.license}
    # The sidebar names the license shown, and only it; each event's details are in the list.
    assert response["Location"] == f"/admin/licensing/auditevent/?license={live.license_id}"
    sidebar = trail.content.decode().split("changelist-filter")[-1]
    assert sidebar.count(f"{live.license.number}</a></li>") == 1
    assert other.license.number not in sidebar
    assert f"replaces: {live.serial}" in trail.content.decode()
    assert support_client.get("/admin/licensing/license/999999/history/").status_code == 404
    outsider = Client()
    outsider.force_login(UserFactory(is_staff=True, organization=None))  # not in the group
    assert outsider.get(f"/admin/licensing/license/{live.license_id}/history/").status_code == 403
    # An activation's and an audit event's History open their license's trail too.
    for path in (
        f"/admin/licensing/activation/{live.pk}/history/",
        f"/admin/licensing/auditevent/{AuditEvent.objects.get(action='reissue').pk}/history/",
    ):
        assert support_client.get(path)["Location"] == response["Location"]
    event = AuditEvent.objects.get(action="reissue")
    assert str(event).endswith(f"reissue {event.object_repr}")
    page = support_client.get(f"/admin/licensing/license/{live.license_id}/change/").content
    assert b"IP address" in page and b"Object repr" not in page and b"Ip address" not in page


def test_licenses_are_filtered_by_whether_a_file_is_live(
    support_client, live, customer, make_license
):
    never = make_license("standard")
    revoked = make_license("standard")
    first, _ = services.activate(
        license=revoked, installation_id=tmslicense.new_installation_id(), actor=customer
    )
    services.revoke(activation=first, reason="Server retired", actor=customer)
    services.reissue(activation=live, actor=customer)  # two files, one live: listed once
    listed = {
        value: list(
            support_client.get("/admin/licensing/license/", {"activated": value})
            .context["cl"]
            .result_list
        )
        for value in ("yes", "no")
    }
    assert listed == {"yes": [live.license], "no": sorted([never, revoked], key=str)}


def test_a_license_page_shows_the_latest_files_and_events_and_says_where_the_rest_are(
    support_client, live, customer
):
    for _ in range(LatestInline.shown):  # each a file and an event more
        services.reissue(activation=live.license.live_activation, actor=customer)
    url = f"/admin/licensing/license/{live.license_id}/change/"
    page = support_client.get(url)
    formsets = {f.formset.prefix: f.formset for f in page.context["inline_admin_formsets"]}
    files, events = formsets["activations"], formsets["audit_events"]
    assert [f.instance for f in files.forms] == list(live.license.activations.all()[:20])
    assert files.forms[0].instance == live.license.live_activation
    assert len(events.forms) == 20
    html = page.content.decode()
    assert "the latest 20 of 21 (all in Activations, searched by the license number)" in html
    assert "History: the latest 20 of 21 (all in History)" in html
    # The license is still changed as before, its inlines sent along as shown.
    form = license_form(live.license, seats=12)
    for prefix, formset in formsets.items():
        form |= {
            f"{prefix}-TOTAL_FORMS": len(formset.forms),
            f"{prefix}-INITIAL_FORMS": len(formset.forms),
        }
        form |= {f"{prefix}-{n}-id": f.instance.pk for n, f in enumerate(formset.forms)}
        form |= {f"{prefix}-{n}-license": live.license_id for n in range(len(formset.forms))}
    assert support_client.post(url, form).status_code == 302
    live.license.refresh_from_db()
    assert live.license.seats == 12


def text_of(page: str) -> str:
    """A page's text, its line breaks (<br>) kept."""
    return html.unescape(re.sub(r"<(?!br>)[^>]+>", "", page))


def test_audit_details_are_shown_a_line_each(support_client, live):
    event = AuditEvent.objects.get(action="activate")
    page = support_client.get(f"/admin/licensing/auditevent/{event.pk}/change/").content.decode()
    primary, mirror = live.installation_ids
    servers = f"{primary} (primary), {mirror} (mirror)"
    assert f"serial: {live.serial}<br>installation ids: {servers}" in text_of(page)


def test_the_audit_trail_names_the_role_of_each_installation_id(support_client, live, customer):
    # A swap of the two servers' roles: the same IDs, in the other order.
    primary, mirror = live.installation_ids
    services.reissue(
        activation=live,
        installation_id=mirror,
        mirrored_installation_id=primary,
        reason="roles swapped",
        actor=customer,
    )
    event = AuditEvent.objects.get(action="correct_installation_id")
    assert event.details["installation_ids"] == [mirror, primary]  # kept as it was
    for url in (
        f"/admin/licensing/auditevent/{event.pk}/change/",
        "/admin/licensing/auditevent/",
        f"/admin/licensing/license/{live.license_id}/change/",
    ):
        text = text_of(support_client.get(url).content.decode())
        assert f"<br>installation ids: {mirror} (primary), {primary} (mirror)<br>" in text
        assert f"previous installation ids: {primary} (primary), {mirror} (mirror)" in text
    # Each kind's roles; one server has none to name.
    for kind, roles in (("enterprise", ["primary", "redundant"]), ("standard", [""])):
        ids = [tmslicense.new_installation_id() for _ in roles]
        activation, _ = services.activate(
            license=LicenseFactory(organization=live.license.organization, kind=kind),
            installation_id=ids[0],
            mirrored_installation_id="".join(ids[1:]),
            actor=customer,
        )
        event = AuditEvent.objects.get(action="activate", license=activation.license)
        page = support_client.get(f"/admin/licensing/auditevent/{event.pk}/change/")
        pairs = zip(ids, roles, strict=True)
        listed = ", ".join(f"{i} ({role})" if role else i for i, role in pairs)
        assert f"installation ids: {listed}\n" in text_of(page.content.decode())


def test_the_audit_trail_reads_in_words_and_is_found_by_action(support_client, live, customer):
    fixed = tmslicense.new_installation_id()
    services.reissue(
        activation=live,
        actor=customer,
        installation_id=fixed,
        mirrored_installation_id=live.mirrored_installation_id,
        reason="typo",
    )
    listed = support_client.get("/admin/licensing/auditevent/").content.decode()
    assert ">correct Installation ID<" in listed and ">correct_installation_id<" not in listed
    assert ">IP address<" in listed and ">Object repr<" not in listed
    assert {e.action for e in found(support_client, "auditevent", "correct")} == {
        "correct_installation_id"
    }


def _wrapped_anywhere() -> set[str]:
    """The selectors of the support pages' stylesheet whose text wraps anywhere."""
    css = re.sub(r"/\*.*?\*/", "", Path(finders.find("css/admin.css")).read_text(), flags=re.S)
    return {
        selector.strip()
        for selectors, declarations in re.findall(r"([^{}]+)\{([^}]*)\}", css)
        if "overflow-wrap: anywhere" in declarations
        for selector in selectors.split(",")
    }


def test_a_long_reason_without_spaces_wraps_where_it_is_shown(support_client, support, live):
    """A reason pasted without spaces (a path, a ticket's address) widened the license's page
    to thousands of pixels: each cell and value showing it wraps it."""
    reason = ("ThinManagerLicenseServerLogEntry" * 10)[:300]
    services.revoke(activation=live, reason=reason, actor=support)
    wrapped = _wrapped_anywhere()
    for url, shown_in in (
        (f"/admin/licensing/license/{live.license_id}/change/", {"history_state", "details"}),
        ("/admin/licensing/auditevent/", {"details"}),
    ):
        page = support_client.get(url).content.decode()
        assert "/static/css/admin.css" in page
        cells = re.findall(rf'<td class="field-(\w+)">(?:(?!</td>).)*{reason}', page, re.S)
        assert set(cells) == shown_in, url
        assert {f"td.field-{name}" for name in cells} <= wrapped, url
    page = support_client.get(f"/admin/licensing/activation/{live.pk}/change/").content.decode()
    assert re.search(
        rf'field-revoked_reason">(?:(?!</div>).)*<div class="readonly">{reason}', page, re.S
    )
    assert ".aligned .field-revoked_reason div.readonly" in wrapped


def test_a_reissue_may_say_why(support_client, live):
    url = f"/admin/licensing/activation/{live.pk}/reissue/"
    page = support_client.get(url).content.decode()
    assert '<label for="id_reason">Reason (optional):</label>' in page
    textarea = re.search(r"<textarea[^>]*>", page).group(0)
    assert "required" not in textarea  # a browser lets it be sent empty
    assert support_client.post(url, {"reason": " Customer lost the file "}).status_code == 302
    live.refresh_from_db()
    assert live.revoked_reason == "Customer lost the file"
    event = AuditEvent.objects.get(action="reissue")
    assert event.details["reason"] == "Customer lost the file"


def test_the_admin_writes_dates_as_the_license_pages_do(support_client, live):
    from django.utils.timezone import localtime

    page = support_client.get(f"/admin/licensing/license/{live.license_id}/change/")
    created = localtime(live.license.created_at)
    assert f"{created:%Y-%m-%d %H:%M}" in page.content.decode()  # a date and time, read-only
    listed = support_client.get("/admin/licensing/license/").content.decode()
    assert f">{live.license.maintenance_end:%Y-%m-%d}<" in listed


def test_a_suspended_licenses_live_file_can_only_be_revoked(support_client, live):
    from licensing.models import License

    License.objects.filter(pk=live.license_id).update(status="suspended")
    page = support_client.get(f"/admin/licensing/license/{live.license_id}/change/").content
    assert f"/admin/licensing/activation/{live.pk}/revoke/".encode() in page
    assert f"/admin/licensing/activation/{live.pk}/reissue/".encode() not in page
    response = support_client.post(f"/admin/licensing/activation/{live.pk}/reissue/", {})
    assert response.status_code == 200
    assert "issued only for an active license" in response.content.decode()
    live.refresh_from_db()
    assert live.is_live


def test_the_license_list_shows_and_filters_the_state_customers_see(support_client, make_license):
    from datetime import timedelta

    from django.utils import timezone

    active = make_license("standard")
    expired = make_license("standard", expires_at=timezone.now() - timedelta(days=1))
    suspended = make_license("standard", status="suspended")
    listed = support_client.get("/admin/licensing/license/").content.decode()
    row = next(r for r in listed.split("<tr")[1:] if expired.number in r)
    assert '<td class="field-state">Expired</td>' in row
    for value, lic in (("active", active), ("expired", expired), ("suspended", suspended)):
        page = support_client.get("/admin/licensing/license/", {"state": value})
        assert list(page.context["cl"].result_list) == [lic], value
    assert support_client.get("/admin/licensing/license/", {"state": "bogus"}).status_code == 200
    # Sorted by that state (its column's header link), not by the stored status.
    sort = re.search(r'<th[^>]*column-state[^>]*>.*?href="\?o=([\d.-]+)"', listed, re.S).group(1)
    for order, expected in ((sort, [active, expired, suspended]), (f"-{sort}", None)):
        page = support_client.get("/admin/licensing/license/", {"o": order})
        result = list(page.context["cl"].result_list)
        assert result == (expected or [suspended, expired, active]), order


def test_a_new_license_asks_for_its_edition_and_at_least_one_seat(admin_client, organization):
    page = admin_client.get("/admin/licensing/license/add/").content.decode()
    edition = re.search(r'<input[^>]*name="edition"[^>]*>', page).group(0)
    assert "value=" not in edition or 'value=""' in edition  # none taken for granted
    response = admin_client.post(
        "/admin/licensing/license/add/",
        new_license_form(organization, kind="enterprise", edition="", seats=0, features=""),
    )
    form = response.context["adminform"].form
    assert set(form.errors) == {"edition", "seats"}
    assert not License.objects.filter(kind="enterprise").exists()
    at_least_one = ["Ensure this value is greater than or equal to 1."]
    assert form.errors["seats"] == at_least_one
    response = admin_client.post(
        "/admin/licensing/license/add/",
        new_license_form(organization, kind="enterprise", edition="Premium", seats=-1),
    )
    assert response.context["adminform"].form.errors["seats"] == at_least_one


def test_the_expiry_boxes_are_named_for_screen_readers(support_client, live):
    page = support_client.get(f"/admin/licensing/license/{live.license_id}/change/").content
    assert b'aria-label="Expires at: date"' in page
    assert b'aria-label="Expires at: time (optional)"' in page


def test_saving_a_license_with_dates_already_past_says_so(support_client, live):
    response = support_client.post(
        f"/admin/licensing/license/{live.license_id}/change/",
        {
            **license_form(live.license, maintenance_end="2020-01-31", reason="Entered late"),
            "expires_at_0": "2021-01-01",
            "expires_at_1": "",
        },
        follow=True,
    )
    shown = [str(m) for m in response.context["messages"]]
    number = live.license.number
    assert f"Maintenance for {number} ended already." in shown
    assert any(m.startswith(f"License {number} has expired already") for m in shown)


def test_a_status_change_says_why(support_client, live):
    url = f"/admin/licensing/license/{live.license_id}/change/"
    response = support_client.post(url, license_form(live.license, status="suspended"))
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["reason"] == [
        "Say why the license becomes suspended (it is active): the reason is kept in the audit "
        "trail."
    ]
    # A reason that reads as blank is none; one that hides text is refused as in a revocation.
    for reason, said in [
        ("\u200d", "Say why the license becomes suspended"),
        ("\u200b", "must not contain control characters"),
    ]:
        response = support_client.post(
            url, license_form(live.license, status="suspended", reason=reason)
        )
        errors = response.context["adminform"].form.errors["reason"]
        assert len(errors) == 1 and said in errors[0], (reason, errors)
    live.license.refresh_from_db()
    assert live.license.status == "active"
    assert not AuditEvent.objects.filter(action="license_change").exists()
    changed = license_form(live.license, status="suspended", reason="Invoice unpaid")
    assert support_client.post(url, changed).status_code == 302
    event = AuditEvent.objects.get(action="license_change")
    assert event.details == {
        "changed": {"status": ["active", "suspended"]},
        "reason": "Invoice unpaid",
    }


def test_an_expiry_moved_into_the_past_says_revoke_not_reissue(support_client, live, customer):
    url = f"/admin/licensing/license/{live.license_id}/change/"
    expired = {**license_form(live.license), "expires_at_0": "2021-01-01", "expires_at_1": ""}
    refused = support_client.post(url, expired).context["adminform"].form.errors["reason"]
    assert refused[0].startswith("Say why the license becomes expired (it is active)")
    response = support_client.post(url, {**expired, "reason": "Trial over"}, follow=True)
    shown = " ".join(str(m) for m in response.context["messages"])
    assert "No new file goes out while the license is expired" in shown
    assert "Reissue it" not in shown
    from django.test import Client

    page = Client()
    page.force_login(customer)
    body = page.get(f"/licenses/{live.license.number}/").content.decode()
    assert 'id="file-changes"' not in body and "expired on" in body


def test_a_suspended_license_made_expired_asks_why_and_stays_expired_when_lifted(
    support_client, live
):
    """Expired while suspended: lifting the suspension leaves it expired, which support is
    told, not only "changed successfully"."""
    License.objects.filter(pk=live.license_id).update(status="suspended")
    lic = License.objects.get(pk=live.license_id)
    url = f"/admin/licensing/license/{lic.pk}/change/"
    expired = {**license_form(lic), "expires_at_0": "2021-01-01", "expires_at_1": ""}
    refused = support_client.post(url, expired).context["adminform"].form.errors["reason"]
    assert refused == [
        "Say why the license becomes expired (it is suspended): the reason is kept in the "
        "audit trail."
    ]
    saved = support_client.post(url, {**expired, "reason": "Contract ended"}, follow=True)
    assert saved.redirect_chain
    lifted = {**license_form(lic), "expires_at_0": "2021-01-01", "expires_at_1": ""}
    lifted |= {"status": "active", "reason": "Invoice paid"}
    response = support_client.post(url, lifted, follow=True)
    shown = [str(m) for m in response.context["messages"]]
    assert (
        f"License {lic.number} is active again but expired on 2021-01-01 00:00 UTC: customers can "
        "neither activate it nor download its file until its expiry is later." in shown
    )
    assert not any("has expired already" in m for m in shown)  # said once


def test_support_sees_a_file_expired_and_a_secondary_left_a_mirror_as_the_customer_does(
    support_client, customer, make_license
):
    """A plant calls: "our license expired, we paid" and "our secondary shows it may not
    display the ThinServer data". The license's page in the admin says the file expired and
    the servers refuse it (not "up to date"), the reissue page does not say the old file
    keeps working, and a secondary that is a mirror although it holds an enterprise license
    is said so, with what its ThinManager says, as on the customer's page."""
    ids = tmslicense.new_installation_id(), tmslicense.new_installation_id()
    mirrored = make_license("mirrored", seats=25)
    enterprise = make_license("enterprise", seats=10)
    for lic in (mirrored, enterprise):
        services.activate(
            license=lic, installation_id=ids[0], mirrored_installation_id=ids[1], actor=customer
        )
    page = support_client.get(f"/admin/licensing/license/{enterprise.pk}/change/")
    said = html.unescape(re.sub(r"<[^>]+>", " ", page.content.decode()))
    assert f"{ids[1]} holds licenses of its own but is a mirror; its ThinManager says:" in said
    assert f"none here duplicates license {mirrored.number}" in said

    ended = timezone.now().replace(microsecond=0) - timedelta(hours=3)
    live = enterprise.activations.get()
    Activation.objects.filter(pk=live.pk).update(expires_at=ended)
    License.objects.filter(pk=enterprise.pk).update(expires_at=ended + timedelta(days=365))
    page = support_client.get(f"/admin/licensing/license/{enterprise.pk}/change/")
    said = html.unescape(re.sub(r"<[^>]+>", " ", page.content.decode()))
    assert f"{live.serial} expired on {expiry_shown(ended)}: the servers refuse it" in said
    page = support_client.get(f"/admin/licensing/activation/{live.pk}/reissue/")
    said = html.unescape(page.content.decode())
    assert "the servers refuse it already." in said and "A revoked file keeps working" not in said


def test_suspending_says_the_file_on_the_servers_keeps_working_until_revoked(
    support_client, live, make_license, customer
):
    """Suspended for non-payment, a plant does not stop: support is told so, and how to stop
    it."""

    def suspend(lic) -> str:
        url = f"/admin/licensing/license/{lic.pk}/change/"
        changed = license_form(lic, status="suspended", reason="Invoice unpaid")
        response = support_client.post(url, changed, follow=True)
        return " ".join(str(m) for m in response.context["messages"])

    License.objects.filter(pk=live.license_id).update(seats=15)  # not in the file yet
    shown = suspend(License.objects.get(pk=live.license_id))
    assert shown.startswith(
        f"License {live.license.number} is suspended: no file is issued or downloaded "
        f"meanwhile. The file on the servers ({live.serial}) keeps working until it is revoked: "
        f'<a href="/admin/licensing/activation/{live.pk}/revoke/">Revoke it</a> if the servers '
        "must stop using it."
    )
    assert "still has the old values" not in shown  # revoking is said once
    expiring = make_license(
        expires_at=timezone.now().replace(year=2031, month=6, day=30, hour=12, minute=0, second=0)
    )
    services.activate(
        license=expiring, installation_id=tmslicense.new_installation_id(), actor=customer
    )
    assert "keeps working until it expires on 2031-06-30 12:00 UTC or it is revoked" in suspend(
        expiring
    )
    shown = suspend(make_license())  # no file on the servers: nothing to revoke
    assert "no file is issued or downloaded meanwhile." in shown
    assert "keeps working" not in shown
    # A file that expired already (the license extended after): refused on the servers.
    ended = timezone.now().replace(microsecond=0) - timedelta(days=2)
    Activation.objects.filter(license=expiring).update(expires_at=ended)
    License.objects.filter(pk=expiring.pk).update(status="active")
    shown = suspend(License.objects.get(pk=expiring.pk))
    assert f"expired on {expiry_shown(ended)}: the servers refuse it already." in shown
    assert "keeps working" not in shown


def test_support_keeps_seeing_that_the_file_on_the_servers_is_out_of_date(
    support_client, live, make_license, customer
):
    """The follow-up call ("we bought seats but the server still shows 10"): the license's
    page and the licenses list say so, not only the message after the save."""
    lic = live.license
    url = f"/admin/licensing/license/{lic.pk}/change/"

    def said() -> str:
        body = support_client.get(url).content.decode()
        return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", body)).split())

    assert f"{live.serial}: up to date" in said()
    support_client.post(url, license_form(lic, seats=15), follow=True)
    assert (
        f"{live.serial} still has the old values: Seats: in the file 10; now 15 Reissue it , "
        "or the customer gets an updated file from the license's page." in said()
    )
    reissue = f'<a href="/admin/licensing/activation/{live.pk}/reissue/">Reissue it</a>'
    assert reissue in support_client.get(url).content.decode()
    # The live activation's own page says it too.
    own = support_client.get(f"/admin/licensing/activation/{live.pk}/change/").content.decode()
    assert reissue in own and "Seats: in the file 10; now 15" in own
    # A suspension refused (no reason given) changes nothing, and the page says nothing of it.
    refused = support_client.post(url, license_form(lic, status="suspended", seats=15))
    assert refused.status_code == 200 and "reason" in refused.context["adminform"].form.errors
    shown = " ".join(html.unescape(re.sub(r"<[^>]+>", " ", refused.content.decode())).split())
    assert "Seats: in the file 10; now 15 Reissue it" in shown
    assert "No new file goes out" not in shown
    # Suspended, no new file goes out: the page says so instead.
    License.objects.filter(pk=lic.pk).update(status="suspended")
    assert "now 15 No new file goes out while the license is suspended" in said()

    # The list marks it, and reads as many queries for many licenses.
    def listed() -> tuple[list[str], int]:
        with CaptureQueriesContext(connection) as queries:
            body = support_client.get("/admin/licensing/license/").content.decode()
        return [r for r in body.split("<tr")[1:] if "file out of date" in r], len(queries)

    marked, few = listed()
    assert len(marked) == 1 and lic.number in marked[0]
    for _ in range(5):
        other = make_license()
        services.activate(
            license=other, installation_id=tmslicense.new_installation_id(), actor=customer
        )
        License.objects.filter(pk=other.pk).update(seats=other.seats + 1)
    marked, many = listed()
    assert len(marked) == 6 and many == few


def test_support_lifts_an_organizations_pauses_from_every_address(
    client, support, customer, organization, settings
):
    """A customer calls: paused from logging in (at the plant) and from looking up licenses.
    Support lifts both; what the address counted across accounts stays."""
    settings.LOGIN_FAILURE_LIMIT, settings.LOGIN_FAILURE_LIMIT_PER_IP = 3, 50
    settings.ACTIVATION_FAILURE_LIMIT = 2
    plant = {"REMOTE_ADDR": "10.7.7.7"}
    credentials = {"username": customer.username, "password": PASSWORD}
    for _ in range(3):
        client.post("/accounts/login/", {**credentials, "password": "wrong"}, **plant)
    assert (
        "Too many failed log-ins"
        in client.post("/accounts/login/", credentials, **plant).content.decode()
    )
    customer_client = Client()
    customer_client.force_login(customer)
    for _ in range(2):
        step1(customer_client, tmslicense.new_license_number(), tmslicense.new_installation_id())
    paused = step1(customer_client, tmslicense.new_license_number(), "")
    assert "Too many license numbers" in paused.content.decode()

    # A staff member who sees organizations but lacks the permission: not offered, and a POST
    # of it anyway lifts nothing.
    viewer = UserFactory(is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_organization"))
    other_staff = Client()
    other_staff.force_login(viewer)
    listed = other_staff.get("/admin/licensing/organization/")
    assert listed.status_code == 200 and 'value="lift_pauses"' not in listed.content.decode()
    other_staff.post(
        "/admin/licensing/organization/",
        {"action": "lift_pauses", "_selected_action": [organization.pk]},
    )
    assert not AuditEvent.objects.filter(action="lift_pauses").exists()
    assert (
        "Too many failed log-ins"
        in client.post("/accounts/login/", credentials, **plant).content.decode()
    )
    support_client = Client()
    support_client.force_login(support)
    listed = support_client.get("/admin/licensing/organization/").content.decode()
    assert 'value="lift_pauses"' in listed
    response = support_client.post(
        "/admin/licensing/organization/",
        {"action": "lift_pauses", "_selected_action": [organization.pk]},
        REMOTE_ADDR="10.1.1.1",
    )
    assert response.status_code == 302
    event = AuditEvent.objects.get(action="lift_pauses")
    assert event.actor == support and event.ip_address == "10.1.1.1"
    assert event.details["members"] == [f"{customer.username} ({customer.email})"]

    assert client.post("/accounts/login/", credentials, **plant).status_code == 302
    again = step1(customer_client, tmslicense.new_license_number(), "")
    assert "No license" in again.context["form"].errors["license_number"][0]  # guesses again


def test_a_lift_the_cache_did_not_take_is_neither_done_nor_audited(
    support_client, organization, customer
):
    from unittest import mock

    with mock.patch("licensing.throttle.cache.set_many", side_effect=ConnectionError("down")):
        response = support_client.post(
            "/admin/licensing/organization/",
            {"action": "lift_pauses", "_selected_action": [organization.pk]},
            follow=True,
        )
    assert "could not all be lifted (some may have been): the rate-limit cache" in (
        response.content.decode()
    )
    assert not AuditEvent.objects.filter(action="lift_pauses").exists()


def test_a_lift_is_not_tried_when_the_cache_cannot_say_who_is_refused(
    support_client, organization, customer
):
    from unittest import mock

    with (
        mock.patch("licensing.throttle.cache.get_many", side_effect=ConnectionError("down")),
        mock.patch("licensing.throttle.cache.set_many") as set_many,
    ):
        response = support_client.post(
            f"/admin/licensing/organization/{organization.pk}/lift/", follow=True
        )
    assert "Nothing was lifted: the rate-limit cache (Redis) is unreachable" in (
        response.content.decode()
    )
    set_many.assert_not_called()
    assert not AuditEvent.objects.filter(action="lift_pauses").exists()


LIFT_MEMBERS = "/admin/licensing/organization/{}/lift/"


def refused_now(client, url, *, minutes=True) -> list[str]:
    """A lift page's "Refused now" list, each item's text in order (a member, then each of
    their pauses); without ``minutes``, how many more as N."""
    page = client.get(url).content.decode()
    section = page.split('id="refused-now"')[1].split("<p>")[0]
    texts = [t.strip() for t in re.split(r"<[^>]+>", section) if t.strip()]
    assert texts[0] == ">Refused now"
    return [t if minutes else re.sub(r"next \d+ minute", "next N minute", t) for t in texts[1:]]


def test_support_sees_who_is_refused_now_where_and_for_how_long(
    support_client, customer, other_customer, organization, settings, monkeypatch
):
    """A customer calls: support sees, before lifting anything, that the caller's log-ins are
    refused from the plant's address and their look-ups from every address, and until when;
    what is lifted, or whose window ended, is no longer shown; nor is another customer."""
    from types import SimpleNamespace
    from unittest import mock

    from licensing import throttle

    clock = [1_800_000_000 + 180]  # 3 minutes into a log-in window and a look-up window
    monkeypatch.setattr(throttle, "time", SimpleNamespace(time=lambda: clock[0]))
    settings.LOGIN_FAILURE_LIMIT, settings.ACTIVATION_FAILURE_LIMIT = 3, 2

    def members():
        return refused_now(support_client, LIFT_MEMBERS.format(organization.pk))

    assert members() == ["None of its members is refused now."]
    plant = Client(REMOTE_ADDR="10.7.7.7")
    for who in (customer, customer, customer, other_customer, other_customer, other_customer):
        plant.post("/accounts/login/", {"username": who.username, "password": "wrong"})
    # Failed, not refused yet: the customer has met no pause.
    assert members() == ["None of its members is refused now."]
    credentials = {"username": customer.username, "password": PASSWORD}
    assert "Too many" in plant.post("/accounts/login/", credentials).content.decode()
    other = {"username": other_customer.username, "password": PASSWORD}
    assert "Too many" in plant.post("/accounts/login/", other).content.decode()
    at_home = Client(REMOTE_ADDR="192.0.2.44")
    at_home.force_login(customer)
    for _ in range(3):
        step1(at_home, tmslicense.new_license_number(), "")
    name = f"{customer.username} ({customer.email})"
    assert members() == [
        f"{name}:",
        "log-ins refused from 10.7.7.7 (not an address its members used lately) for the next "
        "12 minutes",
        "license look-ups refused from every address for the next 57 minutes",
    ]
    services.audit(actor=customer, action="download", license=None, obj=organization, ip="10.7.7.7")
    assert members()[1] == "log-ins refused from 10.7.7.7 for the next 12 minutes"

    clock[0] = 1_800_000_000 + 900  # the log-in window ended; the look-ups' goes on
    assert members() == [
        f"{name}:",
        "license look-ups refused from every address for the next 45 minutes",
    ]
    support_client.post(LIFT_MEMBERS.format(organization.pk))
    assert members() == ["None of its members is refused now."]

    with mock.patch("licensing.throttle.cache.get_many", side_effect=ConnectionError("down")):
        assert members()[0].startswith("Not known: the rate-limit cache (Redis) is unreachable")


LIFT_ADDRESS = "/admin/licensing/organization/{}/lift-address/"


def test_support_lifts_the_pauses_of_an_address_a_plant_shares(
    support_client, support, customer, organization, settings
):
    """A plant's people share one address; failures across their accounts paused it. The
    refusal names it, support lifts it on the organization's page, and everyone there logs
    in and looks up licenses again."""
    client = Client()  # at the plant, logged in nobody yet
    settings.LOGIN_FAILURE_LIMIT_PER_IP = 5
    settings.ACTIVATION_FAILURE_LIMIT, settings.ACTIVATION_FAILURE_LIMIT_PER_IP = 50, 3
    plant = {"REMOTE_ADDR": "198.51.100.23"}
    services.audit(  # what the members did lately, and from where
        actor=customer, action="download", license=None, obj=organization, ip="198.51.100.23"
    )
    services.audit(actor=support, action="invite", license=None, obj=organization, ip="10.0.0.5")
    for name in ("ana", "ben", "carla", "dev", "eli"):
        client.post("/accounts/login/", {"username": name, "password": "wrong"}, **plant)
    credentials = {"username": customer.username, "password": PASSWORD}
    paused = client.post("/accounts/login/", credentials, **plant).content.decode()
    assert "from your network&#x27;s address, 198.51.100.23" in paused
    assert settings.SUPPORT_EMAIL in paused
    colleague = UserFactory(organization=organization)
    at_the_plant = Client(**plant)
    at_the_plant.force_login(colleague)
    for _ in range(4):
        refused = step1(at_the_plant, tmslicense.new_license_number(), "")
    assert "not found from your network&#x27;s address, 198.51.100.23" in refused.content.decode()

    page = support_client.get(f"/admin/licensing/organization/{organization.pk}/change/")
    assert LIFT_ADDRESS.format(organization.pk) in page.content.decode()
    form = support_client.get(LIFT_ADDRESS.format(organization.pk)).content.decode()
    # The members' own address is suggested; support's, from the same organization's
    # history, is not.
    assert "acted lately from 198.51.100.23." in form and "10.0.0.5" not in form
    # Where its members are refused now for failures across accounts: what this page lifts.
    addresses = [
        "198.51.100.23",
        "license look-ups for the next N minutes",
        "log-ins for the next N minutes",
    ]
    listed = refused_now(support_client, LIFT_ADDRESS.format(organization.pk), minutes=False)
    assert listed[0] == addresses[0] and sorted(listed[1:]) == addresses[1:]

    # Lifting the members' pauses leaves the address's: it is still shown, on both pages.
    support_client.post(LIFT_MEMBERS.format(organization.pk))
    listed = refused_now(support_client, LIFT_ADDRESS.format(organization.pk), minutes=False)
    assert listed[0] == addresses[0] and sorted(listed[1:]) == addresses[1:]
    assert (
        "log-ins refused from 198.51.100.23, for failures across accounts there (Lift an "
        "address&#x27;s pauses) for the next N minutes"
    ) in refused_now(support_client, LIFT_MEMBERS.format(organization.pk), minutes=False)

    for typed in ("", "198.51.100", "plant-gateway", "198.51.100.23/24"):
        response = support_client.post(LIFT_ADDRESS.format(organization.pk), {"address": typed})
        assert response.status_code == 200 and response.context["form"].errors["address"]
    assert "Enter an IP address" in response.content.decode()
    assert not AuditEvent.objects.filter(action="lift_address_pauses").exists()
    assert "Too many" in client.post("/accounts/login/", credentials, **plant).content.decode()

    response = support_client.post(
        LIFT_ADDRESS.format(organization.pk),
        {"address": " 198.51.100.23 "},
        REMOTE_ADDR="10.1.1.1",
        follow=True,
    )
    assert "The pauses of 198.51.100.23 are lifted" in response.content.decode()
    event = AuditEvent.objects.get(action="lift_address_pauses")
    assert (event.actor, event.ip_address, event.organization) == (
        support,
        "10.1.1.1",
        organization,
    )
    assert event.details == {
        "address": "198.51.100.23",
        "paused": "license look-ups, log-ins",
        "used by its members lately": "yes",
    }
    assert client.post("/accounts/login/", credentials, **plant).status_code == 302
    again = step1(at_the_plant, tmslicense.new_license_number(), "")
    assert "No license" in again.context["form"].errors["license_number"][0]


def test_an_accounts_own_pause_names_no_address_and_outlasts_the_addresss_lift(
    support_client, customer, organization, settings
):
    client = Client()  # at the plant, logged in nobody yet
    settings.LOGIN_FAILURE_LIMIT = 3
    plant = {"REMOTE_ADDR": "198.51.100.23"}
    for _ in range(3):
        client.post("/accounts/login/", {"username": customer.username, "password": "x"}, **plant)
    credentials = {"username": customer.username, "password": PASSWORD}
    paused = client.post("/accounts/login/", credentials, **plant).content.decode()
    assert "Too many failed log-ins. For your security" in paused and "198.51" not in paused
    support_client.post(LIFT_ADDRESS.format(organization.pk), {"address": "198.51.100.23"})
    assert AuditEvent.objects.filter(action="lift_address_pauses").exists()
    assert "Too many" in client.post("/accounts/login/", credentials, **plant).content.decode()


def test_an_ipv6_addresss_pause_is_lifted_for_its_64_block(
    support_client, customer, organization, settings
):
    client = Client()  # at the plant, logged in nobody yet
    settings.LOGIN_FAILURE_LIMIT_PER_IP = 3
    for n in range(1, 4):
        client.post(
            "/accounts/login/",
            {"username": f"user{n}", "password": "wrong"},
            REMOTE_ADDR=f"2001:db8:1:2::{n}",
        )
    credentials = {"username": customer.username, "password": PASSWORD}
    paused = client.post("/accounts/login/", credentials, REMOTE_ADDR="2001:db8:1:2::77")
    assert "address, 2001:db8:1:2::/64." in paused.content.decode()
    refused = support_client.post(LIFT_ADDRESS.format(organization.pk), {"address": "10.0.0.0/8"})
    assert "or an IPv6 /64 block" in refused.content.decode()  # one address at a time
    response = support_client.post(
        LIFT_ADDRESS.format(organization.pk), {"address": "2001:db8:1:2::/64"}, follow=True
    )
    page = response.content.decode()
    assert "The pauses of 2001:db8:1:2::/64 are lifted" in page
    assert "It is not among the addresses Acme Packaging&#x27;s members used lately." in page
    assert AuditEvent.objects.get(action="lift_address_pauses").details == {
        "address": "2001:db8:1:2::/64",
        "paused": "log-ins",
        "used by its members lately": "no",
    }
    response = client.post("/accounts/login/", credentials, REMOTE_ADDR="2001:db8:1:2::77")
    assert response.status_code == 302


def test_only_staff_with_the_permission_lift_an_addresss_pauses(db, organization):
    viewer = UserFactory(is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_organization"))
    staff = Client()
    staff.force_login(viewer)
    page = staff.get(f"/admin/licensing/organization/{organization.pk}/change/")
    assert page.status_code == 200
    assert LIFT_ADDRESS.format(organization.pk) not in page.content.decode()
    url = LIFT_ADDRESS.format(organization.pk)
    assert staff.get(url).status_code == 403
    assert staff.post(url, {"address": "198.51.100.23"}).status_code == 403
    assert not AuditEvent.objects.filter(action="lift_address_pauses").exists()
    customer_client = Client()
    customer_client.force_login(UserFactory(organization=organization))
    assert customer_client.get(url).status_code == 302  # to the admin's log-in


def test_an_address_lift_the_cache_did_not_take_is_neither_done_nor_audited(
    support_client, organization
):
    from unittest import mock

    with mock.patch("licensing.throttle.cache.delete_many", side_effect=ConnectionError("down")):
        response = support_client.post(
            LIFT_ADDRESS.format(organization.pk), {"address": "198.51.100.23"}
        )
    assert response.status_code == 200
    assert "could not be lifted: the rate-limit cache" in response.content.decode()
    assert not AuditEvent.objects.filter(action="lift_address_pauses").exists()


def test_a_license_found_by_a_revoked_files_id_shows_that_file(support_client, live, customer):
    old_secondary = live.mirrored_installation_id
    services.revoke(activation=live, reason="Secondary server replaced", actor=customer)
    new, _ = services.activate(
        license=live.license,
        installation_id=live.installation_id,
        mirrored_installation_id=tmslicense.new_installation_id(),
        actor=customer,
    )
    response = support_client.get("/admin/licensing/license/", {"q": old_secondary.lower()})
    assert list(response.context["cl"].result_list) == [live.license]
    page = response.content.decode()
    live.refresh_from_db()
    revoked_on = f"{timezone.localtime(live.revoked_at):%Y-%m-%d %H:%M} UTC"
    assert f"files with {old_secondary}:" in page
    assert f"{live.serial} (revoked {revoked_on}) as mirror" in page
    assert new.serial not in page  # the live file does not carry that ID

    # The primary's ID is on both files: the live one first.
    response = support_client.get("/admin/licensing/license/", {"q": live.installation_id})
    page = response.content.decode()
    assert f"{new.serial} (live) as primary<br>{live.serial} (revoked {revoked_on})" in page

    # A search that is no Installation ID adds no column.
    page = support_client.get("/admin/licensing/license/", {"q": live.license.number})
    assert "files with" not in page.content.decode()


def test_an_organizations_history_opens_its_audit_trail(
    support_client, support, live, organization, customer
):
    other = UserFactory(organization=OrganizationFactory(name=f"{organization.name} SA"))
    services.lift_pauses(organization=organization, actor=support)
    services.lift_pauses(organization=other.membership.organization, actor=support)
    response = support_client.get(f"/admin/licensing/organization/{organization.pk}/history/")
    assert response["Location"] == f"/admin/licensing/auditevent/?organization={organization.pk}"
    trail = support_client.get(response["Location"])
    events = trail.context["cl"].result_list
    assert sorted(e.action for e in events) == ["activate", "lift_pauses"]
    assert {e.object_repr for e in events if e.action == "lift_pauses"} == {organization.name}
    # The sidebar names the organization shown, and only it.
    assert trail.content.decode().count(f"{organization.name}</a></li>") == 1
    assert (
        other.membership.organization.name
        not in trail.content.decode().split("changelist-filter")[-1]
    )

    # Renamed since, it keeps its whole trail; its lifted pauses' History opens that trail.
    Organization.objects.filter(pk=organization.pk).update(name="Renamed Packaging")
    events = support_client.get(response["Location"]).context["cl"].result_list
    assert sorted(e.action for e in events) == ["activate", "lift_pauses"]
    lifted = next(e for e in events if e.action == "lift_pauses")
    history = support_client.get(f"/admin/licensing/auditevent/{lifted.pk}/history/")
    assert history["Location"] == response["Location"]

    # A value in the address that names no organization shows no events, and no error.
    for value in ("999999", "abc", "1 OR 1=1", "²"):
        page = support_client.get("/admin/licensing/auditevent/", {"organization": value})
        assert page.status_code == 200 and not page.context["cl"].result_list

    # An e-mail's History opens its license's trail.
    message = live.license.messages.get()
    response = support_client.get(f"/admin/licensing/outboxmessage/{message.pk}/history/")
    assert response["Location"] == f"/admin/licensing/auditevent/?license={live.license_id}"


def test_a_persons_trail_is_what_they_did(
    support_client, support, live, organization, customer, admin_client
):
    """An auditor's "what did this person do": the trail filtered by who acted, opened from
    the actor's name in the trail, and an account's History (a superuser's) opens it too."""
    services.lift_pauses(organization=organization, actor=support)
    trail = support_client.get("/admin/licensing/auditevent/")
    page = trail.content.decode()
    url = f"/admin/licensing/auditevent/?actor={customer.pk}"
    assert f'href="{url}"' in page
    theirs = support_client.get(url)
    assert {e.action for e in theirs.context["cl"].result_list} == {"activate"}
    assert f"{customer.username}</a></li>" in theirs.content.decode().split("changelist-filter")[-1]
    response = admin_client.get(f"/admin/auth/user/{customer.pk}/history/")
    assert response["Location"] == url
    assert support_client.get(f"/admin/auth/user/{customer.pk}/history/").status_code == 403
    for value in ("999999", "abc"):
        page = support_client.get("/admin/licensing/auditevent/", {"actor": value})
        assert page.status_code == 200 and not page.context["cl"].result_list


def test_the_trail_as_listed_downloads_as_a_spreadsheet_to_the_second(
    support_client, support, live, organization, customer
):
    """An auditor matches events against a firewall's log (to the second) and keeps them: the
    trail, as filtered or searched, downloads as CSV with every column, the time in UTC to the
    microsecond; a cell a spreadsheet would run as a formula is not one; the download is on
    the trail itself."""
    services.revoke(activation=live, actor=support, reason="=HYPERLINK(evil)", ip="10.9.9.9")
    trail = support_client.get("/admin/licensing/auditevent/", {"license": live.license_id})
    page = trail.content.decode()
    assert f'href="export/?license={live.license_id}"' in page
    # The list shows the second too.
    event = AuditEvent.objects.get(action="revoke")
    assert f"{event.created_at:%Y-%m-%d %H:%M:%S} UTC" in page

    response = support_client.get(
        "/admin/licensing/auditevent/export/", {"license": live.license_id}
    )
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="audit-trail-')
    rows = list(
        csv.reader(b"".join(response.streaming_content).decode().lstrip("\ufeff").splitlines())
    )
    assert rows[0] == [
        "time (UTC)",
        "actor",
        "action",
        "license",
        "organization",
        "object",
        "details",
        "IP address",
    ]
    assert [row[2] for row in rows[1:]] == ["revoke", "activate"]  # newest first, as listed
    revoked = rows[1]
    assert revoked[0] == event.created_at.astimezone(UTC).isoformat(timespec="microseconds")
    assert revoked[1:6] == [
        services.person(support),
        "revoke",
        live.license.number,
        organization.name,
        event.object_repr,
    ]
    assert json.loads(revoked[6].removeprefix("'"))["reason"] == "=HYPERLINK(evil)"
    assert revoked[7] == "10.9.9.9"
    # Searched: what the search found.
    response = support_client.get("/admin/licensing/auditevent/export/", {"q": "10.9.9.9"})
    assert b"".join(response.streaming_content).decode().count("\n") == 2
    exported = AuditEvent.objects.filter(action="export_trail")
    assert exported.count() == 2 and exported.first().actor == support
    assert exported.first().details == {"filter": "q=10.9.9.9"}
    # Only for those who may see the trail, and asked for on this site, not by another's page.
    assert Client().get("/admin/licensing/auditevent/export/").status_code == 302
    response = support_client.get(
        "/admin/licensing/auditevent/export/", {"q": "x"}, HTTP_SEC_FETCH_SITE="cross-site"
    )
    assert response.status_code == 302
    assert response["Location"] == "/admin/licensing/auditevent/?q=x"
    assert exported.count() == 2


@pytest.mark.parametrize(
    "listed", ["license", "organization", "activation", "auditevent", "outboxmessage"]
)
def test_a_text_pasted_whole_into_a_search_is_refused_with_how_to_search(
    support_client, live, listed
):
    """An e-mail pasted into the search box: hundreds of words, each a condition for the
    database to plan, outlasted the statement timeout (a 500 on PostgreSQL)."""
    url = f"/admin/licensing/{listed}/"
    pasted = " ".join(["Hello", live.license.number, *(f"word{i}" for i in range(500))])
    response = support_client.get(url, {"q": pasted})
    assert response.status_code == 200
    assert not list(response.context["cl"].result_list)
    [message] = [str(m) for m in get_messages(response.wsgi_request)]
    assert message == (
        "Search for at most 20 words (a license number, an Installation ID, a name or an "
        "address): nothing was searched."
    )
    twenty = " ".join([live.license.number, *[live.license.number[:4]] * 19])
    response = support_client.get(url, {"q": twenty})
    assert not list(get_messages(response.wsgi_request))
    assert list(response.context["cl"].result_list)


def test_hand_made_requests_to_supports_pages_are_refused_not_a_500(
    support_client, admin_client, live
):
    """Addresses and POSTs no page of the admin sends, made by hand: refused as wrong."""
    for url in (
        "/admin/licensing/license/?number__regex=(",
        "/admin/licensing/auditevent/?details__iregex=[",
    ):
        assert support_client.get(url).status_code == 400, url  # no filter of the lists
    # An address with an interface, searched by: the address (PostgreSQL's address column
    # refused it as typed).
    event = AuditEvent.objects.create(action="log_in", object_repr="x", ip_address="fe80::1")
    zoned = "fe80::1%25" + "a" * 40
    found = support_client.get(f"/admin/licensing/auditevent/?q={zoned}")
    assert list(found.context["cl"].result_list) == [event]
    # An organization's page by an id in other digits ("²"): none such, as for any other.
    organization = live.license.organization
    response = support_client.get("/admin/licensing/organization/%C2%B2/change/")
    assert response.status_code == 302 and response["Location"] == "/admin/"
    # An action's selection by anything but ids.
    for selected in ("x", "1e5", "²"):
        response = admin_client.post(
            "/admin/licensing/organization/",
            {"action": "lift_pauses", "_selected_action": [selected]},
        )
        assert response.status_code == 400, selected
    # A license's page sent back with blank rows of files beyond what a page may send: the
    # rows are read-only, not read; the page saves as it is (unchanged: nothing recorded).
    response = support_client.post(
        f"/admin/licensing/license/{live.license.pk}/change/",
        license_form(
            live.license, **{"activations-TOTAL_FORMS": 1001, "activations-INITIAL_FORMS": 1}
        ),
    )
    assert response.status_code == 302
    assert not AuditEvent.objects.filter(action="license_change").exists()
    assert organization.licenses.get() == live.license


def test_a_license_page_sent_back_with_an_error_shows_its_files_as_they_are_now(
    support_client, live, customer
):
    """The page was opened, then a colleague reissued the file; the save comes back refused
    (a suspension without its reason): the tables of files and history show the records as
    they are now (the new file with its actions), not those the page was opened with."""
    url = f"/admin/licensing/license/{live.license_id}/change/"
    opened_page = support_client.get(url)
    posted = license_form(live.license, status="suspended")  # no reason given
    for inline in opened_page.context["inline_admin_formsets"]:
        formset = inline.formset
        management = formset.management_form
        posted.update({management.add_prefix(k): v for k, v in management.initial.items()})
        for index, form in enumerate(formset.forms):
            posted[f"{formset.prefix}-{index}-id"] = form.instance.pk
            posted[f"{formset.prefix}-{index}-license"] = live.license_id
    new = services.reissue(activation=live, actor=customer)
    page = support_client.post(url, posted)
    assert page.status_code == 200
    assert "Say why" in page.content.decode()
    (activations, events) = page.context["inline_admin_formsets"]
    assert [form.instance for form in activations.formset.forms] == [new, live]
    assert f"/admin/licensing/activation/{new.pk}/revoke/" in page.content.decode()
    assert events.formset.forms[0].instance.action == "reissue"


def test_license_numbers_in_the_outbox_and_audit_lists_stay_whole(support_client, live):
    """An e-mail's subject and an event's object name a license: its number kept on one
    line, as everywhere else in support's pages (a browser breaks it after a dash)."""
    whole = f'<span class="code">{live.license.number}</span>'
    outbox = support_client.get("/admin/licensing/outboxmessage/").content.decode()
    assert f"License file for {whole}" in outbox
    trail = support_client.get("/admin/licensing/auditevent/").content.decode()
    assert f"{whole} / " in trail


def test_a_superuser_saves_a_license_page_with_files_and_history(admin_client, live):
    """A superuser may change activations and events in principle: the license page's
    read-only tables of them are still saved as nothing (they are never bound to the page)."""
    response = admin_client.post(
        f"/admin/licensing/license/{live.license_id}/change/", license_form(live.license, seats=11)
    )
    assert response.status_code == 302
    live.license.refresh_from_db()
    assert live.license.seats == 11


def test_the_account_lists_refuse_hand_made_input_too(admin_client, customer):
    """Django's own lists of accounts and groups (superusers'), as support's lists do."""
    for url in ("/admin/auth/user/?username__regex=(", "/admin/auth/group/?name__regex=["):
        assert admin_client.get(url).status_code == 400, url
    response = admin_client.get("/admin/auth/user/?date_joined__year=99999")
    assert response.status_code == 302 and response["Location"] == "/admin/auth/user/?e=1"
    response = admin_client.post(
        "/admin/auth/user/", {"action": "delete_selected", "_selected_action": ["x"]}
    )
    assert response.status_code == 400
    listed = admin_client.get("/admin/auth/user/", {"q": customer.username})
    assert customer in list(listed.context["cl"].result_list)


def test_superusers_edits_of_accounts_are_audited(admin_client, admin_user, customer, organization):
    """An account's e-mail address decides where license files and password-reset links go: a
    superuser's change of it, of any of the account's fields or groups, of its password, and
    the account's addition and deletion are on the trail (the member's organization's), with
    who, from where and the old and new values; never a password."""
    url = f"/admin/auth/user/{customer.pk}/change/"
    old_email = customer.email
    form = {
        "username": customer.username,
        "email": "ops@plant.example",
        "first_name": customer.first_name,
        "last_name": customer.last_name,
        "is_active": "on",
        "groups": [Group.objects.get(name="support").pk],
    } | opened_page(admin_client, url)
    assert admin_client.post(url, form, REMOTE_ADDR="10.2.2.2").status_code == 302
    event = AuditEvent.objects.get(action="user_change")
    assert (event.actor, event.ip_address, event.organization) == (
        admin_user,
        "10.2.2.2",
        organization,
    )
    assert event.details == {
        "changed": {"email address": [old_email, "ops@plant.example"], "groups": [[], ["support"]]}
    }
    form |= opened_page(admin_client, url)
    assert admin_client.post(url, form).status_code == 302  # saved as it is: nothing to record
    assert AuditEvent.objects.filter(action="user_change").count() == 1

    new = "Another-plant-password-9"
    password = {"password1": new, "password2": new, "usable_password": "true"}
    password_page = f"{url[:-7]}password/"
    assert admin_client.post(password_page, password).status_code == 302
    event = AuditEvent.objects.get(action="user_password_set")
    assert (event.object_repr, event.organization, event.action_in_words) == (
        customer.username,
        organization,
        "set password",
    )
    # A page sent in two minds (Django's "Conflicting form data submitted") changes nothing.
    assert admin_client.post(password_page, {"usable_password": "false"}).status_code == 302
    assert AuditEvent.objects.filter(action__startswith="user_password").count() == 1
    off = {"usable_password": "false", "unset-password": "1"}
    assert admin_client.post(password_page, off).status_code == 302
    event = AuditEvent.objects.get(action="user_password_off")
    assert event.action_in_words == "turn off password log-in"

    added = {"username": "new.engineer", "password1": new, "password2": new}
    response = admin_client.post("/admin/auth/user/add/", {**added, "usable_password": "true"})
    assert response.status_code == 302
    event = AuditEvent.objects.get(action="user_create")
    assert event.object_repr == "new.engineer" and event.organization is None
    assert event.details["values"]["username"] == "new.engineer"

    response = admin_client.post(f"{url[:-7]}delete/", {"post": "yes"})
    assert response.status_code == 302
    event = AuditEvent.objects.get(action="user_delete")
    assert (event.object_repr, event.organization) == (customer.username, organization)
    trail = json.dumps(list(AuditEvent.objects.values_list("details", flat=True)))
    assert "pbkdf2" not in trail and new not in trail


def test_superusers_edits_of_groups_are_audited(admin_client, admin_user):
    """A group grants rights (support's are one): who gave or took which permission, from
    where, and a group's creation and deletion with what it granted, are on the trail."""
    from django.contrib.auth.models import Permission

    group = Group.objects.get(name="support")
    before = sorted(str(p) for p in group.permissions.all())
    remove = Permission.objects.get(codename="delete_membership")
    assert remove not in group.permissions.all()
    url = f"/admin/auth/group/{group.pk}/change/"
    granted = [*group.permissions.values_list("pk", flat=True), remove.pk]
    form = {"name": "support", "permissions": granted}
    assert admin_client.post(url, form, REMOTE_ADDR="10.2.2.3").status_code == 302
    event = AuditEvent.objects.get(action="group_change")
    assert (event.actor, event.ip_address, event.object_repr) == (admin_user, "10.2.2.3", "support")
    assert event.details == {"changed": {"permissions": [before, sorted([*before, str(remove)])]}}
    assert admin_client.post(url, form).status_code == 302  # saved as it is: nothing to record
    assert AuditEvent.objects.filter(action="group_change").count() == 1

    form = {"name": "auditors", "permissions": [remove.pk]}
    assert admin_client.post("/admin/auth/group/add/", form).status_code == 302
    event = AuditEvent.objects.get(action="group_create")
    assert event.details == {"values": {"name": "auditors", "permissions": [str(remove)]}}
    added = Group.objects.get(name="auditors")
    response = admin_client.post(f"/admin/auth/group/{added.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    event = AuditEvent.objects.get(action="group_delete")
    assert (event.object_repr, event.details) == ("auditors", {"permissions": [str(remove)]})
    again = Group.objects.create(name="temporary")
    response = admin_client.post(
        "/admin/auth/group/",
        {"action": "delete_selected", "_selected_action": [again.pk], "post": "yes"},
    )
    assert response.status_code == 302 and not Group.objects.filter(name="temporary")
    assert AuditEvent.objects.filter(action="group_delete", object_repr="temporary").exists()


def test_an_account_page_saved_over_a_change_made_since_it_was_opened_is_refused(
    admin_client, customer, organization, support
):
    """A superuser's page of an account opened before support deactivated it (a leaver), then
    saved, would turn it back on unseen (the page sends Active ticked as it showed it)."""
    url = f"/admin/auth/user/{customer.pk}/change/"
    old_email = customer.email
    form = {"username": customer.username, "email": "new@plant.example", "is_active": "on"}
    form |= opened_page(admin_client, url)
    customer.last_login = timezone.now()  # a log-in meanwhile changes nothing that is shown
    customer.save(update_fields=["last_login"])
    services.deactivate_member(membership=customer.membership, actor=support)
    refused = admin_client.post(url, form)
    assert refused.status_code == 200
    assert refused.context["adminform"].form.non_field_errors() == [
        f"{customer.username} was changed by someone else since this page was opened: nothing "
        "was saved. Open it again to see the change, then make yours."
    ]
    customer.refresh_from_db()
    assert (customer.is_active, customer.email) == (False, old_email)
    assert not AuditEvent.objects.filter(action="user_change").exists()
    # Opened again, it is saved (turned on again, knowingly).
    form |= opened_page(admin_client, url)
    assert admin_client.post(url, form).status_code == 302
    customer.refresh_from_db()
    assert (customer.is_active, customer.email) == (True, "new@plant.example")


def test_a_member_is_not_made_staff(admin_client, customer, organization):
    """Staff belong to no customer organization (the organization's page refuses adding one):
    a superuser ticking Staff status on a member's account is told which organization to
    remove them from first, and nothing is saved; once removed, they can be made staff."""
    url = f"/admin/auth/user/{customer.pk}/change/"
    form = {
        "username": customer.username,
        "email": customer.email,
        "is_active": "on",
        "is_staff": "on",
    } | opened_page(admin_client, url)
    response = admin_client.post(url, form)
    assert response.status_code == 200
    assert (
        f"{customer.username} is a member of {organization}: staff belong to no customer "
        "organization"
    ) in html.unescape(response.content.decode())
    customer.refresh_from_db()
    assert not customer.is_staff and not AuditEvent.objects.filter(action="user_change")

    Membership.objects.filter(user=customer).delete()
    assert admin_client.post(url, form).status_code == 302
    customer.refresh_from_db()
    assert customer.is_staff


@pytest.mark.parametrize(
    "query",
    [
        "created_at__gte=2024-01-01T00:00:00%2B16:00",  # a time zone 16 hours off
        "ip_address=fe80::1%25" + "a" * 40,  # an address with an interface
    ],
)
def test_a_filter_the_database_refuses_is_a_wrong_filter(transactional_db, admin_client, query):
    """Values Python takes and PostgreSQL's columns do not (SQLite compares them as text)."""
    require(connection.vendor == "postgresql", "PostgreSQL is not configured: set DATABASE_URL")
    response = admin_client.get(f"/admin/licensing/auditevent/?{query}")
    assert response.status_code == 302  # Django's answer to a wrong filter
    assert response["Location"] == "/admin/licensing/auditevent/?e=1"


@pytest.mark.parametrize(
    "listed, field",
    [
        ("auditevent", "created_at"),
        ("license", "created_at"),
        ("license", "maintenance_end"),
        ("organization", "created_at"),
        ("outboxmessage", "created_at"),
        ("activation", "issued_at"),
    ],
)
def test_a_date_past_the_calendar_in_a_lists_filter_is_a_wrong_filter_not_a_500(
    support_client, live, listed, field
):
    url = f"/admin/licensing/{listed}/"
    big = "9" * 20
    years = ["10000", "0", "-1", big]
    if listed == "auditevent":  # its date hierarchy's month too
        years.append(f"2026&{field}__month={big}")
    for year in years:
        response = support_client.get(f"{url}?{field}__year={year}")
        assert response.status_code == 302, year  # Django's answer to a wrong filter
        assert response["Location"] == f"{url}?e=1"
    page = support_client.get(f"{url}?{field}__year=2026")
    assert page.status_code == 200


def test_support_finds_a_callers_organization_by_address_user_name_or_license(
    support_client, customer, organization, make_license
):
    lic = make_license("standard")
    OrganizationFactory(name="Rival Foods")
    for term in (
        customer.email.upper(),
        customer.username,
        lic.number,
        lic.number.lower().replace("-", " "),
    ):
        found = support_client.get("/admin/licensing/organization/", {"q": term})
        assert list(found.context["cl"].result_list) == [organization], term


def test_support_finds_an_organization_by_either_installation_id_of_its_files(
    support_client, live, customer, organization, make_license
):
    # Many rows carry the IDs: a reissued file, and a second license on the primary server.
    services.reissue(activation=live, actor=customer)
    services.activate(
        license=make_license("standard"), installation_id=live.installation_id, actor=customer
    )
    OrganizationFactory(name="Rival Foods")
    for term in (
        live.installation_id.lower().replace("-", ""),
        live.mirrored_installation_id,
        live.mirrored_installation_id.replace("-", "")[:8],
    ):
        assert found(support_client, "organization", term) == [organization], term


def test_support_finds_a_license_by_the_serial_of_any_of_its_files(
    support_client, live, customer, make_license
):
    # The serial a customer reads from the server's Licensing window: of a revoked file too.
    new = services.reissue(activation=live, actor=customer)
    services.activate(
        license=make_license("standard"), installation_id=live.installation_id, actor=customer
    )
    for serial in (live.serial, new.serial.lower()):
        assert found(support_client, "license", serial) == [live.license], serial


def test_the_audit_trail_is_searched_by_an_invited_members_address(support_client, organization):
    support_client.post(
        f"/admin/licensing/organization/{organization.pk}/invite/",
        {"email": "new.engineer@plant.example"},
    )
    found = support_client.get("/admin/licensing/auditevent/", {"q": "new.engineer"})
    assert [e.action for e in found.context["cl"].result_list] == ["member_invite"]


def test_the_audit_trail_is_searched_by_address_and_drilled_down_by_day(
    support_client, customer, organization
):
    for ip in ("10.9.8.7", "10.9.8.70", "2001:db8::7"):
        services.audit(actor=customer, action="download", license=None, obj=organization, ip=ip)
    for typed, found in (("10.9.8.7", ["10.9.8.7"]), (" 2001:DB8:0::7 ", ["2001:db8::7"])):
        page = support_client.get("/admin/licensing/auditevent/", {"q": typed})
        assert [e.ip_address for e in page.context["cl"].result_list] == found
    page = support_client.get("/admin/licensing/auditevent/").content.decode()
    assert f"?created_at__year={timezone.now().year}" in page  # the days, by year and month


@pytest.fixture
def trail(live, support, organization, other_customer, make_license):
    """Events that each hold a word in one place only."""
    rival = make_license("standard", organization=other_customer.membership.organization)
    services.activate(
        license=rival, installation_id=tmslicense.new_installation_id(), actor=other_customer
    )
    agent = UserFactory(username="agent.smith", is_staff=True)
    services.invite_member(
        organization=organization, email="new.engineer@plant.example", actor=support
    )

    def event(**kwargs):
        return services.audit(action="lift_pauses", **kwargs)

    return {
        "live": live,
        "rival activated": AuditEvent.objects.get(license=rival, action="activate"),
        "invited": AuditEvent.objects.get(action="member_invite"),
        "renamed": event(actor=None, license=None, obj="Harbour Mills"),
        # Of a license, naming neither its number nor its organization:
        "acme by agent": event(actor=agent, license=live.license, obj="x"),
        "rival by agent": event(actor=agent, license=rival, obj="y"),
    }


def _license_events(t):
    return set(t["live"].license.audit_events.all())


@pytest.mark.parametrize(
    ("term", "events"),
    [
        pytest.param("harbour", lambda t: {t["renamed"]}, id="object"),
        pytest.param("new.engineer", lambda t: {t["invited"]}, id="details"),
        pytest.param(
            "AGENT.SMITH", lambda t: {t["acme by agent"], t["rival by agent"]}, id="actor"
        ),
        pytest.param(lambda t: t["live"].license.number, _license_events, id="license number"),
        pytest.param(
            "rival", lambda t: {t["rival activated"], t["rival by agent"]}, id="organization"
        ),
        pytest.param(
            lambda t: t["live"].mirrored_installation_id.replace("-", "").lower(),
            _license_events,
            id="file typed without dashes",
        ),
        pytest.param("agent.smith Rival", lambda t: {t["rival by agent"]}, id="two places"),
    ],
)
def test_the_audit_trail_finds_each_word_in_an_events_fields_license_or_files(
    support_client, trail, term, events
):
    term = term(trail) if callable(term) else term
    assert set(found(support_client, "auditevent", term)) == events(trail)


@pytest.mark.parametrize("term", ["packaging", "agent.smith rival", "id without dashes"])
def test_the_audit_trail_is_searched_through_indexes(trail, term):
    """Every log-in is audited: a search that read the whole trail would end at the
    statement timeout within a year."""
    require(connection.vendor == "postgresql", "PostgreSQL is not configured: set DATABASE_URL")
    if term == "id without dashes":
        term = trail["live"].installation_id.replace("-", "").lower()
    request = RequestFactory().get("/admin/licensing/auditevent/", {"q": term})
    audit_trail = site._registry[AuditEvent]
    with CaptureQueriesContext(connection) as parts:  # what a relation leads to, read first
        events, _ = audit_trail.get_search_results(request, AuditEvent.objects.all(), term)
    with connection.cursor() as cursor:
        # A table this small is read whole: the plan for a large one.
        cursor.execute("SET LOCAL enable_seqscan = off; SET LOCAL enable_indexscan = off")
        plans = [events.order_by("-created_at")[:100].explain()]
        for part in parts:
            cursor.execute(f"EXPLAIN {part['sql']}")
            plans.append("\n".join(row[0] for row in cursor.fetchall()))
    plan = "\n".join(plans)
    assert "Seq Scan" not in plan, plan
    for index in (
        "auditevent_action_trgm",
        "auditevent_object_repr_trgm",
        "auditevent_actor_name_trgm",
        "auditevent_details_trgm",
        "license_number_trgm",
        "organization_name_trgm",
        "activation_installation_id_trgm",
        "activation_mirrored_installation_id_trgm",
        "activation_serial_trgm",
    ):
        assert f"Bitmap Index Scan on {index}" in plan, index


def test_the_organization_page_leads_to_its_licenses_and_lifts_its_members_pauses(
    support_client, support, organization, customer, make_license, settings
):
    mine = make_license("standard")
    LicenseFactory(organization=OrganizationFactory(name="Rival Foods"))
    page = support_client.get(f"/admin/licensing/organization/{organization.pk}/change/")
    licenses = f"/admin/licensing/license/?organization={organization.pk}"
    assert f'href="{licenses}"' in page.content.decode().replace("&amp;", "&")
    assert list(support_client.get(licenses).context["cl"].result_list) == [mine]

    settings.LOGIN_FAILURE_LIMIT = 2
    plant = Client()
    for _ in range(2):
        plant.post("/accounts/login/", {"username": customer.username, "password": "x"})
    credentials = {"username": customer.username, "password": PASSWORD}
    assert "Too many" in plant.post("/accounts/login/", credentials).content.decode()
    url = f"/admin/licensing/organization/{organization.pk}/lift/"
    assert "failed log-ins and look-ups are forgotten" in support_client.get(url).content.decode()
    done = support_client.post(url, follow=True).content.decode()
    assert (
        f"Acme Packaging: the pauses of {customer.username} ({customer.email}) are lifted: they "
        "can log in and look up licenses again. The failed log-ins and look-ups of its 1 "
        "member are forgotten." in done
    )
    event = AuditEvent.objects.get(action="lift_pauses")
    assert event.actor == support
    assert event.details["refused"] == [f"{customer.username} ({customer.email})"]
    assert plant.post("/accounts/login/", credentials).status_code == 302
    # Lifted again with nobody refused: said so.
    again = support_client.post(url, follow=True).content.decode()
    assert "Acme Packaging: none of its members was paused on their own account." in again
    assert AuditEvent.objects.filter(action="lift_pauses").latest("pk").details["refused"] == []
    AuditEvent.objects.filter(action="lift_pauses").exclude(pk=event.pk).delete()

    nobody = OrganizationFactory(name="Empty Plant")
    response = support_client.post(f"/admin/licensing/organization/{nobody.pk}/lift/")
    assert "This organization has no members: nobody is paused." in response.content.decode()
    assert AuditEvent.objects.filter(action="lift_pauses").count() == 1


def test_an_organizations_licenses_are_listed_under_its_name_and_the_filter_is_cleared(
    support_client, organization, make_license
):
    mine = make_license("standard")
    rival = LicenseFactory(organization=OrganizationFactory(name="Rival Foods"))
    page = support_client.get(f"/admin/licensing/organization/{organization.pk}/change/")
    link = html.unescape(re.search(r'href="([^"]+)">Licenses<', page.content.decode()).group(1))
    assert list(support_client.get(link).context["cl"].result_list) == [mine]
    # A search made there, for another customer's license, finds none: the sidebar says
    # whose licenses are searched, and clearing the filter keeps the search.
    listed = support_client.get(f"{link}&q={rival.number}")
    assert not listed.context["cl"].result_list
    sidebar = listed.content.decode().split('id="changelist-filter"')[-1]
    assert f"{organization.name}</a></li>" in sidebar and "Rival Foods" not in sidebar
    clear = re.search(r'href="([^"]+)">[^<]*Clear all filters', sidebar).group(1)
    everyone = support_client.get(f"/admin/licensing/license/{html.unescape(clear)}")
    assert list(everyone.context["cl"].result_list) == [rival]


def test_an_action_that_no_longer_applies_says_why_before_its_form(support_client, live):
    License.objects.filter(pk=live.license_id).update(status="suspended")
    for action in ("reissue", "correct"):
        response = support_client.get(
            f"/admin/licensing/activation/{live.pk}/{action}/", follow=True
        )
        assert (
            response.redirect_chain[-1][0] == f"/admin/licensing/license/{live.license_id}/change/"
        )
        assert "is suspended: a new file is issued only for an active license" in (
            response.content.decode()
        )
    # Revoking stays offered: no new file goes out.
    assert support_client.get(f"/admin/licensing/activation/{live.pk}/revoke/").status_code == 200


def test_the_admin_log_in_offers_a_password_reset(client, db):
    page = client.get("/admin/login/").content.decode()
    assert 'href="/admin/password_reset/"' in page
    assert client.get("/admin/password_reset/", follow=True).redirect_chain[-1][0] == (
        "/accounts/password_reset/"
    )


def test_a_new_file_from_support_says_so_in_its_subject_and_what_it_corrected(
    support_client, live, customer
):
    from django.core import mail
    from django.test import TestCase

    def sent(action, data):
        with TestCase.captureOnCommitCallbacks(execute=True):
            current = live.license.live_activation
            support_client.post(f"/admin/licensing/activation/{current.pk}/{action}/", data)
        return current, mail.outbox[-1]

    old, reissued = sent("reissue", {})
    number = live.license.number
    assert (
        reissued.subject
        == f"New license file for {number}, mirrored license (replaces {old.serial})"
    )
    assert "add the new file in place of the old one on both servers." in reissued.body
    fixed = tmslicense.new_installation_id()
    before, corrected = sent("correct", {"mirrored_installation_id": fixed, "reason": "Typo"})
    assert corrected.subject.startswith(f"Corrected license file for {number}, mirrored license")
    assert f"The Installation ID {before.mirrored_installation_id} is corrected to {fixed}." in (
        corrected.body
    )
    # Not "on both servers": the corrected one never had the old file, and the new one is not
    # for the server of the mistyped ID.
    assert "on both servers" not in corrected.body.split("\n")[0]
    assert (
        "add the new file on the servers it is bound to (below), in place of the old one where "
        "there is one." in corrected.body
    )
    swap = {"installation_id": fixed, "mirrored_installation_id": live.installation_id}
    _, swapped = sent("correct", {**swap, "reason": "Roles the wrong way round"})
    assert "The two servers' roles are swapped." in swapped.body
    assert "is corrected to" not in swapped.body


def test_a_search_for_an_id_read_out_with_a_typo_says_so_and_shows_what_was_meant(
    support_client, live
):
    """An ID read out on the phone with one character wrong, or two swapped: said so, and
    what an ID or number one character different finds is shown (the check character
    leaves a few candidates, at most one of them on file as a rule)."""
    typo = live.installation_id[:-1] + ("0" if live.installation_id[-1] != "0" else "1")
    swapped = live.mirrored_installation_id[1] + live.mirrored_installation_id[0]
    swapped += live.mirrored_installation_id[2:]
    for url in ("/admin/licensing/license/", "/admin/licensing/activation/"):
        for wrong, meant in (
            (typo, live.installation_id),
            (swapped, live.mirrored_installation_id),
        ):
            if wrong == meant:
                continue  # the same two characters: no swap
            response = support_client.get(url, {"q": wrong.lower()})
            assert [r.pk for r in response.context["cl"].result_list] == [
                live.license.pk if "license" in url else live.pk
            ]
            page = html.unescape(response.content.decode())
            assert "This Installation ID contains a typo" in page
            assert f"Shown: what one character different finds: {meant}." in page
            if "license" in url:  # which file holds it, in which role, as for the whole ID
                role = "mirror" if meant == live.mirrored_installation_id else "primary"
                assert f"files with {meant}:<br>{live.serial} (live) as {role}" in page
        found = support_client.get(url, {"q": live.installation_id})
        assert "contains a typo" not in found.content.decode()
    number = live.license.number
    wrong = number[:-1] + ("0" if number[-1] != "0" else "1")
    page = support_client.get("/admin/licensing/license/", {"q": wrong}).content.decode()
    assert f"Nothing found for {wrong}. This license number contains a typo" in page
    assert f"one character different finds: {number}." in page
    # The few dozen candidates are looked up at once, not each searched for (support's
    # lists of events and e-mails are long): about two searches' statements, not twenty's.
    for what in ("license", "auditevent", "outboxmessage"):
        url = f"/admin/licensing/{what}/"
        with CaptureQueriesContext(connection) as exact:
            support_client.get(url, {"q": live.installation_id})
        with CaptureQueriesContext(connection) as near:
            support_client.get(url, {"q": typo})
        assert len(near) <= 2 * len(exact), what
    # Nothing one character different on file either: said so, nothing shown.
    unknown = tmslicense.new_installation_id()
    unknown = unknown[:-1] + ("0" if unknown[-1] != "0" else "1")
    response = support_client.get("/admin/licensing/license/", {"q": unknown})
    assert list(response.context["cl"].result_list) == []
    assert "one character different" not in response.content.decode()
    # Written whole with its dashes but a character short (one dropped as it was read out):
    # said so; a part of an ID, searched for as such, is not.
    short = live.installation_id[:5] + live.installation_id[6:]
    page = support_client.get("/admin/licensing/license/", {"q": short}).content.decode()
    assert "The Installation ID has 20 characters" in page and "19 were entered" in page
    short = number[:4] + number[5:]
    page = support_client.get("/admin/licensing/license/", {"q": short}).content.decode()
    assert "The license number has 12 characters" in page
    for other in ("0f8fad5b-d9cb-469f-a165-70867728950e", "2026-01-31-12-00"):  # no ID
        page = support_client.get("/admin/licensing/license/", {"q": other}).content.decode()
        assert "characters" not in page.split('id="changelist"')[0], other
    part = live.installation_id[:9]  # the first two groups: found by them, nothing said
    page = support_client.get("/admin/licensing/license/", {"q": part}).content.decode()
    assert "characters" not in page.split('id="changelist"')[0]


def test_the_addresses_suggested_are_the_members_latest_as_pauses_count_them(
    organization, customer, support
):
    from datetime import timedelta

    colleague = UserFactory(organization=organization)
    stranger = UserFactory(organization=OrganizationFactory(name="Rival Foods"))
    now = timezone.now()
    for actor, address, days_ago in [
        (customer, "198.51.100.23", 3),
        (colleague, "2001:db8:1:2::5", 2),  # one IPv6 block, two addresses (privacy ones)
        (customer, "2001:db8:1:2::99", 1),
        (customer, "198.51.100.23", 0),  # again: the latest
        (colleague, "192.0.2.7", 40),  # too long ago
        (stranger, "203.0.113.9", 0),  # another organization's
        (support, "10.0.0.5", 0),  # support acting on the organization
    ]:
        event = services.audit(actor=actor, action="download", license=None, obj=organization)
        AuditEvent.objects.filter(pk=event.pk).update(
            ip_address=address, created_at=now - timedelta(days=days_ago)
        )
    assert services.recent_addresses(organization) == ["198.51.100.23", "2001:db8:1:2::/64"]


def test_a_look_up_pause_of_ones_own_names_no_address_at_its_limit(
    customer_client, organization, settings
):
    """The address at exactly its limit (its next try would pass it) is not yet paused: a
    customer paused for their own mistakes is not sent to support about the address."""
    settings.ACTIVATION_FAILURE_LIMIT, settings.ACTIVATION_FAILURE_LIMIT_PER_IP = 2, 3
    for _ in range(3):
        refused = step1(customer_client, tmslicense.new_license_number(), "")
    page = refused.content.decode()
    assert "Too many license numbers were not found. For your security" in page
    assert "network" not in page


def test_the_typo_hint_is_not_left_behind_by_the_organization_autocomplete(support_client):
    typo = "TM-DEM0-0000-004F"
    listed = support_client.get(
        "/admin/autocomplete/",
        {
            "app_label": "licensing",
            "model_name": "license",
            "field_name": "organization",
            "term": typo,
        },
    )
    assert listed.status_code == 200
    page = support_client.get("/admin/licensing/license/").content.decode()
    assert "contains a typo" not in page


def test_the_organization_field_offers_organizations_by_name(support_client, customer):
    OrganizationFactory(name="Zenith Bottling")
    customer.email = "engineer@zenith.example"  # another organization's member
    customer.save()

    def offered(term):
        listed = support_client.get(
            "/admin/autocomplete/",
            {"app_label": "licensing", "model_name": "license", "field_name": "organization"}
            | {"term": term},
        )
        return [row["text"] for row in listed.json()["results"]]

    assert offered("zenith") == ["Zenith Bottling"]
    assert offered(" bottl ") == ["Zenith Bottling"]


def test_an_address_used_lately_but_not_among_those_shown_counts_as_known(
    support_client, organization, customer
):
    from datetime import timedelta

    now = timezone.now()
    for n in range(6):  # the oldest of six is not among the five suggested
        event = services.audit(actor=customer, action="download", license=None, obj=organization)
        AuditEvent.objects.filter(pk=event.pk).update(
            ip_address=f"198.51.100.{n + 1}", created_at=now - timedelta(days=n)
        )
    assert "198.51.100.6" not in services.recent_addresses(organization)
    done = support_client.post(
        f"/admin/licensing/organization/{organization.pk}/lift-address/",
        {"address": "198.51.100.6"},
        follow=True,
    ).content.decode()
    assert "Nothing was paused at 198.51.100.6: check the address the refusal named" in done
    assert "not among the addresses" not in done
    event = AuditEvent.objects.get(action="lift_address_pauses")
    assert event.details["used by its members lately"] == "yes"
    assert event.details["paused"] == "nothing"


def test_support_action_pages_have_the_admin_form_styles(support_client, live, organization):
    """Their labels and fields aligned as on the admin's own forms (its forms.css)."""
    for url in (
        f"/admin/licensing/activation/{live.pk}/correct/",
        f"/admin/licensing/organization/{organization.pk}/lift-address/",
    ):
        page = support_client.get(url).content.decode()
        assert '<link rel="stylesheet" href="/static/admin/css/forms.css' in page, url


def test_the_trail_finds_an_event_by_its_organizations_name_as_recorded(
    support_client, support, customer, organization
):
    """An event is found by the name of the organization it was recorded for (its own
    organization: through the license, each organization found was read as all its licenses,
    seconds a search on a long trail); a license moved since is found under its new owner's
    name by its new events."""
    lic = LicenseFactory(organization=organization)
    services.activate(license=lic, installation_id=tmslicense.new_installation_id(), actor=customer)
    buyer = OrganizationFactory(name="Northwind Bottling")
    License.objects.filter(pk=lic.pk).update(organization=buyer)  # support moved it

    def found(words):
        page = support_client.get("/admin/licensing/auditevent/", {"q": words})
        return [event.action for event in page.context["cl"].result_list]

    assert found(organization.name) == ["activate"]
    assert found("Northwind Bottling") == []


def test_an_organizations_page_reads_its_members_at_once(support_client):
    """Its member rows cost support no query each (each is shown by its user and
    organization). A superuser's rows, editable, each read their user for its field."""
    queries = []
    for members in (2, 2, 12):  # the first page of a session reads what later ones keep
        organization = OrganizationFactory()
        for _ in range(members):
            UserFactory(organization=organization)
        with CaptureQueriesContext(connection) as read:
            page = support_client.get(f"/admin/licensing/organization/{organization.pk}/change/")
        assert page.status_code == 200
        queries.append(len(read))
    assert queries[1] == queries[2]  # as many for 12 members as for 2


def test_a_search_of_the_trail_reads_its_events_for_no_dates_above_the_list(
    support_client, support, organization
):
    """The first and last day of what a search finds (and its years) cost two more passes of
    the search: not shown while searching, unless a date is chosen (then they say which)."""
    services.audit(actor=support, action="org_edit", license=None, obj=organization)

    def dates_read(params):
        with CaptureQueriesContext(connection) as read:
            page = support_client.get("/admin/licensing/auditevent/", params)
        assert page.status_code == 200 and page.context["cl"].result_list
        return [q["sql"] for q in read if "MIN(" in q["sql"] or "DATE_TRUNC" in q["sql"].upper()]

    assert dates_read({}) != []  # the trail's days, without a search
    assert dates_read({"q": organization.name}) == []
    year = str(timezone.now().year)
    chosen = support_client.get(
        "/admin/licensing/auditevent/", {"q": organization.name, "created_at__year": year}
    )
    assert chosen.context["cl"].date_hierarchy == "created_at"  # the year chosen is shown


def test_what_a_replacement_changed_is_shown_as_old_and_new_values(support_client, live):
    """An updated or reissued file's event lists what changed from the old file, each as a
    license change's is: its old value, then its new one."""
    lic = live.license
    old_end = lic.maintenance_end
    lic.seats += 5
    lic.maintenance_end = old_end + timedelta(days=365)
    lic.save()
    services.reissue(activation=live, actor=UserFactory(is_staff=True), reason="renewed")
    event = AuditEvent.objects.get(action="reissue")
    text = text_of(
        support_client.get(f"/admin/licensing/auditevent/{event.pk}/change/").content.decode()
    )
    assert f"Seats: {lic.seats - 5} → {lic.seats}<br>" in text
    assert "previous installation ids" not in text  # the same servers: said once
    assert f"Maintenance end: {old_end:%Y-%m-%d} → {lic.maintenance_end:%Y-%m-%d}" in text
