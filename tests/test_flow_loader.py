"""A broken flow directory is refused at start-up with a message that says where and what.

Each test copies the shipped questionnaire, breaks it the way a council editing the files
might, and checks that the error names the file, the entry and the problem, so that the
person who edited it can fix it without reading the loader.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from flows.loader import SHIPPED, FlowError, load_flow


@pytest.fixture
def flow_dir(tmp_path: Path) -> Path:
    """The shipped flow without its translations: these tests break the English data, and a
    catalog would (rightly) refuse it first as translated from older English."""
    directory = tmp_path / "flow"
    shutil.copytree(SHIPPED, directory, ignore=shutil.ignore_patterns("locale"))
    return directory


def edit(directory: Path, name: str, old: str, new: str) -> None:
    path = directory / name
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1, f"{old!r} is not once in {name}"
    path.write_text(text.replace(old, new), encoding="utf-8")


def refusal(directory: Path, council: dict[str, str] | None = None) -> str:
    with pytest.raises(FlowError) as caught:
        load_flow(directory, council)
    return str(caught.value)


def test_the_copied_flow_loads(flow_dir: Path) -> None:
    assert load_flow(flow_dir).id == "digital-inclusion"


def test_duplicate_item_id(flow_dir: Path) -> None:
    edit(flow_dir, "items.toml", 'id = "GS02"', 'id = "GS01"')
    assert refusal(flow_dir) == "items.toml: item GS01: duplicate item id"


def test_duplicate_heading_id(flow_dir: Path) -> None:
    edit(flow_dir, "items.toml", 'id = "CM"', 'id = "GS"')
    assert refusal(flow_dir) == "items.toml: heading GS: duplicate heading id"


def test_unknown_heading(flow_dir: Path) -> None:
    edit(
        flow_dir,
        "items.toml",
        'heading = "GS"\neds = "Foundation"\ntitle.en = "Find',
        'heading = "GX"\neds = "Foundation"\ntitle.en = "Find',
    )
    message = refusal(flow_dir)
    assert message.startswith("items.toml: item GS04: unknown heading 'GX'")
    assert "'GS'" in message  # the known headings are listed


def test_unknown_section(flow_dir: Path) -> None:
    edit(
        flow_dir, "items.toml", 'id = "BA02"\nsection = "basics"', 'id = "BA02"\nsection = "basic"'
    )
    assert refusal(flow_dir).startswith("items.toml: item BA02: unknown section 'basic'")


def test_unknown_scale(flow_dir: Path) -> None:
    path = flow_dir / "flow.toml"
    path.write_text(path.read_text() + '\n[scales.mood]\nquestion.en = "How are you {task}?"\n')
    assert refusal(flow_dir).startswith("flow.toml: scales: unknown scales ['mood']")


def test_missing_scale(flow_dir: Path) -> None:
    text = (flow_dir / "flow.toml").read_text()
    (flow_dir / "flow.toml").write_text(text[: text.index("[scales.interest]")])
    assert refusal(flow_dir) == "flow.toml: scales.interest: missing"


def test_missing_english_text_of_an_item(flow_dir: Path) -> None:
    edit(flow_dir, "items.toml", 'sms.en = "make a video call"\n', "")
    assert refusal(flow_dir) == "items.toml: item CM05 sms: no en text"


def test_missing_english_text_of_a_message(flow_dir: Path) -> None:
    edit(flow_dir, "messages.toml", 'ack.en = "Got it."\n', "")
    assert refusal(flow_dir) == "messages.toml: messages.ack: no en text"


def test_empty_english_text(flow_dir: Path) -> None:
    edit(flow_dir, "items.toml", 'short.en = "Paying bills online"', 'short.en = "  "')
    assert refusal(flow_dir) == "items.toml: item TR03 short: no en text"


def test_curly_quote_in_an_sms_text(flow_dir: Path) -> None:
    edit(flow_dir, "items.toml", '"pay bills online"', '"pay your \u2018bills\u2019 online"')
    message = refusal(flow_dir)
    assert message.startswith("items.toml: item TR03 sms: en text is not GSM-7")
    assert "\u2018" in message
    assert "\u2019" in message


def test_en_dash_in_a_scale_option(flow_dir: Path) -> None:
    edit(flow_dir, "flow.toml", 'sms.en = "Only with help"', 'sms.en = "Only \u2013 with help"')
    message = refusal(flow_dir)
    assert message.startswith("flow.toml: scales.skill option 2 sms: en text is not GSM-7")


def test_an_sms_text_so_long_its_question_is_three_segments(flow_dir: Path) -> None:
    long_task = "sell things online, " * 12 + "and more"
    edit(flow_dir, "items.toml", '"sell things online"', f'"{long_task}"')
    message = refusal(flow_dir)
    assert message.startswith("items.toml: item AD05 sms: question AD05.skill (full)")
    assert "is 3 SMS segments" in message
    assert "over 2" in message


def test_a_heading_sms_text_too_long_for_the_quick_check(flow_dir: Path) -> None:
    edit(flow_dir, "items.toml", '"text, email and make video calls"', f'"{"text " * 60}and call"')
    message = refusal(flow_dir)
    assert message.startswith("items.toml: heading CM sms: question CM.skill (quick)")
    assert "SMS segments" in message


def test_a_short_name_over_30_characters(flow_dir: Path) -> None:
    edit(flow_dir, "items.toml", '"Paying bills online"', '"Paying all of your bills online"')
    assert refusal(flow_dir) == "items.toml: item TR03 short: en text is 31 characters, over 30"


def test_placeholder_typo(flow_dir: Path) -> None:
    edit(flow_dir, "messages.toml", "this is {council}'s", "this is {councl}'s")
    message = refusal(flow_dir)
    assert message.startswith(
        "messages.toml: prompts.consent text: en text has unknown placeholders ['councl']"
    )
    assert "council" in message.split("known:")[1]


def test_unmatched_brace(flow_dir: Path) -> None:
    edit(flow_dir, "messages.toml", 'progress.en = "{n}/{total}"', 'progress.en = "{n}/{total"')
    message = refusal(flow_dir)
    assert message.startswith("messages.toml: messages.progress: en text has an unmatched {")


def test_a_required_placeholder_left_out(flow_dir: Path) -> None:
    edit(flow_dir, "messages.toml", "a number from 1 to {max}.", "a number.")
    assert refusal(flow_dir) == "messages.toml: messages.reask: must use placeholders ['max']"


def test_an_option_word_that_chooses_two_options(flow_dir: Path) -> None:
    edit(flow_dir, "flow.toml", '["only with help",', '["only with help", "Confident",')
    message = refusal(flow_dir)
    assert message == (
        "flow.toml: scales.skill option 4: en word 'confident' also chooses option 2"
    )


def test_an_option_word_that_is_another_options_letter(flow_dir: Path) -> None:
    edit(flow_dir, "messages.toml", '["agree", "i agree",', '["agree", "b", "i agree",')
    message = refusal(flow_dir)
    assert message.startswith("messages.toml: prompts.consent option 1: en word 'b'")
    assert "also chooses option 2" in message


def test_an_option_word_that_is_also_a_command(flow_dir: Path) -> None:
    edit(flow_dir, "flow.toml", '["stops me", "completely"', '["stops me", "Stop", "completely"')
    message = refusal(flow_dir)
    assert (
        message == "flow.toml: scales.blocker option 1: en word 'Stop' is also the command 'stop'"
    )


def test_a_prompt_word_that_is_also_a_command(flow_dir: Path) -> None:
    edit(flow_dir, "messages.toml", '["start again", "again", "clear"]', '["start over"]')
    message = refusal(flow_dir)
    assert message == (
        "messages.toml: prompts.restart option 1: en word 'start over' is also the command "
        "'restart'"
    )


@pytest.mark.parametrize("name", ["flow.toml", "items.toml", "messages.toml"])
def test_missing_file(flow_dir: Path, name: str) -> None:
    (flow_dir / name).unlink()
    message = refusal(flow_dir)
    assert message.startswith(f"{name}: missing from flow directory")
    assert str(flow_dir) in message


def test_invalid_toml(flow_dir: Path) -> None:
    path = flow_dir / "items.toml"
    path.write_text(path.read_text() + "\nthis line is not toml\n")
    message = refusal(flow_dir)
    assert message.startswith("items.toml: not valid TOML:")
    assert "line" in message


def test_a_misspelt_key(flow_dir: Path) -> None:
    edit(flow_dir, "items.toml", 'short.en = "Buying things online"', 'shrot.en = "Buying"')
    message = refusal(flow_dir)
    assert message.startswith("items.toml: item TR02: unknown keys ['shrot']")


def test_a_misspelt_table(flow_dir: Path) -> None:
    edit(flow_dir, "items.toml", '[[items]]\nid = "AD05"', '[[item]]\nid = "AD05"')
    assert refusal(flow_dir).startswith("items.toml: top level: unknown keys ['item']")


def test_an_option_numbered_out_of_order(flow_dir: Path) -> None:
    edit(
        flow_dir,
        "flow.toml",
        'number = 3\nscore = 2\nlabel.en = "I sometimes',
        'number = 4\nscore = 2\nlabel.en = "I sometimes',
    )
    assert refusal(flow_dir).startswith("flow.toml: scales.access option 3: number must be 3")


def test_a_scale_option_without_a_score(flow_dir: Path) -> None:
    edit(flow_dir, "flow.toml", 'score = 4\nlabel.en = "I could teach', 'label.en = "I could teach')
    assert refusal(flow_dir) == "flow.toml: scales.skill option 5: needs a whole-number score"


def test_a_council_name_that_is_not_gsm7(flow_dir: Path) -> None:
    message = refusal(flow_dir, {"council": "Cyngor Sir Ynys M\u00f4n"})
    assert message.startswith("messages.toml: prompts.consent")
    assert "not GSM-7" in message
    assert "\u00f4" in message


def test_a_council_privacy_link_too_long_for_two_segments(flow_dir: Path) -> None:
    council = {"council": "Example Council", "privacy_url": "https://example.org/" + "p" * 200}
    message = refusal(flow_dir, council)
    assert message.startswith("messages.toml: prompts.consent")
    assert "SMS segments" in message


def test_a_prompt_with_another_number_of_options_is_refused(flow_dir: Path) -> None:
    edit(
        flow_dir,
        "messages.toml",
        'sms.en = "Full, several answers a text"',
        'sms.en = "Full, several answers a text"\n'
        '[[prompts.mode.options]]\nnumber = 4\nsms.en = "Medium"',
    )
    assert refusal(flow_dir) == (
        "messages.toml: prompts.mode: must have exactly 3 options: 1 quick check, "
        "2 full assessment, 3 full assessment, several answers a text"
    )


@pytest.mark.parametrize(
    ("old", "new", "problem"),
    [
        (
            'options = [4, 5]\nwords.en = ["yes", "y", "yeah", "yep", "yup", "i do"',
            'options = [4, 9]\nwords.en = ["yes", "y", "yeah", "yep", "yup", "i do"',
            "flow.toml: scales.access pair 1: options must be two different numbers from 1 to 5",
        ),
        (
            'words.en = ["yes", "y", "yeah", "yep", "yup", "i do", "i have", "👍"]',
            'words.en = ["yes", "usually"]',
            "flow.toml: scales.access pair 1: en word 'usually' is also a word of option 4",
        ),
        (
            'words.en = ["yes", "y", "yeah", "yep", "yup", "i do", "i have", "👍"]',
            'words.en = ["yes", "later"]',
            "flow.toml: scales.access pair 1: en word 'later' is also the command 'later'",
        ),
        (
            'formula = "interest * (max - skill)"\nskill_at_most = 2',
            'formula = "interest * (max - skill)"\nskill_at_most = 3',
            "flow.toml: modes.full.interest_if_skill_at_most: must be at least "
            "priority.skill_at_most (3), or a skill that can be a priority would never have "
            "its interest asked",
        ),
        (
            'no_interest_blocker = "BL04"',
            'no_interest_blocker = "BA01"',
            "flow.toml: priority.no_interest_blocker: must be a blocker (one of "
            "['BL01', 'BL02', 'BL03', 'BL04', 'BL05'])",
        ),
        (
            'low_skill_help = "skills"',
            'low_skill_help = "classes"',
            "flow.toml: priority.low_skill_help: must be one of ['device', 'data', 'skills']",
        ),
        (
            'if_missing = ["BA01", "BA02"]',
            'if_missing = ["BL01"]',
            "flow.toml: skills_choice.if_missing: must be a list of basics (of "
            "['BA01', 'BA02', 'BA03'])",
        ),
        (
            "[segments.priorities]\ndefault = 3",
            "[segments.priorities]\ndefault = 0",
            "flow.toml: segments.priorities.en: must be a whole number of segments",
        ),
    ],
)
def test_the_priority_rule_and_words_are_checked(
    flow_dir: Path, old: str, new: str, problem: str
) -> None:
    edit(flow_dir, "flow.toml", old, new)
    assert refusal(flow_dir) == problem


@pytest.mark.parametrize(
    ("old", "new", "problem"),
    [
        (
            'heading = "TR"\neds = "Transacting"\ntitle.en = "Pay bills online"',
            'heading = "TR"\ntitle.en = "Pay bills online"',
            "items.toml: item TR03: needs eds: its Essential Digital Skills Framework area",
        ),
        (
            'help = ["device"]',
            'help = ["tablet"]',
            "items.toml: item BA01: help must be a list of needs from ['device', 'data', 'skills']",
        ),
    ],
)
def test_item_areas_and_help_are_checked(flow_dir: Path, old: str, new: str, problem: str) -> None:
    edit(flow_dir, "items.toml", old, new)
    assert refusal(flow_dir) == problem


def test_every_skill_names_its_essential_digital_skills_area() -> None:
    flow = load_flow()
    areas = {item.eds for item in flow.items if item.section == "skills"}
    assert areas == {
        "Foundation",
        "Communicating",
        "Handling information and content",
        "Transacting",
        "Problem solving",
        "Being safe and legal online",
        "Work",
    }
    assert "own reconstruction" in (SHIPPED / "items.toml").read_text(encoding="utf-8")
