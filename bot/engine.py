"""One turn of a conversation: `step(flow, state, inbound, now) -> Turn`, and nothing else.

The rules it keeps:
- at most one message out per message in, acknowledgement and next question in one body;
- commands (HELP, BACK, SKIP, REPEAT, LATER, RESTART, STOP, START) work at any point, in any
  case and in any of the flow's languages, as the whole message; STOP silences everything
  until START; a language's name (CYMRAEG, ENGLISH) switches to it and keeps every answer;
- a flow with several languages asks for one first, unless the channel already knows it;
- a reply that fits two options ("yes" to "Do you have…?") asks which of the two, and is no
  miss; a reply that matches no choice re-asks without advancing; the second miss offers
  SKIP; the third skips the question;
- a respondent missing a device or a connection chooses, before the skills, to skip them
  (recorded as not asked) or to answer them as if they had one;
- a respondent who chose several answers a text (the full check's third choice) is asked
  each run of questions on one scale in one text, and what their reply was read as (see
  bot/batch.py) is said before the next question; the answers are the same events, with the
  same question ids and scores, as one at a time, and BACK shows the run to change one;
- after `SILENT_AFTER` messages in a row that answer nothing (an auto-reply, say), the engine
  stops replying until something makes sense, so nothing loops;
- progress is derived from the flow and the answers, never stored twice: the next step is the
  first step of the mode not yet in `history` whose conditions hold;
- time is the `now` argument; the engine reads no clock and does no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from bot.batch import read_answers
from bot.matching import command_of, language_named, match_option
from bot.messages import Event, Inbound, Outbound, Turn
from bot.render import (
    BUTTON_SEPARATOR,
    batch_message,
    fill,
    join_lead,
    pick,
    prompt_message,
    question_message,
    topic_counts,
    understood,
)
from bot.state import State
from flows.model import (
    SKILLS_BASES,
    Flow,
    Mode,
    Option,
    OptionPair,
    Question,
    SkillsChoice,
    Step,
    TopicBreak,
)
from scoring import change_line, priorities_message, profile

MISSES_BEFORE_OFFER = 2
MISSES_BEFORE_AUTO_SKIP = 3
SILENT_AFTER = 6
"""Messages in a row that answer nothing which still get a reply; later ones get none."""
SILENT_AFTER_DONE = 1
"""After the end, one such message is told how to see the priorities again; then silence."""
MODE_BY_OPTION = ("quick", "full", "full")
"""The mode prompt's options, in order: the third is the full check with several answers a
text (a run of questions on one scale asked together)."""
BATCH_OPTION = 3


def step(flow: Flow, state: State, inbound: Inbound, now: datetime) -> Turn:
    """Advance `state` by one inbound message received at `now`."""
    return _Step(flow, state, inbound, now).run()


@dataclass(frozen=True)
class CheckinPlan:
    """A re-assessment months after a baseline: the same mode, only the questions the baseline
    answered (so gains compare like with like), and those answers, to say what changed."""

    mode: str
    keys: tuple[str, ...]
    baseline: Mapping[str, int]
    since: Mapping[str, str]
    """When the baseline was, per language ("March 2027"), as the shell formats dates."""
    baseline_id: int | None = None
    """The stored baseline assessment, recorded with the check-in's assessment."""


def invite(flow: Flow, state: State, now: datetime) -> Turn:
    """The first message to an enrolled respondent who has not written yet: what their own
    first text would get (the language choice or the privacy notice). Nothing for anyone
    already talking, or opted out."""
    if state.stage != "new" or state.opted_out:
        return Turn(state)
    first = _Step(flow, state, Inbound(""), now).first_prompt("")
    if first.state.stage != "language":
        return first  # the privacy notice names the council itself
    (choice,) = first.outbound
    lead = flow.text("invitation", state.language)
    return Turn(first.state, (replace(choice, text=join_lead(lead, choice.text)),))


def invite_to_checkin(flow: Flow, state: State, plan: CheckinPlan, now: datetime) -> Turn:
    """Ask a respondent to start a check-in; their earlier assessment stays as it was stored.
    Nothing for someone opted out, or who never agreed to take part."""
    if state.opted_out or state.stage in ("new", "language", "consent", "declined"):
        return Turn(state)
    invited = without_assessment(state).evolve(
        stage="checkin",
        kind="checkin",
        mode=plan.mode,
        only=plan.keys,
        baseline=dict(plan.baseline),
        since=dict(plan.since),
        baseline_id=plan.baseline_id,
        resting=False,
        unanswered=0,
    )
    unfinished = state.stage in ("asking", "paused", "resume", "restart") and state.mode
    events = (Event("assessment_abandoned", mode=state.mode),) if unfinished else ()
    invitation = _Step(flow, invited, Inbound(""), now)
    return invitation.reply(invitation.checkin_prompt(""), invited, *events)


def remind(flow: Flow, state: State, now: datetime) -> Turn:
    """Nudge a respondent part-way through (asking, or paused after LATER) who has gone quiet:
    the reminder and the question they are at, in one message, so their reply answers it. After
    `flow.resume_after_days` without a word their reply would meet the choice to carry on or
    start again, so that choice is what the reminder shows. Nothing for anyone else, or for
    anyone opted out; the state changes only when the choice is shown."""
    if state.opted_out or state.stage not in ("asking", "paused") or state.question is None:
        return Turn(state)
    reminding = _Step(flow, state, Inbound(""), now)
    fitted = reminding.fitted_to_flow(state)
    if fitted.stage not in ("asking", "paused"):
        return Turn(state)  # nothing left to ask: their next message finishes the check
    reminding.state = fitted
    lead = reminding.text("reminder")
    if reminding.is_stale(fitted.last_seen):
        choice = fitted.evolve(stage="resume", misses=0)
        return reminding.reply(reminding.resume_prompt(lead), choice)
    return reminding.reply(reminding.step_message(reminding.current_step(), lead), fitted)


def questions_asked(flow: Flow, state: State) -> tuple[Question, ...]:
    """The questions the respondent is being asked now: one, or a run asked in one text
    (several answers a text); none at a prompt or outside the questions."""
    if state.stage not in ("asking", "paused") or state.question is None or state.mode is None:
        return ()
    asking = _Step(flow, state, Inbound(""), datetime.min)
    current = asking.current_step()
    if not isinstance(current, Question):
        return ()
    return asking.run_of(current) if state.batch else (current,)


def without_assessment(state: State) -> State:
    """Back at the choice of quick or full, with no answers: the language and consent stay."""
    return state.evolve(
        stage="mode",
        mode=None,
        question=None,
        answers={},
        skipped=(),
        topics_skipped=(),
        history=(),
        skills_basis=None,
        misses=0,
        kind="baseline",
        only=(),
        baseline={},
        since={},
        baseline_id=None,
        batch=False,
    )


@dataclass
class _Step:
    flow: Flow
    state: State
    inbound: Inbound
    now: datetime
    noise: bool = False
    """Set when the message answered nothing (see `State.unanswered`)."""

    # --- entry ---------------------------------------------------------------------------

    def run(self) -> Turn:
        saved = self.state
        fitted = self.fitted_to_flow(saved)
        self.state = fitted
        if saved.stage not in ("done", "new") and fitted.stage == "done":
            # the flow changed under them and nothing is left to ask: finish properly
            completed = Event("assessment_completed", mode=fitted.mode)
            return self.reply(self.priorities(), fitted, completed)
        turn = self.dispatch()
        if not self.noise:
            return Turn(turn.state.evolve(unanswered=0), turn.outbound, turn.events)
        count = fitted.unanswered + 1
        limit = SILENT_AFTER_DONE if fitted.stage == "done" else SILENT_AFTER
        if count > limit:  # say nothing and change nothing
            return Turn(fitted.evolve(unanswered=count, last_seen=self.now.isoformat()))
        return Turn(turn.state.evolve(unanswered=count), turn.outbound, turn.events)

    def dispatch(self) -> Turn:
        previous_seen = self.state.last_seen
        command = (
            None
            if self.inbound.button or self.inbound.edited
            else command_of(self.flow, self.inbound.text, self.languages)
        )
        if self.state.opted_out:
            if command not in ("start", "opt_in"):
                return Turn(self.state)
            self.state = self.state.evolve(opted_out=False, last_seen=self.now.isoformat())
            return self.resume_after_opt_in()
        if command == "opt_in":
            command = None
        self.state = self.state.evolve(last_seen=self.now.isoformat())
        if command == "stop":
            return self.reply_text(
                self.text("opted_out"), self.state.evolve(opted_out=True), Event("opted_out")
            )
        switch = (
            None
            if self.inbound.button or self.inbound.edited
            else language_named(self.flow, self.inbound.text)
        )
        if switch is not None and len(self.flow.languages) > 1:
            return self.switch_language(switch)
        if self.state.stage == "new":
            lead = self.text("lost_place") if self.state.lost_place else ""
            self.state = self.state.evolve(lost_place=False)
            return self.first_prompt(lead)
        if self.is_stale(previous_seen):
            return self.reply(self.resume_prompt(""), self.state.evolve(stage="resume", misses=0))
        if self.inbound.button is not None:
            return self.on_button(self.inbound.button)
        if command is not None:
            return self.on_command(command)
        if self.inbound.edited:  # the explanation goes with questions; a prompt is just shown
            self.noise = True
            asking = self.state.stage in ("asking", "paused")
            return self.reply(self.current(self.text("edited") if asking else ""))
        if not self.inbound.text.strip() and self.inbound.has_media:
            self.noise = True
            return self.reply(self.current(self.text("media_only")))
        return self.on_answer(self.inbound.text)

    def fitted_to_flow(self, state: State) -> State:
        """A state saved under an older flow version, with what this flow no longer has dropped.

        Question keys are stable, so normally nothing changes; if a council removed an item or
        a mode, its answers are dropped and the respondent moves on to the next step."""
        known = self.flow.modes.get(state.mode or "")
        if state.mode is not None and known is None:
            return without_assessment(state)
        if known is None or all(
            key in known.positions
            for key in (*state.history, *([state.question] if state.question else []))
        ):
            return state
        state = state.evolve(
            answers={k: v for k, v in state.answers.items() if k in known.positions},
            skipped=tuple(k for k in state.skipped if k in known.positions),
            history=tuple(k for k in state.history if k in known.positions),
        )
        if state.stage in ("asking", "paused", "resume", "restart"):
            following = self.next_step(state)
            if following is None:
                return state.evolve(stage="done", question=None)
            return state.evolve(question=following.key)
        return state

    @property
    def languages(self) -> tuple[str, ...]:
        rest = tuple(lang for lang in self.flow.languages if lang != self.state.language)
        return (self.state.language, *rest)

    def text(self, key: str, **values: object) -> str:
        return fill(self.flow.text(key, self.state.language), **values)

    def is_stale(self, previous_seen: str | None) -> bool:
        if self.state.stage not in ("asking", "paused") or previous_seen is None:
            return False
        previous = datetime.fromisoformat(previous_seen)
        if (previous.tzinfo is None) != (self.now.tzinfo is None):
            # saved by a version that kept naive times: the same clock, read as now's zone
            previous = previous.replace(tzinfo=self.now.tzinfo)
        return self.now - previous > timedelta(days=self.flow.resume_after_days)

    # --- replies -------------------------------------------------------------------------

    def reply(self, outbound: Outbound, state: State | None = None, *events: Event) -> Turn:
        return Turn(state or self.state, (outbound,), tuple(events))

    def reply_text(self, text: str, state: State | None = None, *events: Event) -> Turn:
        return self.reply(Outbound(text), state, *events)

    @property
    def mode(self) -> Mode:
        if self.state.mode is None:
            raise ValueError(f"stage {self.state.stage} needs a mode but the state has none")
        return self.flow.modes[self.state.mode]

    def current_step(self, state: State | None = None) -> Step:
        state = state or self.state
        if state.question is None or state.mode is None:
            raise ValueError(f"stage {state.stage} needs a current question")
        mode = self.flow.modes[state.mode]
        return mode.steps[mode.positions[state.question]]

    def step_message(self, step: Step, lead: str) -> Outbound:
        language = self.state.language
        if isinstance(step, Question) and self.state.batch:
            run = self.run_of(step)
            answers = self.state.answers
            intro = "" if step.key in answers else self.topic_intro(step)
            return batch_message(self.flow, run, self.mode.total, language, answers, lead, intro)
        if isinstance(step, Question):
            return question_message(self.flow, step, self.mode.total, language, lead)
        if isinstance(step, SkillsChoice):
            return prompt_message(
                self.flow, self.flow.prompts["skills"], language, lead, key=step.key
            )
        heading = self.flow.heading(step.heading)
        topic = pick(heading.intro, language, self.flow.languages[0])
        counts = topic_counts(self.flow, self.mode, step.heading)
        return prompt_message(
            self.flow,
            self.flow.prompts["topic"],
            language,
            lead,
            key=step.key,
            topic=topic,
            **counts,
        )

    def language_prompt(self) -> Outbound:
        return prompt_message(self.flow, self.flow.prompts["language"], self.state.language)

    def consent_prompt(self, lead: str) -> Outbound:
        return prompt_message(self.flow, self.flow.prompts["consent"], self.state.language, lead)

    def mode_prompt(self, lead: str) -> Outbound:
        return prompt_message(self.flow, self.flow.prompts["mode"], self.state.language, lead)

    def resume_prompt(self, lead: str) -> Outbound:
        return prompt_message(
            self.flow,
            self.flow.prompts["resume"],
            self.state.language,
            lead,
            n=self.progress_number(),
            total=self.mode.total,
        )

    def restart_prompt(self, lead: str) -> Outbound:
        return prompt_message(self.flow, self.flow.prompts["restart"], self.state.language, lead)

    def checkin_prompt(self, lead: str) -> Outbound:
        return prompt_message(
            self.flow,
            self.flow.prompts["checkin"],
            self.state.language,
            lead,
            questions=sum(
                isinstance(step, Question) for step in self.mode.steps if self.in_checkin(step)
            ),
        )

    def priorities(self) -> Outbound:
        summary = profile(self.flow, self.state.answers)
        language = self.state.language
        change = ""
        if self.state.kind == "checkin":
            since = self.state.since.get(language) or self.state.since.get(self.flow.languages[0])
            baseline, answers = self.state.baseline, self.state.answers
            change = change_line(self.flow, baseline, answers, since or "", language)
        return Outbound(priorities_message(self.flow, summary, language, change=change))

    def current(self, lead: str) -> Outbound:
        """What the respondent is being asked now, again, with `lead` before it."""
        stage = self.state.stage
        if stage == "language":
            return self.language_prompt()
        if stage in ("new", "declined", "consent"):
            return self.consent_prompt(lead)
        if stage == "mode":
            return self.mode_prompt(lead)
        if stage in ("asking", "paused"):
            return self.step_message(self.current_step(), lead)
        if stage == "resume":
            return self.resume_prompt(lead)
        if stage == "restart":
            return self.restart_prompt(lead)
        if stage == "checkin":
            return self.checkin_prompt(lead)
        return Outbound(join_lead(lead, self.text("done_again")))

    def progress_number(self) -> int:
        """The number of the current question, or of the first question after a topic break."""
        steps = self.mode.steps
        for later in steps[self.mode.positions[self.state.question or ""] :]:
            if isinstance(later, Question):
                return later.number
        return self.mode.total

    # --- stages --------------------------------------------------------------------------

    def first_prompt(self, lead: str) -> Turn:
        """The language choice if the flow has several and none is known yet, else consent."""
        if len(self.flow.languages) > 1 and not self.state.language_chosen:
            state = self.state.evolve(stage="language", misses=0)
            self.state = state
            return self.reply(self.language_prompt(), state)
        return self.start_consent(lead)

    def start_consent(self, lead: str) -> Turn:
        self.state = self.state.evolve(stage="consent", misses=0)
        return self.reply(self.consent_prompt(lead))

    def switch_language(self, language: str) -> Turn:
        """Speak `language` from now on; every answer stays, the current prompt is asked again."""
        changed = Event("language_changed")
        stage = self.state.stage
        self.state = self.state.evolve(language=language, language_chosen=True, misses=0)
        if stage in ("new", "language", "declined"):
            turn = self.start_consent("")
            return Turn(turn.state, turn.outbound, (changed,))
        if stage == "paused":
            self.state = self.state.evolve(stage="asking")
        return self.reply(self.current(self.text("language_changed")), self.state, changed)

    def resume_after_opt_in(self) -> Turn:
        opted_in = Event("opted_in")
        if self.state.stage in ("new", "declined"):
            turn = self.first_prompt(self.text("welcome_back"))
            return Turn(turn.state, turn.outbound, (opted_in,))
        if self.state.stage == "done":
            return self.reply(self.current(self.text("welcome_back")), None, opted_in)
        state = self.state.evolve(
            stage="asking" if self.state.stage == "paused" else self.state.stage
        )
        self.state = state
        lead = "" if state.stage == "resume" else self.text("welcome_back")  # it says so itself
        return self.reply(self.current(lead), state, opted_in)

    def on_command(self, command: str) -> Turn:
        stage = self.state.stage
        if command == "help":
            return self.reply_text(self.text("help"))
        if command == "repeat":
            if stage == "done":
                return self.reply(self.priorities())
            return self.reply(self.current(""))
        if command == "start":
            if stage == "declined":
                return self.start_consent("")
            if stage == "checkin":
                return self.start_checkin()
            if stage == "resume":
                return self.carry_on("")
            if stage == "paused":
                self.state = self.state.evolve(stage="asking")
            return self.reply(self.current(self.text("welcome_back")))
        if command == "later":
            if stage in ("asking", "paused"):
                return self.reply_text(self.text("later"), self.state.evolve(stage="paused"))
            if stage == "done":
                return self.reply_text(self.text("done_again"))
            return self.reply_text(self.text("later"), self.state.evolve(resting=True))
        if command == "restart":
            if stage in ("asking", "paused", "resume", "done"):
                state = self.state.evolve(stage="restart", misses=0)
                self.state = state
                return self.reply(self.restart_prompt(""), state)
            if stage == "declined":
                return self.start_consent("")
            return self.reply(self.current(""))
        if stage == "paused":
            self.state = self.state.evolve(stage="asking")
        if command == "back":
            return self.go_back()
        if command == "skip":
            return self.skip()
        raise ValueError(f"unknown command {command}")

    def on_button(self, payload: str) -> Turn:
        key, _, number = payload.rpartition(BUTTON_SEPARATOR)
        if key != self.prompt_key() or not (number.isascii() and number.isdigit()):
            self.noise = True
            return self.reply(self.current(self.text("stale_button")))
        if self.state.stage == "paused":
            self.state = self.state.evolve(stage="asking")
        return self.on_answer(number, raw=payload)

    def prompt_key(self) -> str | None:
        stage = self.state.stage
        if stage in ("language", "consent", "mode", "resume", "restart", "checkin"):
            return stage
        if stage == "declined":
            return "consent"  # the consent prompt is shown again to anyone who writes
        if stage in ("asking", "paused"):
            return self.state.question
        return None

    def on_answer(self, text: str, raw: str | None = None) -> Turn:
        stage = self.state.stage
        if stage == "done":
            self.noise = True
            return self.reply_text(self.text("done_again"))
        if stage in ("asking", "paused") and self.state.batch:
            current = self.current_step()
            if isinstance(current, Question):
                return self.on_run(current, text, raw if raw is not None else text)
        if stage in ("paused", "declined"):
            # back after LATER, or after saying no: an answer to what they last saw counts,
            # anything else shows it again
            self.state = self.state.evolve(stage="asking" if stage == "paused" else "consent")
            options = self.options_now()
            early = match_option(self.flow, options, text, self.languages, self.pairs_now())
            if early.option is None and early.either is None:
                self.noise = True
                lead = self.text("welcome_back") if stage == "paused" else ""
                return self.reply(self.current(lead), self.state)
            stage = self.state.stage
        options = self.options_now()
        match = match_option(self.flow, options, text, self.languages, self.pairs_now())
        if match.option is None and match.either is None and self.state.resting:
            self.noise = True
            self.state = self.state.evolve(resting=False)
            return self.reply(self.current(self.text("welcome_back")), self.state)
        self.state = self.state.evolve(resting=False)
        if match.either is not None:
            self.noise = True  # not a miss, but an auto-reply saying "yes" must not loop
            first, second = match.either
            return self.reply(self.current(self.text("which", first=first, second=second)))
        if match.option is None:
            return self.missed(len(options))
        self.state = self.state.evolve(misses=0)
        if stage == "language":
            return self.switch_language(self.flow.languages[match.option - 1])
        if stage == "consent":
            return self.consented(match.option)
        if stage == "mode":
            return self.begin(match.option)
        if stage == "resume":
            return self.carry_on("") if match.option == 1 else self.start_again()
        if stage == "restart":
            return self.start_again() if match.option == 1 else self.carry_on("")
        if stage == "checkin":
            if match.option == 1:
                return self.start_checkin()
            return self.reply_text(self.text("checkin_later"), self.state.evolve(resting=True))
        current = self.current_step()
        if isinstance(current, TopicBreak):
            return self.pass_topic(current, skip_topic=match.option == 2)
        if isinstance(current, SkillsChoice):
            return self.choose_skills_basis(current, SKILLS_BASES[match.option - 1])
        return self.answer(current, match.option, raw if raw is not None else text)

    def options_now(self) -> tuple[Option, ...]:
        stage = self.state.stage
        if stage in ("language", "consent", "mode", "resume", "restart", "checkin"):
            return self.flow.prompts[stage].options
        current = self.current_step()
        if isinstance(current, TopicBreak):
            return self.flow.prompts["topic"].options
        if isinstance(current, SkillsChoice):
            return self.flow.prompts["skills"].options
        return self.flow.scale_of(current).options

    def pairs_now(self) -> tuple[OptionPair, ...]:
        """The current question's words that fit two options (none at prompts)."""
        if self.state.stage not in ("asking", "paused"):
            return ()
        current = self.current_step()
        return self.flow.scale_of(current).pairs if isinstance(current, Question) else ()

    def missed(self, option_count: int) -> Turn:
        self.noise = True
        misses = self.state.misses + 1
        is_question = self.state.stage == "asking" and isinstance(self.current_step(), Question)
        if is_question and misses >= MISSES_BEFORE_AUTO_SKIP and not self.state.batch:
            return self.skip(lead_key="auto_skip")
        key = "offer_skip" if is_question and misses >= MISSES_BEFORE_OFFER else "reask"
        self.state = self.state.evolve(misses=misses)
        return self.reply(self.current(self.text(key, max=option_count)))

    def consented(self, option: int) -> Turn:
        if option == 1:
            state = self.state.evolve(stage="mode")
            self.state = state
            return self.reply(self.mode_prompt(""), state, Event("consented"))
        return self.reply_text(
            self.text("declined"), self.state.evolve(stage="declined"), Event("declined")
        )

    def begin(self, option: int) -> Turn:
        mode_id = MODE_BY_OPTION[option - 1]
        batch = option == BATCH_OPTION
        self.state = without_assessment(self.state).evolve(mode=mode_id, batch=batch)
        return self.advance("", Event("assessment_started", mode=mode_id))

    def start_checkin(self) -> Turn:
        self.state = self.state.evolve(resting=False, misses=0)
        return self.advance("", Event("assessment_started", mode=self.state.mode))

    def carry_on(self, lead: str) -> Turn:
        if self.next_step(self.state) is None:
            return self.reply(self.priorities(), self.state.evolve(stage="done"))
        self.state = self.state.evolve(stage="asking")
        return self.reply(self.current(lead))

    def start_again(self) -> Turn:
        finished = self.next_step(self.state) is None
        events = () if finished else (Event("assessment_abandoned", mode=self.state.mode),)
        state = without_assessment(self.state)
        self.state = state
        return self.reply(self.mode_prompt(self.text("restarting")), state, *events)

    # --- moving through the questions ----------------------------------------------------

    def answer(self, question: Question, option: int, raw: str) -> Turn:
        score = self.flow.scale_of(question).option(option).score
        state = self.state.evolve(
            answers={**self.state.answers, question.key: option},
            history=(*self.state.history, question.key),
        )
        self.state = state
        event = Event("answered", question=question.key, option=option, score=score, raw=raw[:1600])
        return self.advance(self.text("ack"), event)

    def pass_topic(self, topic: TopicBreak, skip_topic: bool) -> Turn:
        skipped = (
            (*self.state.topics_skipped, topic.heading)
            if skip_topic
            else (self.state.topics_skipped)
        )
        self.state = self.state.evolve(
            topics_skipped=skipped, history=(*self.state.history, topic.key)
        )
        return self.advance(self.text("skipped") if skip_topic else "")

    def choose_skills_basis(self, choice: SkillsChoice, basis: str, lead: str = "") -> Turn:
        self.state = self.state.evolve(
            skills_basis=basis, history=(*self.state.history, choice.key)
        )
        return self.advance(lead, Event("skills_basis_chosen", basis=basis))

    def skip(self, lead_key: str = "skipped") -> Turn:
        if self.state.stage != "asking":
            return self.reply(self.current(self.text("cannot_skip")))
        current = self.current_step()
        if self.state.batch and isinstance(current, Question):
            return self.skip_run(current)
        if isinstance(current, TopicBreak):
            return self.pass_topic(current, skip_topic=True)
        if isinstance(current, SkillsChoice):
            return self.choose_skills_basis(current, SKILLS_BASES[0], self.text("skipped"))
        self.state = self.state.evolve(
            skipped=(*self.state.skipped, current.key),
            history=(*self.state.history, current.key),
        )
        return self.advance(self.text(lead_key), Event("skipped", question=current.key))

    def go_back(self) -> Turn:
        if self.state.stage != "asking" or not self.state.history:
            return self.reply(self.current(self.text("back_nothing")))
        if self.state.batch and self.state.history[-1] in self.flow.questions:
            return self.back_to_run()
        last = self.state.history[-1]
        answers = {k: v for k, v in self.state.answers.items() if k != last}
        events: Iterable[Event] = ()
        if last in self.state.answers or last in self.state.skipped:
            events = (Event("cleared", question=last),)
        basis = self.state.skills_basis
        if last == SkillsChoice.key:
            basis = None
            events = (Event("skills_basis_chosen", basis=None),)
        heading = last.split(".", 1)[0]
        state = self.state.evolve(
            skills_basis=basis,
            question=last,
            answers=answers,
            skipped=tuple(k for k in self.state.skipped if k != last),
            topics_skipped=tuple(
                h
                for h in self.state.topics_skipped
                if not (last.endswith(".topic") and h == heading)
            ),
            history=self.state.history[:-1],
            misses=0,
        )
        self.state = state
        return self.reply(self.current(self.text("back")), state, *events)

    def next_step(self, state: State) -> Step | None:
        mode = self.flow.modes[state.mode or ""]
        done = set(state.history)
        for candidate in mode.batch_steps if state.batch else mode.steps:
            if candidate.key in done or not self.in_checkin(candidate, state):
                continue
            if isinstance(candidate, SkillsChoice) and (
                not self.lacks_device(state) or self.skills_begun(mode, state)
            ):
                continue
            if state.skills_basis == SKILLS_BASES[0] and (
                isinstance(candidate, TopicBreak)
                or (isinstance(candidate, Question) and candidate.section == "skills")
            ):
                continue  # no device or connection, and they chose to skip the skills
            if isinstance(candidate, Question) and (
                candidate.heading in state.topics_skipped
                or not self.should_ask(mode, state, candidate)
            ):
                continue
            return candidate
        return None

    def in_checkin(self, step: Step, state: State | None = None) -> bool:
        """Whether a check-in asks this step (anything else asks every step): the questions
        its baseline answered, the topic breaks before them, and no skills choice (made then)."""
        only = (state or self.state).only
        if not only:
            return True
        if isinstance(step, Question):
            return step.key in only
        if isinstance(step, TopicBreak):
            asked = (self.flow.questions.get(key) for key in only)
            return any(question and question.heading == step.heading for question in asked)
        return False

    def skills_begun(self, mode: Mode, state: State) -> bool:
        """Whether skills were asked already (a conversation begun before the skills choice
        existed): the choice is not sprung on them half-way."""
        choice = mode.positions[SkillsChoice.key]
        return any(mode.positions.get(key, -1) > choice for key in state.history)

    def lacks_device(self, state: State) -> bool:
        """Whether a basic that offers the skills choice is missing, by the answers so far."""
        rule = self.flow.priority
        for item in self.flow.skills_choice_if_missing:
            chosen = state.answers.get(f"{item}.access")
            if chosen is not None:
                score = self.flow.scales["access"].option(chosen).score
                if score <= rule.missing_basic_at_most:
                    return True
        return False

    def should_ask(self, mode: Mode, state: State, question: Question) -> bool:
        if question.aspect != "interest" or mode.interest_if_skill_at_most is None:
            return True
        skill_key = f"{question.item}.skill"
        chosen = state.answers.get(skill_key)
        if chosen is None:
            return False
        score = self.flow.scales["skill"].option(chosen).score
        return score <= mode.interest_if_skill_at_most

    def advance(self, lead: str, *events: Event) -> Turn:
        """Ask the next step, or finish. A section's opening line replaces a plain "Got it."
        but never a lead that says something happened (skipped, moved on)."""
        previous = self.current_step() if self.state.question else None
        following = self.next_step(self.state)
        if following is None:
            state = self.state.evolve(stage="done", question=None, misses=0)
            self.state = state
            completed = Event("assessment_completed", mode=state.mode)
            return self.reply(self.priorities(), state, *events, completed)
        if lead in ("", self.text("ack")):
            lead = self.section_lead(previous, following) or lead
        state = self.state.evolve(stage="asking", question=following.key, misses=0)
        self.state = state
        return self.reply(self.step_message(following, lead), state, *events)

    def section_lead(self, previous: Step | None, following: Step) -> str:
        if not isinstance(following, Question) or following.section == "basics":
            return ""
        if isinstance(previous, Question) and previous.section == following.section:
            return ""
        if isinstance(previous, TopicBreak):
            return ""
        return self.text(f"section_{following.section}")

    # --- several answers in one text -----------------------------------------------------

    def run_of(self, first: Question) -> tuple[Question, ...]:
        """The questions asked with `first` in one text: those after it (in the order runs are
        asked) on the same scale, in the same section and heading, that would be asked now."""
        state = self.state
        mode = self.mode
        steps = mode.batch_steps
        done = set(state.history)
        run: list[Question] = [first]
        for candidate in steps[steps.index(first) + 1 :]:
            if (
                not isinstance(candidate, Question)
                or candidate.section != first.section
                or candidate.heading != first.heading
                or candidate.aspect != first.aspect
            ):
                break
            if (
                candidate.key not in done
                and self.in_checkin(candidate, state)
                and self.should_ask(mode, state, candidate)
            ):
                run.append(candidate)
        return tuple(run)

    def topic_intro(self, first: Question) -> str:
        """A skills run that opens its topic says so ("Next topic: getting started")."""
        if first.aspect != "skill" or first.heading is None or first.item == first.heading:
            return ""
        if any(
            question.heading == first.heading
            for question in (self.flow.questions.get(key) for key in self.state.history)
            if question is not None
        ):
            return ""
        heading = self.flow.heading(first.heading)
        return pick(heading.intro, self.state.language, self.flow.languages[0])

    def on_run(self, current: Question, text: str, raw: str) -> Turn:
        """Answers to the run `current` opens: each kept where it is plain which item it
        answers; what was understood is said before the next question, so it can be fixed."""
        run = self.run_of(current)
        scale = self.flow.scale_of(current)
        reading = read_answers(
            self.flow, scale.options, text, len(run), self.languages, scale.pairs
        )
        paused = self.state.stage == "paused"
        self.state = self.state.evolve(stage="asking", resting=False)
        if not reading.answers:
            self.noise = True
            if paused:  # back after LATER with something that answers nothing: shown again
                return self.reply(self.current(self.text("welcome_back")))
            if reading.sent:
                lead = self.text("batch_too_many", sent=reading.sent, count=len(run))
                self.state = self.state.evolve(misses=self.state.misses + 1)
                return self.reply(self.current(lead))
            return self.missed(len(scale.options))
        answers = dict(self.state.answers)
        events = []
        for position, option in sorted(reading.answers.items()):
            question = run[position]
            answers[question.key] = option
            score = scale.option(option).score
            events.append(
                Event("answered", question=question.key, option=option, score=score, raw=raw[:1600])
            )
        finished = all(question.key in answers for question in run)
        taken = run if finished else tuple(run[position] for position in sorted(reading.answers))
        history = (*self.state.history, *(q.key for q in taken if q.key not in self.state.history))
        self.state = self.state.evolve(answers=answers, history=history, misses=0)
        events.extend(self.clear_interests_not_asked(run))
        lead = self.text("batch_got", answers=understood(run, answers))
        if reading.unread:
            lead = join_lead(lead, self.text("reask", max=len(scale.options)))
        return self.advance(lead, *events)

    def clear_interests_not_asked(self, run: tuple[Question, ...]) -> list[Event]:
        """After BACK to a run of skills, a skill changed to one whose interest is not asked
        (now confident) takes back the interest answered for it before, as going back one a
        text would have: what is stored is what the questions asked now would store."""
        dropped = []
        for question in run:
            interest = self.flow.questions.get(f"{question.item}.interest")
            if (
                question.aspect == "skill"
                and interest is not None
                and interest.key in self.state.answers
                and not self.should_ask(self.mode, self.state, interest)
            ):
                dropped.append(interest.key)
        if not dropped:
            return []
        # BACK to the skills went back through the interests: none of them is in the history.
        self.state = self.state.evolve(
            answers={k: v for k, v in self.state.answers.items() if k not in dropped}
        )
        return [Event("cleared", question=key) for key in dropped]

    def skip_run(self, current: Question) -> Turn:
        """SKIP at a run: a topic's skills not yet begun skip the topic (as at its topic break);
        otherwise the run's unanswered questions are skipped and any answers kept."""
        run = self.run_of(current)
        topic = f"{current.heading}.topic"
        if (
            current.aspect == "skill"
            and topic in self.mode.positions
            and self.topic_intro(current)
            and not any(question.key in self.state.answers for question in run)
        ):
            heading = self.flow.heading(current.heading or "")
            self.state = self.state.evolve(
                topics_skipped=(*self.state.topics_skipped, heading.id),
                history=(*self.state.history, topic),
            )
            return self.advance(self.text("skipped"))
        unanswered = tuple(q.key for q in run if q.key not in self.state.answers)
        self.state = self.state.evolve(
            skipped=(*self.state.skipped, *unanswered),
            history=(*self.state.history, *(q.key for q in run)),
        )
        events = (Event("skipped", question=key) for key in unanswered)
        return self.advance(self.text("skipped"), *events)

    def back_to_run(self) -> Turn:
        """BACK after a run: the whole run again, its answers kept and shown, so one can be
        changed by its letter without answering the others again."""
        history = self.state.history
        last = self.flow.questions[history[-1]]
        count = 0
        for key in reversed(history):
            question = self.flow.questions.get(key)
            if question is None or (question.section, question.heading, question.aspect) != (
                last.section,
                last.heading,
                last.aspect,
            ):
                break
            count += 1
        taken = history[-count:]
        cleared = tuple(
            Event("cleared", question=key) for key in taken if key in self.state.skipped
        )
        state = self.state.evolve(
            question=taken[0],
            history=history[:-count],
            skipped=tuple(key for key in self.state.skipped if key not in taken),
            misses=0,
        )
        self.state = state
        return self.reply(self.current(self.text("back")), state, *cleared)
