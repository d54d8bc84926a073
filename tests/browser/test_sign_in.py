"""Signing in and changing a password in a real browser: axe-core finds nothing serious on
either page, a wrong password brings the GOV.UK error summary with the focus on it, a member
signs in with the keyboard alone (focus visible at every stop), and both forms work with
JavaScript off (axe-core, a script, runs on the pages with JavaScript on)."""

from __future__ import annotations

from tests.browser.support import Browse, Visit, focus_is_visible, focused, sign_in, tab_to
from tests.dashboard_support import NORTH_WORKER, PASSWORD, Staff

GENERIC = "Email or password is not right"
NEW_PASSWORD = "a longer passphrase, 2026"


def test_the_login_page_passes_axe(visit: Visit) -> None:
    visit.go("/login", "login page")
    assert visit.page.title() == "Sign in – Digital inclusion outreach"
    assert visit.page.get_by_role("heading", level=1).inner_text() == "Sign in"
    assert visit.page.locator("html").get_attribute("lang") == "en"
    # With JavaScript on, GOV.UK's password input gains its Show button.
    assert visit.page.get_by_role("button", name="Show password").is_visible()
    counts = visit.check("Sign in")
    assert counts["critical"] == counts["serious"] == 0


def test_a_wrong_password_shows_the_error_summary_with_the_focus_on_it(
    visit: Visit, staff: Staff
) -> None:
    visit.go("/login", "login page")
    visit.page.get_by_label("Email address").fill(NORTH_WORKER)
    visit.page.get_by_label("Password", exact=True).fill("not the password")
    with visit.page.expect_navigation():
        visit.page.get_by_role("button", name="Sign in").click()
    assert visit.page.title() == "Error: Sign in – Digital inclusion outreach"
    summary = visit.page.locator(".govuk-error-summary")
    assert "There is a problem" in summary.get_by_role("alert").inner_text()
    assert GENERIC in summary.inner_text()
    assert visit.page.evaluate(
        "document.activeElement === document.querySelector('.govuk-error-summary')"
    )
    visit.check("Sign in (error)")
    # The summary's link takes the keyboard to the field it names.
    tab_to(visit.page, ".govuk-error-summary a")
    visit.page.keyboard.press("Enter")
    assert visit.page.evaluate("document.activeElement.id") == "email"
    assert "Signed in as" not in visit.text("body")


def test_a_member_signs_in_with_the_keyboard_alone(visit: Visit, staff: Staff) -> None:
    visit.go("/login?next=/password", "login page")
    stops = tab_to(visit.page, "#email")
    assert stops[0]["text"] == "Skip to main content"
    visit.page.keyboard.type(NORTH_WORKER)
    tab_to(visit.page, "#password")
    visit.page.keyboard.type(PASSWORD)
    visit.snap("typed")
    stops = tab_to(visit.page, "button.govuk-button[type=submit]")
    assert [stop["text"] for stop in stops] == ["Show", "Sign in"]
    visit.page.keyboard.press("Enter")
    visit.wait_for_path("/password")
    assert f"Signed in as {NORTH_WORKER}" in visit.text("body")
    assert visit.page.get_by_role("heading", level=1).inner_text() == "Change your password"
    visit.snap("signed in")


def test_the_skip_link_takes_the_keyboard_to_the_page(visit: Visit) -> None:
    visit.go("/login", "login page")
    visit.page.keyboard.press("Tab")
    skip = focused(visit.page)
    assert skip is not None
    assert skip["text"] == "Skip to main content"
    assert focus_is_visible(skip)
    visit.page.keyboard.press("Enter")
    assert visit.page.evaluate("document.activeElement.id") == "main-content"


def test_the_password_page_passes_axe_and_changes_the_password(visit: Visit, staff: Staff) -> None:
    sign_in(visit, NORTH_WORKER, PASSWORD, then="/password")
    visit.check("Change your password")
    page = visit.page
    page.get_by_label("Current password").fill(PASSWORD)
    page.get_by_label("New password", exact=True).fill(NEW_PASSWORD)
    page.get_by_label("Confirm new password").fill("something else entirely")
    with page.expect_navigation():
        page.get_by_role("button", name="Change password").click()
    assert "The new passwords do not match" in visit.text(".govuk-error-summary")
    assert page.evaluate("document.activeElement.classList.contains('govuk-error-summary')")
    visit.check("Change your password (error)")
    page.get_by_label("Current password").fill(PASSWORD)
    page.get_by_label("New password", exact=True).fill(NEW_PASSWORD)
    page.get_by_label("Confirm new password").fill(NEW_PASSWORD)
    with page.expect_navigation():
        page.get_by_role("button", name="Change password").click()
    assert "Your password has been changed" in visit.text("body")
    visit.snap("changed")
    # The old password no longer opens the dashboard; the new one does.
    page.get_by_role("button", name="Sign out").click()
    visit.wait_for_path("/login")
    page.get_by_label("Email address").fill(NORTH_WORKER)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    with page.expect_navigation():
        page.get_by_role("button", name="Sign in").click()
    assert GENERIC in visit.text(".govuk-error-summary")
    sign_in(visit, NORTH_WORKER, NEW_PASSWORD)


def test_signing_in_and_changing_a_password_work_without_javascript(
    browse: Browse, staff: Staff
) -> None:
    visit: Visit = browse(javascript=False)
    visit.go("/login?next=/password", "login without javascript")
    page = visit.page
    # No script ran: the password field has no Show button, and the error summary (below)
    # is not focused, but every form still posts.
    assert page.get_by_role("button", name="Show password").count() == 0
    page.get_by_label("Email address").fill(NORTH_WORKER)
    page.get_by_label("Password", exact=True).fill("not the password")
    with page.expect_navigation():
        page.get_by_role("button", name="Sign in").click()
    assert GENERIC in visit.text(".govuk-error-summary")
    visit.snap("error without javascript")
    page.get_by_label("Email address").fill(NORTH_WORKER)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    visit.wait_for_path("/password")
    assert f"Signed in as {NORTH_WORKER}" in visit.text("body")
    visit.snap("password page without javascript")
    page.get_by_label("Current password").fill(PASSWORD)
    page.get_by_label("New password", exact=True).fill(NEW_PASSWORD)
    page.get_by_label("Confirm new password").fill(NEW_PASSWORD)
    with page.expect_navigation():
        page.get_by_role("button", name="Change password").click()
    assert "Your password has been changed" in visit.text("body")
    visit.snap("changed without javascript")
