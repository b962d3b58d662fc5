"""engine.quality.trust: who is established, how newcomers are weighed, and what
a result that no established volunteer supports may do."""
from __future__ import annotations

from datetime import timedelta

from engine.quality.consensus import judge
from engine.quality.retirement import HOLD, MORE, RETIRE, Policy, decide
from engine.quality.trust import (
    DISPUTED,
    NEWCOMER_RELIABILITY,
    UNPROVEN,
    VOUCHED,
    Standing,
    limits_of,
    weigh,
)
from engine.store.models import utcnow
from task_types.classify import classify
from task_types.number import number

NOW = utcnow()  # judge reads the clock: the ages below are from now
CONFIG = {"question": "What is it?", "labels": ["penguin", "seal"]}
POLICY = Policy(3, 5, 0.8)
OLD = NOW - timedelta(hours=2)
NEW = NOW - timedelta(minutes=2)


def _row(label, reliability, created_at, gold=(0, 0.0), flags=()):
    confusion = [[reliability, 1 - reliability], [1 - reliability, reliability]]
    return ({"label": label}, reliability, confusion, created_at, *gold, list(flags))


def test_who_is_established():
    limits = limits_of({})
    assert Standing(OLD, 0, 0.0, []).established(limits, NOW)
    assert not Standing(NEW, 0, 0.0, []).established(limits, NOW)
    assert not Standing(OLD, 0, 0.0, ["too_fast"]).established(limits, NOW)  # flags: no age
    assert Standing(NEW, 3, 0.8, []).established(limits, NOW)  # gold: at once
    assert not Standing(NEW, 3, 0.5, []).established(limits, NOW)  # gold failed
    assert not Standing(NEW, 2, 1.0, []).established(limits, NOW)  # not enough gold yet
    naive = (NOW - timedelta(hours=1)).replace(tzinfo=None)  # as SQLite returns it
    assert Standing(naive, 0, 0.0, []).established(limits, NOW)
    assert Standing(NEW, 0, 0.0, ["x"]).established(limits_of({"trusted_after_minutes": 0}),
                                                     NOW)


def test_newcomers_are_capped_and_lose_their_learnt_matrix():
    weighed = weigh([_row("seal", 0.99, NEW), _row("penguin", 0.95, OLD),
                     ({"label": "seal"}, None, None, NEW, 0, 0.0, [])], {}, NOW)
    assert weighed.established == [False, True, False]
    assert weighed.rows[0][1:] == (NEWCOMER_RELIABILITY, None)
    assert weighed.rows[1][1] == 0.95 and weighed.rows[1][2] is not None
    assert weighed.rows[2][1] is None  # no estimate yet: left to the plain majority


def test_two_agreeing_newcomers_do_not_outweigh_an_established_volunteer():
    """Newcomers who agree with each other look reliable to EM (0.99 here); capped
    at an unknown volunteer's 0.7, two of them lose to one established volunteer
    at 0.95 (odds 19 against (7/3)^2), who is not sure enough alone to retire it."""
    rows = [_row("penguin", 0.95, OLD), _row("seal", 0.99, NEW), _row("seal", 0.99, NEW)]
    merged, decision = judge(classify, CONFIG, {}, POLICY, rows)
    assert merged.aggregate.value == "penguin"
    assert merged.aggregate.confidence < 0.8 and decision == MORE
    merged, _ = judge(classify, CONFIG, {"trusted_after_minutes": 0}, POLICY, rows)
    assert merged.aggregate.value == "seal"  # without trust the pair wins


def test_a_result_only_newcomers_support_is_held_not_retired():
    rows = [_row("seal", 0.9, NEW) for _ in range(5)]
    merged, decision = judge(classify, CONFIG, {}, POLICY, rows[:4])
    assert merged.aggregate.confidence >= 0.8 and decision == MORE
    _, decision = judge(classify, CONFIG, {}, POLICY, rows)
    assert decision == HOLD
    _, decision = judge(classify, CONFIG, {}, POLICY, [*rows[:2], _row("seal", 0.9, OLD)])
    assert decision == RETIRE
    # established volunteers answered, none of them this label: a person should look
    disputed = [*rows, _row("penguin", 0.6, OLD)]
    merged, decision = judge(classify, CONFIG, {}, Policy(3, 6, 0.8), disputed)
    assert (merged.aggregate.value, decision) == ("seal", "contested")
    assert merged.aggregate.confidence >= 0.8


def test_decide_keeps_its_old_answers_when_vouched():
    assert decide(POLICY, 0.9, 3) == RETIRE
    assert decide(POLICY, 0.5, 5) == "contested"
    assert decide(POLICY, 0.9, 3, UNPROVEN) == MORE
    assert decide(POLICY, 0.9, 5, UNPROVEN) == HOLD
    assert decide(POLICY, 0.5, 5, UNPROVEN) == "contested"
    assert decide(POLICY, 0.9, 2, UNPROVEN) == MORE
    assert decide(POLICY, 0.9, 4, DISPUTED) == MORE
    assert decide(POLICY, 0.9, 5, DISPUTED) == "contested"


def test_types_without_labels_are_vouched_for_by_any_established_answer():
    """A number's merged value is a weighted median no answer need equal."""
    rows = [({"value": 10}, None, None, OLD, 0, 0.0, []),
            ({"value": 14}, None, None, NEW, 0, 0.0, [])]
    weighed = weigh(rows, {}, NOW)
    assert weighed.standing(number, {}, {"value": 12}) == VOUCHED
    assert weigh(rows[1:], {}, NOW).standing(number, {}, {"value": 14}) == UNPROVEN
