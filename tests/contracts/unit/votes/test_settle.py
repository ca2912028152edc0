"""PactEscrow.settle and finalize, round 0 (DESIGN: Timeline, Votes, Median): every outcome and
every reason of _count0."""

from __future__ import annotations

import boa
import pytest

from pactbond import money
from tests.contracts.conftest import DAY, E18, HOUR, MIN_ROTATION_DELAY
from tests.contracts.unit.votes.conftest import (
    ACCEPTED,
    CHALLENGED,
    EXPIRED_NO_VERDICT,
    OPEN,
    SETTLED,
    SUBMITTED,
    VERDICT,
    events,
    finalize,
    new_actor,
    raw_vote,
    settle,
    submitted_job,
)


def lanes_of(*pairs: tuple[int, int]) -> int:
    """Round-0 lanes for (member index, score) pairs: 16 bits per index, score + 1."""
    return sum((score + 1) << (16 * i) for i, score in pairs)


def warp_to(world, ts):
    world.warp(ts - world.now())
    assert world.now() == ts


# ---------------------------------------------------------------------------------------------
# outcomes


def test_settle__two_of_three__verdict_with_events(world):
    jid, _ = submitted_job(world)
    e0, e1, _ = world.evaluators
    eval_deadline = world.job(jid)["deadline"]
    votes = [world.vote(e0, jid, 9000), world.vote(e1, jid, 8000)]
    logs = settle(world, jid, votes)
    j = world.job(jid)
    assert j["state"] == VERDICT
    assert j["close_at"] == eval_deadline  # round 0 stays open until E: e2 may still vote
    assert j["r0"] == lanes_of((0, 9000), (1, 8000))
    assert j["evidence"] == votes[0][2]
    counted = events(logs, "VoteCounted")
    assert [(e.job_id, e.member, e.round, e.score_bps, e.evidence_hash) for e in counted] == [
        (jid, e0.address, 0, 9000, votes[0][2]), (jid, e1.address, 0, 8000, votes[1][2])]
    assert [(e.job_id, e.votes) for e in events(logs, "VerdictReached")] == [(jid, 2)]
    assert events(logs, "RoundClosed") == []
    assert world.escrow.median_score(jid, 0) == 8500


def test_settle__third_vote__closes_round0_early(world):
    jid, t = submitted_job(world)
    e0, e1, e2 = world.evaluators
    eval_deadline = world.job(jid)["deadline"]
    world.settle(jid, [world.vote(e0, jid, 9000), world.vote(e1, jid, 6000)])
    world.warp(600)
    logs = settle(world, jid, [world.vote(e2, jid, 7000)])
    j = world.job(jid)
    assert j["state"] == VERDICT
    assert j["close_at"] == world.now() < eval_deadline
    assert events(logs, "VerdictReached") == []  # the verdict already existed
    closed = events(logs, "RoundClosed")
    assert [(e.job_id, e.score_bps, e.challenge_deadline) for e in closed] == [
        (jid, 7000, world.now() + t.challenge_window)]


def test_settle__all_three_in_one_call__verdict_and_close_together(world):
    jid, t = submitted_job(world)
    logs = settle(world, jid, [world.vote(m, jid, s) for m, s in zip(world.evaluators, (5000, 8000, 9000), strict=True)])
    assert world.job(jid)["state"] == VERDICT
    assert world.job(jid)["close_at"] == world.now()
    assert [e.votes for e in events(logs, "VerdictReached")] == [3]
    assert [(e.score_bps, e.challenge_deadline) for e in events(logs, "RoundClosed")] == [
        (8000, world.now() + t.challenge_window)]


@pytest.mark.parametrize("calls", [[3], [2, 1], [1, 1, 1]], ids=["one-call", "two-then-one", "one-by-one"])
def test_settle__zero_challenge_window_closing_vote__settles_in_same_tx(world, calls):
    jid, t = submitted_job(world, challenge_window=0, appeal_window=0)
    scores = (9000, 8500, 9500)
    votes = [world.vote(m, jid, s) for m, s in zip(world.evaluators, scores, strict=True)]
    free0 = world.escrow.agent_stake(world.agent.address, t.asset)[0]
    k = 0
    for n in calls[:-1]:
        world.settle(jid, votes[k:k + n])
        k += n
        assert world.job(jid)["state"] in (SUBMITTED, VERDICT)
    logs = settle(world, jid, votes[k:])
    assert world.job(jid)["state"] == SETTLED
    settled = events(logs, "JobSettled")
    assert [(e.job_id, e.score_bps, e.to_agent) for e in settled] == [(jid, 9000, E18)]
    assert [(e.job_id, e.score_bps) for e in events(logs, "Feedback")] == [(jid, 9000)]
    bond = money.bond(t, E18)
    assert world.escrow.agent_stake(world.agent.address, t.asset) == (free0 + E18 + bond, 0)


def test_settle__zero_challenge_window_two_of_three__verdict_until_E_then_finalize(world):
    jid, _ = submitted_job(world, challenge_window=0, appeal_window=0)
    eval_deadline = world.job(jid)["deadline"]
    logs = settle(world, jid, [world.vote(m, jid, 9000) for m in world.evaluators[:2]])
    assert world.job(jid)["state"] == VERDICT
    assert events(logs, "JobSettled") == []
    with boa.reverts("escrow: challenge window open"):
        finalize(world, jid)
    warp_to(world, eval_deadline)
    with boa.reverts("escrow: challenge window open"):
        finalize(world, jid)
    world.warp(1)
    logs = finalize(world, jid)
    assert world.job(jid)["state"] == SETTLED
    assert [e.score_bps for e in events(logs, "JobSettled")] == [9000]


@pytest.mark.parametrize("voters", [2, 3], ids=["close-at-E", "early-close"])
def test_finalize__until_challenge_deadline__refused_then_settles(world, voters):
    jid, t = submitted_job(world)
    world.settle(jid, [world.vote(m, jid, 6500) for m in world.evaluators[:voters]])
    close_at = world.job(jid)["close_at"]
    challenge_deadline = close_at + t.challenge_window
    for ts in (challenge_deadline - 1, challenge_deadline):
        warp_to(world, ts)
        with boa.reverts("escrow: challenge window open"):
            finalize(world, jid)
    world.warp(1)
    logs = finalize(world, jid)
    assert world.job(jid)["state"] == SETTLED
    assert [(e.job_id, e.score_bps) for e in events(logs, "JobSettled")] == [(jid, 6500)]


@pytest.mark.parametrize("n_votes", [0, 1], ids=["no-votes", "one-short"])
def test_finalize__no_verdict__refused(world, n_votes):
    jid, _ = submitted_job(world)
    if n_votes:
        world.settle(jid, [world.vote(world.evaluators[0], jid, 9000)])
    world.warp(3 * HOUR)
    with boa.reverts("escrow: no verdict"):
        finalize(world, jid)


def test_settle__one_short_of_threshold__no_verdict(world):
    jid, _ = submitted_job(world)
    v = world.vote(world.evaluators[1], jid, 4000)
    logs = settle(world, jid, [v])
    j = world.job(jid)
    assert j["state"] == SUBMITTED
    assert j["r0"] == lanes_of((1, 4000))
    assert [e.member for e in events(logs, "VoteCounted")] == [world.evaluators[1].address]
    assert events(logs, "VerdictReached") == []


# ---------------------------------------------------------------------------------------------
# reasons of _count0


def test_settle__empty_vote_list__refused(world):
    jid, _ = submitted_job(world)
    with boa.reverts("vote: no votes"):
        world.settle(jid, [])


def test_settle__unknown_job__refused(world):
    _, t = world.create_pact()
    with boa.reverts("escrow: unknown job"), boa.env.prank(world.attacker.address):
        world.escrow.settle(999, t.as_tuple(), [(world.evaluators[0].address, 1, b"\x00" * 32, 1, b"")])


def test_settle__wrong_terms__refused(world):
    jid, t = submitted_job(world)
    other = t.model_copy(update={"evaluator_fee": t.evaluator_fee + 1}).as_tuple()
    with boa.reverts("escrow: wrong pact terms"), boa.env.prank(world.attacker.address):
        world.escrow.settle(jid, other, [world.vote(world.evaluators[0], jid, 9000)])


@pytest.mark.parametrize("state", ["open", "accepted", "challenged", "settled", "expired"])
def test_settle__job_not_in_evaluation__refused(world, state):
    e0 = world.evaluators[0]
    if state in ("open", "accepted"):
        pid, t = world.create_pact()
        world.stake_agent()
        jid = world.open(pid)
        if state == "accepted":
            world.accept(jid)
        assert world.job(jid)["state"] == {"open": OPEN, "accepted": ACCEPTED}[state]
        vote = world.vote(e0, jid, 9000, deadline=world.now() + HOUR)
    elif state == "challenged":
        jid, t = submitted_job(world)
        world.settle(jid, [world.vote(m, jid, 9000) for m in world.evaluators])
        vote = world.vote(e0, jid, 9000)
        world.warp(1)  # a challenge comes after round-0 close
        with boa.env.prank(world.buyer.address):
            world.facet.challenge(jid, t.as_tuple(), 9000, value=t.challenge_bond)
        assert world.job(jid)["state"] == CHALLENGED
    elif state == "settled":
        jid, t = submitted_job(world, challenge_window=0, appeal_window=0)
        world.settle(jid, [world.vote(m, jid, 9000) for m in world.evaluators[1:]])
        world.warp(HOUR + 1)
        finalize(world, jid)
        assert world.job(jid)["state"] == SETTLED
        vote = world.vote(e0, jid, 9000, deadline=world.now() + HOUR)  # a fresh deadline: only the state refuses
    else:
        jid, t = submitted_job(world)
        world.warp(HOUR + 1)
        with boa.env.prank(world.attacker.address):
            world.facet.expire(jid, t.as_tuple())
        assert world.job(jid)["state"] == EXPIRED_NO_VERDICT
        vote = world.vote(e0, jid, 9000, deadline=world.now() + HOUR)
    r0 = world.job(jid)["r0"]
    with boa.reverts("vote: job not in evaluation"):
        world.settle(jid, [vote])
    assert world.job(jid)["r0"] == r0


@pytest.mark.parametrize(("signed_deadline", "post_at", "ok"), [
    ("now-1", "now", False),
    ("now", "now", True),
    ("E", "E", True),
    ("E", "E+1", False),
    ("E+100", "E+1", False),
    ("E+100", "E", True),
], ids=["deadline-in-past", "deadline-now", "at-E", "after-E", "later-deadline-after-E", "later-deadline-at-E"])
def test_settle__vote_deadline__counted_only_until_min_of_deadline_and_E(world, signed_deadline, post_at, ok):
    jid, _ = submitted_job(world)
    now, eval_deadline = world.now(), world.job(jid)["deadline"]
    resolve = {"now": now, "now-1": now - 1, "E": eval_deadline, "E+1": eval_deadline + 1, "E+100": eval_deadline + 100}
    votes = [world.vote(m, jid, 9000, deadline=resolve[signed_deadline]) for m in world.evaluators[:2]]
    warp_to(world, resolve[post_at])
    if ok:
        world.settle(jid, votes)
        assert world.job(jid)["state"] == VERDICT
    else:
        with boa.reverts("vote: deadline passed"):
            world.settle(jid, votes)
        assert world.job(jid)["r0"] == 0


def test_settle__after_early_close__round_closed(world):
    jid, _ = submitted_job(world)
    e0, e1, e2 = world.evaluators
    first = world.vote(e0, jid, 9000)
    world.settle(jid, [first, world.vote(e1, jid, 9000), world.vote(e2, jid, 9000)])
    r0 = world.job(jid)["r0"]
    with boa.reverts("vote: round closed"):
        world.settle(jid, [world.vote(e0, jid, 1000)])
    with boa.reverts("vote: round closed"):
        world.settle(jid, [first])
    assert world.job(jid)["r0"] == r0


@pytest.mark.parametrize(("score", "ok"), [(0, True), (9_999, True), (10_000, True), (10_001, False), (65_535, False), (2**256 - 1, False)])
def test_settle__score_bound__10000_accepted_above_refused(world, score, ok):
    jid, _ = submitted_job(world)
    e0 = world.evaluators[0]
    vote = raw_vote(world, e0.key, e0.address, jid, score)
    if ok:
        world.settle(jid, [vote])
        assert world.job(jid)["r0"] == lanes_of((0, score))
    else:
        with boa.reverts("vote: score above 10000"):
            world.settle(jid, [vote])
        assert world.job(jid)["r0"] == 0


def test_settle__non_member__not_reserved(world):
    jid, _ = submitted_job(world)
    a = world.attacker
    with boa.reverts("vote: member not reserved"):
        world.settle(jid, [raw_vote(world, a.key, a.address, jid, 9000)])


def test_settle__appeal_member_in_round0__not_reserved(world):
    jid, _ = submitted_job(world)
    a = world.appeal_evaluators[0]
    with boa.reverts("vote: member not reserved"):
        world.settle(jid, [world.vote(a, jid, 9000)])


def test_settle__member_accepting_after_open__not_reserved(world):
    late = new_actor(world, "evaluator-late")
    members = [*world.evaluators, late]
    cid = world.create_committee(members, 2, accept=False, stake=20 * E18)
    vid = world.registry.current_version(cid)
    for m in world.evaluators:
        with boa.env.prank(m.address):
            world.registry.accept_version(vid)
    jid, _ = submitted_job(world, committee_id=cid)
    assert world.job(jid)["reserved"] == 0b0111
    with boa.env.prank(late.address):
        world.registry.accept_version(vid)
    assert world.registry.roster(vid)[6] == 0b1111  # active now, yet not reserved for this job
    with boa.reverts("vote: member not reserved"):
        world.settle(jid, [world.vote(late, jid, 9000)])
    world.settle(jid, [world.vote(m, jid, 9000) for m in world.evaluators])
    assert world.job(jid)["close_at"] == world.now()  # round 0 closes without the late member


def test_settle__member_of_a_later_version__not_reserved(world):
    newcomer = new_actor(world, "evaluator-new")
    jid, _ = submitted_job(world, eval_window=2 * DAY)
    e0, e1, _ = world.evaluators
    with boa.env.prank(world.admin.address):
        vid2 = world.registry.propose_version(world.committee_id, [e0.address, e1.address, newcomer.address], 2, 10 * E18, 5 * E18)
    for m in (e0, e1, newcomer):
        with boa.env.prank(m.address):
            world.registry.accept_version(vid2)
    world.warp(MIN_ROTATION_DELAY + 1)
    assert world.registry.current_version(world.committee_id) == vid2
    with boa.reverts("vote: member not reserved"):
        world.settle(jid, [world.vote(newcomer, jid, 9000)])


def test_settle__key_revoked_after_open__refused_and_counted_votes_stay(world):
    jid, _ = submitted_job(world)
    e0, e1, e2 = world.evaluators
    early = world.vote(e0, jid, 3000)
    signed_before = world.vote(e1, jid, 9000)
    world.settle(jid, [early])
    with boa.env.prank(e0.address):
        world.registry.revoke_key()
    with boa.env.prank(e1.address):
        world.registry.revoke_key()
    with boa.reverts("vote: key revoked"):
        world.settle(jid, [signed_before])
    world.settle(jid, [world.vote(e2, jid, 8000)])
    j = world.job(jid)
    assert j["r0"] == lanes_of((0, 3000), (2, 8000))  # e0's counted vote stays counted
    assert j["state"] == VERDICT
    assert j["close_at"] == world.now()  # every unrevoked reserved member has voted
    assert world.escrow.median_score(jid, 0) == 5500


def test_settle__unvoted_member_revoked__round_closes_early(world):
    jid, t = submitted_job(world)
    e0, e1, e2 = world.evaluators
    with boa.env.prank(e2.address):
        world.registry.revoke_key()
    logs = settle(world, jid, [world.vote(e0, jid, 9000), world.vote(e1, jid, 7000)])
    assert world.job(jid)["state"] == VERDICT
    assert [(e.score_bps, e.challenge_deadline) for e in events(logs, "RoundClosed")] == [
        (8000, world.now() + t.challenge_window)]


def test_settle__only_unrevoked_member_votes_below_threshold__round_closes_without_verdict(world):
    jid, _ = submitted_job(world)
    e0, e1, e2 = world.evaluators
    signed_before = world.vote(e1, jid, 9000)
    for m in (e1, e2):
        with boa.env.prank(m.address):
            world.registry.revoke_key()
    logs = settle(world, jid, [world.vote(e0, jid, 9000)])
    j = world.job(jid)
    assert (j["state"], j["close_at"]) == (SUBMITTED, world.now())  # closed early, no verdict
    assert events(logs, "RoundClosed") == [] and events(logs, "VerdictReached") == []
    with boa.reverts("vote: round closed"):
        world.settle(jid, [signed_before])


@pytest.mark.parametrize("same_call", [True, False], ids=["same-call", "later-call"])
def test_settle__duplicate_vote__refused(world, same_call):
    jid, _ = submitted_job(world)
    e0 = world.evaluators[0]
    v = world.vote(e0, jid, 9000)
    if same_call:
        with boa.reverts("vote: duplicate vote"):
            world.settle(jid, [v, v])
        assert world.job(jid)["r0"] == 0
    else:
        world.settle(jid, [v])
        for again in (v, world.vote(e0, jid, 1000)):
            with boa.reverts("vote: duplicate vote"):
                world.settle(jid, [again])
        assert world.job(jid)["r0"] == lanes_of((0, 9000))


def test_settle__signed_by_another_member__bad_signature(world):
    jid, _ = submitted_job(world)
    e0, e1, _ = world.evaluators
    forged = raw_vote(world, e1.key, e0.address, jid, 9000)
    with boa.reverts("vote: bad signature"):
        world.settle(jid, [forged])


@pytest.mark.parametrize("bad_at", [0, 1, 2])
def test_settle__one_invalid_among_enough_valid__whole_call_reverts(world, bad_at):
    jid, _ = submitted_job(world)
    votes = [world.vote(m, jid, 9000) for m in world.evaluators]
    m, score, ev, dl, sig = votes[bad_at]
    votes[bad_at] = (m, score + 1, ev, dl, sig)  # the score no longer matches the signature
    with boa.reverts("vote: bad signature"):
        world.settle(jid, votes)
    j = world.job(jid)
    assert (j["state"], j["r0"], j["evidence"]) == (SUBMITTED, 0, b"\x00" * 32)


# ---------------------------------------------------------------------------------------------
# median and relayers


@pytest.mark.parametrize(("scores", "expected"), [
    ((7000,), 7000),
    ((1, 2), 1),
    ((7001, 8000), 7500),
    ((9000, 1000, 5000), 5000),
    ((0, 10000, 3, 4), 3),
    ((10000, 10000, 9999, 1, 2), 9999),
    ((0, 0, 0, 0, 0), 0),
], ids=["one", "two-floor", "two", "three", "four", "five", "all-zero"])
def test_median__odd_and_even_counts__floor_of_middle_mean(world, scores, expected):
    """ADR 011: the median_score view is gone; the contract's median is read where it acts,
    in RoundClosed (every member voted) and in the settlement (JobSettled). A 5-member
    committee with threshold 1, so that one vote is a verdict; settle takes at most 4 votes a
    call, so 5 votes go in two calls."""
    extra = [new_actor(world, f"evaluator-five-{i}") for i in range(2)]
    cid = world.create_committee([*world.evaluators, *extra], 1, stake=20 * E18)
    members = [*world.evaluators, *extra]
    jid, t = submitted_job(world, committee_id=cid)
    votes = [world.vote(m, jid, s) for m, s in zip(members, scores, strict=False)]
    settle(world, jid, votes[:4])
    logs = settle(world, jid, votes[4:]) if votes[4:] else []
    assert world.escrow.median_score(jid, 0) == expected == money.median(list(scores))
    if len(scores) == len(members):  # round 0 closed: RoundClosed carries the median
        assert [e.score_bps for e in events(logs, "RoundClosed")] == [expected]
    world.warp(world.job(jid)["close_at"] + t.challenge_window + 1 - world.now())
    assert [e.score_bps for e in events(finalize(world, jid), "JobSettled")] == [expected]


def test_median__no_votes__no_verdict_to_settle_or_challenge(world):
    """(Was the median_score view refusing "vote: no votes"; the view is gone.) A job without
    votes has no median to act on: finalize and challenge refuse, after E as before it."""
    jid, t = submitted_job(world)
    for _ in range(2):
        with boa.reverts("escrow: no verdict"):
            finalize(world, jid)
        with boa.env.prank(world.buyer.address), boa.reverts("escrow: no verdict to challenge"):
            world.facet.challenge(jid, t.as_tuple(), 0, value=t.challenge_bond)
        world.warp(world.job(jid)["deadline"] + 1 - world.now())


@pytest.mark.parametrize("sender", ["buyer", "agent", "attacker", "member", "appeal-member", "stranger"])
def test_settle__any_sender__votes_count(world, sender):
    jid, _ = submitted_job(world)
    votes = [world.vote(m, jid, 9000) for m in world.evaluators[:2]]
    who = {"buyer": world.buyer, "agent": world.agent, "attacker": world.attacker,
           "member": world.evaluators[2], "appeal-member": world.appeal_evaluators[0],
           "stranger": new_actor(world, "stranger", stake=0)}[sender]
    world.settle(jid, votes, sender=who)
    assert world.job(jid)["state"] == VERDICT
    assert world.job(jid)["r0"] == lanes_of((0, 9000), (1, 9000))
