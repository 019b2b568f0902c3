"""Installation IDs, license numbers and serials are read aloud and typed: on a desktop and on a
phone, in the customer's pages and support's, each stays on one line, an ID with its role."""

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
    assert set(lines(servers)) == {1}, "an ID, or its role, on a line of its own"
    assert set(lines(page.locator(".license-number, #serial, td[data-label=Serial]"))) == {1}
    # On a phone's cards too the two IDs of a file start at the same place, one above the other.
    for row in page.locator("td[data-label=Servers]").all():
        first, second = (box.bounding_box() for box in row.locator(".installation-id").all())
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
    page.set_viewport_size({"width": 390, "height": 800})
    page.goto(f"/admin/licensing/activation/{history.pk}/reissue/")
    paragraph = page.locator("#content p").first
    expect(paragraph).to_contain_text(history.mirrored_installation_id)
    assert set(lines(paragraph.locator("strong, .installation-id"))) == {1}
