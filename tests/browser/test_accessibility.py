"""The customer's pages, checked by axe-core (WCAG 2 A and AA rules: labels, contrast, roles,
landmarks...) in real Chromium, on a desktop and on a phone, with their error states."""

import re

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import expect

import tmslicense
from licensing import services
from licensing.models import License
from tests.browser.pages import license_of, log_in, step_one
from tests.factories import PASSWORD, LicenseFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

AXE = Axe()


def violations(page) -> list[str]:
    """What axe finds on the page as it is now, one line each, naming the elements."""
    found = AXE.run(page).response["violations"]
    return [
        f"{page.url} {v['id']} ({v['impact']}): {v['help']}: "
        + ", ".join(str(node["target"]) for node in v["nodes"][:5])
        for v in found
    ]


@pytest.mark.parametrize("width", [1280, 360])
def test_the_customers_pages_pass_axe(page, engineer, width):
    mirrored = license_of(engineer, "mirrored")
    live = license_of(engineer, "standard")
    suspended = license_of(engineer, "enterprise")
    License.objects.filter(pk=suspended.pk).update(status=License.Status.SUSPENDED)
    services.activate(
        license=live, installation_id=tmslicense.new_installation_id(), actor=engineer
    )
    page.set_viewport_size({"width": width, "height": 800})
    found = []

    page.goto("/accounts/login/")
    # The field with the keyboard's focus shows a solid ring (the glow alone is too faint).
    ring = "() => getComputedStyle(document.activeElement).outlineStyle"
    assert page.evaluate(ring) == "solid"
    page.get_by_label("Username").fill(engineer.username)
    page.get_by_label("Password").fill(PASSWORD + "x")
    page.get_by_role("button", name="Log in").click()
    expect(page.locator(".alert-danger, .invalid-feedback").first).to_be_visible()
    found += violations(page)  # the log-in page, with its error
    log_in(page, engineer)
    found += violations(page)  # My licenses
    typo = live.number[:-1] + ("1" if live.number.endswith("0") else "0")
    page.get_by_label("Find a license").fill(typo)
    page.get_by_role("button", name="Find").click()
    expect(page.get_by_role("status")).to_contain_text("contains a typo")
    found += violations(page)  # a search that found nothing, and why
    page.goto("/licenses/?q=" + "X" * 101)
    found += violations(page)  # a search refused, its error beside the box
    page.goto(f"/licenses/{live.number}/")
    found += violations(page)  # a license with its file and history

    page.goto("/licenses/")  # its "Activate License" button (on a phone, the bar's is folded)
    step_one(page, "TM-0000-0000-0001", "not an id")
    expect(page.locator(".invalid-feedback").first).to_be_visible()
    found += violations(page)  # step 1, with an error beside each field
    page.goto("/licenses/")
    step_one(page, mirrored.number, tmslicense.new_installation_id())
    page.get_by_role("button", name="Submit").click()  # step 2 sent empty
    expect(page.locator(".invalid-feedback")).to_be_visible()
    found += violations(page)  # step 2, with its error
    page.get_by_label("Mirrored Installation ID").fill(tmslicense.new_installation_id())
    page.get_by_role("button", name="Submit").click()
    expect(page.locator("#serial")).to_be_visible()
    found += violations(page)  # the license activated, with the message saying so
    page.goto(f"/licenses/{suspended.number}/")
    found += violations(page)  # a suspended license: no download, and why

    for url in ("/members/", "/accounts/password_change/", "/no-such-page/", "/accounts/logout/"):
        page.goto(url)
        found += violations(page)
    page.get_by_role("button", name="Log out").last.click()  # the page's (and the bar's)
    page.goto("/accounts/password_reset/")
    found += violations(page)
    page.get_by_label("E-mail address").fill(engineer.email)
    page.get_by_role("button", name="Send the link").click()
    expect(page).to_have_title(re.compile("^Check your e-mail"))
    found += violations(page)
    page.get_by_role("link", name="Back to log in").click()
    expect(page).to_have_title(re.compile("^Log in"))
    assert found == [], "\n".join(found)


def test_the_folded_menu_and_a_refilled_field_suit_the_keyboard(page, engineer):
    lic = license_of(engineer, "mirrored")
    page.set_viewport_size({"width": 360, "height": 800})
    log_in(page, engineer)
    toggler = page.get_by_role("button", name="Toggle navigation")
    menu = page.locator("#nav")
    toggler.focus()
    page.keyboard.press("Enter")
    expect(menu).to_have_class(re.compile(r"\bshow\b"))
    page.keyboard.press("Escape")  # closes, back on its button
    expect(menu).to_have_class("navbar-collapse collapse")  # closed, its closing done
    assert page.evaluate("document.activeElement.getAttribute('aria-label')") == (
        "Toggle navigation"
    )
    page.keyboard.press("Enter")
    expect(menu).to_have_class(re.compile(r"\bshow\b"))
    for _ in range(6):  # My licenses, Activate License, Members, Change password, Log out: on
        page.keyboard.press("Tab")
    expect(menu).to_have_class("navbar-collapse collapse")

    # Step 2 refused a cut-short ID: the cursor waits at its end, to type the rest.
    page.goto("/licenses/")
    step_one(page, lic.number, tmslicense.new_installation_id())
    page.get_by_label("Mirrored Installation ID").fill("DEM0-0000-00")
    page.keyboard.press("Enter")
    expect(page.locator(".invalid-feedback")).to_be_visible()
    caret = "[document.activeElement.selectionStart, document.activeElement.value.length]"
    assert page.evaluate(caret) == [12, 12]


def test_a_fields_name_is_its_label_alone(page, engineer):
    """Every field on the site must be filled in, and says so to a screen reader (its
    ``required``): the label is read as written, without a star after it."""
    lic = license_of(engineer, "mirrored")
    log_in(page, engineer)
    page.goto("/licenses/")
    page.get_by_role("link", name="Activate License").first.click()
    for name in ("License Number", "Installation ID"):
        field = page.get_by_role("textbox", name=name, exact=True)
        expect(field).to_have_attribute("required", "")
    page.get_by_label("License Number").fill(lic.number)
    page.get_by_label("Installation ID").fill(tmslicense.new_installation_id())
    page.get_by_role("button", name="Submit").click()
    expect(page.get_by_role("textbox", name="Mirrored Installation ID", exact=True)).to_be_visible()
    page.goto("/accounts/password_change/")
    expect(page.get_by_role("textbox", name="Current password", exact=True)).to_be_visible()


def test_where_the_keyboard_is_and_which_page_is_current_show_without_colour(page, engineer):
    """A button with the keyboard's focus shows a solid ring (Bootstrap's glow is under 3:1),
    and the menu marks the current page by more than its brighter colour."""
    live = license_of(engineer, "standard")
    services.activate(
        license=live, installation_id=tmslicense.new_installation_id(), actor=engineer
    )
    log_in(page, engineer)
    current = page.locator(".navbar .nav-link[aria-current]")
    expect(current).to_have_text("My licenses")
    assert "underline" in current.evaluate("link => getComputedStyle(link).textDecorationLine")
    page.goto(f"/licenses/{live.number}/")
    download = page.get_by_role("link", name="Download license file")
    page.keyboard.press("Tab")  # the skip link first, then on until the download button
    for _ in range(30):
        if download.evaluate("button => button === document.activeElement"):
            break
        page.keyboard.press("Tab")
    ring = download.evaluate("button => getComputedStyle(button).outlineStyle")
    assert ring == "solid"
    history = page.get_by_role("table", name=f"Activation history of license {live.number}")
    expect(history).to_be_visible()


def test_step_two_s_field_is_described_by_what_the_page_says_of_it(page, engineer):
    """Step 2 opens on its field: a screen reader reads, with the field, what the secondary
    may do and, for a live license, which secondary is on file."""
    lic = license_of(engineer, "mirrored")
    primary, secondary = tmslicense.new_installation_id(), tmslicense.new_installation_id()
    log_in(page, engineer)
    step_one(page, lic.number, primary)
    field = page.get_by_label("Mirrored Installation ID")
    expect(field).to_be_focused()
    expect(field).to_have_accessible_description(re.compile("does not run the ThinManager"))
    services.activate(
        license=lic, installation_id=primary, mirrored_installation_id=secondary, actor=engineer
    )
    page.goto("/licenses/")
    step_one(page, lic.number, primary)
    expect(field).to_have_accessible_description(re.compile("is activated already"))
    field.fill(tmslicense.new_installation_id())
    page.get_by_role("button", name="Submit").click()
    expect(page.locator(".invalid-feedback")).to_be_visible()
    described = field.get_attribute("aria-describedby").split()
    assert described[0].endswith("_error") and described[-1].endswith("_helptext")
    # The refusal says what the note above the field said, which gives way to it.
    assert "secondary-role" in described and "live-activation" not in described
    expect(page.locator("#live-activation")).to_have_count(0)


@pytest.mark.parametrize("width", [320, 360])
def test_a_long_word_in_the_organizations_name_leaves_the_page_within_a_phone(
    page, engineer, width
):
    """A company's name may hold a long word ("Energieversorgungsunternehmen"): the Members
    page's heading and a license's summary break it rather than scroll sideways (WCAG 1.4.10)."""
    organization = engineer.membership.organization
    organization.name = "Energieversorgungsunternehmen Mittelrhein GmbH " + "Z" * 60
    organization.save()
    lic = license_of(engineer, "standard")
    page.set_viewport_size({"width": width, "height": 800})
    log_in(page, engineer)
    for path in ("/members/", f"/licenses/{lic.number}/"):
        page.goto(path)
        expect(page.locator("main")).to_contain_text("Energieversorgungsunternehmen")
        assert page.evaluate("document.scrollingElement.scrollWidth") <= width, path


def test_the_pages_of_licenses_show_the_keyboard_and_the_current_page_without_colour(
    page, engineer
):
    """The pagination's links take the site's solid focus ring (Bootstrap's glow is 1.4:1, and
    gone in Windows' high contrast mode), and the current page is marked by more than colour."""
    LicenseFactory.create_batch(51, organization=engineer.membership.organization)
    log_in(page, engineer)
    page.goto("/licenses/?page=2")
    current = page.locator(".pagination [aria-current=page] .page-link")
    expect(current).to_have_text("2")
    assert "underline" in current.evaluate("link => getComputedStyle(link).textDecorationLine")
    previous = page.get_by_role("link", name="Previous")
    for colours in ("none", "active"):
        page.emulate_media(forced_colors=colours)
        previous.focus()
        page.keyboard.press("Shift+Tab")
        page.keyboard.press("Tab")  # focus by the keyboard: :focus-visible
        assert previous.evaluate("link => link === document.activeElement")
        style = previous.evaluate(
            "link => [getComputedStyle(link).outlineStyle, getComputedStyle(link).outlineWidth]"
        )
        assert style == ["solid", "2px"], colours


def test_a_warning_is_read_with_the_field_the_page_opens_on(page, engineer):
    """A step 2 the session no longer knows goes back to step 1 with a warning: a screen reader
    opens on the License Number field, and reads the warning with it (an alert present when
    the page loads is not reliably announced)."""
    lic = license_of(engineer, "mirrored")
    log_in(page, engineer)
    step_one(page, lic.number, tmslicense.new_installation_id())
    page.locator("input[name=wizard_run]").evaluate("field => field.value = 'ffffffffffffffff'")
    page.get_by_label("Mirrored Installation ID").fill(tmslicense.new_installation_id())
    page.get_by_role("button", name="Submit").click()
    field = page.get_by_label("License Number")
    expect(field).to_be_focused()
    expect(field).to_have_accessible_description(re.compile("That activation page was out of date"))


def test_a_searchs_outcome_is_in_the_pages_title(page, engineer):
    """A screen reader reads the new page's title first: it says what the search found."""
    lic = license_of(engineer, "standard")
    log_in(page, engineer)
    for term, title in (
        (lic.number, f"1 license found for {lic.number} · My licenses"),
        ("PLANTX", "No license found for PLANTX · My licenses"),
    ):
        page.get_by_label("Find a license").fill(term)
        page.get_by_role("button", name="Find").click()
        expect(page).to_have_title(re.compile("^" + re.escape(title)))
