"""What a customer does on the site, step by step, in the browser tests."""

from playwright.sync_api import expect

from tests.factories import PASSWORD, LicenseFactory


def license_of(user, kind):
    return LicenseFactory(organization=user.membership.organization, kind=kind)


def log_in(page, user):
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill(user.username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="My licenses")).to_be_visible()


def step_one(page, number, installation_id):
    page.get_by_role("link", name="Activate License").first.click()
    expect(page.locator("#step")).to_have_text("Step 1 of 2")
    page.get_by_label("License Number").fill(number)
    page.get_by_label("Installation ID").fill(installation_id)
    page.get_by_role("button", name="Submit").click()
