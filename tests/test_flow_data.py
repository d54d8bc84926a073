"""The shipped questionnaire: complete, in the documented order, and affordable on a basic phone.

The expected ids and titles are the table in the project's questionnaire reference, copied
here so that the test stands on its own. Budgets are checked on the messages exactly as the
engine renders them, with a council whose name, links and signposting are long.
"""

from __future__ import annotations

import pytest

from bot.render import fill, join_lead, options_block, question_body, topic_counts
from flows.loader import LEADS, QUESTION_ONLY_LEADS, REASKS, WHOLE, load_flow
from flows.model import Flow, Heading, Item, Question, TopicBreak
from flows.segments import count_segments, is_gsm7

COUNCIL = {
    "council": "Royal Borough of Kensington and Chelsea",
    "privacy_url": "https://www.rbkc.gov.uk/digital-skills/privacy",
    "helpline": "07700 900123",
    "signposting": "Free help: call 07700 900123 or ask at any library.",
}

BASICS = {
    "BA01": "A device that connects me to the internet",
    "BA02": "An internet connection (fixed broadband and/or mobile data)",
    "BA03": "A physical environment that lets me do what I need to online",
}
BLOCKERS = {
    "BL01": "Prohibitive cost (of kit and/or broadband/mobile data)",
    "BL02": "Connectivity (availability of fixed broadband and 4G, not cost related)",
    "BL03": "Lack of skills and confidence",
    "BL04": "Lack of interest or motivation",
    "BL05": "Health, disability or language barriers",
}
HEADINGS = {
    "GS": "Getting started",
    "CM": "Communicating",
    "HI": "Handling information and content",
    "TR": "Transacting",
    "PS": "Problem solving",
    "SS": "Staying safe",
    "AD": "Advanced skills",
}
SKILLS = {
    "GS01": "Turn on a device and log in",
    "GS02": "Use a touchscreen, mouse or keyboard",
    "GS03": "Make text bigger or change settings",
    "GS04": "Find and open apps",
    "GS05": "Connect to Wi-Fi",
    "GS06": "Open a web browser and visit a website",
    "GS07": "Keep passwords and PINs private",
    "GS08": "Change a password when asked",
    "CM01": "Send and reply to texts or WhatsApp messages",
    "CM02": "Send and reply to emails",
    "CM03": "Set up an email account",
    "CM04": "Attach a photo or file to a message",
    "CM05": "Make a video call",
    "CM06": "Use social media",
    "CM07": "Write a letter or CV on a device",
    "HI01": "Search the internet for information",
    "HI02": "Check news, weather or bus and train times",
    "HI03": "Watch or listen to TV, radio or music online",
    "HI04": "Use maps and directions",
    "HI05": "Save and find photos and files",
    "HI06": "Use online storage (the cloud)",
    "HI07": "Tell if online information is reliable",
    "TR01": "Create an online account",
    "TR02": "Buy things online",
    "TR03": "Pay bills online",
    "TR04": "Use online or app banking",
    "TR05": "Use council or government services online",
    "TR06": "Fill in an online form",
    "TR07": "Upload a photo or document, such as ID",
    "TR08": "Book GP appointments or order prescriptions online",
    "PS01": "Look up how to do something online",
    "PS02": "Use online help, FAQs or web chat",
    "PS03": "Learn with online videos or courses",
    "PS04": "Compare prices to save money",
    "PS05": "Fix simple device problems (restart, update)",
    "SS01": "Spot scam emails, texts and calls",
    "SS02": "Use strong, different passwords",
    "SS03": "Use security codes to log in (two-step)",
    "SS04": "Set privacy settings",
    "SS05": "Check a website is secure before paying",
    "SS06": "Keep a device and its apps updated",
    "SS07": "Think before sharing personal information",
    "SS08": "Back up photos and files",
    "AD01": "Apply for jobs online",
    "AD02": "Use spreadsheets",
    "AD03": "Work on shared documents",
    "AD04": "Host or join an online meeting",
    "AD05": "Sell things online",
}
SPLIT = {"GS": 8, "CM": 7, "HI": 7, "TR": 8, "PS": 5, "SS": 8, "AD": 5}
OUTCOMES = {
    "CM02": "use_email",
    "CM05": "video_call",
    "TR02": "buy_online",
    "TR03": "pay_bills_online",
    "TR04": "bank_online",
    "TR05": "use_government_services_online",
    "TR08": "use_nhs_services_online",
    "AD01": "apply_for_jobs_online",
}
EN = "en"


@pytest.fixture(scope="module")
def flow() -> Flow:
    """English, with a council name and link as long as England's get: Welsh has its own
    budgets, tested in test_languages.py with a Welsh council's details."""
    return load_flow(council=COUNCIL, languages=[EN])


def questions(flow: Flow, mode: str) -> list[Question]:
    return [step for step in flow.modes[mode].steps if isinstance(step, Question)]


def named(flow: Flow) -> list[Item | Heading]:
    return [*flow.items, *flow.headings]


def every_message(flow: Flow) -> list[tuple[str, str]]:
    """(what, text) for every message a respondent can receive, in its longest forms."""
    text = flow.text
    leads = [""] + [text(key, EN) for key in LEADS]
    sent: list[tuple[str, str]] = []
    for mode in flow.modes.values():
        for question in questions(flow, mode.id):
            body = question_body(flow, question, mode.total, EN)
            reasks = [text(key, EN).format(max=5) for key in REASKS]
            reasks.append(text("which", EN).format(first=4, second=5))
            for lead in leads + reasks:
                sent.append((f"{mode.id} {question.key} after {lead!r}", join_lead(lead, body)))
    for prompt in flow.prompts.values():
        options = options_block(prompt.options, EN, EN)
        topics = [heading.intro[EN] for heading in flow.headings]
        for topic in topics if prompt.key == "topic" else [""]:
            values = {"topic": topic, "skills": 8, "questions": 16, "n": 56, "total": 56}
            body = f"{prompt.text[EN].format(**values)}\n{options}"
            reasks = [text(key, EN).format(max=len(prompt.options)) for key in REASKS]
            before_prompt = [
                text(key, EN)
                for key in LEADS
                if key not in QUESTION_ONLY_LEADS or (key, prompt.key) == ("reminder", "resume")
            ]
            for lead in ["", *before_prompt, *reasks]:
                sent.append((f"prompt {prompt.key} after {lead!r}", join_lead(lead, body)))
    sent.extend((f"message {key}", text(key, EN)) for key in WHOLE)
    return sent


def test_the_shipped_flow_loads_with_and_without_council_details() -> None:
    assert load_flow().id == "digital-inclusion"
    flow = load_flow(council=COUNCIL, languages=[EN])
    assert COUNCIL["council"] in flow.prompts["consent"].text[EN]
    assert COUNCIL["privacy_url"] in flow.prompts["consent"].text[EN]
    assert COUNCIL["helpline"] in flow.text("help", EN)


def test_basics_and_blockers_are_the_documented_items(flow: Flow) -> None:
    basics = {i.id: i.title[EN] for i in flow.items if i.section == "basics"}
    blockers = {i.id: i.title[EN] for i in flow.items if i.section == "blockers"}
    assert basics == BASICS
    assert blockers == BLOCKERS
    assert list(basics) == sorted(basics)
    assert list(blockers) == sorted(blockers)


def test_48_skills_under_7_headings_in_order(flow: Flow) -> None:
    assert [(h.id, h.title[EN]) for h in flow.headings] == list(HEADINGS.items())
    skills = [item for item in flow.items if item.section == "skills"]
    assert [(i.id, i.title[EN]) for i in skills] == list(SKILLS.items())
    per_heading = {h: sum(1 for i in skills if i.heading == h) for h in HEADINGS}
    assert per_heading == SPLIT
    assert sum(per_heading.values()) == 48
    assert all(item.id.startswith(item.heading or "") for item in skills)


def test_short_names_are_plain_and_fit_a_list(flow: Flow) -> None:
    for entry in named(flow):
        short = entry.short[EN]
        assert len(short) <= 30, entry.id
        assert not short.endswith("."), entry.id
    skill_shorts = [i.short[EN] for i in flow.items if i.section == "skills"]
    assert len(set(skill_shorts)) == 48, "two skills share a short name"
    assert flow.item("TR03").short[EN] == "Paying bills online"


def test_outcome_flags_for_impact_exports(flow: Flow) -> None:
    flagged = {item.id: item.outcome for item in flow.items if item.outcome}
    assert flagged == OUTCOMES


def test_every_scale_has_five_options_scored_0_to_4_numbered_1_to_5(flow: Flow) -> None:
    assert set(flow.scales) == {"access", "blocker", "skill", "interest"}
    for scale in flow.scales.values():
        assert [o.number for o in scale.options] == [1, 2, 3, 4, 5], scale.id
        assert [o.score for o in scale.options] == [0, 1, 2, 3, 4], scale.id
        assert "{task}" in scale.question[EN]


def test_quick_check_asks_22_questions_numbered_1_to_22(flow: Flow) -> None:
    quick = flow.modes["quick"]
    asked = questions(flow, "quick")
    assert quick.total == 22
    assert len(asked) == 22
    assert [step.key for step in quick.steps if not isinstance(step, Question)] == [
        "skills.basis"  # offered only to someone with no device or no connection
    ]
    assert [q.number for q in asked] == list(range(1, 23))
    assert [q.key for q in asked[:8]] == [f"{i}.access" for i in BASICS] + [
        f"{i}.blocker" for i in BLOCKERS
    ]
    assert [q.key for q in asked[8:]] == [
        f"{heading}.{aspect}" for heading in HEADINGS for aspect in ("skill", "interest")
    ]


def test_full_assessment_numbers_56_items_skill_then_interest(flow: Flow) -> None:
    full = flow.modes["full"]
    assert full.total == 56
    assert full.interest_if_skill_at_most is not None
    asked = questions(flow, "full")
    assert [q.key for q in asked[:8]] == [q.key for q in questions(flow, "quick")[:8]]
    skills = asked[8:]
    assert [q.key for q in skills] == [
        f"{item}.{aspect}" for item in SKILLS for aspect in ("skill", "interest")
    ]
    assert [q.number for q in skills] == [n for n in range(9, 57) for _ in ("skill", "interest")]


def test_a_topic_break_before_each_heading_saying_how_many_questions(flow: Flow) -> None:
    full = flow.modes["full"]
    steps = full.steps
    breaks = [(index, step) for index, step in enumerate(steps) if isinstance(step, TopicBreak)]
    assert [step.heading for _, step in breaks] == list(HEADINGS)
    for index, step in breaks:
        following = steps[index + 1]
        assert isinstance(following, Question)
        assert following.item == f"{step.heading}01"
        assert following.aspect == "skill"
        intro = flow.heading(step.heading).intro[EN]
        assert intro.startswith("Next topic: ")
        counts = topic_counts(flow, full, step.heading)
        said = fill(flow.prompts["topic"].text[EN], topic=intro, **counts)
        # a skill and, where its skill is low, whether they would do it regularly
        items = SPLIT[step.heading]
        assert said.endswith(f". {items} skills, up to {2 * items} questions."), said


def test_questions_read_as_one_sentence(flow: Flow) -> None:
    for question in flow.questions.values():
        text = question.text[EN]
        assert text.endswith("?"), text
        assert text.count("?") == 1, text
        assert "  " not in text, text
        assert "{" not in text, text
    for entry in named(flow):
        task = entry.sms[EN]
        assert task[0].islower(), entry.id
        assert task[-1] not in ".?!", entry.id


def test_every_english_text_a_respondent_can_get_is_gsm7(flow: Flow) -> None:
    texts = [text for _, text in every_message(flow)]
    texts += [entry.short[EN] for entry in named(flow)]
    texts += [text[EN] for text in flow.messages.values()]
    texts += [word for words in flow.commands.values() for word in words[EN]]
    not_gsm7 = [text for text in texts if not is_gsm7(text)]
    assert not_gsm7 == []


def test_every_question_after_got_it_fits_one_sms(flow: Flow) -> None:
    ack = flow.text("ack", EN)
    assert ack == "Got it."
    for mode in flow.modes.values():
        for question in questions(flow, mode.id):
            message = join_lead(ack, question_body(flow, question, mode.total, EN))
            count = count_segments(message)
            assert (count.encoding, count.segments) == ("GSM-7", 1), (count.units, message)


def test_nothing_a_respondent_can_get_is_over_two_sms(flow: Flow) -> None:
    over = [
        (what, count_segments(text).segments)
        for what, text in every_message(flow)
        if count_segments(text).segments > 2
    ]
    assert over == []
