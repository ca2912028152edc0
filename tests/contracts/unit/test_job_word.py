"""ADR 011: one word per job. The escrow stores the 192-bit commitment to a job's fields and
the current round's vote lanes in the clear (members 4-15 in lanes_ext); every job call passes
the fields and is refused unless they hash to the word; votes touch only the clear lanes, so
concurrent votes all count; VERDICT is derived; Feedback's evidence comes from the settling
call or a re-proved counted vote; JobUpdated states the fields where no other event does; the
batch facet refuses to run at its own address.

Job calls go through tests.contracts.jobs.Escrow, which fills in the tracked fields; `job=`
passes others (stale or altered) instead."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import boa
import pytest

from pactbond import eip712, jobfields
from pactbond.jobfields import JobFields
from tests.contracts.conftest import E18, ETH
from tests.contracts.unit.votes.conftest import (
    CHALLENGED,
    EXPIRED_NO_VERDICT,
    SETTLED,
    SUBMITTED,
    VERDICT,
    events,
    new_actor,
    settle,
)
from tests.contracts.unit.votes.test_batch import leaf, sign_batch

ZERO = "0x" + "00" * 20
U64 = 2**64
GUARD = "escrow: call the escrow, not the facet"


def fields(world: Any, jid: int) -> JobFields:
    return world.escrow.jobs.fields[jid]


def th(world: Any, jid: int) -> bytes:
    """The terms hash of the job's pact (from its PactCreated log), which its word commits to."""
    return world.escrow.jobs.terms[fields(world, jid).pact_id]


def as_evidence(vote: tuple[Any, ...]) -> tuple[Any, ...]:
    """A SignedVote as a single-vote Evidence argument."""
    m, s, ev, dl, sig = vote
    return (m, s, ev, dl, False, [], sig)


def call_as(who: Any, fn: Any, *args: Any, **kw: Any) -> list[Any]:
    """A call through the escrow proxy as `who`; its decoded logs."""
    with boa.env.prank(who.address):
        fn(*args, **kw)
    return fn._proxy.get_logs()


def logs(world: Any) -> list[Any]:
    return world.escrow.get_logs()


def job_of(world: Any, **over: Any) -> tuple[int, Any, int]:
    """A submitted job on a new pact: (job id, terms, pact id)."""
    pid, t = world.create_pact(**over)
    world.stake_agent()
    jid = world.open(pid)
    world.accept(jid)
    world.submit(jid)
    return jid, t, pid


def vote_all(world: Any, jid: int, scores: list[int], members: list[Any] | None = None,
             round_: int = 0) -> list[tuple[Any, ...]]:
    members = members or (world.evaluators if round_ == 0 else world.appeal_evaluators)
    return [world.vote(m, jid, s, round_=round_) for m, s in zip(members, scores, strict=True)]


def post(world: Any, jid: int, votes: list[tuple[Any, ...]], round_: int = 0) -> None:
    """Votes in calls of at most 4 (settle and appeal take no more: MAX_CALL_VOTES)."""
    for k in range(0, len(votes), 4):
        (world.settle if round_ == 0 else world.appeal)(jid, votes[k:k + 4])


def warp_past(world: Any, ts: int) -> None:
    world.warp(ts + 1 - world.now())


# ---------------------------------------------------------------------------------------------
# stale fields: every job call


def ready(world: Any, call: str) -> tuple[int, Any, JobFields]:
    """A job where `call` would go through with the tracked fields: (job id, a function that
    makes the call with `job` as its fields, fields from before the last transition or, where
    the job has had none since its open, another job's fields)."""
    esc, fac = world.escrow, world.facet
    pid, t = world.create_pact()
    tt = t.as_tuple()
    world.stake_agent(20 * E18)
    jid = world.open(pid, value=E18 // 10)
    other = world.open(pid, value=E18 // 10 + 1)  # fields equal but for the value
    prev = fields(world, other)
    if call in ("accept", "cancel"):
        who = world.agent if call == "accept" else world.buyer
        fn = esc.accept if call == "accept" else fac.cancel
        return jid, lambda job: call_as(who, fn, jid, tt, job=job), prev
    prev = fields(world, jid)
    world.accept(jid)
    if call == "submit":
        return jid, lambda job: call_as(world.agent, esc.submit, jid, tt, b"\x01" * 32, "",
                                        job=job), prev
    if call == "expire":
        warp_past(world, fields(world, jid).deadline)
        return jid, lambda job: call_as(world.attacker, fac.expire, jid, tt, job=job), prev
    prev = fields(world, jid)
    world.submit(jid)
    if call == "settle":
        v = world.vote(world.evaluators[0], jid, 9000)
        return jid, lambda job: call_as(world.attacker, esc.settle, jid, tt, [v], job=job), prev
    if call == "settle_batch":
        dl = fields(world, jid).deadline
        s, items = sign_batch(world, world.evaluators[0], [(jid, 9000)], 0, dl)
        return jid, lambda job: call_as(world.attacker, fac.settle_batch, pid, tt, 0, items, [s],
                                        job=None if job is None else [job]), prev
    prev = fields(world, jid)
    world.settle(jid, vote_all(world, jid, [9000, 9000, 9000]))  # closes round 0: JobUpdated
    assert fields(world, jid) != prev
    if call == "finalize":
        warp_past(world, fields(world, jid).close_at + t.challenge_window)
        return jid, lambda job: call_as(world.attacker, esc.finalize, jid, tt, job=job), prev
    world.warp(1)
    if call == "challenge":
        return jid, lambda job: call_as(world.buyer, fac.challenge, jid, tt, 9000,
                                        value=t.challenge_bond, job=job), prev
    prev = fields(world, jid)
    call_as(world.buyer, fac.challenge, jid, tt, 9000, value=t.challenge_bond)
    if call == "appeal":
        v = world.vote(world.appeal_evaluators[0], jid, 2000, round_=1)
        return jid, lambda job: call_as(world.attacker, fac.appeal, jid, tt, [v], job=job), prev
    assert call == "resolve"
    post(world, jid, vote_all(world, jid, [2000, 2000, 2000], round_=1), round_=1)
    return jid, lambda job: call_as(world.attacker, fac.resolve, jid, tt, job=job), prev


def altered(f: JobFields) -> dict[str, JobFields]:
    """`f` with one field changed (one bit), for each field."""
    flip = bytes([f.deliverable[0] ^ 1]) + f.deliverable[1:]
    return {"head": replace(f, head=f.head ^ (1 << 161)), "tail": replace(f, tail=f.tail ^ 1),
            "money": replace(f, money=f.money ^ 1), "deliverable": replace(f, deliverable=flip),
            "r0": replace(f, r0=f.r0 ^ 1)}


def chain_state(world: Any, jid: int) -> tuple[Any, ...]:
    esc = world.escrow
    return (esc.job_word(jid), boa.env.get_balance(esc.address),
            esc.credits(world.buyer.address, ETH), esc.agent_stake(world.agent.address, ETH),
            [esc.evaluator_stake(m.address, ETH) for m in world.evaluators])


@pytest.mark.parametrize("call", ["accept", "submit", "settle", "settle_batch", "finalize",
                                  "cancel", "expire", "challenge", "appeal", "resolve"])
def test_job_call__stale_or_altered_fields__refused_nothing_changes(world, call):
    jid, make, prev = ready(world, call)
    now = fields(world, jid)
    assert prev != now
    before = chain_state(world, jid)
    for name, f in {"before the last transition": prev, **altered(now)}.items():
        with boa.reverts("escrow: stale job fields"):
            make(f.as_tuple())
        assert chain_state(world, jid) == before, name
    make(None)  # the control: the tracked fields go through
    assert world.escrow.job_word(jid) != before[0]


@pytest.mark.parametrize("call", ["accept", "settle_batch"])
def test_job_call__never_opened_job_with_valid_fields__unknown_job(world, call):
    """A job id never opened: "unknown job", whatever fields come with it (here another job's,
    which hash to its own word)."""
    pid, t = world.create_pact()
    jid = world.open(pid)
    f = fields(world, jid).as_tuple()
    unknown = jid + 1
    with boa.reverts("escrow: unknown job"), boa.env.prank(world.agent.address):
        if call == "accept":
            world.escrow.accept(unknown, t.as_tuple(), job=f)
        else:
            world.facet.settle_batch(pid, t.as_tuple(), 0, [(unknown, world.evaluators[0].address,
                                                             9000, b"\x01" * 32)], [], job=[f])
    assert world.escrow.job_word(unknown) == (0, 0)


# ---------------------------------------------------------------------------------------------
# concurrent votes: the clear lanes


def test_settle__concurrent_calls_with_the_same_pre_vote_fields__all_count(world):
    """Members' calls for one job built from the same fields (DESIGN: every oracle posts at
    once) all count: a vote changes only the clear lanes, never the commitment. The vote that
    closes round 0 rewrites the commitment, so fields from before it are stale afterwards."""
    jid, t, pid = job_of(world)
    f = fields(world, jid).as_tuple()
    e0, e1, e2 = world.evaluators
    word0 = world.escrow.job_word(jid)[0]

    def settle_as(v: tuple[Any, ...]) -> None:
        call_as(world.attacker, world.escrow.settle, jid, t.as_tuple(), [v], job=f)

    settle_as(world.vote(e0, jid, 9000))
    assert world.escrow.job_word(jid)[0] >> 64 == word0 >> 64  # the commitment is unchanged
    # a batch of e1's built from the same fields counts as well
    s, items = sign_batch(world, e1, [(jid, 8000)], 0, fields(world, jid).deadline)
    call_as(world.attacker, world.facet.settle_batch, pid, t.as_tuple(), 0, items, [s], job=[f])
    assert world.job(jid)["state"] == VERDICT
    settle_as(world.vote(e2, jid, 7000))  # closes round 0: the commitment changes
    word, _ = world.escrow.job_word(jid)
    assert word % U64 == (9001 | 8001 << 16 | 7001 << 32)
    assert word >> 64 != word0 >> 64
    assert fields(world, jid).close_at == world.now()
    with boa.reverts("escrow: stale job fields"):
        call_as(world.attacker, world.escrow.finalize, jid, t.as_tuple(), job=f)


# ---------------------------------------------------------------------------------------------
# committees above 4 members: lanes_ext


@pytest.fixture
def six(world):
    """A 6-member committee (threshold 2) and a 5-member appeal committee (threshold 2), new
    members staked; a pact on them."""
    members = [*world.evaluators, *(new_actor(world, f"evaluator-x{i}") for i in range(3))]
    appeal = [*world.appeal_evaluators, *(new_actor(world, f"appeal-x{i}") for i in range(2))]
    cid = world.create_committee(members, 2)
    aid = world.create_committee(appeal, 2)
    pid, t = world.create_pact(committee_id=cid, appeal_committee_id=aid)
    world.stake_agent()
    return members, appeal, pid, t


def open_six(world: Any, pid: int) -> int:
    jid = world.open(pid)
    world.accept(jid)
    world.submit(jid)
    return jid


def test_six_members__votes_of_members_4_and_5__in_lanes_ext_count_for_the_verdict(world, six):
    members, _, pid, t = six
    jid = open_six(world, pid)
    world.settle(jid, vote_all(world, jid, [6000, 7000], members[4:]))
    word, ext = world.escrow.job_word(jid)
    assert word % U64 == 0 and ext == 6001 | 7001 << 16
    assert jobfields.scores(jobfields.lanes_of(word, ext)) == {4: 6000, 5: 7000}
    assert fields(world, jid).state == SUBMITTED  # stored; VERDICT is derived from the lanes
    assert world.job(jid)["state"] == VERDICT
    warp_past(world, fields(world, jid).close_at + t.challenge_window)
    with boa.env.prank(world.attacker.address):
        world.escrow.finalize(jid, t.as_tuple())
    assert [e.score_bps for e in events(logs(world), "JobSettled")] == [6500]
    fee = t.evaluator_fee
    assert [world.escrow.credits(m.address, ETH) for m in members] == [0] * 4 + [fee // 2] * 2


def test_six_members__every_member_votes__close_median_fees(world, six):
    members, _, pid, t = six
    jid = open_six(world, pid)
    scores = [9000, 8000, 7000, 6000, 5000, 4000]
    votes = vote_all(world, jid, scores, members)
    world.settle(jid, votes[:4])
    assert fields(world, jid).close_at == fields(world, jid).deadline  # members 4, 5 to vote
    lg = settle(world, jid, votes[4:])
    assert [e.score_bps for e in events(lg, "RoundClosed")] == [6500]
    word, ext = world.escrow.job_word(jid)
    assert jobfields.scores(jobfields.lanes_of(word, ext)) == dict(enumerate(scores))
    assert fields(world, jid).matches(jid, word, th(world, jid))
    warp_past(world, fields(world, jid).close_at + t.challenge_window)
    with boa.env.prank(world.attacker.address):
        world.escrow.finalize(jid, t.as_tuple())
    fee = t.evaluator_fee
    assert [world.escrow.credits(m.address, ETH) for m in members] == [fee // 6] * 6
    assert [e.score_bps for e in events(logs(world), "JobSettled")] == [6500]


def test_six_members__five_votes_in_one_call__refused(world, six):
    """settle takes at most 4 votes a call (MAX_CALL_VOTES, ADR 011): a fifth is refused by
    the ABI decoder (an empty revert), nothing counted."""
    members, _, pid, _ = six
    jid = open_six(world, pid)
    with boa.reverts():
        world.settle(jid, vote_all(world, jid, [9000] * 5, members[:5]))
    assert world.escrow.job_word(jid) == (fields(world, jid).commitment(jid, th(world, jid)), 0)


def test_six_members__challenge_moves_ext_lanes_to_r0__round1_starts_clear__resolve(world, six):
    """Round-0 lanes of members 4-5 move into r0 at the challenge and lanes_ext is cleared:
    appeal member 4's vote is its own (no leftover round-0 lane, no duplicate), and the
    overturn's penalties reach member 4 of round 0 (its lane read from r0)."""
    members, appeal, pid, t = six
    jid = open_six(world, pid)
    scores = [9000, 9000, 9000, 2000, 9000, 1000]
    post(world, jid, vote_all(world, jid, scores, members))
    world.warp(1)
    lanes = sum((s + 1) << (16 * i) for i, s in enumerate(scores))
    with boa.env.prank(world.buyer.address):
        world.facet.challenge(jid, t.as_tuple(), 9000, value=t.challenge_bond)
    up = events(logs(world), "JobUpdated")
    assert [e.r0 for e in up] == [lanes]
    assert world.escrow.job_word(jid) == (fields(world, jid).commitment(jid, th(world, jid)), 0)
    assert fields(world, jid).state == CHALLENGED
    stake0 = [world.escrow.evaluator_stake(m.address, ETH)[0] for m in members]
    post(world, jid, vote_all(world, jid, [2000] * 5, appeal, round_=1), round_=1)
    word, ext = world.escrow.job_word(jid)
    assert jobfields.scores(jobfields.lanes_of(word, ext)) == dict.fromkeys(range(5), 2000)
    with boa.env.prank(world.attacker.address):
        world.facet.resolve(jid, t.as_tuple())  # early: every appeal member voted
    lg = logs(world)
    assert [(e.overturned, e.score_bps) for e in events(lg, "AppealResolved")] == [(True, 2000)]
    hit = [m.address for m, s in zip(members, scores, strict=True) if s == 9000]
    assert [e.member for e in events(lg, "EvaluatorPenalized")] == hit
    penalty = 5 * E18
    assert [stake0[i] - world.escrow.evaluator_stake(m.address, ETH)[0]
            for i, m in enumerate(members)] == [penalty if s == 9000 else 0 for s in scores]
    assert world.job(jid)["state"] == SETTLED
    fee = t.appeal_fee
    assert [world.escrow.credits(m.address, ETH) for m in appeal] == [fee // 5] * 5


# ---------------------------------------------------------------------------------------------
# Feedback evidence


def feedback(lg: list[Any]) -> list[bytes]:
    return [e.evidence_hash for e in events(lg, "Feedback")]


def test_settle__zero_window_close__feedback_carries_the_first_vote_of_that_call(world):
    """ADR 011 (changes ADR 004's first counted vote): the evidence of the settling call's
    first vote, not of the job's first vote."""
    jid, _, _ = job_of(world, challenge_window=0, appeal_window=0)
    e0, e1, e2 = world.evaluators
    first = world.vote(e0, jid, 9000)
    world.settle(jid, [first])
    closing = [world.vote(e2, jid, 8000), world.vote(e1, jid, 8500)]
    lg = settle(world, jid, closing)
    assert world.job(jid)["state"] == SETTLED
    assert feedback(lg) == [closing[0][2]] and closing[0][2] != first[2]
    # settled at once: close_at not recorded, no JobUpdated; the fields are the last + SETTLED
    assert events(lg, "JobUpdated") == []
    f = fields(world, jid)
    assert (f.state, f.close_at) == (SETTLED, f.deadline)
    assert f.matches(jid, world.escrow.job_word(jid)[0], th(world, jid))


def test_settle_batch__zero_window_close__feedback_carries_the_jobs_first_item(world):
    jid, t, pid = job_of(world, challenge_window=0, appeal_window=0)
    dl = fields(world, jid).deadline
    signed = [sign_batch(world, m, [(jid, s)], 0, dl) for m, s in
              zip(reversed(world.evaluators), [7000, 8000, 9000], strict=True)]
    items = [it for _, its in signed for it in its]
    lg = call_as(world.attacker, world.facet.settle_batch, pid, t.as_tuple(), 0, items,
                 [s for s, _ in signed])
    assert feedback(lg) == [items[0][3]]
    assert [e.score_bps for e in events(lg, "JobSettled")] == [8000]


def three_votes(world: Any) -> tuple[Any, ...]:
    """A job with three counted round-0 votes (e0 9000, e1 8000 single; e2 7000 in a batch of
    two jobs), round 0 closed: (job id, terms, the single votes, e2's batch leaves, its batch
    signature, its item of this job)."""
    jid, t, pid = job_of(world)
    other = world.open(pid)
    world.accept(other)
    world.submit(other)
    e0, e1, e2 = world.evaluators
    singles = [world.vote(e0, jid, 9000), world.vote(e1, jid, 8000)]
    world.settle(jid, singles)
    dl = fields(world, jid).deadline
    s, items = sign_batch(world, e2, [(other, 5000), (jid, 7000)], 0, dl)
    call_as(world.attacker, world.facet.settle_batch, pid, t.as_tuple(), 0, items, [s])
    leaves = [leaf(world, j, sc, ev, 0, dl) for j, _, sc, ev in items]
    return jid, t, singles, leaves, s, items[1]


def batch_evidence(leaves: list[bytes], s: Any, item: Any) -> tuple[Any, ...]:
    """e2's batched vote as an Evidence argument: the leaf's proof and the batch signature."""
    member, _, dl, sig = s
    return (member, item[2], item[3], dl, True, eip712.merkle_proof(leaves, 1), sig)


@pytest.fixture
def verdict_job(world):
    """three_votes, with the challenge window over."""
    out = three_votes(world)
    warp_past(world, fields(world, out[0]).close_at + out[1].challenge_window)
    return out


def finalize_with(world: Any, jid: int, t: Any, evidence: tuple[Any, ...]) -> list[Any]:
    return call_as(world.attacker, world.escrow.finalize, jid, t.as_tuple(), evidence)


def test_finalize__single_vote_evidence__feedback_carries_it(world, verdict_job):
    jid, t, singles, *_ = verdict_job
    lg = finalize_with(world, jid, t, as_evidence(singles[1]))  # not the job's first vote
    assert feedback(lg) == [singles[1][2]]


def test_finalize__batch_leaf_evidence__feedback_carries_it(world, verdict_job):
    jid, t, _, leaves, s, item = verdict_job
    lg = finalize_with(world, jid, t, batch_evidence(leaves, s, item))
    assert feedback(lg) == [item[3]]


def test_finalize__batch_leaf_evidence_at_either_end_of_its_pair__feedback_carries_it(world):
    """Two jobs with verdicts, e2's votes on both in one batch of two leaves: each job is
    finalized with its own leaf, so the proof's one sibling lies once above and once below the
    leaf (both orders of the sorted pair are walked, whatever the hashes)."""
    jid, t, pid = job_of(world)
    other = world.open(pid)
    world.accept(other)
    world.submit(other)
    e0, e1, e2 = world.evaluators
    for j in (jid, other):
        world.settle(j, [world.vote(e0, j, 9000), world.vote(e1, j, 8000)])
    dl = fields(world, jid).deadline
    s, items = sign_batch(world, e2, [(other, 7000), (jid, 6000)], 0, dl)
    call_as(world.attacker, world.facet.settle_batch, pid, t.as_tuple(), 0, items, [s])
    leaves = [leaf(world, j, sc, ev, 0, dl) for j, _, sc, ev in items]
    warp_past(world, max(fields(world, j).close_at for j in (jid, other)) + t.challenge_window)
    member, _, bdl, sig = s
    for k, (j, _, sc, ev) in enumerate(items):
        proof = eip712.merkle_proof(leaves, k)
        assert len(proof) == 1
        evidence = (member, sc, ev, bdl, True, proof, sig)
        assert feedback(finalize_with(world, j, t, evidence)) == [ev]


def test_finalize__member_zero__feedback_evidence_zero(world, verdict_job):
    jid, t, *_ = verdict_job
    lg = finalize_with(world, jid, t, (ZERO, 0, b"\x09" * 32, 0, False, [], b""))
    assert feedback(lg) == [b"\x00" * 32]
    assert world.job(jid)["state"] == SETTLED


def evidence_cases(world: Any, jid: int, singles: list[Any], leaves: list[bytes], s: Any,
                   item: Any) -> dict[str, tuple[str, tuple[Any, ...]]]:
    """Invalid Evidence arguments: (reason, evidence)."""
    m, score, ev, dl, sig = singles[1]
    e2, _, bdl, bsig = s
    outsider = world.vote(world.appeal_evaluators[0], jid, score)
    not_counted, unsigned = "escrow: evidence vote not counted", "escrow: evidence vote unsigned"
    return {
        "wrong score": (not_counted, (m, score + 1, ev, dl, False, [], sig)),
        "score above 10000": (not_counted, (m, 10_001, ev, dl, False, [], sig)),
        "non-member": (not_counted, as_evidence(outsider)),
        "bad signature": (unsigned, (m, score, ev, dl, False, [], singles[0][4])),
        "other evidence hash": (unsigned, (m, score, b"\x07" * 32, dl, False, [], sig)),
        "other deadline": (unsigned, (m, score, ev, dl - 1, False, [], sig)),
        "single vote as batch": (unsigned, (m, score, ev, dl, True, [], sig)),
        "batch leaf, wrong proof": (unsigned, (e2, item[2], item[3], bdl, True, [], bsig)),
        "batch leaf as single": (unsigned, (e2, item[2], item[3], bdl, False, [], bsig)),
    }


EVIDENCE_CASES = ["wrong score", "score above 10000", "non-member", "bad signature",
                  "other evidence hash", "other deadline", "single vote as batch",
                  "batch leaf, wrong proof", "batch leaf as single"]


def test_finalize__invalid_evidence__refused_with_its_reason(world, verdict_job):
    jid, t, singles, leaves, s, item = verdict_job
    cases = evidence_cases(world, jid, singles, leaves, s, item)
    assert list(cases) == EVIDENCE_CASES
    word = world.escrow.job_word(jid)
    for name, (reason, ev) in cases.items():
        with boa.reverts(reason):
            finalize_with(world, jid, t, ev)
        assert world.escrow.job_word(jid) == word, name
    finalize_with(world, jid, t, as_evidence(singles[0]))
    assert world.job(jid)["state"] == SETTLED


def test_finalize__evidence_of_a_member_that_did_not_vote__not_counted(world):
    jid, t, _ = job_of(world)
    e0, e1, e2 = world.evaluators
    world.settle(jid, [world.vote(e0, jid, 9000), world.vote(e1, jid, 9000)])
    warp_past(world, fields(world, jid).close_at + t.challenge_window)
    silent = world.vote(e2, jid, 9000)  # signed, never posted: its lane is empty
    with boa.reverts("escrow: evidence vote not counted"):
        finalize_with(world, jid, t, as_evidence(silent))


def test_resolve__evidence__round0_vote_re_proved_zero_or_refused(world):
    """resolve takes the same Evidence: a counted round-0 vote (its lane now in r0), single or
    a batch leaf, or member zero for none; a round-1 vote is not a round-0 vote of the
    committee."""
    jid, t, votes, leaves, s, item = three_votes(world)
    world.warp(1)
    with boa.env.prank(world.buyer.address):
        world.facet.challenge(jid, t.as_tuple(), 8000, value=t.challenge_bond)
    appeal_votes = vote_all(world, jid, [8000, 8000, 8000], round_=1)
    world.appeal(jid, appeal_votes)

    def resolve(ev: tuple[Any, ...]) -> list[Any]:
        return call_as(world.attacker, world.facet.resolve, jid, t.as_tuple(), ev)

    with boa.reverts("escrow: evidence vote not counted"):
        resolve(as_evidence(appeal_votes[0]))
    m, sc, ev, dl, sig = votes[1]
    with boa.reverts("escrow: evidence vote not counted"):
        resolve((m, sc + 1, ev, dl, False, [], sig))
    with boa.reverts("escrow: evidence vote unsigned"):
        resolve((m, sc, ev, dl, False, [], votes[0][4]))
    none = (ZERO, 0, bytes(32), 0, False, [], b"")
    for given, carried in ((as_evidence(votes[1]), votes[1][2]), (none, bytes(32))):
        with boa.env.anchor():
            assert feedback(resolve(given)) == [carried]
    assert feedback(resolve(batch_evidence(leaves, s, item))) == [item[3]]
    assert world.job(jid)["state"] == SETTLED


# ---------------------------------------------------------------------------------------------
# JobUpdated and derived VERDICT


def test_job_updated__early_close_and_challenge__fields_hash_to_the_stored_word(world):
    jid, t, _ = job_of(world)
    before = fields(world, jid)
    lg = settle(world, jid, vote_all(world, jid, [9000, 8000, 7000]))
    (up,) = events(lg, "JobUpdated")
    f = JobFields(head=up.head, tail=up.tail, money=before.money,
                  deliverable=before.deliverable, r0=up.r0)
    assert f.matches(jid, world.escrow.job_word(jid)[0], th(world, jid))
    assert (f.state, f.close_at, f.deadline, f.r0) == (SUBMITTED, world.now(), before.deadline, 0)
    assert (f.head, f.tail % 2**216) == (before.head, before.tail % 2**216)  # only close_at
    world.warp(1)
    with boa.env.prank(world.agent.address):
        world.facet.challenge(jid, t.as_tuple(), 8000, value=t.challenge_bond)
    (up,) = events(logs(world), "JobUpdated")
    g = JobFields(head=up.head, tail=up.tail, money=f.money, deliverable=f.deliverable, r0=up.r0)
    assert g.matches(jid, world.escrow.job_word(jid)[0], th(world, jid))
    assert (g.state, g.by_agent, g.deadline, g.close_at) == (
        CHALLENGED, True, world.now() + t.appeal_window, f.close_at)
    assert g.r0 == 9001 | 8001 << 16 | 7001 << 32
    assert world.escrow.job_word(jid)[0] % U64 == 0  # round 1 starts with clear lanes


@pytest.mark.parametrize("votes", [1, 2], ids=["below-threshold", "threshold"])
def test_verdict__derived_from_submitted_and_lanes__finalize_challenge_expire(world, votes):
    """VERDICT is never stored: SUBMITTED with threshold votes behaves as VERDICT (finalize,
    challenge go, expire refuses), below it as SUBMITTED (the other way round)."""
    jid, t, _ = job_of(world)
    world.settle(jid, vote_all(world, jid, [9000, 8000][:votes], world.evaluators[:votes]))
    f = fields(world, jid)
    assert f.state == SUBMITTED and f.matches(jid, world.escrow.job_word(jid)[0], th(world, jid))
    verdict = votes == 2
    assert world.job(jid)["state"] == (VERDICT if verdict else SUBMITTED)
    warp_past(world, f.deadline)  # round 0 closed at E; the challenge window runs
    with boa.env.anchor(), boa.env.prank(world.buyer.address):
        if verdict:
            world.facet.challenge(jid, t.as_tuple(), 8500, value=t.challenge_bond)
            assert fields(world, jid).state == CHALLENGED
        else:
            with boa.reverts("escrow: no verdict to challenge"):
                world.facet.challenge(jid, t.as_tuple(), 9000, value=t.challenge_bond)
    warp_past(world, f.close_at + t.challenge_window)
    with boa.env.prank(world.attacker.address):
        if verdict:
            with boa.reverts("escrow: not expirable"):
                world.facet.expire(jid, t.as_tuple())
            world.escrow.finalize(jid, t.as_tuple())
            assert fields(world, jid).state == SETTLED
        else:
            with boa.reverts("escrow: no verdict"):
                world.escrow.finalize(jid, t.as_tuple())
            world.facet.expire(jid, t.as_tuple())
            assert fields(world, jid).state == EXPIRED_NO_VERDICT


# ---------------------------------------------------------------------------------------------
# the batch facet at its own address


def test_batch_facet__called_directly__refused(world):
    appeals = world.escrow.raw[1].deployer.at(world.escrow.APPEALS())
    batch = world.escrow.raw[2].deployer.at(appeals.BATCH())
    pid, t = world.create_pact()
    e0 = world.evaluators[0]
    with boa.env.prank(e0.address):
        with boa.reverts(GUARD):
            batch.settle_batch(pid, t.as_tuple(), 0, [], [(1, e0.address, 1, bytes(32))], [])
        with boa.reverts(GUARD):
            batch.request_unstake(ETH, 1)
        with boa.reverts(GUARD):
            batch.withdraw_evaluator_stake(ETH)
    # the same calls through the escrow reach it (the unstake request goes through)
    with boa.env.prank(e0.address):
        world.escrow.request_unstake(ETH, E18)
    assert world.escrow.evaluator_stake(e0.address, ETH)[2] == E18
