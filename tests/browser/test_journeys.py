"""The issue's journeys in a real browser, with the keyboard alone once signed in (Tab to the
control, Enter or Space to use it, arrows within a group; GOV.UK's focus style visible at every
stop), axe-core on each page on the way: finding residents, a follow-up text with its live
length counter and the reply in the thread, check-ins for a cohort, a cohort added and a
resident enrolled into it with a check-in of their own, and an assisted assessment. Without
JavaScript the forms still work, and the counter's words come from the server, the same."""

from __future__ import annotations

import re

import sqlalchemy as sa
from playwright.sync_api import Page

from flows.model import Flow
from tests.browser.conftest import ANSWERED, COHORT
from tests.browser.support import Browse, Visit, focused, sign_in, tab_to, texts_from
from tests.dashboard_support import NORTH_ADMIN, NORTH_WORKER, PASSWORD, FakeNow, Staff

COUNTER = "[data-followup-counter] .govuk-character-count__status"
GSM7 = "Plain characters (GSM-7): 160 characters a text, 153 each when it needs more."
MASKED = "07700 900•••"


def press(page: Page, selector: str, key: str = "Enter") -> None:
    """Tab to `selector` (focus visible all the way) and press `key` on it."""
    tab_to(page, selector)
    page.keyboard.press(key)


def counter(visit: Visit) -> str:
    return visit.text(COUNTER)


def open_first_resident(visit: Visit) -> None:
    """From the residents list, the first row's resident, by keyboard."""
    visit.go("/respondents", "residents")
    press(visit.page, "main tbody tr:first-child a")
    visit.wait_for_path(r"/respondents/\d+")
    visit.check("/respondents/<id>")


def test_a_follow_up_text_counted_as_it_is_typed_then_sent_by_keyboard(
    visit: Visit,
    staff: Staff,
    residents: list[int],
    engine: sa.Engine,
    flow: Flow,
    clock: FakeNow,
) -> None:
    sign_in(visit, NORTH_WORKER, PASSWORD)
    open_first_resident(visit)
    heading = visit.page.get_by_role("heading", level=1).inner_text()
    assert MASKED in heading
    assert "Completed" in heading
    press(visit.page, "main a[href$='/follow-up']")
    visit.wait_for_path(f"/respondents/{residents[-1]}/follow-up")
    visit.check("/respondents/<id>/follow-up")
    page = visit.page

    tab_to(page, "#text")
    assert counter(visit) == "0 characters."
    page.keyboard.type("Hello ")
    # The trailing space is not sent, so not counted.
    assert counter(visit) == f"5 characters: 1 text. {GSM7}"
    page.keyboard.type("x" * 154)
    assert counter(visit) == f"160 characters: 1 text. {GSM7}"
    page.keyboard.type("y")
    assert counter(visit) == f"161 characters: 2 texts. {GSM7}"
    page.keyboard.type("ŵ")
    assert counter(visit) == (
        "162 characters: 3 texts. Uses special characters (UCS-2), such as “ŵ”: "
        "70 characters a text, 67 each when it needs more."
    )
    page.keyboard.type("😊")
    assert counter(visit).startswith("164 characters: 3 texts.")
    assert counter(visit).endswith("Each emoji counts as 2.")
    visit.snap("counter after an emoji")
    # Screen readers hear the count once typing pauses.
    spoken = page.locator("[data-followup-counter] .govuk-character-count__sr-status")
    assert spoken.get_attribute("aria-live") == "polite"
    page.wait_for_function(
        "s => document.querySelector(s).textContent.startsWith('164 characters')",
        arg="[data-followup-counter] .govuk-character-count__sr-status",
    )

    page.keyboard.press("Control+A")
    page.keyboard.press("Backspace")
    assert counter(visit) == "0 characters."
    text = "Hello from the library team. Can we help you get online? Reply here."
    page.keyboard.type(text)
    assert counter(visit) == f"{len(text)} characters: 1 text. {GSM7}"
    stops = tab_to(page, "button[value=send]")
    assert stops[-1]["text"] == "Send text"
    with page.expect_navigation():
        page.keyboard.press("Enter")
    banner = visit.text(".govuk-notification-banner")
    assert f"Sent to {MASKED}: 1 text." in banner
    assert text in visit.text(".dibot-thread")
    visit.check("/respondents/<id>/follow-up (sent)")

    # Their reply, by SMS, arrives in the thread (the bot keeps quiet while it is open).
    texts_from(engine, flow, clock, ANSWERED[1], "Yes please, Tuesday suits me")
    page.reload()
    thread = visit.text(".dibot-thread")
    assert thread.index(text) < thread.index("Yes please, Tuesday suits me")
    visit.check("/respondents/<id>/follow-up (reply)")


def test_without_javascript_the_server_counts_the_text_in_the_same_words(
    browse: Browse, staff: Staff, residents: list[int]
) -> None:
    text = "Croeso! Ŵyr — tea at 2pm? 😊 " + "z" * 60
    with_script = browse()
    sign_in(with_script, NORTH_WORKER, PASSWORD)
    with_script.go(f"/respondents/{residents[-1]}/follow-up", "follow-up")
    with_script.page.get_by_label("Text to send").fill(text)
    live = counter(with_script)
    assert live.startswith("89 characters: 2 texts. Uses special characters (UCS-2), such as “Ŵ”")

    without = browse(javascript=False)
    sign_in(without, NORTH_WORKER, PASSWORD)
    without.go(f"/respondents/{residents[-1]}/follow-up", "follow-up without javascript")
    page = without.page
    assert page.locator(COUNTER).count() == 0  # no script: no live counter
    page.get_by_label("Text to send").fill(text)
    with page.expect_navigation():
        page.get_by_role("button", name="Check the length").click()
    assert without.text("#text-info") == live
    assert page.get_by_label("Text to send").input_value() == text
    without.snap("length checked by the server")
    assert "Sent to" not in without.text("main")


def test_check_ins_for_a_cohort_scheduled_by_keyboard(
    visit: Visit, staff: Staff, residents: list[int]
) -> None:
    sign_in(visit, NORTH_ADMIN, PASSWORD)
    page = visit.page
    press(page, ".govuk-service-navigation a[href='/checkins']")
    visit.wait_for_path("/checkins")
    visit.check("/checkins")
    tab_to(page, "select#cohort")
    page.keyboard.press("ArrowDown")
    assert page.locator("select#cohort option:checked").inner_text() == COHORT
    press(page, "form[method=get] button")
    page.wait_for_url(re.compile(r"cohort=\d+"))
    visit.check("/checkins?cohort")

    # The radios: Tab into the group, arrows to "In 3 months", Space to be sure it is chosen.
    tab_to(page, "input[name=when]")
    while page.evaluate("document.activeElement.value") != "3m":
        page.keyboard.press("ArrowDown")
        found = focused(page)
        assert found is not None
        assert found["name"] == "when"
    page.keyboard.press("Space")
    assert page.locator("input[name=when]:checked").get_attribute("value") == "3m"
    visit.snap("in 3 months chosen")
    stops = tab_to(page, "form[method=post][action$='/checkins'] button")
    assert stops[-1]["text"] == f"Schedule check-ins for {COHORT}"
    with page.expect_navigation():
        page.keyboard.press("Enter")
    banner = visit.text(".govuk-notification-banner")
    assert f"{COHORT}: Scheduled 1 check-in for 1 March 2027 at 11am" in banner
    visit.check("/checkins?cohort (scheduled)")
    visit.go("/checkins?state=due", snap=False)
    due = visit.text("main table")
    assert "07700 900•••" in due
    assert "1 March 2027" in due
    visit.check("/checkins?state")


def test_a_cohort_added_a_resident_enrolled_into_it_and_a_check_in_by_keyboard(
    visit: Visit, staff: Staff
) -> None:
    sign_in(visit, NORTH_WORKER, PASSWORD)
    page = visit.page
    press(page, ".govuk-service-navigation a[href='/cohorts']")
    visit.wait_for_path("/cohorts")
    assert "Your team has no cohorts yet." in visit.text()
    visit.check("/cohorts (none yet)")
    tab_to(page, "#name")
    page.keyboard.type("Spring device loans")
    tab_to(page, "#initiative")
    page.keyboard.type("Device loans")
    for field, value in (("#starts_day", "1"), ("#starts_month", "3"), ("#starts_year", "2027")):
        tab_to(page, field)
        page.keyboard.type(value)
    press(page, "form[action^='/cohorts'] button")
    visit.wait_for_path(r"/cohorts/\d+")
    assert "Cohort Spring device loans added, for the initiative Device loans" in visit.text(
        ".govuk-notification-banner"
    )
    visit.check("/cohorts/<id> (added)")

    press(page, "main a[href^='/enrol?cohort=']")
    visit.wait_for_path("/enrol")
    assert page.locator("select#cohort option:checked").inner_text() == "Spring device loans"
    visit.check("/enrol?cohort")
    tab_to(page, "#phone")
    page.keyboard.type("12345")
    with page.expect_navigation():
        press(page, "form[action='/enrol'] button")  # the agreement left unticked
    assert page.evaluate("document.activeElement.classList.contains('govuk-error-summary')")
    summary = page.locator(".govuk-error-summary a")
    assert [summary.nth(i).get_attribute("href") for i in range(summary.count())] == [
        "#phone",
        "#agreed",
    ]
    assert "Confirm that the resident agreed to be contacted" in visit.text(".govuk-error-summary")
    assert "12345" not in visit.text(".govuk-error-summary")  # never repeated back
    visit.check("/enrol (errors)")

    tab_to(page, "#phone")
    page.keyboard.press("Control+A")
    page.keyboard.type("07700 900123")
    tab_to(page, "input[name=agreed]")
    page.keyboard.press("Space")
    assert page.locator("input[name=agreed]").is_checked()
    press(page, "form[action='/enrol'] button")
    visit.wait_for_path(r"/respondents/\d+")
    assert visit.text(".govuk-notification-banner").endswith(
        "07700 900••• is enrolled in cohort Spring device loans. "
        "They are invited now: the invitation is on its way."
    )
    assert "900123" not in visit.text("body")
    visit.check("/respondents/<id> (enrolled)")

    press(page, "main a[href$='/checkins']")
    visit.wait_for_path(r"/respondents/\d+/checkins")
    visit.check("/respondents/<id>/checkins")
    tab_to(page, "input[name=when]")
    assert page.evaluate("document.activeElement.value") == "1m"
    page.keyboard.press("Space")
    with page.expect_navigation():
        press(page, "form[method=post][action$='/checkins'] button")
    banner = visit.text(".govuk-notification-banner")
    assert "Scheduled a check-in for 1 January 2027 at 11am" in banner
    assert "They have not finished a first assessment yet" in banner  # only just invited
    visit.check("/respondents/<id>/checkins (scheduled)")


def test_enrolling_works_without_javascript(browse: Browse, staff: Staff) -> None:
    visit = browse(javascript=False)
    sign_in(visit, NORTH_WORKER, PASSWORD)
    visit.go("/enrol", "enrol without javascript")
    page = visit.page
    page.get_by_label("Mobile phone number").fill("07700 900124")
    with page.expect_navigation():
        page.get_by_role("button", name="Enrol and invite").click()
    assert "Confirm that the resident agreed to be contacted" in visit.text(".govuk-error-summary")
    assert page.get_by_label("Mobile phone number").input_value() == "07700 900124"
    visit.snap("agreement missing without javascript")
    page.get_by_label("The resident agreed to be contacted").check()
    page.get_by_role("button", name="Enrol and invite").click()
    visit.wait_for_path(r"/respondents/\d+")
    assert "07700 900••• is enrolled." in visit.text(".govuk-notification-banner")
    visit.snap("enrolled without javascript")


def answer_by_keyboard(page: Page, option: int) -> str:
    """Choose the `option`th radio (from 1) with the arrow keys and Continue with Enter; the
    page's main heading (the question) that was answered."""
    question = page.locator("h1, legend").first.inner_text()
    tab_to(page, "input[name=option]")
    for _ in range(option - 1):
        page.keyboard.press("ArrowDown")
    page.keyboard.press("Space")
    assert page.locator("input[name=option]:checked").get_attribute("value") == str(option)
    with page.expect_navigation():
        press(page, "#continue")
    return question


def test_an_assisted_assessment_answered_with_the_keyboard(
    visit: Visit, staff: Staff, residents: list[int]
) -> None:
    invited = residents[1]
    sign_in(visit, NORTH_WORKER, PASSWORD)
    visit.go(f"/respondents/{invited}", snap=False)
    visit.check("/respondents/<id> (invited)")
    page = visit.page
    press(page, "main a[href$='/assisted']")
    visit.wait_for_path(rf"/respondents/{invited}/assisted")
    visit.check("/respondents/<id>/assisted")
    assert page.get_by_role("heading", level=1).inner_text() == "Privacy notice"
    with page.expect_navigation():
        press(page, "#continue")  # nothing chosen yet
    assert page.evaluate("document.activeElement.classList.contains('govuk-error-summary')")
    assert "Select their answer" in visit.text(".govuk-error-summary")
    visit.check("/respondents/<id>/assisted (privacy notice, error)")
    answer_by_keyboard(page, 1)  # they agree
    visit.check("/respondents/<id>/assisted (quick or full)")
    answer_by_keyboard(page, 1)  # the quick check
    asked: list[str] = []
    total = 0
    while page.locator("input[name=option]").count():
        question = re.search(r"Question (\d+) of (\d+)", visit.text("main"))
        if question is None:  # a screen between sections, answered like any other
            answer_by_keyboard(page, 1)
            continue
        number, total = int(question[1]), int(question[2])
        assert number == len(asked) + 1
        if number == 1:
            visit.check("/respondents/<id>/assisted (a question)")
        asked.append(answer_by_keyboard(page, 1))
    # The first option of each basics question is "no": without a device or a connection
    # the skills are not asked, and the priorities say what comes first.
    assert total == 22
    assert len(asked) == 8
    assert asked[0].endswith("Do you have a phone, tablet or computer that can go online?")
    assert "Assessment complete" in visit.text(".govuk-panel")
    assert "First, you need: a device, internet access" in visit.text(".govuk-inset-text")
    visit.check("/respondents/<id>/assisted (complete)")
    visit.go(f"/respondents/{invited}", snap=False)
    answers = " ".join((page.locator("main").text_content() or "").split())  # details closed
    assert f"Filled in with a member of staff: {NORTH_WORKER}" in answers
    assert "First, they need: a device, internet access" in visit.text("main")
    visit.check("/respondents/<id> (assisted)")


def choose_by_keyboard(page: Page, select: str, text: str) -> None:
    """Tab to the `select`, Home to its first option, then down with the arrow keys to
    `text`."""
    tab_to(page, select)
    options = page.locator(f"{select} option").all_inner_texts()
    assert text in options, options
    page.keyboard.press("Home")
    for _ in range(len(options)):
        if page.locator(f"{select} option:checked").inner_text() == text:
            return
        page.keyboard.press("ArrowDown")
    raise AssertionError(f"{text} not reached in {select}")


def test_finding_residents_by_keyboard(visit: Visit, staff: Staff, residents: list[int]) -> None:
    sign_in(visit, NORTH_WORKER, PASSWORD)
    page = visit.page
    rows = page.locator("main tbody tr")
    assert rows.count() == 2  # North's two; South's resident is not theirs to see
    assert "900201" not in visit.text("main")
    choose_by_keyboard(page, "select#status", "Completed")
    with page.expect_navigation():
        press(page, "form.dibot-filters button")
    assert rows.count() == 1
    assert "Completed" in visit.text("main tbody")
    assert "Matching residents" in visit.text("main caption")
    visit.check("/respondents?status (filtered)")

    tab_to(page, "#q", backwards=True)
    page.keyboard.press("Control+A")
    page.keyboard.type("07700 900201")  # South's resident, by their whole number
    choose_by_keyboard(page, "select#status", "Any status")
    with page.expect_navigation():
        press(page, "form.dibot-filters button")
    assert rows.count() == 0
    assert "No residents match" in visit.text("main")
    assert "900201" not in visit.text("main")  # the number is not repeated back
    visit.check("/respondents?q (no match)")

    tab_to(page, "#q", backwards=True)
    page.keyboard.press("Control+A")
    page.keyboard.type("07700 900101")
    with page.expect_navigation():
        press(page, "form.dibot-filters button")
    assert rows.count() == 1
    assert residents[-1] == int(
        (page.locator("main tbody a").get_attribute("href") or "").rsplit("/", 1)[1]
    )
