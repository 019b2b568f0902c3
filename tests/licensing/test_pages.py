"""My licenses, a license's page, the download and the keyring: each organization sees only
its own licenses; anything else is a 404, never a hint."""

import re
from datetime import timedelta
from urllib.parse import quote

import pytest
from django.conf import settings as django_settings
from django.db import connection
from django.test import Client
from django.utils import timezone

import tmslicense
from licensing import services
from licensing.models import Activation, AuditEvent, License, OutboxMessage, expiry_shown
from tests.conftest import require
from tests.factories import PASSWORD, LicenseFactory, UserFactory
from tmslicense import store


@pytest.fixture
def activated(make_license, customer):
    lic = make_license("mirrored")
    ids = (tmslicense.new_installation_id(), tmslicense.new_installation_id())
    activation, _ = services.activate(
        license=lic, installation_id=ids[0], mirrored_installation_id=ids[1], actor=customer
    )
    return activation


@pytest.fixture
def foreign(other_customer):
    lic = LicenseFactory(organization=other_customer.membership.organization)
    services.activate(
        license=lic, installation_id=tmslicense.new_installation_id(), actor=other_customer
    )
    return lic


def test_license_list_shows_only_the_organizations_licenses(customer_client, activated, foreign):
    page = customer_client.get("/licenses/").content.decode()
    assert activated.license.number in page
    assert activated.installation_id in page and activated.mirrored_installation_id in page
    assert foreign.number not in page


@pytest.mark.parametrize("suffix", ["", "download/"])
def test_another_organizations_license_is_a_404(customer_client, foreign, suffix):
    response = customer_client.get(f"/licenses/{foreign.number}/{suffix}")
    assert response.status_code == 404
    assert foreign.number not in response.content.decode()


@pytest.mark.parametrize("suffix", ["", "download/"])
def test_a_nonexistent_license_is_the_same_404(customer_client, db, suffix):
    response = customer_client.get(f"/licenses/{tmslicense.new_license_number()}/{suffix}")
    assert response.status_code == 404


@pytest.mark.parametrize(
    "path",
    ["/licenses/", "/activate/", "/licenses/TM-X/", "/licenses/TM-X/download/", "/members/"],
)
def test_pages_require_login(client, db, path):
    response = client.get(path)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_license_page_shows_both_servers_serial_and_history(customer_client, activated, customer):
    services.reissue(activation=activated, actor=customer)
    page = customer_client.get(f"/licenses/{activated.license.number}/").content.decode()
    live = activated.license.live_activation
    assert live.serial in page and activated.serial in page
    replaced = f'<span class="text-nowrap">{live.issued_at:%Y-%m-%d %H:%M} UTC</span>'
    assert f"replaced {replaced} by" in page
    assert "Download license file" in page
    assert page.count(activated.mirrored_installation_id) >= 2


def history(page: str) -> list[dict[str, str]]:
    """The activation history's rows, newest first: {column: the cell's text}."""
    table = page[page.index("Activation history") :]
    return [
        {
            label: " ".join(re.sub(r"<[^>]+>", " ", cell).split())
            for label, cell in re.findall(r'data-label="([^"]+)"[^>]*>(.*?)</td>', row, re.S)
        }
        for row in table.split("<tr>")[2:]
    ]


def test_history_names_support_and_replacements_but_keeps_supports_notes(
    customer_client, activated, customer, organization
):
    from tests.factories import UserFactory

    # Support staff who also belong to the customer's organization stay "support".
    staff = UserFactory(is_staff=True, username="agent-smith", organization=organization)
    departed = UserFactory(organization=organization, username="departed")
    colleague = UserFactory(organization=organization, username="colleague")
    lic = activated.license

    def activate(actor):
        new_id = tmslicense.new_installation_id
        return services.activate(
            license=lic, installation_id=new_id(), mirrored_installation_id=new_id(), actor=actor
        )[0]

    corrected = services.reissue(
        activation=activated,
        actor=staff,
        installation_id=activated.installation_id,
        mirrored_installation_id=tmslicense.new_installation_id(),
        reason="Ticket 4711: customer swapped the NIC",
    )
    services.revoke(activation=corrected, reason="Internal: unpaid invoice 99", actor=staff)
    by_departed = activate(departed)
    services.revoke(activation=by_departed, reason="Moved", actor=staff)
    departed.delete()
    current = activate(colleague)

    page = customer_client.get(f"/licenses/{lic.number}/").content.decode()
    for internal in ("agent-smith", "Ticket 4711", "unpaid invoice", "Moved"):
        assert internal not in page
    rows = history(page)
    assert [row["Serial"] for row in rows] == [
        current.serial,
        by_departed.serial,
        corrected.serial,
        activated.serial,
    ]
    # Named as the e-mails name a member: with the address (Members lists it).
    assert rows[0]["Issued"].endswith(f"by colleague ({colleague.email})")
    assert rows[0]["State"] == "current"
    assert "by" not in rows[1]["Issued"]  # its user was deleted
    assert rows[1]["State"].startswith("revoked by support")
    assert rows[2]["Issued"].endswith("by support")
    assert rows[2]["State"].startswith("revoked by support")
    assert rows[3]["Issued"].endswith("by you")
    assert rows[3]["State"].startswith("replaced")
    assert rows[3]["State"].endswith(f"by {corrected.serial} (Installation ID corrected)")


def test_a_plain_reissue_is_shown_as_a_replacement(customer_client, activated, customer):
    new = services.reissue(activation=activated, actor=customer)
    (old,) = history(
        customer_client.get(f"/licenses/{activated.license.number}/").content.decode()
    )[1:]
    assert old["Serial"] == activated.serial
    assert old["State"].startswith("replaced") and old["State"].endswith(f"by {new.serial}")


def test_swapped_roles_are_shown_as_a_swap_not_a_correction(customer_client, activated):
    swapped = services.reissue(
        activation=activated,
        actor=UserFactory(is_staff=True),
        installation_id=activated.mirrored_installation_id,
        mirrored_installation_id=activated.installation_id,
        reason="The primary is the other server",
    )
    (old,) = history(
        customer_client.get(f"/licenses/{activated.license.number}/").content.decode()
    )[1:]
    assert old["State"].endswith(f"by {swapped.serial} (roles swapped)")


def test_download_gives_only_the_current_file(customer_client, activated, customer, keyring):
    new = services.reissue(activation=activated, actor=customer)
    page = customer_client.get(f"/licenses/{activated.license.number}/").content.decode()
    help = page.split('id="keyring-help"')[1].split("</p>")[0]
    assert "the site's keyring" in help and 'href="/keyring.json"' in help
    response = customer_client.get(f"/licenses/{activated.license.number}/download/")
    assert response["Cache-Control"] == "no-store"
    lic = tmslicense.verify_license(response.content, keyring, activated.installation_id)
    assert lic.serial == new.serial
    # Who had a copy of which file, and when, for support.
    event = AuditEvent.objects.filter(action="file_download").get()
    assert (event.actor, event.license, event.details) == (
        customer,
        activated.license,
        {"serial": new.serial},
    )
    assert event.object_repr == str(new)


def test_a_download_with_no_current_file_leads_to_the_license_page(
    customer_client, make_license, activated, customer
):
    """Never activated, or revoked since the page was opened: the license's page says so
    (not "no such page for your organization")."""
    services.revoke(activation=activated, reason="Servers retired", actor=customer)
    for lic in (make_license("standard"), activated.license):
        response = customer_client.get(f"/licenses/{lic.number}/download/")
        assert response.status_code == 302
        assert response["Location"] == f"/licenses/{lic.number}/"
    assert not AuditEvent.objects.filter(action="file_download").exists()


@pytest.mark.parametrize(
    ("path", "then"),
    [
        ("/licenses/TM-X/download/", "/licenses/TM-X/"),
        ("/licenses/export/?q=acme", "/licenses/?q=acme"),
        ("/licenses/export/", "/licenses/"),
    ],
)
def test_a_download_asked_for_logged_out_leads_to_its_page_once_logged_in(
    client, customer, path, then
):
    """A file sent in answer to the log-in form would leave that form on screen (and each
    Log in pressed there would download it again): the page offering it comes first."""
    response = client.get(path)
    assert response.status_code == 302
    assert response["Location"] == f"/accounts/login/?next={quote(then)}"
    response = client.post(
        response["Location"], {"username": customer.username, "password": PASSWORD}
    )
    assert response["Location"] == then


def test_keyring_serves_public_keys_only(client, db, signing_key_file):
    response = client.get("/keyring.json")
    assert response["Content-Type"] == "application/json"
    keyring = tmslicense.Keyring.from_json(response.content)
    assert len(keyring) == 1
    body = response.content.decode()
    assert "PRIVATE" not in body
    assert signing_key_file.read_text().splitlines()[1] not in body


def test_the_keyring_lists_each_key_of_a_file_in_use_whatever_key_file_is_mounted(
    client, make_license, customer, settings, tmp_path, django_capture_on_commit_callbacks
):
    """The key file replaced without the old key kept (a key lost, or retired while files it
    signed are in use): a server given the site's keyring must still take those files, and
    the customer's download is the same file. A key no file in use needs is not listed."""
    from licensing import checks, signing

    with django_capture_on_commit_callbacks(execute=True):  # the key is kept once committed
        activated, _ = services.activate(
            license=make_license("standard"),
            installation_id=tmslicense.new_installation_id(),
            actor=customer,
        )
    old = activated.kid
    settings.LICENSE_SIGNING_KEY_FILE = tmp_path / "new-key.pem"
    signing.create_key_file(settings.LICENSE_SIGNING_KEY_FILE)
    served = tmslicense.Keyring.from_json(client.get("/keyring.json").content)
    assert set(served) == {old, signing.current_kid()}
    tmslicense.verify_license(activated.license_file, served, activated.installation_id)
    assert checks.keys_in_use(None) == []
    # While no key file can be read (a key lost), the public keys of the files in use are
    # still served: a server may be set up meanwhile.
    new_key = settings.LICENSE_SIGNING_KEY_FILE
    settings.LICENSE_SIGNING_KEY_FILE = tmp_path / "missing.pem"
    response = client.get("/keyring.json")
    assert response.status_code == 200
    assert set(tmslicense.Keyring.from_json(response.content)) == {old}
    settings.LICENSE_SIGNING_KEY_FILE = new_key
    with django_capture_on_commit_callbacks(execute=True):  # the old file is replaced
        new = services.reissue(activation=activated, actor=customer)
    served = tmslicense.Keyring.from_json(client.get("/keyring.json").content)
    assert set(served) == {new.kid} != {old}
    # A file signed before the site kept each key's public half: said at deployment.
    services.reissue(activation=new, actor=customer)
    Activation.objects.filter(revoked_at__isnull=True).update(kid="0123456789abcdef")
    [warning] = checks.keys_in_use(None)
    assert warning.id == "licensing.W002" and "1 license file(s)" in warning.msg
    assert "0123456789abcdef" in warning.msg
    # No key file to read and no key of a file in use known: no keyring to give, not an
    # empty one (a server would be told to trust nothing), nor one kept by a proxy.
    settings.LICENSE_SIGNING_KEY_FILE = tmp_path / "missing.pem"
    response = client.get("/keyring.json")
    assert (response.status_code, response["Cache-Control"]) == (503, "no-store")


@pytest.mark.parametrize(
    ("change", "state", "why"),
    [
        ({"status": "suspended"}, "Suspended", "is suspended"),
        ({"expires_at": timezone.now() - timedelta(days=1)}, "Expired", "expired on"),
    ],
)
def test_a_suspended_or_expired_license_says_so_and_offers_no_file(
    customer_client, activated, change, state, why, settings
):
    lic = activated.license
    # Changed after the file was issued too: still no updated file to be had, so none is
    # said to be out of date.
    License.objects.filter(pk=lic.pk).update(seats=lic.seats + 5, **change)
    listing = customer_client.get("/licenses/").content.decode()
    assert state in listing and "Active" not in listing
    assert "file out of date" not in listing
    page = customer_client.get(f"/licenses/{lic.number}/").content.decode()
    assert why in page and f'Contact support at <a href="mailto:{settings.SUPPORT_EMAIL}">' in page
    assert "/download/" not in page and "Add the same file" not in page  # no file to add
    response = customer_client.get(f"/licenses/{lic.number}/download/", follow=True)
    assert response.redirect_chain == [(f"/licenses/{lic.number}/", 302)]
    assert "BEGIN TMS LICENSE FILE" not in response.content.decode()
    assert response.content.decode().count(why) == 1  # the wizard's answer, said once


def test_license_page_says_what_the_file_in_use_has_the_old_way(customer_client, activated):
    lic = activated.license
    url = f"/licenses/{lic.number}/"
    assert 'id="file-changes"' not in customer_client.get(url).content.decode()
    assert "file out of date" not in customer_client.get("/licenses/").content.decode()
    License.objects.filter(pk=lic.pk).update(seats=lic.seats + 5, features=[])
    page = customer_client.get(url).content.decode()
    assert f"Seats: in the file {lic.seats}; now {lic.seats + 5}" in page
    assert "Features: in the file relevance; now none" in page
    assert "Maintenance end" not in page.split('id="file-changes"')[1].split("</div>")[0]
    assert "/download/" in page  # still the current file, to download
    listed = customer_client.get("/licenses/").content.decode()
    assert f'href="{url}#file-changes">file out of date</a>' in listed


def test_an_expiry_is_shown_to_the_minute_in_utc_wherever_it_is_shown(
    customer_client, make_license, customer
):
    """An expiry set as a date alone ends at the start of that day: shown as a date, it read as
    the whole day, and a file expiring at noon the same day as no difference at all."""
    from datetime import UTC, datetime

    lic = make_license(expires_at=datetime(2031, 6, 30, 12, 0, tzinfo=UTC))
    activation, _ = services.activate(
        license=lic, installation_id=tmslicense.new_installation_id(), actor=customer
    )
    body = OutboxMessage.objects.get(activation=activation).body
    assert "Expires: 2031-06-30 12:00 UTC" in body
    License.objects.filter(pk=lic.pk).update(expires_at=datetime(2031, 6, 30, tzinfo=UTC))
    page = customer_client.get(f"/licenses/{lic.number}/").content.decode()
    assert "Expires: in the file 2031-06-30 12:00 UTC; now 2031-06-30 00:00 UTC" in page
    assert re.search(r"Expires</dt><dd[^>]*>2031-06-30 00:00 UTC</dd>", page)
    # A change of seconds only is shown with them: never two same-looking values.
    License.objects.filter(pk=lic.pk).update(expires_at=datetime(2031, 6, 30, 12, 0, 5, tzinfo=UTC))
    page = customer_client.get(f"/licenses/{lic.number}/").content.decode()
    assert "Expires: in the file 2031-06-30 12:00 UTC; now 2031-06-30 12:00:05 UTC" in page


def test_a_customer_gets_an_updated_file_once_the_license_changed(
    customer_client, customer, activated, keyring, other_customer
):
    lic = activated.license
    url = f"/licenses/{lic.number}/update-file/"
    ids = activated.installation_ids
    # Nothing changed: refused, nothing written.
    response = customer_client.post(url, follow=True)
    assert "is up to date: it has the values of the license" in response.content.decode()
    assert Activation.objects.get().is_live
    # A GET (the button's address after a log-in interrupted it) changes nothing: the page.
    assert customer_client.get(url)["Location"] == f"/licenses/{lic.number}/"
    License.objects.filter(pk=lic.pk).update(seats=lic.seats + 5)
    page = customer_client.get(f"/licenses/{lic.number}/").content.decode()
    assert f'action="{url}"' in page and "Get an updated file" in page
    # Another organization's member gets the license's 404, and changes nothing.
    other = Client()
    other.force_login(other_customer)
    assert other.post(url).status_code == 404
    assert Activation.objects.get().is_live

    response = customer_client.post(url, follow=True)
    page = response.content.decode()
    new = Activation.objects.get(revoked_at=None)
    assert new.serial != activated.serial and new.installation_ids == ids
    assert "Here is the updated license file of" in page and f">{new.serial}</span>" in page
    assert 'id="file-changes"' not in page  # the file has the license's values now
    replaced = Activation.objects.get(pk=activated.pk).revoked_at
    assert f'replaced <span class="text-nowrap">{replaced:%Y-%m-%d %H:%M} UTC</span> by' in page
    row = page.split(f'">{new.serial}</td>')[1].split("</tr>")[0]
    assert "UTC</span> by you</td>" in row  # the customer's own, not "by support"
    verified = tmslicense.verify_license(new.license_file, keyring, ids[1])
    assert verified.seats == lic.seats + 5
    activated.refresh_from_db()
    assert activated.replaced_by == new and activated.revoked_by == customer
    event = AuditEvent.objects.get(action="update_file")
    assert event.actor == customer and event.details["replaces"] == activated.serial
    body = OutboxMessage.objects.get(key=f"activation:{new.serial}").body
    assert f"{customer.username} ({customer.email}) got an updated license file" in body
    assert f"It replaces the file with serial {activated.serial}, which is revoked" in body
    # What changed, as the license's page said before, and what the file holds.
    assert f"Changed from the old file: Seats {lic.seats} → {lic.seats + 5}." in body
    assert f"Seats: {lic.seats + 5}\nFeatures: {lic.listed_features}\n" in body
    assert event.details["changes"] == [["Seats", str(lic.seats), str(lic.seats + 5)]]
    # Done once: a second click (or the page sent again) changes nothing more.
    response = customer_client.post(url, follow=True)
    assert "is up to date: it has the values of the license" in response.content.decode()
    assert Activation.objects.count() == 2


def test_a_suspended_license_gets_no_updated_file(customer_client, activated):
    lic = activated.license
    License.objects.filter(pk=lic.pk).update(seats=lic.seats + 5, status=License.Status.SUSPENDED)
    response = customer_client.post(f"/licenses/{lic.number}/update-file/", follow=True)
    assert "is suspended" in response.content.decode()
    assert Activation.objects.get().is_live


def test_the_same_features_in_another_order_are_no_change(customer_client, make_license, customer):
    lic = make_license(features=["relevance", "multimonitor"])
    services.activate(license=lic, installation_id=tmslicense.new_installation_id(), actor=customer)
    License.objects.filter(pk=lic.pk).update(features=["multimonitor", "relevance"])
    assert (
        'id="file-changes"' not in customer_client.get(f"/licenses/{lic.number}/").content.decode()
    )
    assert "file out of date" not in customer_client.get("/licenses/").content.decode()


def test_license_page_names_product_edition_kind_and_customer(customer_client, make_license):
    # A standard license of the Standard edition: each "Standard" says which it is.
    lic = make_license("standard", product="ThinManager", edition="Standard")
    page = customer_client.get(f"/licenses/{lic.number}/").content.decode()
    assert (
        "Product: ThinManager · Edition: Standard · Kind: Standard · Customer: Acme Packaging"
        in page
    )


def test_features_are_listed_in_one_order_on_the_page_and_in_what_changed(
    customer_client, make_license, customer
):
    lic = make_license(features=["relevance", "multimonitor"])
    services.activate(license=lic, installation_id=tmslicense.new_installation_id(), actor=customer)
    License.objects.filter(pk=lic.pk).update(
        features=["relevance", "multimonitor", "tileinteractive"]
    )
    page = customer_client.get(f"/licenses/{lic.number}/").content.decode()
    listed = "multimonitor, relevance, tileinteractive"
    assert f'<dt class="col-6">Features</dt><dd class="col-6">{listed}</dd>' in page
    assert f"Features: in the file multimonitor, relevance; now {listed}" in page


def test_my_licenses_are_listed_by_number(customer_client, make_license, activated):
    for _ in range(4):
        make_license()
    shown = list(customer_client.get("/licenses/").context["page"])
    assert [lic.number for lic in shown] == sorted(lic.number for lic in shown)
    assert len(shown) == 5


def test_the_revoked_list_is_read_from_an_index_of_the_revoked_files(db):
    """Every server reads it; the files table holds every file ever issued."""
    require(connection.vendor == "postgresql", "PostgreSQL is not configured: set DATABASE_URL")
    query = Activation.objects.revoked().order_by("revoked_at", "pk").values_list("serial")
    with connection.cursor() as cursor:
        # A table this small is read whole: the plan for a large one.
        cursor.execute("SET LOCAL enable_seqscan = off; SET LOCAL enable_bitmapscan = off")
        plan = query.explain()
    assert "activation_revoked_in_order" in plan and "Sort" not in plan


def test_a_servers_live_files_are_read_from_indexes(organization):
    """What a secondary holds is read on every two-server file's page and e-mail; the files
    table holds every file ever issued."""
    require(connection.vendor == "postgresql", "PostgreSQL is not configured: set DATABASE_URL")
    licenses = License.objects.bulk_create(
        LicenseFactory.build(organization=organization) for _ in range(2000)
    )
    Activation.objects.bulk_create(
        Activation(
            license=lic,
            installation_id=tmslicense.new_installation_id(),
            mirrored_installation_id=tmslicense.new_installation_id() if n % 2 else "",
            serial=f"{n:016X}",
            kid="0123456789abcdef",
            license_file="-",
            issued_at=timezone.now(),
        )
        for n, lic in enumerate(licenses)
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE licensing_activation")
    plan = Activation.objects.live().bound_to(tmslicense.new_installation_id()).explain()
    assert "Seq Scan" not in plan, plan
    assert "activation_live_primary" in plan and "activation_live_pair_secondary" in plan


def test_revoked_list_makes_a_server_refuse_the_old_file(
    client, activated, customer, keyring, tmp_path
):
    new = services.reissue(activation=activated, actor=customer)
    response = client.get("/revoked.txt")  # public, like the keyring: serials only
    assert response["Content-Type"] == "text/plain; charset=utf-8"
    body = response.content.decode()
    assert activated.serial in body and new.serial not in body
    assert activated.license.number not in body and activated.installation_id not in body
    # As `python -m tmslicense revoked` adds it to the server's list, signed by the site:
    store.add_revoked(tmp_path, tmslicense.verify_revoked_list(body, keyring))
    revoked = store.revoked_serials(tmp_path)
    assert revoked == {activated.serial}
    with pytest.raises(tmslicense.LicenseRevoked):
        tmslicense.verify_license(
            activated.license_file, keyring, activated.installation_id, revoked=revoked
        )
    tmslicense.verify_license(new.license_file, keyring, new.installation_id, revoked=revoked)
    # A copy changed on its way, to stop the new file too, is refused.
    forged = body.replace(activated.serial, f"{activated.serial}\n{new.serial}")
    with pytest.raises(tmslicense.BadSignature):
        tmslicense.verify_revoked_list(forged, keyring)


def test_no_revoked_list_while_no_key_file_can_be_read(client, activated, customer, settings):
    # A key lost or unreadable (check --deploy and /healthz say which): a server's download
    # is told to try later, and no proxy keeps that answer, rather than a 500 page.
    services.reissue(activation=activated, actor=customer)
    settings.LICENSE_SIGNING_KEY_FILE = "/nonexistent/signing-key.pem"
    response = client.get("/revoked.txt")
    assert (response.status_code, response["Cache-Control"]) == (503, "no-store")
    assert b"try again later" in response.content


def test_staff_without_organization_sees_no_customer_license(client, activated):
    from tests.factories import UserFactory

    staff = UserFactory(is_staff=True, is_superuser=True)
    client.force_login(staff)
    assert client.get(f"/licenses/{activated.license.number}/").status_code == 404
    listing = client.get("/licenses/").content.decode()
    assert activated.license.number not in listing
    assert "logged in as support staff" in listing and "/admin/licensing/license/" in listing
    assert "If you bought one" not in listing


@pytest.mark.parametrize("path", ["/licenses/", "/accounts/login/", "/no-such-page/"])
def test_every_page_says_where_to_get_help(customer_client, settings, path):
    settings.SUPPORT_EMAIL = "help@plant-licensing.example"
    for who in (customer_client, Client()):
        page = who.get(path, follow=True).content.decode()
        assert 'href="mailto:help@plant-licensing.example"' in page


def test_password_reset_asks_for_the_e_mail_address_in_the_sites_words(client, db):
    page = client.get("/accounts/password_reset/").content.decode()
    assert "E-mail address" in page and re.search(r'<input[^>]*name="email"[^>]*autofocus', page)


def test_password_reset_sends_a_link_by_email(client, customer, django_capture_on_commit_callbacks):
    from django.core import mail

    with django_capture_on_commit_callbacks(execute=True):  # the outbox hands it over
        response = client.post("/accounts/password_reset/", {"email": customer.email})
    assert response.status_code == 302
    (message,) = mail.outbox
    assert customer.email in message.to
    assert "ThinManager License Site" in message.subject + message.body
    assert "testserver team" not in message.body
    link = next(line for line in message.body.splitlines() if "/accounts/reset/" in line)
    assert link.startswith(f"{django_settings.SITE_URL}/accounts/reset/")  # not the asker's host
    assert message.subject == "Choose a password for the ThinManager License Site"
    page = client.get(link.strip().removeprefix(django_settings.SITE_URL), follow=True)
    assert "Choose your password" in page.content.decode()
    new = "Another-plant-password-9"
    client.post(
        page.redirect_chain[-1][0],
        {"new_password1": new, "new_password2": new},
        REMOTE_ADDR="192.0.2.7",
    )
    customer.refresh_from_db()
    assert customer.check_password(new)
    # The organization's trail shows it: a reset can be a takeover.
    event = AuditEvent.objects.get(action="password_reset")
    assert event.actor == customer and event.ip_address == "192.0.2.7"
    assert event.organization_id == customer.membership.organization_id


def test_a_customer_changes_the_password_on_the_sites_pages(customer_client, customer):

    page = customer_client.get("/licenses/").content.decode()
    assert 'href="/accounts/password_change/"' in page
    form = customer_client.get("/accounts/password_change/").content.decode()
    assert "Change your password" in form and "admin" not in form.lower()
    new = "Another-plant-password-9"
    response = customer_client.post(
        "/accounts/password_change/",
        {"old_password": "wrong", "new_password1": new, "new_password2": new},
    )
    assert response.status_code == 200 and "incorrectly" in response.content.decode()
    response = customer_client.post(
        "/accounts/password_change/",
        {"old_password": PASSWORD, "new_password1": new, "new_password2": new},
        follow=True,
    )
    assert "Your password was changed" in response.content.decode()
    customer.refresh_from_db()
    assert customer.check_password(new)
    (event,) = AuditEvent.objects.filter(action="password_change")  # not the wrong try
    assert event.actor == customer
    assert customer_client.get("/licenses/").status_code == 200  # still logged in


def test_pages_name_the_site_not_the_host(client):
    page = client.get("/accounts/login/").content.decode()
    assert (
        "<title>Log in · ThinManager License Site</title>" in page
        or "ThinManager License Site</a>" in page
    )
    assert "testserver" not in page


def test_a_404_is_the_sites_page_with_a_way_back(customer_client, foreign, settings):
    page = customer_client.get(f"/licenses/{foreign.number}/").content.decode()
    assert "Page not found" in page and settings.SITE_NAME in page
    assert 'href="/licenses/"' in page and "for your organization" in page
    page = Client().get("/no-such-page/").content.decode()  # logged out
    assert "Page not found" in page and "for your organization" not in page
    assert 'href="/accounts/login/"' in page


def test_support_meets_a_missing_or_forbidden_admin_page_with_a_way_back_to_the_admin(
    support_client,
):
    for url, status, says in (
        ("/admin/licensing/activation/999999/revoke/", 404, "in the support admin"),
        ("/admin/auth/user/", 403, "ask your administrator"),
    ):
        response = support_client.get(url)
        page = response.content.decode()
        assert response.status_code == status and says in page
        assert 'class="btn btn-primary" href="/admin/">Support admin</a>' in page
        assert 'class="btn btn-primary" href="/licenses/"' not in page


def test_an_expired_form_says_so_and_writes_nothing(customer, make_license):
    from licensing.models import Activation

    lic = make_license("standard")
    services.activate(license=lic, installation_id=tmslicense.new_installation_id(), actor=customer)
    License.objects.filter(pk=lic.pk).update(seats=lic.seats + 1)  # an updated file is due
    client = Client(enforce_csrf_checks=True)
    client.force_login(customer)
    response = client.post(f"/licenses/{lic.number}/update-file/")
    assert response.status_code == 403  # (the activation's pages: see test_activation)
    page = response.content.decode()
    assert "This page has expired" in page and "reload the page" in page
    assert Activation.objects.count() == 1


def test_a_log_in_form_sent_once_logged_in_in_another_tab_goes_on(customer):
    client = Client(enforce_csrf_checks=True)
    client.force_login(customer)  # in the other tab; this tab's token is no longer valid
    form = {"username": customer.username, "password": "x", "csrfmiddlewaretoken": "stale"}
    response = client.post("/accounts/login/?next=/activate/", form, follow=True)
    assert response.redirect_chain == [("/activate/", 302)]
    assert f"You are logged in already, as {customer.username}." in response.content.decode()
    # Led only where a log-in would lead: never off the site.
    response = client.post("/accounts/login/?next=https://evil.example/", form)
    assert response.status_code == 302 and response["Location"] == "/licenses/"
    # Not logged in, it is the page that says the form expired.
    client.logout()
    response = client.post("/accounts/login/", form)
    assert response.status_code == 403 and "This page has expired" in response.content.decode()


def test_a_step_sent_after_the_session_ended_says_so_at_the_log_in(client, make_license):
    lic = make_license("standard")
    form = {
        "activate_license_view-current_step": "license",
        "license-license_number": lic.number,
        "license-installation_id": tmslicense.new_installation_id(),
    }
    response = client.post("/activate/", form, follow=True)
    assert response.redirect_chain == [("/accounts/login/?next=/activate/", 302)]
    page = response.content.decode()
    assert "You were logged out before that page was sent" in page
    assert "nothing was activated" in page
    # Opening the page when logged out is only the log-in, no warning.
    page = client.get("/activate/", follow=True).content.decode()
    assert "You were logged out" not in page


def test_a_server_error_is_the_sites_page(customer_client, monkeypatch, settings):
    from licensing import signing

    def broken():
        raise RuntimeError("keyring unreadable")

    monkeypatch.setattr(signing, "public_keyring", broken)
    customer_client.raise_request_exception = False
    response = customer_client.get("/keyring.json")
    assert response.status_code == 500
    page = response.content.decode()
    assert "Something went wrong on our side" in page and settings.SITE_NAME in page
    assert f"mailto:{settings.SUPPORT_EMAIL}" in page
    assert "keyring unreadable" not in page


def test_every_page_carries_the_content_security_policy(customer_client, monkeypatch):
    from licensing import signing

    pages = [customer_client.get(url) for url in ("/licenses/", "/activate/", "/admin/login/")]
    monkeypatch.setattr(signing, "public_keyring", lambda: 1 / 0)
    customer_client.raise_request_exception = False
    pages.append(customer_client.get("/keyring.json"))  # the 500 page
    assert [page.status_code for page in pages] == [200, 200, 200, 500]
    policies = [
        dict(directive.split(" ", 1) for directive in page["Content-Security-Policy"].split("; "))
        for page in pages
    ]
    for policy in policies:
        assert policy["script-src"] == "'self'"  # no inline script, no eval
        assert policy["object-src"] == "'none'" and policy["frame-ancestors"] == "'none'"
    # Styles only from the site's files; the 500 page's own inline style by its hash.
    assert [policy["style-src"] for policy in policies[:3]] == ["'self'"] * 3
    assert re.fullmatch(r"'self' 'sha256-[\w+/]{43}='", policies[3]["style-src"])


def test_debug_pages_have_no_content_security_policy(customer_client, settings):
    # Django's debug pages work by inline scripts.
    settings.DEBUG = True
    assert "Content-Security-Policy" not in customer_client.get("/licenses/")


def test_a_bad_request_is_the_sites_page(client, db):
    response = client.get("/accounts/login/", HTTP_HOST="not-this-site.example")
    assert response.status_code == 400
    assert "Bad request" in response.content.decode()


@pytest.mark.parametrize(
    "path",
    [
        "/licenses/%00/",
        "/licenses/%00/download/",
        "/licenses/TM-%00/update-file/",
        "/admin/licensing/license/?kind=%00",
        "/admin/licensing/license/?q=TM%00",
        "/admin/licensing/auditevent/?action__exact=%00",
    ],
)
def test_a_nul_character_in_an_address_is_a_bad_request_on_every_database(customer_client, path):
    """PostgreSQL refuses to compare text with a NUL in it: a 500 there (the admin's for
    support), before it was refused up front, whoever asks (SQLite simply found nothing)."""
    response = customer_client.get(path)
    assert response.status_code == 400
    assert "Bad request" in response.content.decode()


def test_a_cookie_with_a_nul_character_is_no_cookie_on_every_database(customer_client):
    """A session cookie holding a NUL (a browser sends what a script, or a site of a parent
    domain, set) made every page a 500 on PostgreSQL, the log-in page too, until the cookie
    was deleted: such a cookie is ignored, as if not sent."""
    client = Client()
    client.cookies["sessionid"] = "abcdefgh\x00ijk"
    assert client.get("/accounts/login/").status_code == 200
    assert client.get("/licenses/")["Location"].startswith("/accounts/login/")
    customer_client.cookies["messages"] = "\x00"  # others are read as they were
    assert customer_client.get("/licenses/").status_code == 200


def _on_pair(customer, ids, *licenses):
    """Each license activated for the pair ``ids`` (primary, secondary), in turn."""
    for lic in licenses:
        services.activate(
            license=lic, installation_id=ids[0], mirrored_installation_id=ids[1], actor=customer
        )


def test_an_enterprise_file_promises_full_redundancy_only_where_tmslicense_gives_it(
    customer_client, customer
):
    """On a pair that also has a mirrored license, the secondary is fully functional only if
    the enterprise license duplicates it (tmslicense): its page and e-mail say what the
    secondary's ThinManager will say, not "both fully functional"."""
    organization = customer.membership.organization
    ids = tmslicense.new_installation_id(), tmslicense.new_installation_id()
    mirrored = LicenseFactory(organization=organization, kind="mirrored", seats=25)
    premium = LicenseFactory(organization=organization, kind="enterprise", edition="Premium")
    _on_pair(customer, ids, mirrored, premium)
    page = customer_client.get(f"/licenses/{premium.number}/").content.decode()
    body = OutboxMessage.objects.get(activation__license=premium).body
    for said in (re.sub(r"<[^>]+>", "", page), body):  # the page's text, without its tags
        assert "both are fully functional" not in said
        assert f"none here duplicates license {mirrored.number}" in said
        assert f"interface runs only on the primary ThinManager Server ({ids[0]})" in said
    # A duplicate (the same edition, as many seats, every feature) makes it fully redundant.
    duplicate = LicenseFactory(organization=organization, kind="enterprise", seats=25)
    services.activate(
        license=duplicate, installation_id=ids[0], mirrored_installation_id=ids[1], actor=customer
    )
    for lic in (duplicate, premium):  # the first one's page, too, now that the pair has it
        page = customer_client.get(f"/licenses/{lic.number}/").content.decode()
        assert "both are fully functional" in page and "duplicates" not in page
    assert (
        "both are fully functional" in OutboxMessage.objects.get(activation__license=duplicate).body
    )


def test_step_2_says_which_secondary_a_paired_primary_takes_and_what_it_will_allow(
    customer_client, customer, other_customer
):
    """A pair adding a license: step 2 names the secondary the primary is synchronized with
    already (the only one it may take), and for an enterprise license that would leave that
    server a mirror (no duplicate of the pair's mirrored license) says so before the file
    is issued, not "fully redundant" then a refusal of the console on the server."""
    from tests.licensing.wizard import step1

    organization = customer.membership.organization
    ids = tmslicense.new_installation_id(), tmslicense.new_installation_id()
    mirrored = LicenseFactory(organization=organization, kind="mirrored", seats=25)
    services.activate(
        license=mirrored, installation_id=ids[0], mirrored_installation_id=ids[1], actor=customer
    )
    premium = LicenseFactory(organization=organization, kind="enterprise", edition="Premium")
    said = re.sub(r"<[^>]+>", "", step1(customer_client, premium.number, ids[0]).content.decode())
    assert (
        f"{ids[0]} is synchronized with {ids[1]} already (license {mirrored.number}): enter "
        f"{ids[1]} as the Mirrored Installation ID." in said
    )
    assert "The secondary server is fully redundant" not in said
    assert f"With this license, {ids[1]} will not be fully functional" in said
    assert f"none here duplicates license {mirrored.number}" in said
    # A duplicate of the mirrored license would be: the usual description, the pair named.
    duplicate = LicenseFactory(organization=organization, kind="enterprise", seats=25)
    customer_client.wizard_run = ""
    said = re.sub(r"<[^>]+>", "", step1(customer_client, duplicate.number, ids[0]).content.decode())
    assert "The secondary server is fully redundant" in said and "duplicates" not in said
    assert f"is synchronized with {ids[1]} already (license {mirrored.number})" in said
    # A primary paired by another customer's file only: nothing of theirs is named.
    other = tmslicense.new_installation_id(), tmslicense.new_installation_id()
    theirs = LicenseFactory(organization=other_customer.membership.organization, kind="mirrored")
    services.activate(
        license=theirs,
        installation_id=other[0],
        mirrored_installation_id=other[1],
        actor=other_customer,
    )
    customer_client.wizard_run = ""
    said = step1(customer_client, premium.number, other[0]).content.decode()
    assert "Step 2 of 2" in said and other[1] not in said and "synchronized with" not in said


def test_an_active_license_whose_file_expired_offers_its_updated_file_not_the_expired_one(
    customer_client, activated
):
    """The license extended after its file expired: every server refuses that file, so its
    page says so and offers the updated file alone, not the expired one to add."""
    lic = activated.license
    ended = timezone.now() - timedelta(days=3)
    Activation.objects.filter(pk=activated.pk).update(expires_at=ended)
    License.objects.filter(pk=lic.pk).update(expires_at=timezone.now() + timedelta(days=365))
    page = customer_client.get(f"/licenses/{lic.number}/").content.decode()
    said = re.sub(r"<[^>]+>", "", page)
    assert "Active" in said and 'id="update-file"' in page
    assert f"This file expired on {expiry_shown(ended)}: ThinManager Servers refuse it." in said
    assert f'href="/licenses/{lic.number}/download/"' not in page
    assert "Add the same file" not in said
    # Its download address (bookmarked, or the page open from before) leads to that page.
    downloaded = customer_client.get(f"/licenses/{lic.number}/download/")
    assert downloaded.status_code == 302
    assert downloaded["Location"] == f"/licenses/{lic.number}/"
    # Its e-mail does not say the old file keeps working: the servers refuse it already.
    assert customer_client.post(f"/licenses/{lic.number}/update-file/").status_code == 302
    body = OutboxMessage.objects.get(
        key__startswith="activation:", activation__replaces=activated
    ).body
    assert "The old file keeps working" not in body
    assert (
        f"The old file expired on {expiry_shown(ended)}: the servers refuse it already; add "
        "the new file now." in body
    )


def test_an_update_that_would_take_a_secondarys_full_function_says_so_before_the_click(
    customer_client, customer
):
    """A fully redundant pair (an enterprise license duplicating its mirrored one); support
    adds seats to the mirrored license: its page offers the updated file, and says before it
    is taken that the secondary would then be a mirror (the enterprise license no longer
    duplicates it), not only after."""
    organization = customer.membership.organization
    ids = tmslicense.new_installation_id(), tmslicense.new_installation_id()
    mirrored = LicenseFactory(organization=organization, kind="mirrored", seats=25)
    enterprise = LicenseFactory(organization=organization, kind="enterprise", seats=25)
    _on_pair(customer, ids, mirrored, enterprise)
    page = customer_client.get(f"/licenses/{mirrored.number}/").content.decode()
    assert 'id="update-file"' not in page and "its ThinManager" not in page
    License.objects.filter(pk=mirrored.pk).update(seats=30)
    said = re.sub(
        r"<[^>]+>", "", customer_client.get(f"/licenses/{mirrored.number}/").content.decode()
    )
    assert f"With the updated file, the secondary, {ids[1]}, would no longer be fully" in said
    assert f"none here duplicates license {mirrored.number}" in said
    assert "holds licenses of its own, but" not in said  # fully functional now
    # Support's reissue page says it too, before the file is issued.
    support = UserFactory(is_staff=True, is_superuser=True)
    staff = Client()
    staff.force_login(support)
    live = mirrored.activations.get()
    page = staff.get(f"/admin/licensing/activation/{live.pk}/reissue/").content.decode()
    assert f"With the new file, {ids[1]} would no longer be fully functional" in page
    live = enterprise.activations.get()
    page = staff.get(f"/admin/licensing/activation/{live.pk}/reissue/").content.decode()
    assert "would no longer be fully functional" not in page  # its own values are as filed
    # Seats the enterprise license covers: nothing to warn of.
    License.objects.filter(pk=mirrored.pk).update(seats=20)
    page = customer_client.get(f"/licenses/{mirrored.number}/").content.decode()
    assert 'id="update-file"' in page and 'id="update-not-redundant"' not in page


def test_a_mirrored_file_says_when_it_takes_the_console_from_a_secondary_with_licenses(
    customer_client, customer
):
    """A mirrored license activated on a pair whose secondary was fully functional by an
    enterprise license that does not duplicate it makes that server a mirror (tmslicense):
    its page says so, before the file is added there (its e-mail describes the mirror, as
    every mirrored file's: it promises no more). A plain mirrored pair gets the mirror's
    description alone."""
    organization = customer.membership.organization
    ids = tmslicense.new_installation_id(), tmslicense.new_installation_id()
    plain = LicenseFactory(organization=organization, kind="mirrored")
    services.activate(
        license=plain, installation_id=ids[0], mirrored_installation_id=ids[1], actor=customer
    )
    page = customer_client.get(f"/licenses/{plain.number}/").content.decode()
    assert "The mirrored server lets thin clients boot" in page and "its ThinManager" not in page
    pair = tmslicense.new_installation_id(), tmslicense.new_installation_id()
    enterprise = LicenseFactory(organization=organization, kind="enterprise", seats=5)
    mirrored = LicenseFactory(organization=organization, kind="mirrored", seats=25)
    _on_pair(customer, pair, enterprise, mirrored)
    page = customer_client.get(f"/licenses/{mirrored.number}/").content.decode()
    said = re.sub(r"<[^>]+>", "", page)
    assert "The mirrored server lets thin clients boot" in said
    assert f"{pair[1]}, holds licenses of its own" in said
    assert f"none here duplicates license {mirrored.number}" in said
    body = OutboxMessage.objects.get(activation__license=mirrored).body
    assert "The mirrored server lets thin clients boot" in body


def test_a_one_server_license_on_a_mirror_says_the_server_is_still_a_mirror(
    customer_client, customer
):
    """A standard license bought for the secondary of a mirrored pair, no duplicate of the
    mirrored license: its page says the server stays a mirror, as its ThinManager will."""
    organization = customer.membership.organization
    ids = tmslicense.new_installation_id(), tmslicense.new_installation_id()
    mirrored = LicenseFactory(organization=organization, kind="mirrored", seats=25)
    services.activate(
        license=mirrored, installation_id=ids[0], mirrored_installation_id=ids[1], actor=customer
    )
    standard = LicenseFactory(organization=organization, kind="standard", seats=5)
    services.activate(license=standard, installation_id=ids[1], actor=customer)
    page = re.sub(
        r"<[^>]+>", "", customer_client.get(f"/licenses/{standard.number}/").content.decode()
    )
    assert f"The server, {ids[1]}, holds licenses of its own, but" in page
    assert f"none here duplicates license {mirrored.number}" in page
    # A duplicate makes it fully functional: nothing to say.
    duplicate = LicenseFactory(organization=organization, kind="standard", seats=25)
    services.activate(license=duplicate, installation_id=ids[1], actor=customer)
    for lic in (standard, duplicate, mirrored):
        assert (
            'id="not-redundant"'
            not in customer_client.get(f"/licenses/{lic.number}/").content.decode()
        )


def test_a_one_server_license_names_its_server_without_a_role(customer_client, customer):
    lic = LicenseFactory(organization=customer.membership.organization, kind="standard")
    server = tmslicense.new_installation_id()
    services.activate(license=lic, installation_id=server, actor=customer)
    page = customer_client.get(f"/licenses/{lic.number}/").content.decode()
    assert "Location (ThinManager Server):" in page and server in page
    assert "primary" not in page


def test_log_out_by_link_asks_first(customer_client, client, db):
    page = customer_client.get("/accounts/logout/")
    assert page.status_code == 200
    assert "Log out?" in page.content.decode() and "csrfmiddlewaretoken" in page.content.decode()
    assert customer_client.get("/licenses/").status_code == 200  # still logged in
    response = customer_client.post("/accounts/logout/", follow=True)
    assert response.redirect_chain[-1][0] == "/accounts/login/"
    # A notice, read out politely; only warnings and errors interrupt (role="alert").
    assert 'role="status">You are logged out.' in response.content.decode()
    assert customer_client.get("/licenses/").status_code == 302
    assert client.get("/accounts/logout/")["Location"] == "/accounts/login/"  # not logged in


def test_my_licenses_reads_the_same_few_queries_for_many_licenses(customer_client, customer):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert customer_client.get("/licenses/").status_code == 200
        return len(captured)

    customer_client.get("/licenses/")  # the log-in's first page: its session's end moved on
    organization = customer.membership.organization
    for _ in range(2):
        lic = LicenseFactory(organization=organization)
        services.activate(
            license=lic, installation_id=tmslicense.new_installation_id(), actor=customer
        )
    few = queries()
    for _ in range(5):
        lic = LicenseFactory(organization=organization)
        services.activate(
            license=lic, installation_id=tmslicense.new_installation_id(), actor=customer
        )
    assert queries() == few


def test_a_license_address_typed_in_lower_case_leads_to_its_page(customer_client, activated):
    number = activated.license.number
    for suffix in ("", "download/"):
        typed = customer_client.get(f"/licenses/{number.lower()}/{suffix}")
        assert typed.status_code == 302 and typed["Location"] == f"/licenses/{number}/{suffix}"
    assert customer_client.get("/licenses/not-a-number/").status_code == 404


def test_the_bar_marks_the_page_shown(customer_client, activated):
    listing = customer_client.get("/licenses/").content.decode()
    assert 'class="nav-link active" aria-current="page" href="/licenses/"' in listing
    assert listing.count('aria-current="page"') == 1
    activate = customer_client.get("/activate/").content.decode()
    assert 'class="nav-link active" aria-current="page" href="/activate/"' in activate
    detail = customer_client.get(f"/licenses/{activated.license.number}/").content.decode()
    assert 'class="nav-link active" aria-current="location" href="/licenses/"' in detail


def test_support_staff_log_in_and_out_of_the_admin(client, db):
    from tests.factories import PASSWORD, UserFactory

    staff = UserFactory(is_staff=True)
    response = client.post("/accounts/login/", {"username": staff.username, "password": PASSWORD})
    assert response["Location"] == "/admin/"
    page = client.get("/activate/").content.decode()
    assert 'id="staff-note"' in page and "/admin/licensing/license/" in page
    page = client.get("/admin/logout/").content.decode()  # by a link: asks, stays in the admin
    assert "Log out?" in page and 'href="/admin/">Stay logged in' in page
    response = client.post("/admin/logout/", follow=True)
    assert response.redirect_chain[-1][0].startswith("/admin/login/")
    assert "You are logged out." in response.content.decode()
    assert client.get("/admin/logout/")["Location"] == "/admin/login/"


def test_a_customer_logs_in_to_my_licenses_or_where_they_were_going(client, customer):
    from tests.factories import PASSWORD

    form = {"username": customer.username, "password": PASSWORD}
    assert client.post("/accounts/login/", form)["Location"] == "/licenses/"
    assert 'id="staff-note"' not in client.get("/activate/").content.decode()
    client.logout()
    response = client.post("/accounts/login/?next=/activate/", form)
    assert response["Location"] == "/activate/"


def test_my_licenses_says_which_are_not_activated_yet(customer_client, activated, make_license):
    waiting = make_license("standard")
    rows = customer_client.get("/licenses/").content.decode().split("<tr>")[2:]
    row = next(r for r in rows if waiting.number in r)
    assert 'data-label="Servers">not activated yet</td>' in row
    row = next(r for r in rows if activated.license.number in r)
    assert activated.installation_id in row and "not activated" not in row


def test_a_license_whose_file_was_revoked_says_so(customer_client, activated, customer):
    services.revoke(activation=activated, reason="Server scrapped", actor=customer)
    revoked = activated.license.activations.get().revoked_at
    number = activated.license.number
    rows = customer_client.get("/licenses/").content.decode().split("<tr>")[2:]
    row = next(r for r in rows if number in r)
    assert f'no current file (revoked <span class="text-nowrap">{revoked:%Y-%m-%d %H:%M} UTC' in row
    page = customer_client.get(f"/licenses/{number}/").content.decode()
    assert (
        f"the last one ({activated.serial}) was revoked on "
        f'<span class="text-nowrap">{revoked:%Y-%m-%d %H:%M} UTC</span>.'
    ) in page
    assert "Server scrapped" not in page  # support's reason stays in the admin


def test_a_fields_error_is_read_out_before_its_help_text(customer_client, make_license):
    """A screen reader reads a field's descriptions in the order aria-describedby names them;
    after a refused form the error is the news (Django names the help text first)."""
    from tests.factories import PASSWORD
    from tests.licensing.wizard import step1

    def described_by(response, name):
        html = response.content.decode()
        tag = re.search(rf'<input[^>]*name="{name}"[^>]*>', html).group(0)
        ids = re.search(r'aria-describedby="([^"]*)"', tag).group(1).split()
        assert all(f'id="{id_}"' in html for id_ in ids)  # each names a part of the page
        return ids

    page = customer_client.get("/activate/")
    assert described_by(page, "license-installation_id") == ["id_license-installation_id_helptext"]
    refused = step1(customer_client, make_license().number, "ABCD")
    assert described_by(refused, "license-installation_id") == [
        "id_license-installation_id_error",
        "id_license-installation_id_helptext",
    ]
    mismatch = {"new_password1": "Abcdef-12345", "new_password2": "Xbcdef-12345"}
    refused = customer_client.post(
        "/accounts/password_change/", {"old_password": PASSWORD, **mismatch}
    )
    assert described_by(refused, "new_password2") == [
        "id_new_password2_error",
        "id_new_password2_helptext",
    ]


def test_members_lists_the_organizations_people_only(
    customer_client, customer, organization, other_customer, client
):
    from django.utils import timezone

    from tests.factories import UserFactory

    colleague = UserFactory(organization=organization, last_login=timezone.now())
    invited = UserFactory(organization=organization, password=None)  # no password chosen yet
    UserFactory(organization=organization)  # a password, never logged in
    gone = UserFactory(organization=organization, is_active=False)
    page = customer_client.get("/members/").content.decode()
    assert "Members of Acme Packaging" in page and 'aria-current="page"' in page
    assert f"{customer.email} (you)" in page and colleague.email in page
    assert f"{invited.email}</td>" in page and "invited, has not chosen a password yet" in page
    # The day, not the minute: whether a colleague still uses the site, not when they work.
    last = colleague.last_login
    assert f"{last:%Y-%m-%d}</td>" in page and f"{last:%H:%M}" not in page
    assert "never</td>" in page
    assert other_customer.email not in page and gone.email not in page

    support = UserFactory(is_staff=True)
    client.force_login(support)
    page = client.get("/members/").content.decode()
    assert "belong to no customer organization" in page and customer.email not in page


def test_an_account_removed_from_its_organization_is_told_so_not_to_buy_a_license(
    customer_client, customer, activated
):
    """Support removed the member (its membership deleted): the licenses are gone from it, and
    its pages say the account belongs to no organization, not that the organization has no
    license yet ("if you bought one, write with your order number")."""
    customer.membership.delete()
    for path in ("/licenses/", "/members/"):
        page = customer_client.get(path).content.decode()
        assert "Your account belongs to no customer organization" in page, path
        assert "no licenses here yet" not in page and activated.license.number not in page


def test_my_licenses_says_until_when_a_license_with_an_expiry_works(
    customer_client, make_license, customer
):
    """A term license's servers stop at its expiry, maybe long before its maintenance end:
    the list says when, beside its status."""
    from datetime import UTC, datetime

    term = make_license("standard", expires_at=datetime(2027, 6, 30, tzinfo=UTC))
    make_license("standard")  # no expiry: nothing more to say

    def until(lic):
        page = customer_client.get("/licenses/").content.decode()
        return re.findall(
            r"until <span[^>]*>([^<]*)</span>",
            page.split(f">{lic.number}</a>")[1].split("</tr>")[0],
        )

    assert until(term) == ["2027-06-30 00:00 UTC"]
    # Extended since its file was issued: its servers stop on the file's expiry, which comes
    # first (its "file out of date" says why).
    services.activate(
        license=term, installation_id=tmslicense.new_installation_id(), actor=customer
    )
    License.objects.filter(pk=term.pk).update(expires_at=datetime(2028, 6, 30, tzinfo=UTC))
    assert until(term) == ["2027-06-30 00:00 UTC"]
    assert customer_client.get("/licenses/").content.decode().count("until ") == 1
    # The file expired already (the license extended, its updated file not taken): said so.
    Activation.objects.filter(license=term).update(expires_at=datetime(2026, 1, 1, tzinfo=UTC))
    page = customer_client.get("/licenses/").content.decode()
    assert "its file expired <span" in page and "until " not in page


def test_a_license_not_active_says_until_when_the_file_on_its_servers_works(
    customer_client, make_license, customer
):
    """Support moved a license's expiry into the past (or suspended it) after its file was
    issued: the file on its servers works on until its own expiry, or for ever. The list, the
    license's page and the spreadsheet say until when, not only "Expired"."""
    from datetime import UTC, datetime

    lic = make_license("standard", expires_at=datetime(2099, 12, 31, tzinfo=UTC))
    services.activate(license=lic, installation_id=tmslicense.new_installation_id(), actor=customer)
    License.objects.filter(pk=lic.pk).update(expires_at=datetime(2026, 5, 15, tzinfo=UTC))
    says = "The file on your servers works until 2099-12-31 00:00 UTC."

    def row():
        page = customer_client.get("/licenses/").content.decode()
        return page.split(f">{lic.number}</a>")[1].split("</tr>")[0]

    assert "Expired" in row() and says in row()
    page = customer_client.get(f"/licenses/{lic.number}/").content.decode()
    assert says in page.split('id="current-file"')[1]
    exported_row = exported(customer_client.get("/licenses/export/"))[0]
    assert exported_row["Status"] == "Expired"
    assert exported_row["File expires (UTC)"] == "2099-12-31 00:00"

    Activation.objects.filter(license=lic).update(expires_at=None)
    assert "The file on your servers does not expire." in row()
    assert exported(customer_client.get("/licenses/export/"))[0]["File expires (UTC)"] == "never"
    Activation.objects.filter(license=lic).update(expires_at=datetime(2026, 1, 1, tzinfo=UTC))
    assert "The file on your servers expired on 2026-01-01 00:00 UTC." in row()

    License.objects.filter(pk=lic.pk).update(expires_at=None, status="suspended")
    assert "Suspended" in row() and "The file on your servers expired on" in row()
    # Active: the list says it as before ("until", "its file expired"), the page not at all.
    License.objects.filter(pk=lic.pk).update(status="active")
    page = customer_client.get(f"/licenses/{lic.number}/").content.decode()
    assert "The file on your servers" not in row() + page


def listed(response) -> list[str]:
    """The license numbers a My licenses page lists, in order."""
    link = r'class="license-number" href="/licenses/([^/"]+)/"'
    return re.findall(link, response.content.decode())


def test_my_licenses_finds_a_license_by_number_installation_id_or_serial(
    customer_client, customer, activated, make_license, foreign
):
    other = make_license("standard")
    lic = activated.license
    # A server's ID as the Licensing window shows it, in lower case without dashes, or a part.
    for term in (
        lic.number,
        lic.number.lower().replace("-", " "),
        lic.number[-9:],
        activated.installation_id,
        activated.mirrored_installation_id.replace("-", "").lower(),
        activated.mirrored_installation_id[:9],
        activated.serial,
    ):
        response = customer_client.get("/licenses/", {"q": term})
        assert listed(response) == [lic.number], term
        assert "1 license found for" in response.content.decode()
    assert listed(customer_client.get("/licenses/", {"q": other.number})) == [other.number]
    # A file of the past still leads to its license (its page's history names the file), and
    # a license with many files holding the term is listed once.
    services.reissue(activation=activated, actor=customer)
    services.revoke(activation=lic.live_activation, reason="Server scrapped", actor=customer)
    assert listed(customer_client.get("/licenses/", {"q": activated.serial})) == [lic.number]
    found = customer_client.get("/licenses/", {"q": activated.installation_id})
    assert listed(found) == [lic.number]
    # Another organization's license is not found by its number, nor by its server's ID.
    for term in (foreign.number, foreign.activations.get().installation_id):
        response = customer_client.get("/licenses/", {"q": term})
        assert listed(response) == [] and "No license of your organization" in str(response.content)


def test_my_licenses_finds_no_license_by_a_few_characters_of_its_files(
    customer_client, activated, make_license
):
    """Fewer than 4 characters (the least of an Installation ID's beginning searched for) are
    in most serials and Installation IDs: looked for in the license numbers alone, as
    support's search does."""
    other = make_license("standard")
    numbers = activated.license.number + other.number
    short = next(
        part for part in (activated.serial[i : i + 2] for i in range(15)) if part not in numbers
    )
    assert listed(customer_client.get("/licenses/", {"q": short})) == []
    assert listed(customer_client.get("/licenses/", {"q": activated.serial[:4]})) == [
        activated.license.number
    ]


def test_my_licenses_finds_an_id_copied_with_the_punctuation_around_it(customer_client, activated):
    """Copied from the file's e-mail ("…, bound to W5G6-….")."""
    for term in (f"{activated.installation_id}.", f"{activated.serial},"):
        page = customer_client.get("/licenses/", {"q": term}).content.decode()
        assert activated.license.number in page and "No license of your organization" not in page


def test_my_licenses_says_a_typo_when_nothing_is_found(customer_client, activated):
    wrong = activated.installation_id[:-1] + ("0" if activated.installation_id[-1] != "0" else "1")
    page = customer_client.get("/licenses/", {"q": wrong}).content.decode()
    assert "No license of your organization" in page
    assert "contains a typo" in page
    assert 'href="/licenses/">Show all licenses' in page


def test_my_licenses_comes_in_pages(customer_client, make_license, monkeypatch):
    from licensing import views

    monkeypatch.setattr(views, "LICENSES_PER_PAGE", 2)
    numbers = sorted(make_license("standard").number for _ in range(5))
    first = customer_client.get("/licenses/")
    assert listed(first) == numbers[:2]
    page = first.content.decode()
    assert "Licenses 1–2 of 5" in page and 'aria-label="Pages of licenses"' in page
    assert listed(customer_client.get("/licenses/", {"page": 3})) == numbers[4:]
    # A page out of range or not a number is the nearest page, not an error.
    assert listed(customer_client.get("/licenses/", {"page": 99})) == numbers[4:]
    assert listed(customer_client.get("/licenses/", {"page": "x"})) == numbers[:2]
    # The pages of a search keep the search.
    found = customer_client.get("/licenses/", {"q": "TM-"}).content.decode()
    assert "5 licenses found for" in found
    assert "?q=TM-&amp;page=2" in found


def test_my_licenses_refuses_a_search_too_long_to_be_a_license(customer_client, activated):
    response = customer_client.get("/licenses/", {"q": "X" * 101})
    assert response.status_code == 200
    page = response.content.decode()
    assert "at most 100 characters" in page and listed(response) == []


def test_a_customer_without_licenses_gets_no_search_box(customer_client):
    page = customer_client.get("/licenses/").content.decode()
    assert "no licenses here yet" in page and 'name="q"' not in page


def exported(response) -> list[dict]:
    import csv
    import io

    text = response.content.decode("utf-8")
    assert text.startswith("\ufeff")  # so that spreadsheet programs read it as UTF-8
    return list(csv.DictReader(io.StringIO(text[1:])))


def test_a_download_asked_for_by_another_sites_page_is_not_handed_out(
    customer_client, support, activated
):
    """A link (or an image) on another site's page would download the file into the
    customer's (or support's) browser and record a download nobody chose: the browser says
    where the request came from; such a one is sent to the license's page instead."""
    number = activated.license.number
    support_client = Client()
    support_client.force_login(support)
    for client, url, page in (
        (customer_client, f"/licenses/{number}/download/", f"/licenses/{number}/"),
        (
            support_client,
            f"/admin/licensing/activation/{activated.pk}/file/",
            f"/admin/licensing/license/{activated.license_id}/change/",
        ),
    ):
        downloads = AuditEvent.objects.filter(action="file_download")
        before = downloads.count()
        # Another site, or another of this site's hosts or ports (a forum at forum.example.com
        # beside licensing.example.com): "same-site".
        for elsewhere in ("cross-site", "same-site"):
            response = client.get(url, HTTP_SEC_FETCH_SITE=elsewhere)
            assert response.status_code == 302 and response["Location"] == page, elsewhere
        assert downloads.count() == before
        for origin in ("same-origin", "none"):  # the site's own button; a typed address
            response = client.get(url, HTTP_SEC_FETCH_SITE=origin)
            assert "attachment" in response["Content-Disposition"], origin
    assert AuditEvent.objects.filter(action="file_download").count() == 4


def test_pages_of_a_logged_in_customer_are_not_kept_by_the_browser(customer_client, activated):
    """On a plant's shared PC, after log-out, the browser's cache (or Back) must not give the
    next person the licenses, their Installation IDs or the spreadsheet of them."""
    number = activated.license.number
    for url in ("/licenses/", f"/licenses/{number}/", "/licenses/export/", "/members/"):
        response = customer_client.get(url)
        assert response.status_code == 200, url
        cache = response["Cache-Control"]
        assert "no-store" in cache and "private" in cache, url
    # What is public may be kept.
    for url in ("/keyring.json", "/revoked.txt"):
        assert "no-store" not in customer_client.get(url).get("Cache-Control", ""), url
    assert "no-store" not in Client().get("/revoked.txt").get("Cache-Control", "")


def test_my_licenses_downloads_as_a_spreadsheet(
    customer_client, customer, activated, make_license, foreign
):
    waiting = make_license("standard", product="=HYPERLINK(1)", features=["relevance"])
    response = customer_client.get("/licenses/export/")
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert re.fullmatch(
        r'attachment; filename="licenses-\d{4}-\d{2}-\d{2}\.csv"', response["Content-Disposition"]
    )
    rows = {row["License number"]: row for row in exported(response)}
    assert set(rows) == {activated.license.number, waiting.number}  # not the other customer's
    row = rows[activated.license.number]
    assert row["Kind"] == "Mirrored" and row["Status"] == "Active"
    assert row["Installation ID"] == activated.installation_id
    assert row["Mirrored Installation ID"] == activated.mirrored_installation_id
    assert row["Serial"] == activated.serial and row["File out of date"] == ""
    assert row["Issued (UTC)"] == activated.issued_at.strftime("%Y-%m-%d %H:%M")
    assert row["Expires (UTC)"] == "never"
    # A cell a spreadsheet would run as a formula is written as text.
    assert rows[waiting.number]["Product"] == "'=HYPERLINK(1)"
    # A sheet that reads the columns by position keeps working: new ones come last.
    first = response.content.decode("utf-8")[1:].splitlines()[0].split(",")
    assert first[:14] == [
        *("License number", "Kind", "Status", "Product", "Edition", "Seats", "Features"),
        *("Maintenance end", "Expires (UTC)", "Installation ID", "Mirrored Installation ID"),
        *("Serial", "Issued (UTC)", "File out of date"),
    ]
    assert rows[waiting.number]["Features"] == "relevance"
    assert rows[waiting.number]["Installation ID"] == rows[waiting.number]["Serial"] == ""
    # What a search found, all of it, not only the page shown.
    found = exported(customer_client.get("/licenses/export/", {"q": activated.installation_id}))
    assert [row["License number"] for row in found] == [activated.license.number]
    page = customer_client.get("/licenses/", {"q": activated.installation_id}).content.decode()
    assert f'href="/licenses/export/?q={activated.installation_id}"' in page
    assert ">Download this license as a spreadsheet (CSV)</a>" in page  # not "these 1"
    assert (
        ">Download all 2 as a spreadsheet (CSV)</a>"
        in customer_client.get("/licenses/").content.decode()
    )


def test_the_spreadsheet_needs_a_log_in_and_a_valid_search(customer_client, activated):
    assert Client().get("/licenses/export/")["Location"].startswith("/accounts/login/")
    response = customer_client.get("/licenses/export/", {"q": "X" * 101})
    assert response.status_code == 400
