"""settle_batch (DESIGN: Batches): one VoteBatch signature per member over the Merkle root of its
vote struct hashes; outcomes identical to single votes; every refusal with its reason.

ADR 011: items carry no proofs. The escrow rebuilds each member's root from that member's items
in call order, so a call must carry every vote of each signed batch, in the batch's order; the
old "bad proof" cases are now votes that differ from the signed batch."""

from __future__ import annotations

from typing import Any

import boa
import pytest
from eth_hash.auto import keccak

from pactbond import eip712
from pactbond.models import Vote
from tests.contracts.conftest import E18
from tests.contracts.unit.votes.conftest import (
    ACCEPTED,
    CHALLENGED,
    SETTLED,
    SUBMITTED,
    VERDICT,
    events,
    new_actor,
    u256,
)


def open_jobs(world, n: int, submit: bool = True, **over: Any) -> tuple[int, Any, list[int]]:
    """n jobs of one new pact (0.5 ETH each), accepted and (by default) submitted."""
    pid, t = world.create_pact(**over)
    world.stake_agent()
    jids = [world.open(pid, value=E18 // 2) for _ in range(n)]
    for jid in jids:
        world.accept(jid)
        if submit:
            world.submit(jid)
    return pid, t, jids


def evidence(jid: int, member: Any) -> bytes:
    return keccak(f"evidence:{jid}:{member.address}".encode())


def leaf(world, jid: int, score: int, ev: bytes, round_: int, deadline: int) -> bytes:
    j = world.job(jid)
    return eip712.vote_struct_hash(Vote(
        job_id=jid, deliverable_hash=j["deliverable"], spec_hash=world.pacts[j["pact_id"]].spec_hash,
        score_bps=score, evidence_hash=ev, round=round_, deadline=deadline))


def sign_batch(world, member, votes: list[tuple[int, int]], round_: int, deadline: int,
               key: bytes | None = None) -> tuple[tuple[Any, ...], list[tuple[Any, ...]]]:
    """A member's VoteBatch over (job id, score) votes: (BatchSignature, BatchItems), the items
    in the batch's order (the order the escrow rebuilds the root in)."""
    leaves = [leaf(world, jid, s, evidence(jid, member), round_, deadline) for jid, s in votes]
    root = eip712.merkle_root(leaves)
    digest = eip712.digest(world.domain(), eip712.batch_struct_hash(root, round_, deadline))
    assert world.escrow.batch_digest(root, round_, deadline) == digest
    sig = eip712.sign_digest(key or member.key, digest)
    items = [(jid, member.address, s, evidence(jid, member)) for jid, s in votes]
    return (member.address, root, deadline, sig), items


def batch(world, members, scores: dict[int, list[int]], round_: int, deadline: int):
    """Signatures and items (grouped by job, members in order) for scores[jid][member index]."""
    sigs, by_member = [], []
    for k, m in enumerate(members):
        s, items = sign_batch(world, m, [(jid, sc[k]) for jid, sc in scores.items()], round_, deadline)
        sigs.append(s)
        by_member.append(items)
    items = [by_member[k][i] for i in range(len(scores)) for k in range(len(members))]
    return sigs, items


def settle_batch(world, pid, t, round_, items, sigs, sender=None) -> list[Any]:
    with boa.env.prank((sender or world.attacker).address):
        world.facet.settle_batch(pid, t.as_tuple(), round_, items, sigs)
        return world.facet.get_logs()


def snapshot(world, jids, t, accounts) -> dict[str, Any]:
    return {
        "jobs": [world.escrow.job(j) for j in jids],
        "credits": [world.escrow.credits(a.address, t.asset) for a in accounts],
        "agent": world.escrow.agent_stake(world.agent.address, t.asset),
        "stakes": [world.escrow.evaluator_stake(a.address, t.asset) for a in accounts],
    }


def log_view(logs) -> list[tuple[Any, ...]]:
    """Decoded logs as comparable tuples (event name and fields, without the emitter)."""
    return [(type(e).__name__, *tuple(e)[1:]) for e in logs]


def single_votes(world, members, scores, round_, deadline) -> dict[int, list[tuple[Any, ...]]]:
    return {jid: [world.vote(m, jid, sc[k], round_=round_, deadline=deadline, evidence=evidence(jid, m))
                  for k, m in enumerate(members)] for jid, sc in scores.items()}


# ---------------------------------------------------------------------------------------------
# outcomes identical to single votes


@pytest.mark.parametrize("n_members", [2, 3], ids=["verdicts", "verdicts-and-close"])
def test_settle_batch__round0_several_jobs__same_outcome_as_single_settle(world, n_members):
    pid, t, jids = open_jobs(world, 3)
    members = world.evaluators[:n_members]
    deadline = world.job(jids[0])["deadline"]
    scores = {jids[0]: [9000, 8000, 7000], jids[1]: [2000, 3000, 6000], jids[2]: [6000, 6500, 6600]}
    accounts = [*world.evaluators, world.buyer]
    with boa.env.anchor():
        single_logs = []
        for jid, votes in single_votes(world, members, scores, 0, deadline).items():
            world.settle(jid, votes)
            single_logs += world.escrow.get_logs()
        expected = snapshot(world, jids, t, accounts)
    sigs, items = batch(world, members, scores, 0, deadline)
    logs = settle_batch(world, pid, t, 0, items, sigs)
    assert log_view(logs) == log_view(single_logs)
    assert snapshot(world, jids, t, accounts) == expected
    assert [world.job(j)["state"] for j in jids] == [VERDICT] * 3
    assert len(events(logs, "VoteCounted")) == 3 * n_members
    assert [e.job_id for e in events(logs, "VerdictReached")] == jids
    assert len(events(logs, "RoundClosed")) == (3 if n_members == 3 else 0)


def test_settle_batch__zero_challenge_window_all_members__settles_like_single(world):
    pid, t, jids = open_jobs(world, 3, challenge_window=0, appeal_window=0)
    deadline = world.job(jids[0])["deadline"]
    scores = {jids[0]: [9000, 8500, 9900], jids[1]: [1000, 2000, 0], jids[2]: [6000, 7000, 6500]}
    accounts = [*world.evaluators, world.buyer, world.insurance]
    with boa.env.anchor():
        for jid, votes in single_votes(world, world.evaluators, scores, 0, deadline).items():
            world.settle(jid, votes)
        expected = snapshot(world, jids, t, accounts)
    sigs, items = batch(world, world.evaluators, scores, 0, deadline)
    logs = settle_batch(world, pid, t, 0, items, sigs)
    assert [world.job(j)["state"] for j in jids] == [SETTLED] * 3
    assert snapshot(world, jids, t, accounts) == expected
    assert [(e.job_id, e.score_bps) for e in events(logs, "JobSettled")] == [
        (jids[0], 9000), (jids[1], 1000), (jids[2], 6500)]


def settling_jobs(world, n: int) -> tuple[int, Any, list[int], int]:
    """n submitted jobs of a new zero-window pact (small values and a small penalty, so
    exposure and the members' stake cover them all), and their vote deadline."""
    cid = world.create_committee(world.evaluators, 2, penalty=E18 // 20)
    pid, t = world.create_pact(committee_id=cid, challenge_window=0, appeal_window=0)
    world.stake_agent()
    jids = [world.open(pid, value=E18 // 100) for _ in range(n)]
    for jid in jids:
        world.accept(jid)
        world.submit(jid)
    return pid, t, jids, world.job(jids[0])["deadline"]


def test_settle_batch__32_jobs_settling_at_once__all_settled(world):
    pid, t, jids, deadline = settling_jobs(world, 32)
    sigs, items = batch(world, world.evaluators, {j: [9000, 8000, 8500] for j in jids}, 0, deadline)
    logs = settle_batch(world, pid, t, 0, items, sigs)
    assert [world.job(j)["state"] for j in jids] == [SETTLED] * 32
    assert [e.job_id for e in events(logs, "JobSettled")] == jids


def test_settle_batch__33rd_job_settling_at_once__refused_whole(world):
    """A call may settle at most 32 jobs (a full 256-item call of settlements would pass
    EIP-7825's 2**24 gas cap): the 33rd refuses the call, and nothing is recorded."""
    pid, t, jids, deadline = settling_jobs(world, 33)
    sigs, items = batch(world, world.evaluators, {j: [9000, 8000, 8500] for j in jids}, 0, deadline)
    with boa.reverts("vote: batch settles too many jobs"):
        settle_batch(world, pid, t, 0, items, sigs)
    assert_nothing_recorded(world, jids)


def test_settle_batch__32_settling_and_more_verdict_only__counted(world):
    """Jobs that only reach a verdict (one reserved member silent) do not count against the
    settlement bound: in one call, 32 jobs settle and 8 more record their verdicts."""
    pid, t, jids, deadline = settling_jobs(world, 40)
    e = world.evaluators
    voters = {j: e if n < 32 else e[:2] for n, j in enumerate(jids)}
    sigs, by_member = [], []
    for m in e:
        sig, items = sign_batch(world, m, [(j, 9000) for j in jids if m in voters[j]], 0, deadline)
        sigs.append(sig)
        by_member.append({it[0]: it for it in items})
    items = [mine[j] for j in jids for mine in by_member if j in mine]
    logs = settle_batch(world, pid, t, 0, items, sigs)
    assert [world.job(j)["state"] for j in jids] == [SETTLED] * 32 + [VERDICT] * 8
    assert len(events(logs, "JobSettled")) == 32 and len(events(logs, "VerdictReached")) == 40


def test_settle_batch__below_threshold_then_single_vote__verdict(world):
    pid, t, jids = open_jobs(world, 2)
    e0, e1, _ = world.evaluators
    deadline = world.job(jids[0])["deadline"]
    s, items = sign_batch(world, e0, [(jids[0], 9000), (jids[1], 4000)], 0, deadline)
    logs = settle_batch(world, pid, t, 0, items, [s])
    assert [world.job(j)["state"] for j in jids] == [SUBMITTED, SUBMITTED]
    assert events(logs, "VerdictReached") == []
    assert world.job(jids[0])["evidence"] == evidence(jids[0], e0)
    world.settle(jids[1], [world.vote(e1, jids[1], 5000)])
    assert world.job(jids[1])["state"] == VERDICT
    assert world.escrow.median_score(jids[1], 0) == 4500


def test_settle_batch__single_leaf_tree__counted(world):
    pid, t, jids = open_jobs(world, 1)
    deadline = world.job(jids[0])["deadline"]
    sigs, items = batch(world, world.evaluators[:2], {jids[0]: [7000, 7100]}, 0, deadline)
    # one leaf: the root is the leaf
    assert [s[1] for s in sigs] == [leaf(world, jid, sc, ev, 0, deadline)
                                    for jid, _, sc, ev in items]
    settle_batch(world, pid, t, 0, items, sigs)
    assert world.job(jids[0])["state"] == VERDICT


# ---------------------------------------------------------------------------------------------
# round 1


def challenged_jobs(world, n: int) -> tuple[int, Any, list[int]]:
    pid, t, jids = open_jobs(world, n)
    for jid in jids:
        world.settle(jid, [world.vote(m, jid, 9000) for m in world.evaluators])
    world.warp(1)  # a challenge comes after round-0 close
    for jid in jids:
        with boa.env.prank(world.buyer.address):
            world.facet.challenge(jid, t.as_tuple(), 9000, value=t.challenge_bond)
        assert world.job(jid)["state"] == CHALLENGED
    return pid, t, jids


def test_settle_batch__round1_challenged_jobs__same_lanes_as_appeal_then_resolves(world):
    pid, t, jids = challenged_jobs(world, 2)
    members = world.appeal_evaluators
    deadline = world.job(jids[0])["deadline"]  # P
    scores = {jids[0]: [3000, 2000, 1000], jids[1]: [9000, 9500, 8000]}
    with boa.env.anchor():
        single_logs = []
        for jid, votes in single_votes(world, members, scores, 1, deadline).items():
            world.appeal(jid, votes)
            single_logs += world.facet.get_logs()
        expected = [world.escrow.job(j) for j in jids]
    sigs, items = batch(world, members, scores, 1, deadline)
    logs = settle_batch(world, pid, t, 1, items, sigs)
    assert log_view(logs) == log_view(single_logs)
    assert [world.escrow.job(j) for j in jids] == expected
    assert [world.escrow.median_score(j, 1) for j in jids] == [2000, 9000]
    assert [(e.member, e.round) for e in events(logs, "VoteCounted")][:3] == [(m.address, 1) for m in members]
    for jid in jids:  # every appeal member voted: resolve needs no wait
        with boa.env.prank(world.attacker.address):
            world.facet.resolve(jid, t.as_tuple())
        assert world.job(jid)["state"] == SETTLED


def test_settle_batch__round1_on_unchallenged_job__not_in_appeal(world):
    pid, t, jids = open_jobs(world, 1)
    sigs, items = batch(world, world.appeal_evaluators[:2], {jids[0]: [5000, 5000]}, 1, world.job(jids[0])["deadline"])
    with boa.reverts("vote: job not in appeal"):
        settle_batch(world, pid, t, 1, items, sigs)


def test_settle_batch__round1_by_round0_member__not_an_appeal_member(world):
    pid, t, jids = challenged_jobs(world, 1)
    sigs, items = batch(world, world.evaluators[:1], {jids[0]: [5000]}, 1, world.job(jids[0])["deadline"])
    with boa.reverts("vote: not an appeal member"):
        settle_batch(world, pid, t, 1, items, sigs)


def test_settle_batch__round0_signature_posted_as_round1__bad_signature(world):
    """ADR 011: the escrow rebuilds the leaves as round-1 votes, so the round-0 root as signed
    differs from them; with the root the round-1 leaves do rebuild, the round-0 signature is
    still not over the round-1 batch."""
    pid, t, jids = challenged_jobs(world, 1)
    members = world.appeal_evaluators[:2]
    deadline = world.job(jids[0])["deadline"]
    sigs, items = batch(world, members, {jids[0]: [5000, 5000]}, 0, deadline)
    with boa.reverts("vote: votes differ from the signed batch"):
        settle_batch(world, pid, t, 1, items, sigs)
    roots1 = [leaf(world, jid, sc, ev, 1, deadline) for jid, _, sc, ev in items]
    relabelled = [(m, r1, dl, sig) for (m, _, dl, sig), r1 in zip(sigs, roots1, strict=True)]
    # signed for round 0: the round-1 digest of the batch does not match
    with boa.reverts("vote: bad signature"):
        settle_batch(world, pid, t, 1, items, relabelled)
    assert world.job(jids[0])["r1"] == 0


# ---------------------------------------------------------------------------------------------
# refusals


@pytest.fixture
def two_jobs(world):
    """(pact id, terms, job ids, signatures, items): a valid 2-member batch over 2 jobs."""
    pid, t, jids = open_jobs(world, 2)
    deadline = world.job(jids[0])["deadline"]
    sigs, items = batch(world, world.evaluators[:2], {jids[0]: [9000, 8000], jids[1]: [4000, 5000]}, 0, deadline)
    return pid, t, jids, sigs, items


def assert_nothing_recorded(world, jids):
    for jid in jids:
        j = world.job(jid)
        assert (j["state"], j["r0"], j["evidence"]) == (SUBMITTED, 0, b"\x00" * 32)


def test_settle_batch__valid_fixture_batch__counted(world, two_jobs):
    pid, t, jids, sigs, items = two_jobs
    settle_batch(world, pid, t, 0, items, sigs)
    assert [world.job(j)["state"] for j in jids] == [VERDICT, VERDICT]


@pytest.mark.parametrize("round_", [2, 255, 2**256 - 1])
def test_settle_batch__round_above_1__bad_round(world, two_jobs, round_):
    pid, t, _, sigs, items = two_jobs
    with boa.reverts("vote: bad round"):
        settle_batch(world, pid, t, round_, items, sigs)


def test_settle_batch__no_items__no_votes(world, two_jobs):
    pid, t, _, sigs, _ = two_jobs
    with boa.reverts("vote: no votes"):
        settle_batch(world, pid, t, 0, [], sigs)


def test_settle_batch__wrong_terms__refused(world, two_jobs):
    pid, t, _, sigs, items = two_jobs
    other = t.model_copy(update={"evaluator_fee": t.evaluator_fee + 1})
    with boa.reverts("escrow: wrong pact terms"):
        settle_batch(world, pid, other, 0, items, sigs)
    _, t2 = world.create_pact(spec_hash=keccak(b"spec:v2"))  # another pact's terms, this pact's id
    with boa.reverts("escrow: wrong pact terms"):
        settle_batch(world, pid, t2, 0, items, sigs)


@pytest.mark.parametrize("how", ["other-key", "other-root", "other-deadline", "empty", "high-s"])
def test_settle_batch__bad_batch_signature__bad_signature(world, two_jobs, how):
    """A signature not over the (root, deadline) presented. ADR 011: the root must be the one
    the items rebuild (else "votes differ", test above), so "other-root" changes e0's votes
    and presents their root, and "other-deadline" presents the root of the votes rebuilt with
    that deadline: the signature over the signed batch then fails."""
    pid, t, jids, sigs, items = two_jobs
    member, root, deadline, sig = sigs[0]
    if how == "other-key":
        sig = eip712.sign_digest(world.evaluators[1].key, world.escrow.batch_digest(root, 0, deadline))
    elif how == "other-root":
        items = [(j, m, sc + 1 if m == member else sc, ev) for j, m, sc, ev in items]
        root = eip712.merkle_root([leaf(world, j, sc, ev, 0, deadline)
                                   for j, m, sc, ev in items if m == member])
    elif how == "other-deadline":
        deadline -= 1
        root = eip712.merkle_root([leaf(world, j, sc, ev, 0, deadline)
                                   for j, m, sc, ev in items if m == member])
    elif how == "empty":
        sig = b""
    else:
        r, s, v = sig[:32], int.from_bytes(sig[32:64], "big"), sig[64]
        sig = r + u256(eip712.SECP256K1_N - s) + bytes([55 - v])
    with boa.reverts("vote: bad signature"):
        settle_batch(world, pid, t, 0, items, [(member, root, deadline, sig), sigs[1]])
    assert_nothing_recorded(world, jids)


def test_settle_batch__member_without_batch_signature__refused(world, two_jobs):
    pid, t, jids, sigs, items = two_jobs
    with boa.reverts("vote: member did not sign batch"):
        settle_batch(world, pid, t, 0, items, sigs[:1])
    assert_nothing_recorded(world, jids)


@pytest.mark.parametrize("how", ["score", "evidence", "claimed-by-other-member", "other-job",
                                 "item-missing", "item-added"])
def test_settle_batch__votes_differ_from_the_signed_batch__refused(world, two_jobs, how):
    """(Was: an item not under its root, "vote: bad proof".) The root the escrow rebuilds from
    e0's items must be the root e0 signed: a changed score, evidence or job, another member's
    vote under e0's name, a vote of the signed batch left out, or one it does not hold, differ."""
    pid, t, jids, sigs, items = two_jobs
    e0_job0, e1_job0, e0_job1, e1_job1 = items
    jid, member, score, ev = e0_job0
    if how == "score":
        score += 1
    elif how == "evidence":
        ev = keccak(ev)
    elif how == "claimed-by-other-member":  # e1's vote, checked against e0's root
        score, ev = e1_job0[2], e1_job0[3]
    elif how == "other-job":  # e0's job-0 vote presented as its job-1 vote
        jid = jids[1]
    bad = (jid, member, score, ev)
    if how == "item-missing":  # e0 signed both jobs' votes; the call carries one of them
        ordered = [e0_job0, e1_job0, e1_job1]
    elif how == "item-added":  # e0 signed its job-0 vote only; the call adds its job-1 vote
        e0_alone, _ = sign_batch(world, world.evaluators[0], [(jids[0], score)], 0, sigs[0][2])
        sigs = [e0_alone, sigs[1]]
        ordered = items
    elif jid == jids[0]:
        ordered = [bad, e1_job0, e0_job1, e1_job1]
    else:
        ordered = [e1_job0, bad, e1_job1]
    with boa.reverts("vote: votes differ from the signed batch"):
        settle_batch(world, pid, t, 0, ordered, sigs)
    assert_nothing_recorded(world, jids)


def test_settle_batch__items_reordered__votes_differ_from_the_signed_batch(world):
    """The root is rebuilt in call order: the members' votes over three jobs posted in
    another order than signed differ (a sorted-pair tree of 3 leaves depends on the order)."""
    pid, t, jids = open_jobs(world, 3)
    deadline = world.job(jids[0])["deadline"]
    scores = {jids[0]: [9000, 8000], jids[1]: [4000, 5000], jids[2]: [6000, 6100]}
    sigs, items = batch(world, world.evaluators[:2], scores, 0, deadline)
    moved = [*items[4:], *items[:4]]  # job 2's votes first
    with boa.reverts("vote: votes differ from the signed batch"):
        settle_batch(world, pid, t, 0, moved, sigs)
    assert_nothing_recorded(world, jids)
    settle_batch(world, pid, t, 0, items, sigs)  # the signed order counts
    assert [world.job(j)["state"] for j in jids] == [VERDICT] * 3


def test_settle_batch__signature_without_votes__refused(world, two_jobs):
    """A member's batch signature with none of its votes in the call is refused, even when the
    signature is valid and the other members' votes would count."""
    pid, t, jids, sigs, items = two_jobs
    deadline = world.job(jids[0])["deadline"]
    s, _ = sign_batch(world, world.evaluators[2], [(jids[0], 9000)], 0, deadline)
    with boa.reverts("vote: signature without votes"):
        settle_batch(world, pid, t, 0, items, [*sigs, s])
    assert_nothing_recorded(world, jids)


def test_settle_batch__job_fields_missing__refused(world, two_jobs):
    """Each run of a job's items needs its fields: one run short reverts, nothing counted."""
    pid, t, jids, sigs, items = two_jobs
    fields = [world.escrow.jobs.of(jids[0])]
    with boa.reverts("vote: job fields missing"), boa.env.prank(world.attacker.address):
        world.facet.settle_batch(pid, t.as_tuple(), 0, items, sigs, job=fields)
    assert_nothing_recorded(world, jids)


def test_settle_batch__split_job_runs__each_run_needs_its_fields(world, two_jobs):
    """Items of one job need not be adjacent, but each run is loaded afresh from its own
    fields entry; the second run of job 0 sees the lanes of the first run's votes."""
    pid, t, jids, sigs, items = two_jobs
    e0_job0, e1_job0, e0_job1, e1_job1 = items
    # e0: job 0, job 1; e1: job 0, job 1 -- in the signed orders, job 0 split into two runs
    ordered = [e0_job0, e0_job1, e1_job0, e1_job1]
    logs = settle_batch(world, pid, t, 0, ordered, sigs)
    assert [world.job(j)["state"] for j in jids] == [VERDICT, VERDICT]
    assert [e.job_id for e in events(logs, "VerdictReached")] == jids


def test_settle_batch__job_of_another_pact__refused(world, two_jobs):
    pid, t, jids, sigs, items = two_jobs
    _, _, other = open_jobs(world, 1)
    osigs, oitems = batch(world, world.evaluators[:2], {other[0]: [9000, 9000]}, 0, world.job(other[0])["deadline"])
    with boa.reverts("vote: job of another pact"):
        settle_batch(world, pid, t, 0, oitems, osigs)
    with boa.reverts("vote: job of another pact"):
        settle_batch(world, pid, t, 0, [*items, *oitems], sigs)
    assert_nothing_recorded(world, [*jids, *other])


def test_settle_batch__unknown_job__refused(world, two_jobs):
    pid, t, _, sigs, items = two_jobs
    with boa.reverts("escrow: unknown job"):
        settle_batch(world, pid, t, 0, [(999, *items[0][1:])], sigs)


@pytest.mark.parametrize("where", ["same-call", "after-single-vote", "later-batch"])
def test_settle_batch__duplicate_vote__refused(world, two_jobs, where):
    pid, t, jids, sigs, items = two_jobs
    if where == "same-call":
        bad = [items[0], items[0], *items[1:]]
        with boa.reverts("vote: duplicate vote"):
            settle_batch(world, pid, t, 0, bad, sigs)
        assert_nothing_recorded(world, jids)
        return
    if where == "after-single-vote":
        world.settle(jids[0], [world.vote(world.evaluators[0], jids[0], 1234)])
    else:  # e0's job-0 vote in a batch of its own first
        s0, its0 = sign_batch(world, world.evaluators[0], [(jids[0], 9000)], 0, sigs[0][2])
        settle_batch(world, pid, t, 0, its0, [s0])
    r0 = world.job(jids[0])["r0"]
    with boa.reverts("vote: duplicate vote"):
        settle_batch(world, pid, t, 0, items, sigs)
    assert world.job(jids[0])["r0"] == r0
    assert world.job(jids[1])["r0"] == 0


@pytest.mark.parametrize("who", ["outsider", "appeal-member"])
def test_settle_batch__signer_not_reserved__refused(world, two_jobs, who):
    pid, t, jids, sigs, items = two_jobs
    m = world.attacker if who == "outsider" else world.appeal_evaluators[0]
    s, its = sign_batch(world, m, [(jids[0], 9000)], 0, world.job(jids[0])["deadline"])
    with boa.reverts("vote: member not reserved"):
        settle_batch(world, pid, t, 0, [*items[:2], *its], [*sigs, s])
    assert_nothing_recorded(world, jids)


def test_settle_batch__member_accepted_after_open__not_reserved(world):
    late = new_actor(world, "evaluator-late-batch")
    cid = world.create_committee([*world.evaluators, late], 2, accept=False)
    vid = world.registry.current_version(cid)
    for m in world.evaluators:
        with boa.env.prank(m.address):
            world.registry.accept_version(vid)
    pid, t, jids = open_jobs(world, 1, committee_id=cid)
    with boa.env.prank(late.address):
        world.registry.accept_version(vid)
    s, its = sign_batch(world, late, [(jids[0], 9000)], 0, world.job(jids[0])["deadline"])
    with boa.reverts("vote: member not reserved"):
        settle_batch(world, pid, t, 0, its, [s])


@pytest.mark.parametrize(("deadline", "post_at", "ok"), [
    ("E", "E", True), ("E", "E+1", False), ("now-1", "now", False), ("E+100", "E+1", False)],
    ids=["at-E", "after-E", "batch-deadline-past", "later-deadline-after-E"])
def test_settle_batch__deadline__counted_only_until_min_of_batch_deadline_and_E(world, deadline, post_at, ok):
    pid, t, jids = open_jobs(world, 2)
    now, e = world.now(), world.job(jids[0])["deadline"]
    at = {"E": e, "E+1": e + 1, "now": now, "now-1": now - 1, "E+100": e + 100}
    sigs, items = batch(world, world.evaluators[:2], {jids[0]: [9000, 9000], jids[1]: [9000, 9000]}, 0, at[deadline])
    world.warp(at[post_at] - world.now())
    if ok:
        settle_batch(world, pid, t, 0, items, sigs)
        assert [world.job(j)["state"] for j in jids] == [VERDICT, VERDICT]
    else:
        with boa.reverts("vote: deadline passed"):
            settle_batch(world, pid, t, 0, items, sigs)
        assert_nothing_recorded(world, jids)


def test_settle_batch__job_not_submitted__not_in_evaluation(world):
    pid, t, jids = open_jobs(world, 1, submit=False)
    assert world.job(jids[0])["state"] == ACCEPTED
    sigs, items = batch(world, world.evaluators[:2], {jids[0]: [9000, 9000]}, 0, world.now() + 100)
    with boa.reverts("vote: job not in evaluation"):
        settle_batch(world, pid, t, 0, items, sigs)


def test_settle_batch__after_early_close__round_closed(world, two_jobs):
    pid, t, jids, sigs, items = two_jobs
    world.settle(jids[0], [world.vote(m, jids[0], 7000) for m in world.evaluators])
    with boa.reverts("vote: round closed"):
        settle_batch(world, pid, t, 0, items, sigs)
    assert world.job(jids[1])["r0"] == 0


def test_settle_batch__revoked_key__refused(world, two_jobs):
    pid, t, jids, sigs, items = two_jobs
    with boa.env.prank(world.evaluators[1].address):
        world.registry.revoke_key()
    with boa.reverts("vote: key revoked"):
        settle_batch(world, pid, t, 0, items, sigs)
    assert_nothing_recorded(world, jids)
