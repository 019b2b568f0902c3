"""Installation IDs, license numbers and serials are read aloud and typed: on a desktop and on a
phone, in the customer's pages and support's, each stays on one line, an ID with its role."""

import re
from datetime import UTC, datetime

import pytest
from django.contrib.auth.models import Permission
from playwright.sync_api import expect

import tmslicense
from licensing import services
from tests.browser.pages import license_of, log_in
from tests.factories import PASSWORD, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# The lines an element's text takes: its text's boxes, those side by side counted once.
LINES = """element => {
    const walker = document.createTreeWalker(element, NodeFilter.SHOW_TEXT);
    const boxes = [];
    while (walker.nextNode()) {
        const range = document.createRange();
        range.selectNodeContents(walker.currentNode);
        boxes.push(...[...range.getClientRects()].filter(box => box.width > 0));
    }
    boxes.sort((a, b) => a.top - b.top);
    let lines = 0, bottom = -Infinity;
    for (const box of boxes) {
        if (box.top >= bottom - 1) { lines += 1; bottom = box.bottom; }
        else bottom = Math.max(bottom, box.bottom);
    }
    return lines;
}"""


def lines(locator) -> list[int]:
    return [element.evaluate(LINES) for element in locator.element_handles()]


def activated_pair(engineer, kind, actor):
    """A license of ``engineer``'s organization of a two-server ``kind``, activated by
    ``actor`` for two new servers."""
    lic = license_of(engineer, kind)
    services.activate(
        license=lic,
        installation_id=tmslicense.new_installation_id(),
        mirrored_installation_id=tmslicense.new_installation_id(),
        actor=actor,
    )
    return lic


@pytest.fixture
def history(engineer):
    """A mirrored license activated, corrected, its servers' roles swapped and reissued: a
    history of four files, each for two servers."""
    lic = license_of(engineer, "mirrored")
    primary, secondary, other = (tmslicense.new_installation_id() for _ in range(3))
    activation, _ = services.activate(
        license=lic, installation_id=primary, mirrored_installation_id=secondary, actor=engineer
    )
    for ids, why in (((other, secondary), "typo"), ((secondary, other), "roles swapped")):
        activation = services.reissue(
            activation=activation,
            installation_id=ids[0],
            mirrored_installation_id=ids[1],
            reason=why,
            actor=engineer,
        )
    return services.reissue(activation=activation, actor=engineer)


@pytest.mark.parametrize("width", [390, 1280])
def test_the_license_page_keeps_each_installation_id_whole_with_its_role(
    page, engineer, history, width
):
    page.set_viewport_size({"width": width, "height": 800})
    log_in(page, engineer)
    page.goto(f"/licenses/{history.license.number}/")
    servers = page.locator("li:has(.installation-id)")
    expect(servers).to_have_count(2 * 5)  # the current file's and four in the history
    assert set(lines(page.locator("td li"))) == {1}, "an ID, or its role, on a line of its own"
    # The current file's card, on a phone: each role under its ID, alike.
    assert lines(page.locator("#current-file li")) == ([2, 2] if width < 420 else [1, 1])
    assert set(lines(page.locator(".license-number, #serial, td[data-label=Serial]"))) == {1}
    # On a phone's cards too the two IDs of a file start at the same place, one above the other.
    for row in page.locator("td[data-label=Servers]").all():
        first, second = (box.bounding_box() for box in row.locator(".installation-id").all())
        assert first["x"] == second["x"] and first["y"] < second["y"]


def test_a_full_redundancy_pairs_ids_line_up_with_their_roles_on_a_phone(page, engineer):
    """An enterprise license's roles ("primary", "redundant") differ in length: on a phone,
    each ID keeps its role beside it, or (the current file's card) both go under their IDs,
    alike; the two IDs one above the other."""
    lic = activated_pair(engineer, "enterprise", engineer)
    page.set_viewport_size({"width": 390, "height": 800})
    log_in(page, engineer)
    page.goto(f"/licenses/{lic.number}/")
    card = page.locator("#current-file .servers li")
    assert lines(card) == [2, 2], card.all_inner_texts()
    assert set(lines(page.locator("td .servers li"))) == {1}
    for servers in page.locator(".servers").all():
        first, second = (box.bounding_box() for box in servers.locator(".installation-id").all())
        assert first["x"] == second["x"] and first["y"] < second["y"]


def test_on_the_narrowest_screen_each_installation_id_stays_in_reach(page, engineer, history):
    """At 320 px (a laptop's window zoomed to 400%) a role goes under its ID, which stays whole
    and inside the page: nothing sticks out on the left, where nothing scrolls to it."""
    page.set_viewport_size({"width": 320, "height": 800})
    log_in(page, engineer)
    for url in ("/licenses/", f"/licenses/{history.license.number}/"):
        page.goto(url)
        ids = page.locator("td .installation-id")
        expect(ids.first).to_be_visible()
        assert set(lines(ids)) == {1}, url
        for box in (element.bounding_box() for element in ids.element_handles()):
            assert box["x"] >= 0 and box["x"] + box["width"] <= 320, (url, box)
        assert page.evaluate("document.documentElement.scrollWidth") <= 320, url


@pytest.mark.parametrize("width", [360, 375])
def test_on_a_common_phone_an_enterprise_pairs_ids_stay_in_their_card(page, engineer, width):
    """360 px, the commonest Android width: an enterprise pair's longer role ("redundant")
    beside its ID stuck out of the card, its first character cut off at the screen's edge."""
    lic = license_of(engineer, "enterprise")
    ids = tmslicense.new_installation_id(), tmslicense.new_installation_id()
    services.activate(
        license=lic, installation_id=ids[0], mirrored_installation_id=ids[1], actor=engineer
    )
    page.set_viewport_size({"width": width, "height": 800})
    log_in(page, engineer)
    for url in ("/licenses/", f"/licenses/{lic.number}/"):
        page.goto(url)
        for row in page.locator("tr").all():
            card = row.bounding_box()
            for element in row.locator("td .installation-id").all():
                box = element.bounding_box()
                assert (
                    card["x"] <= box["x"] and box["x"] + box["width"] <= card["x"] + card["width"]
                ), (url, box, card)
        assert set(lines(page.locator("td .installation-id"))) == {1}, url
        assert page.evaluate("document.documentElement.scrollWidth") <= width, url


def test_supports_lists_keep_numbers_and_installation_ids_whole(page, engineer, history):
    support = UserFactory(is_staff=True)
    # A live server's tests empty the migrations' support group: its permissions directly.
    support.user_permissions.set(
        Permission.objects.filter(
            codename__in=["view_license", "view_activation", "reissue_activation"]
        )
    )
    page.set_viewport_size({"width": 1024, "height": 800})  # a laptop's, narrower than most
    page.goto("/admin/")
    page.get_by_label("Username").fill(support.username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()

    page.goto("/admin/licensing/license/")
    assert lines(page.locator("th.field-number")) == [1]
    assert lines(page.locator("td.field-live_servers")) == [2]  # an ID and its role a line
    page.goto(f"/admin/licensing/license/{history.license_id}/change/")
    assert lines(page.locator("td.field-servers")) == [2] * 4
    page.goto("/admin/licensing/activation/")
    assert set(lines(page.locator("td.field-license"))) == {1}
    assert lines(page.locator("td.field-servers")) == [2] * 4
    # Found by a whole Installation ID: the files holding it, why the license was found, are
    # on the screen with its number, not in a column scrolled off to the right.
    page.goto(f"/admin/licensing/license/?q={history.installation_id}")
    results = page.locator("#changelist .results").bounding_box()
    files = page.locator(".field-number .files-with")
    expect(files).to_contain_text(history.serial)
    box = files.bounding_box()
    assert box["x"] + box["width"] <= results["x"] + results["width"]
    assert lines(page.locator(".field-number a")) == [1]
    page.set_viewport_size({"width": 390, "height": 800})
    page.goto(f"/admin/licensing/activation/{history.pk}/reissue/")
    paragraph = page.locator("#content p").first
    expect(paragraph).to_contain_text(history.mirrored_installation_id)
    assert set(lines(paragraph.locator("strong, .installation-id"))) == {1}


@pytest.mark.parametrize("width", [390, 800, 992, 1000, 1100, 1280])
def test_a_long_account_name_leaves_every_page_within_the_screen(page, engineer, width):
    """An invited member's user name is their e-mail address: in the bar it neither pushes Log
    out off the screen nor squeezes the menu's links or buttons onto two lines; in a phone's
    cards (a colleague's name in Members and in a license's history) it breaks rather than
    sticking out of the card, out of reach."""
    long_name = "new.engineer.with.a.rather.long.address@plant-maintenance.example.com"
    colleague = UserFactory(  # staff too: the widest bar (its Support link)
        username=long_name,
        email=long_name,
        is_staff=True,
        organization=engineer.membership.organization,
    )
    lic = activated_pair(engineer, "mirrored", colleague)
    page.set_viewport_size({"width": width, "height": 844})
    log_in(page, colleague)
    toggler = page.get_by_role("button", name="Toggle navigation")
    for path in ("/licenses/", "/members/", f"/licenses/{lic.number}/"):
        page.goto(path)
        if toggler.is_visible():
            toggler.click()
            expect(page.locator("#nav")).to_have_class(re.compile(r"\bshow\b"))
        log_out = page.get_by_role("button", name="Log out")
        box = log_out.bounding_box()
        assert box["x"] + box["width"] <= width, path
        assert page.evaluate("document.documentElement.scrollWidth") <= width, path
        for link in page.locator("#nav .nav-link, #nav .btn").element_handles():
            assert link.evaluate(LINES) == 1, (path, link.inner_text())
        for cell in page.locator("main td").element_handles():
            cell_box, page_width = cell.bounding_box(), width
            if cell_box and cell_box["width"]:
                assert cell_box["x"] >= 0 and cell_box["x"] + cell_box["width"] <= page_width
                assert cell.evaluate("c => c.scrollWidth <= c.clientWidth + 1"), (
                    path,
                    cell.inner_text(),
                )


@pytest.mark.parametrize("width", [992, 1024, 1100])
def test_beside_the_menu_each_role_stays_inside_the_table(page, engineer, width):
    """From 992 px the menu is spelled out and the licenses are a table: short of 1200 px a
    pair's roles go under their IDs rather than push the table past the page's content, into
    its margin or off the screen, each ID still whole."""
    activated_pair(engineer, "enterprise", engineer)
    suspended = license_of(engineer, "standard")
    suspended.status = suspended.Status.SUSPENDED  # the longest status: a wider column
    suspended.save()
    term = license_of(engineer, "standard")  # its status says until when: wider still
    term.expires_at = datetime(2027, 6, 30, tzinfo=UTC)
    term.save()
    page.set_viewport_size({"width": width, "height": 800})
    log_in(page, engineer)
    edge = page.evaluate(  # of the page's content, where the buttons above end
        "(main => main.getBoundingClientRect().right"
        " - parseFloat(getComputedStyle(main).paddingRight))(document.querySelector('main'))"
    )
    for badge in page.locator("td .servers .badge").all():
        box = badge.bounding_box()
        assert box["x"] + box["width"] <= edge + 0.5, (badge.inner_text(), box, edge)
    assert set(lines(page.locator("td .installation-id"))) == {1}
