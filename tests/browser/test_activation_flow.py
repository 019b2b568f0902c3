"""A plant engineer activates licenses in a real browser and the TMS accepts the file."""

import re

import pytest
from playwright.sync_api import expect

import tmslicense
from licensing.models import Activation
from tests.browser.pages import license_of, log_in, step_one
from tests.factories import LicenseFactory, OrganizationFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def download(page, tmp_path):
    with page.expect_download() as info:
        page.get_by_role("link", name="Download license file").click()
    path = tmp_path / info.value.suggested_filename
    info.value.save_as(path)
    return path


def test_standard_license_activates_in_one_step_and_the_file_verifies(
    page, engineer, keyring, tmp_path
):
    lic = license_of(engineer, "standard")
    server = tmslicense.new_installation_id()
    log_in(page, engineer)
    step_one(page, lic.number.lower(), server.lower().replace("-", " "))

    expect(page.get_by_role("heading", name=f"License {lic.number}")).to_be_visible()
    current = page.locator("#current-file")
    expect(current).to_contain_text(server)
    expect(current).to_contain_text("Location (ThinManager Server):")
    serial = page.locator("#serial").inner_text()

    path = download(page, tmp_path)
    assert path.name == f"{lic.number}.lic"
    verified = tmslicense.verify_license(path.read_text(), keyring, server)
    assert verified.serial == serial and verified.kind is tmslicense.Kind.STANDARD


@pytest.mark.parametrize(
    ("kind", "role", "explains"),
    [
        ("mirrored", "mirror", "does not run the ThinManager interface"),
        ("enterprise", "redundant", "fully redundant"),
    ],
)
def test_two_server_license_asks_for_the_mirrored_installation_id(
    page, engineer, keyring, tmp_path, kind, role, explains
):
    lic = license_of(engineer, kind)
    primary, secondary = tmslicense.new_installation_id(), tmslicense.new_installation_id()
    log_in(page, engineer)
    step_one(page, lic.number, primary)

    expect(page.locator("#step")).to_have_text("Step 2 of 2")
    expect(page.get_by_text(explains)).to_be_visible()
    page.get_by_label("Mirrored Installation ID").fill(secondary)
    page.get_by_role("button", name="Submit").click()

    current = page.locator("#current-file")
    expect(current).to_contain_text(primary)
    expect(current).to_contain_text(secondary)
    expect(current).to_contain_text(role)
    text = download(page, tmp_path).read_text()
    licenses = [tmslicense.verify_license(text, keyring, i) for i in (primary, secondary)]
    assert licenses[0] == licenses[1]
    assert [(s.installation_id, s.role.value) for s in licenses[0].servers] == [
        (primary, "primary"),
        (secondary, role),
    ]
    primary_caps = tmslicense.capabilities(licenses, primary)
    secondary_caps = tmslicense.capabilities(licenses, secondary)
    assert primary_caps.show_thinserver_data and primary_caps.change_config
    if kind == "mirrored":
        assert secondary_caps.serve_clients and not secondary_caps.change_config
        assert secondary_caps.message("show-thinserver-data") == (
            "ThinManager is not allowed to display the ThinServer data"
        )
    else:
        assert secondary_caps.show_thinserver_data and secondary_caps.change_config


def test_two_tabs_activate_two_mirrored_licenses_each_with_its_own_ids(page, engineer):
    first, second = license_of(engineer, "mirrored"), license_of(engineer, "mirrored")
    a = tmslicense.new_installation_id(), tmslicense.new_installation_id()
    b = tmslicense.new_installation_id(), tmslicense.new_installation_id()
    log_in(page, engineer)
    other = page.context.new_page()  # a second tab, same login
    other.goto("/licenses/")
    step_one(page, first.number, a[0])
    step_one(other, second.number, b[0])
    expect(page.locator("#step")).to_have_text("Step 2 of 2")
    expect(other.locator("#step")).to_have_text("Step 2 of 2")

    for tab, license, ids in ((page, first, a), (other, second, b)):
        tab.get_by_label("Mirrored Installation ID").fill(ids[1])
        tab.get_by_role("button", name="Submit").click()
        expect(tab.get_by_role("heading", name=f"License {license.number}")).to_be_visible()
        expect(tab.locator("#current-file")).to_contain_text(ids[1])
    assert Activation.objects.get(license=first).installation_ids == a
    assert Activation.objects.get(license=second).installation_ids == b


def test_enter_in_the_mirrored_installation_id_field_submits_step_two(page, engineer):
    lic = license_of(engineer, "enterprise")
    ids = tmslicense.new_installation_id(), tmslicense.new_installation_id()
    log_in(page, engineer)
    step_one(page, lic.number, ids[0])
    expect(page.get_by_text("is an enterprise")).to_be_visible()
    page.get_by_label("Mirrored Installation ID").fill(ids[1])
    page.get_by_label("Mirrored Installation ID").press("Enter")
    expect(page.get_by_role("heading", name=f"License {lic.number}")).to_be_visible()
    assert Activation.objects.get().installation_ids == ids


def test_back_to_step_one_and_forward_again_keeps_both_pages_typed_values(page, engineer):
    lic = license_of(engineer, "mirrored")
    ids = tmslicense.new_installation_id(), tmslicense.new_installation_id()
    log_in(page, engineer)
    step_one(page, lic.number, ids[0])
    mirrored = page.get_by_label("Mirrored Installation ID")
    expect(mirrored).to_be_focused()
    mirrored.fill(ids[1])
    # Tab meets the buttons in the order they are seen: Submit, then Back.
    page.keyboard.press("Tab")
    expect(page.get_by_role("button", name="Submit")).to_be_focused()
    page.keyboard.press("Tab")
    expect(page.get_by_role("button", name="Back")).to_be_focused()
    page.keyboard.press("Enter")

    expect(page.locator("#step")).to_have_text("Step 1 of 2")
    expect(page.get_by_label("License Number")).to_have_value(lic.number)
    expect(page.get_by_label("Installation ID")).to_have_value(ids[0])
    page.get_by_role("button", name="Submit").click()
    expect(page.locator("#step")).to_have_text("Step 2 of 2")
    expect(page.get_by_label("Mirrored Installation ID")).to_have_value(ids[1])
    page.get_by_role("button", name="Submit").click()
    expect(page.get_by_role("heading", name=f"License {lic.number}")).to_be_visible()
    assert Activation.objects.get().installation_ids == ids


def test_a_typo_in_the_installation_id_is_shown_beside_the_field(page, engineer):
    lic = license_of(engineer, "standard")
    good = tmslicense.new_installation_id()
    typo = good[:-1] + ("0" if good[-1] != "0" else "1")
    log_in(page, engineer)
    step_one(page, lic.number, typo)

    field = page.get_by_label("Installation ID")
    expect(field).to_have_class(re.compile(r"\bis-invalid\b"))
    expect(field).to_be_focused()  # the page opens on the field to correct
    expect(page.locator("#div_id_license-installation_id")).to_contain_text("typo")
    assert not Activation.objects.exists()


def test_same_mirrored_installation_id_is_refused_beside_the_field(page, engineer):
    lic = license_of(engineer, "mirrored")
    server = tmslicense.new_installation_id()
    log_in(page, engineer)
    step_one(page, lic.number, server)
    page.get_by_label("Mirrored Installation ID").fill(server)
    page.get_by_role("button", name="Submit").click()

    expect(page.get_by_label("Mirrored Installation ID")).to_have_class(
        re.compile(r"\bis-invalid\b")
    )
    expect(page.locator("#div_id_mirrored-mirrored_installation_id")).to_contain_text(
        "secondary ThinManager Server"
    )
    assert not Activation.objects.exists()


def test_foreign_and_unknown_numbers_look_the_same(page, engineer):
    foreign = LicenseFactory(organization=OrganizationFactory(name="Rival Foods"))
    log_in(page, engineer)
    seen = []
    for number in (foreign.number, tmslicense.new_license_number()):
        step_one(page, number, tmslicense.new_installation_id())
        error = page.locator("#div_id_license-license_number .invalid-feedback")
        expect(error).to_be_visible()
        seen.append(error.inner_text().replace(number, "<number>"))
    assert seen[0] == seen[1]
    assert not Activation.objects.exists()


def test_again_with_same_ids_is_a_redownload_and_other_ids_are_refused(page, engineer):
    lic = license_of(engineer, "standard")
    server = tmslicense.new_installation_id()
    log_in(page, engineer)
    step_one(page, lic.number, server)
    first = page.locator("#serial").inner_text()

    step_one(page, lic.number, server)
    notice = page.get_by_role("status").filter(has_text="already activated for this server")
    expect(notice).to_be_visible()
    assert page.locator("#serial").inner_text() == first

    step_one(page, lic.number, tmslicense.new_installation_id())
    expect(page.locator("main form")).to_contain_text("contact support")
    assert Activation.objects.count() == 1


# Whatever in <main> reaches past its content's right edge, or scrolls sideways in a box
# (text for screen readers only is clipped on purpose; a grid row's gutters reach into the
# padding by design).
OVERFLOWING = """() => {
  const main = document.querySelector("main");
  const edge = main.getBoundingClientRect().right - parseFloat(getComputedStyle(main).paddingRight);
  return [...main.querySelectorAll("*:not(.visually-hidden, .row, .row > *)")]
    .filter(e => e.getBoundingClientRect().right > edge + 0.5
                 || e.scrollWidth > e.clientWidth + 0.5
                    && getComputedStyle(e).overflowX !== "visible")
    .map(e => e.outerHTML.slice(0, 80));
}"""


def test_license_pages_fit_a_phone_a_tablet_and_a_desktop(page, engineer):
    lic = license_of(engineer, "mirrored")
    license_of(engineer, "enterprise")
    page.set_viewport_size({"width": 360, "height": 740})
    log_in(page, engineer)
    step_one(page, lic.number, tmslicense.new_installation_id())
    page.get_by_label("Mirrored Installation ID").fill(tmslicense.new_installation_id())
    page.get_by_role("button", name="Submit").click()
    expect(page.locator("#serial")).to_be_visible()
    detail = page.url
    for width in (360, 800, 1280):
        page.set_viewport_size({"width": width, "height": 740})
        for url in (detail, "/licenses/"):
            page.goto(url)
            assert page.evaluate(OVERFLOWING) == [], (width, url)
    expect(page.get_by_role("link", name=lic.number)).to_be_visible()
    page.set_viewport_size({"width": 360, "height": 740})
    expect(page.get_by_role("button", name="Toggle navigation")).to_be_visible()
    # On a phone each cell shows its column's name.
    label = "window.getComputedStyle(document.querySelector('td[data-label]'), '::before').content"
    assert page.evaluate(label) == '"License number"'
    # A refusal naming the license and both Installation IDs, on a phone.
    step_one(page, lic.number, tmslicense.new_installation_id())
    expect(page.locator("#div_id_license-installation_id")).to_contain_text("already activated")
    assert page.evaluate(OVERFLOWING) == []


def test_a_re_download_with_the_wrong_secondary_is_corrected_on_step_two(page, engineer):
    lic = license_of(engineer, "mirrored")
    ids = tmslicense.new_installation_id(), tmslicense.new_installation_id()
    log_in(page, engineer)
    step_one(page, lic.number, ids[0])
    page.get_by_label("Mirrored Installation ID").fill(ids[1])
    page.get_by_role("button", name="Submit").click()
    serial = page.locator("#serial").inner_text()

    step_one(page, lic.number, ids[0])
    mirrored = page.get_by_label("Mirrored Installation ID")
    mirrored.fill(tmslicense.new_installation_id())
    page.get_by_role("button", name="Submit").click()
    expect(mirrored).to_have_class(re.compile(r"\bis-invalid\b"))
    expect(mirrored).to_be_focused()
    expect(page.locator("#div_id_mirrored-mirrored_installation_id")).to_contain_text(
        f"enter {ids[1]} as the Mirrored Installation ID"
    )
    mirrored.fill(ids[1])
    mirrored.press("Enter")
    notice = page.get_by_role("status").filter(has_text="already activated for these servers")
    expect(notice).to_be_visible()
    assert page.locator("#serial").inner_text() == serial
    assert Activation.objects.count() == 1


def test_a_changed_license_gets_its_updated_file_from_its_page(page, engineer, keyring, tmp_path):
    lic = license_of(engineer, "standard")
    server = tmslicense.new_installation_id()
    log_in(page, engineer)
    step_one(page, lic.number, server)
    old = page.locator("#serial").inner_text()
    type(lic).objects.filter(pk=lic.pk).update(seats=lic.seats + 5)  # support adds seats

    page.reload()
    changes = page.locator("#file-changes")
    expect(changes).to_contain_text(f"Seats: in the file {lic.seats}; now {lic.seats + 5}")
    changes.get_by_role("button", name="Get an updated file").click()
    expect(page.get_by_role("status").first).to_contain_text("Here is the updated license file")
    expect(page.locator("#file-changes")).to_have_count(0)
    new = page.locator("#serial").inner_text()
    assert new != old
    verified = tmslicense.verify_license(download(page, tmp_path).read_text(), keyring, server)
    assert verified.serial == new and verified.seats == lic.seats + 5


def test_download_from_a_page_gone_stale_shows_why_not_a_saved_page(page, engineer):
    """The file is sent as an attachment: the link itself asks for no download, so a refusal
    (a redirect to the license's page, saying why) is shown, not saved as the license file."""
    lic = license_of(engineer, "standard")
    log_in(page, engineer)
    step_one(page, lic.number, tmslicense.new_installation_id())
    type(lic).objects.filter(pk=lic.pk).update(status="suspended")  # support, meanwhile
    page.get_by_role("link", name="Download license file").click()
    expect(page.locator("#refusal")).to_contain_text("suspended")
    expect(page.get_by_role("link", name="Download license file")).to_have_count(0)


def test_a_form_sent_twice_in_a_hurry_is_sent_once(page, engineer):
    """A double click on Submit while the answer is slow to come (a plant's network): one
    activation, and the customer sees its answer, not "activated already" for the second."""
    lic = license_of(engineer, "standard")
    log_in(page, engineer)
    page.get_by_role("link", name="Activate License").first.click()
    page.get_by_label("License Number").fill(lic.number)
    page.get_by_label("Installation ID").fill(tmslicense.new_installation_id())
    posts = []
    page.on("request", lambda request: posts.append(request) if request.method == "POST" else 0)
    cdp = page.context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send(
        "Network.emulateNetworkConditions",
        {"offline": False, "latency": 1500, "downloadThroughput": -1, "uploadThroughput": -1},
    )
    box = page.get_by_role("button", name="Submit").bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.click(x, y)  # as a hand does: not waiting for the page to change
    page.wait_for_timeout(400)
    page.mouse.click(x, y)
    expect(page.get_by_role("heading", name=f"License {lic.number}")).to_be_visible()
    expect(page.get_by_role("status")).to_contain_text(f"License {lic.number} is activated.")
    assert len(posts) == 1
    assert Activation.objects.filter(license=lic).count() == 1


def test_back_and_reload_ask_for_pages_again_not_to_send_a_form_again(page, engineer):
    """A page sent in answer to a form is, in the browser's history, its own address: Back
    and Reload ask for it again, with no "Confirm Form Resubmission" (Chrome's error page
    without one). Step 2 reloaded is step 2 of the same activation; Back from the license's
    page, once it is activated, is the activation's first step, to activate another."""
    lic = license_of(engineer, "mirrored")
    ids = tmslicense.new_installation_id(), tmslicense.new_installation_id()
    log_in(page, engineer)
    step_one(page, lic.number, ids[0])
    expect(page.locator("#step")).to_have_text("Step 2 of 2")
    page.reload()
    expect(page.locator("#step")).to_have_text("Step 2 of 2")
    expect(page.locator("#secondary-role")).to_contain_text(ids[0])
    page.get_by_label("Mirrored Installation ID").fill(ids[1])
    page.get_by_role("button", name="Submit").click()
    expect(page.get_by_role("heading", name=f"License {lic.number}")).to_be_visible()

    page.go_back()
    expect(page.locator("#step")).to_have_text("Step 1 of 2")
    expect(page.get_by_label("License Number")).to_have_value("")
    page.go_forward()
    expect(page.get_by_role("heading", name=f"License {lic.number}")).to_be_visible()
    assert Activation.objects.get().installation_ids == ids

    # Any other form's answer too: a refused log-in reloaded sends no password again.
    page.get_by_role("button", name="Log out").click()
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill(engineer.username)
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Log in").click()
    expect(page.locator("main")).to_contain_text("Enter a correct username")
    posts = []
    page.on("request", lambda request: posts.append(request) if request.method == "POST" else 0)
    page.reload()
    expect(page.get_by_label("Password")).to_have_value("")
    assert posts == []
