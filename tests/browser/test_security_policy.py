"""The Content-Security-Policy in a real browser: it blocks an injected script, and the site's
own pages, the customer's and support's, keep to it (see the page fixture)."""

from datetime import date, timedelta

import pytest
from django.contrib.auth.models import Permission
from playwright.sync_api import expect

import tmslicense
from licensing import services
from licensing.models import License
from tests.factories import PASSWORD, LicenseFactory, OrganizationFactory, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

INJECT = """() => {
    const script = document.createElement("script");
    script.textContent = "window.injected = true";
    document.body.append(script);
    const image = document.createElement("img");
    image.setAttribute("src", "data:,");
    image.setAttribute("onerror", "window.injected = true");
    document.body.append(image);
}"""


def test_an_injected_script_is_not_run(page):
    user = UserFactory(organization=OrganizationFactory())
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill(user.username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="My licenses")).to_be_visible()

    page.evaluate(INJECT)
    page.wait_for_timeout(200)
    assert page.evaluate("window.injected") is None
    assert len(page.csp_violations) == 2  # the inline script and the event handler, reported
    page.csp_violations.clear()  # expected here; anywhere else they fail the test


def test_support_pages_keep_to_the_policy(page):
    # A live server's tests empty every table, the migrations' support group too: the pages'
    # permissions are given directly (the group's own are tested in test_admin).
    support = UserFactory(is_staff=True)
    support.user_permissions.set(
        Permission.objects.filter(
            codename__in=[
                "view_license",
                "add_license",
                "change_license",
                "view_activation",
                "revoke_activation",
                "reissue_activation",
                "view_auditevent",
                "view_organization",
                "invite_member",
                "view_membership",
                "lift_pauses",
            ]
        )
    )
    organization = OrganizationFactory(name="Acme Packaging")
    lic = LicenseFactory(organization=organization, kind="mirrored")
    activation, _ = services.activate(
        license=lic,
        installation_id=tmslicense.new_installation_id(),
        mirrored_installation_id=tmslicense.new_installation_id(),
        actor=UserFactory(organization=organization),
    )
    page.goto("/admin/")
    page.get_by_label("Username").fill(support.username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Site administration")).to_be_visible()

    # The list's Installation IDs stay whole (the site's stylesheet, not inline styles).
    page.goto("/admin/licensing/license/")
    server = page.locator(".installation-id", has_text=activation.installation_id)
    expect(server).to_have_css("white-space", "nowrap")
    page.get_by_role("link", name=lic.number).click()
    expect(page.get_by_role("link", name="Reissue").first).to_have_css("display", "inline-block")
    # The date shortcuts are made by the admin's scripts: they ran.
    page.locator("#id_maintenance_end").fill("")
    page.get_by_role("link", name="Today").first.click()
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.locator(".messagelist")).to_contain_text("was changed successfully")
    saved = License.objects.get(pk=lic.pk).maintenance_end
    assert saved != lic.maintenance_end and abs(saved - date.today()) <= timedelta(days=1)

    page.goto("/admin/licensing/license/add/")
    expect(page.get_by_label("Number")).to_have_css("font-family", "monospace")
    page.goto(f"/admin/licensing/activation/{activation.pk}/correct/")
    expect(page.locator("#id_installation_id")).to_have_css("font-family", "monospace")
    for url in ("/admin/licensing/activation/", "/admin/licensing/auditevent/"):
        page.goto(url)
        expect(page.locator("#changelist")).to_be_visible()
    # An invitation, from the organization's page.
    page.goto(f"/admin/licensing/organization/{organization.pk}/change/")
    page.get_by_role("link", name="Invite a member").click()
    page.get_by_label("E-mail address").fill("eng@acme.example")
    page.get_by_role("button", name="Invite a member").click()
    expect(page.locator(".messagelist")).to_contain_text("Invited eng@acme.example to Acme")
    expect(page.get_by_text("(invited: no password yet)")).to_be_visible()
    # A plant's shared address, lifted from the same page (nothing was paused there: said so).
    page.get_by_role("link", name="Lift an address's pauses").click()
    expect(page.locator("#refused-now + ul")).to_contain_text("No address is refused now")
    page.get_by_label("IP address").fill("198.51.100.23")
    page.get_by_role("button", name="Lift an address's pauses").click()
    expect(page.locator(".messagelist")).to_contain_text("Nothing was paused at 198.51.100.23")
    assert page.evaluate("[...document.querySelectorAll('link[rel=icon]')].length") == 1


def test_the_server_error_page_keeps_its_inline_style(page, monkeypatch):
    from licensing import signing

    monkeypatch.setattr(signing, "public_keyring", lambda: 1 / 0)
    response = page.goto("/keyring.json")
    assert response.status == 500
    expect(page.get_by_role("heading", name="Something went wrong on our side")).to_be_visible()
    # Its own style applies (allowed by its hash), though no other inline style would.
    header = "getComputedStyle(document.querySelector('header')).backgroundColor"
    assert page.evaluate(header) == "rgb(33, 37, 41)"
