"""A real Chromium (Debian's, driven by Playwright; no browser download) against Django's live
server. A failing test leaves a screenshot and the page's HTML in test-artifacts/. A page that
breaks the site's Content-Security-Policy (something it would block) fails its test."""

import os
from pathlib import Path

import pytest

from tests.conftest import require
from tests.factories import OrganizationFactory, UserFactory

CHROMIUM = os.environ.get("CHROMIUM", "/usr/lib/chromium/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="session")
def browser():
    require(os.path.exists(CHROMIUM), f"Chromium is not installed at {CHROMIUM}")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield browser
        browser.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"report_{report.when}", report)


@pytest.fixture
def page(browser, request, live_server):
    context = browser.new_context(accept_downloads=True, base_url=live_server.url)
    context.set_default_timeout(15_000)
    page = context.new_page()
    page.csp_violations = []  # what the browser blocked, as it reported it on the console
    page.on(
        "console",
        lambda message: (
            "Content Security Policy" in message.text
            and page.csp_violations.append(f"{page.url}: {message.text}")
        ),
    )
    yield page
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed:
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"{request.node.name}.png"), full_page=True)
        (ARTIFACTS / f"{request.node.name}.html").write_text(page.content())
    context.close()
    assert page.csp_violations == [], "the page broke the Content-Security-Policy"


@pytest.fixture
def engineer(transactional_db):
    """A customer's plant engineer."""
    return UserFactory(organization=OrganizationFactory(name="Acme Packaging"))
