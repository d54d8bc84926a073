"""Outcome flags for cost-benefit models: able at baseline and at the follow-up, per item with
an outcome, never guessed from a quick check's heading answer. Option n scores n - 1."""

from __future__ import annotations

import pytest

from flows.loader import load_flow
from flows.model import Flow
from scoring import outcome_flag_names, outcome_flags

NO_ABILITY, WITH_HELP, WOULD_TRY, CONFIDENT, COULD_TEACH = 1, 2, 3, 4, 5


@pytest.fixture(scope="module")
def flow() -> Flow:
    return load_flow(languages=["en"])


def test_the_shipped_flags_in_flow_order(flow: Flow) -> None:
    assert outcome_flag_names(flow) == (
        "use_email",
        "video_call",
        "buy_online",
        "pay_bills_online",
        "bank_online",
        "use_government_services_online",
        "use_nhs_services_online",
        "apply_for_jobs_online",
    )
    assert [f.flag for f in outcome_flags(flow, {})] == list(outcome_flag_names(flow))


def test_newly_able_to_bank_online_and_already_able_to_apply_for_jobs(flow: Flow) -> None:
    baseline = {
        "TR04.skill": WITH_HELP,  # bank online: 1, not able
        "AD01.skill": COULD_TEACH,  # apply for jobs online: 4, able
        "TR03.skill": WOULD_TRY,  # pay bills online: 2, "may need help", not able
    }
    followup = {
        "TR04.skill": CONFIDENT,  # 3: able
        "AD01.skill": CONFIDENT,
        "TR03.skill": WOULD_TRY,
    }

    flags = {f.flag: f for f in outcome_flags(flow, baseline, followup)}

    bank = flags["bank_online"]
    assert (bank.item, bank.able_at_baseline, bank.able_at_followup) == ("TR04", False, True)
    assert bank.newly_able
    jobs = flags["apply_for_jobs_online"]
    assert (jobs.item, jobs.able_at_baseline, jobs.able_at_followup) == ("AD01", True, True)
    assert not jobs.newly_able
    bills = flags["pay_bills_online"]
    assert (bills.able_at_baseline, bills.able_at_followup, bills.newly_able) == (
        False,
        False,
        False,
    )
    email = flags["use_email"]
    assert (email.able_at_baseline, email.able_at_followup, email.newly_able) == (
        None,
        None,
        False,
    )


def test_a_quick_check_leaves_every_flag_unknown(flow: Flow) -> None:
    flags = outcome_flags(flow, {"TR.skill": NO_ABILITY}, {"TR.skill": COULD_TEACH})

    bank = next(f for f in flags if f.flag == "bank_online")
    assert (bank.able_at_baseline, bank.able_at_followup, bank.newly_able) == (None, None, False)
    assert all(f.able_at_baseline is None and f.able_at_followup is None for f in flags)


def test_before_any_check_in_the_followup_is_unknown(flow: Flow) -> None:
    (bank,) = (f for f in outcome_flags(flow, {"TR04.skill": CONFIDENT}) if f.item == "TR04")

    assert (bank.able_at_baseline, bank.able_at_followup, bank.newly_able) == (True, None, False)


def test_an_option_the_scale_lacks_is_refused_by_key(flow: Flow) -> None:
    with pytest.raises(ValueError, match=r"'TR04\.skill' is 9"):
        outcome_flags(flow, {"TR04.skill": 9})
