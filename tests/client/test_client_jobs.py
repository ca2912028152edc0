"""Jobs rebuilt from the escrow's logs (ADR 011): `Pactbond.job` folds a job's logs into the
fields every job call passes and checks them against the stored word, through every transition
(early round-0 close and challenge included), at past blocks, from a cache that a transition
makes stale; `Pactbond.evidence` finds a counted round-0 vote's signature again for finalize and
resolve (a single vote, a batch leaf, none)."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from eth_hash.auto import keccak
from eth_utils.abi import event_abi_to_log_topic

from pactbond import JobState, Pactbond, eip712
from pactbond.client import NO_EVIDENCE, Job, JobLogsError, merged_escrow_abi
from pactbond.errors import InvalidInputError, NodeError, UnknownObjectError
from pactbond.events import Feedback
from pactbond.jobfields import ACCEPTED, CHALLENGED, OPEN, SETTLED, SUBMITTED, JobRecord
from pactbond.models import Vote
from pactbond.votes import SignedVote
from tests.client.conftest import BOND, E18, HOUR, PENALTY, World, deploy_mock, rpc_proxy, send


def reader(world: World) -> Pactbond:
    """A fresh read-only client: nothing read from the logs yet."""
    return Pactbond.connect(world.devnet.url, world.manifest)


def as_contract(world: World, address: str, call: Any, value: int = 0) -> None:
    """Send a Call from a contract's address (anvil impersonation)."""
    w3 = world.keeper.w3
    world.devnet.rpc("anvil_impersonateAccount", [address])
    world.devnet.rpc("anvil_setBalance", [address, hex(100 * E18)])
    try:
        h = w3.eth.send_transaction({"from": address, "to": call.to, "data": call.data,
                                     "value": value})
        assert w3.eth.wait_for_transaction_receipt(h)["status"] == 1
    finally:
        world.devnet.rpc("anvil_stopImpersonatingAccount", [address])


def feedback(pb: Pactbond, jid: int) -> Feedback:
    ev = next(pb.events(names="Feedback", job_id=jid))
    assert isinstance(ev, Feedback)
    return ev


def test_job__every_transition_early_close_and_challenge__rebuilt_and_read_back_at_each_block(
        world):
    k, buyer, agent = world.keeper, world.buyer, world.agent
    pid = world.pact(challenge_window=HOUR, appeal_window=HOUR)
    seen: list[tuple[int, Job]] = []

    def step() -> Job:
        j = k.job(jid)
        assert j.fields.matches(jid, k._esc.read("job_word", jid)[0], k.pact(pid).hash())
        assert reader(world).job(jid) == j  # the same job rebuilt from nothing but the logs
        seen.append((k.w3.eth.block_number, j))
        return j

    jid = buyer.open_job(pid, agent.address, E18)
    j = step()
    assert (j.state, j.fields.state, j.buyer, j.agent, j.value) == (
        JobState.OPEN, OPEN, buyer.address, agent.address, E18)
    assert (j.reserved, j.round0, j.round1, j.evidence_hash) == (0b111, {}, {}, bytes(32))
    agent.accept(jid)
    j = step()
    assert (j.state, j.fields.state, j.deadline) == (JobState.ACCEPTED, ACCEPTED,
                                                     j.fields.deadline)
    agent.submit(jid, keccak(b"deliverable"))
    j = step()
    assert (j.state, j.deliverable_hash, j.round0_close) == (
        JobState.SUBMITTED, keccak(b"deliverable"), j.deadline)
    votes = world.votes(jid, [6000, 7000, 8000])
    k.settle(jid, votes[:2])  # the threshold: VERDICT, derived (the stored state is SUBMITTED)
    j = step()
    assert (j.state, j.fields.state, j.round0) == (JobState.VERDICT, SUBMITTED,
                                                   {0: 6000, 1: 7000})
    assert j.evidence_hash == votes[0].vote.evidence_hash
    k.settle(jid, votes[2:])  # every reserved member voted: round 0 closes early (JobUpdated)
    j = step()
    assert j.state == JobState.VERDICT and j.round0_close < j.deadline
    assert j.round0_close == k.w3.eth.get_block("latest")["timestamp"]
    world.warp(1)
    buyer.challenge(jid, 7000)  # the round-0 lanes move into the fields (JobUpdated)
    j = step()
    assert (j.state, j.fields.state, j.fields.r0 != 0, j.challenged_by_agent) == (
        JobState.CHALLENGED, CHALLENGED, True, False)
    assert (j.round0, j.round1) == ({0: 6000, 1: 7000, 2: 8000}, {})
    k.appeal(jid, world.votes(jid, [1000, 1500, 2000], round_=1))
    j = step()
    assert (j.round0, j.round1) == ({0: 6000, 1: 7000, 2: 8000}, {0: 1000, 1: 1500, 2: 2000})
    k.resolve(jid)  # every appeal member voted: before the appeal deadline
    j = step()
    assert (j.state, j.fields.state, j.round1) == (JobState.SETTLED, SETTLED,
                                                   {0: 1000, 1: 1500, 2: 2000})
    # resolve re-proved the first counted round-0 vote: Feedback carries its evidence
    assert feedback(k, jid).evidence_hash == votes[0].vote.evidence_hash
    # every past state again, from the cache, and from a fresh client that reads the logs only
    # up to the block asked for
    for b, then in seen:
        assert k.job(jid, block=b) == then
    fresh = reader(world)
    first, then = seen[0]
    assert fresh.job(jid, block=first) == then
    assert fresh._book.scanned == first
    for b, then in seen:
        assert fresh.job(jid, block=b) == then
    with pytest.raises(UnknownObjectError, match="escrow: unknown job"):
        fresh.job(jid, block=first - 1)  # not opened yet


def test_job__cache__one_call_unchanged_and_rescanned_after_another_clients_transition(world):
    pid = world.pact()
    jid = world.job(pid, E18, upto="open")
    sent: list[str] = []

    def counted(req: dict[str, Any], forward: Any) -> Any:
        sent.append(req["method"])
        return forward()

    with rpc_proxy(world.devnet.url, counted) as url:
        pb = Pactbond.connect(url, world.manifest)
        assert pb.job(jid).state == JobState.OPEN
        sent.clear()
        assert pb.job(jid).state == JobState.OPEN
        assert sent == ["eth_call"]  # the stored word: the cached fields still match it
        world.agent.accept(jid)  # another client's transition: the cached fields go stale
        sent.clear()
        assert pb.job(jid).state == JobState.ACCEPTED
        assert "eth_getLogs" in sent
        sent.clear()
        assert pb.job(jid).state == JobState.ACCEPTED
        assert sent == ["eth_call"]
        # votes change the lanes, not the fields: the first vote's log is read once
        world.agent.submit(jid, keccak(b"cached deliverable"))
        votes = world.votes(jid, [5000, 6000])
        world.keeper.settle(jid, votes[:1])
        j = pb.job(jid)
        assert (j.round0, j.evidence_hash) == ({0: 5000}, votes[0].vote.evidence_hash)
        world.keeper.settle(jid, votes[1:])
        sent.clear()
        j = pb.job(jid)
        assert (j.state, j.round0) == (JobState.VERDICT, {0: 5000, 1: 6000})
        assert sent == ["eth_call"]


@pytest.mark.parametrize("shorter", [False, True])
def test_job__chain_reverted_under_the_cache__rebuilt_from_the_new_chain(world, shorter):
    """The chain goes back (evm_revert) under what the cache read, and the job takes another
    path there, the new chain as high as the one read or lower: the stale fields no longer
    match, and the job's logs are read again from the new chain."""
    pid = world.pact()
    jid = world.job(pid, E18, upto="open")
    pb = reader(world)
    snapshot = world.devnet.rpc("evm_snapshot")
    world.agent.accept(jid)
    if shorter:
        world.devnet.rpc("evm_mine")
    assert pb.job(jid).state == JobState.ACCEPTED
    world.devnet.rpc("evm_revert", [snapshot])
    world.buyer.cancel(jid)
    j = pb.job(jid)
    assert (j.state, j.fields.state) == (JobState.CANCELLED, 7)
    assert pb.job(jid, block=pb.w3.eth.block_number - 1).state == JobState.OPEN


def test_job__logs_that_do_not_rebuild_the_word__JobLogsError_says_which(world, devnet,
                                                                          manifest):
    pid = world.pact()
    jid = world.job(pid, E18, upto="accept")
    lost = "0x" + next(event_abi_to_log_topic(e) for e in merged_escrow_abi()  # type: ignore
                       if e.get("name") == "JobAccepted").hex()

    def pruned(req: dict[str, Any], forward: Any) -> Any:
        reply = forward()
        if req["method"] == "eth_getLogs":  # a node that lost the JobAccepted logs
            reply["result"] = [lg for lg in reply["result"] if lg["topics"][0] != lost]
        return reply

    with rpc_proxy(devnet.url, pruned) as url:
        pb = Pactbond.connect(url, manifest)
        with pytest.raises(JobLogsError) as info:
            pb.job(jid)
        assert isinstance(info.value, NodeError)
        msg = str(info.value)
        assert f"job {jid} at block" in msg and "do not hash to the stored word" in msg
        assert "state 1" in msg  # what the logs gave: the job still OPEN
        with pytest.raises(UnknownObjectError, match="escrow: unknown job"):
            pb.job(10**6)  # never opened: unknown, as before


# -- evidence ---------------------------------------------------------------------------------


def test_evidence__single_vote__the_signed_vote_and_finalize_carries_it(world):
    k = world.keeper
    pid = world.pact(challenge_window=HOUR, appeal_window=HOUR)
    jid = world.job(pid, E18)
    assert k.evidence(jid) == NO_EVIDENCE  # no vote yet
    votes = world.votes(jid, [7000, 7500])
    k.settle(jid, votes[1:])  # evaluator 1 first
    k.settle(jid, votes[:1])
    m, s, ev, deadline, sig = votes[1].as_tuple()
    assert k.evidence(jid) == (m, s, ev, deadline, False, [], sig)
    world.warp(2 * HOUR + 2)
    k.finalize(jid)
    assert feedback(k, jid).evidence_hash == votes[1].vote.evidence_hash


def test_evidence__batch_leaf__proof_in_its_members_batch_and_finalize_carries_it(world):
    k, (e0, e1, e2) = world.keeper, world.evals
    pid = world.pact(challenge_window=HOUR, appeal_window=HOUR, cap_initial=5 * E18)
    j1, j2, j3 = (world.job(pid, E18 + i) for i in range(3))

    def batch(member: Pactbond, jids: list[int], score: int):
        return member.sign_batch(member.vote_batch(
            [(j, score + j % 7, keccak(b"leaf %d %s" % (j, member.address.encode())))
             for j in jids]))

    # each member's own order: a call keeps all three (j1, j2, j3 works; j3 before j1 cannot)
    b0, b1, b2 = batch(e0, [j1, j3], 6000), batch(e1, [j2, j3], 7000), batch(e2, [j1, j2], 8000)
    with pytest.raises(InvalidInputError, match="order their common jobs differently"):
        k.settle_batch(pid, 0, [b0, batch(e1, [j3, j1], 7000)])
    receipt = k.settle_batch(pid, 0, [b0, b1, b2])
    assert receipt["status"] == 1
    assert [k.job(j).round0.keys() for j in (j1, j2, j3)] == [{0, 2}, {1, 2}, {0, 1}]
    # the call goes j1, j2, j3, each job's votes in batch order: j3's first counted vote is e0's,
    # the second leaf of e0's batch (j1, j3)
    ev = k.evidence(j3)
    leaves = b0.batch.leaves()
    assert ev == (e0.address, b0.batch.votes[1].score_bps, b0.batch.votes[1].evidence_hash,
                  b0.batch.deadline, True, eip712.merkle_proof(leaves, 1), b0.signature)
    assert eip712.merkle_root([leaves[1], *ev[5]]) == b0.batch.root
    world.warp(2 * HOUR + 2)
    for j in (j1, j2, j3):
        k.finalize(j)
    assert feedback(k, j3).evidence_hash == b0.batch.votes[1].evidence_hash
    assert feedback(k, j2).evidence_hash == b1.batch.votes[0].evidence_hash


def test_evidence__vote_posted_by_a_wallets_own_call__none_and_finalize_without_it(world,
                                                                                   caplog):
    k, a0 = world.keeper, world.devnet.account(0)
    pid = world.pact(challenge_window=HOUR, appeal_window=HOUR)
    jid = world.job(pid, E18)
    relay = deploy_mock(k.w3, a0, "MockReentrantWallet", a0.address)
    votes = world.votes(jid, [9000, 9000])
    call = k._job_call("settle", k.job(jid), [v.as_tuple() for v in votes])
    send(k.w3, a0, relay.functions.execute(k.escrow.address, call.data, 0))
    assert k.job(jid).state == JobState.VERDICT
    caplog.set_level(logging.INFO, logger="pactbond.client")
    assert k.evidence(jid) == NO_EVIDENCE
    assert "not of the escrow" in caplog.text
    world.warp(2 * HOUR + 2)
    k.finalize(jid)
    assert feedback(k, jid).evidence_hash == bytes(32)


def test_evidence__wallet_member_no_longer_signs__finalize_without_it(world, caplog):
    """The first vote is an ERC-1271 wallet's; by finalize the wallet refuses its signature:
    the client passes no evidence rather than a call that would revert."""
    k, owner, a0 = world.keeper, world.devnet.account(12), world.devnet.account(0)
    wallet = deploy_mock(k.w3, a0, "MockWallet1271", owner.address, 0)
    cid = world.admin.create_committee([wallet.address, *[e.address for e in world.evals[:2]]],
                                       2, BOND, PENALTY)
    vid = k.current_version(cid)
    as_contract(world, wallet.address, k._reg.call("accept_version", vid))
    as_contract(world, wallet.address,
                k._esc.call("stake", "0x" + "00" * 20, 20 * E18, True), 20 * E18)
    for e in world.evals[:2]:
        e.accept_version(vid)
    pid = world.pact(committee_id=cid, challenge_window=HOUR, appeal_window=HOUR)
    jid = world.job(pid, E18)
    vote = world.evals[0].vote_for(jid, 8000, keccak(b"wallet evidence"))
    digest = eip712.digest(k.domain(), eip712.vote_struct_hash(vote))
    mine = SignedVote(vote=vote, member=wallet.address,
                      signature=eip712.sign_digest(bytes(owner.key), digest))
    other = world.evals[0].sign_vote(Vote(**{**vote.model_dump(), "score_bps": 8500}))
    k.settle(jid, [mine, other])
    assert k.evidence(jid)[:3] == (wallet.address, 8000, keccak(b"wallet evidence"))
    send(k.w3, a0, wallet.functions.set_mode(1))  # a wrong magic value from now on
    world.warp(2 * HOUR + 2)
    caplog.set_level(logging.WARNING, logger="pactbond.client")
    k.finalize(jid)
    assert "no longer passes" in caplog.text
    assert feedback(k, jid).evidence_hash == bytes(32)


def test_job_record__logs_folded_once_in_chain_order__fields_at_each_block():
    opened = {"buyer": "0x" + "11" * 20, "agent": "0x" + "22" * 20, "pact_id": 3,
              "committee_version": 4, "appeal_version": 5, "reserved": 0b11,
              "accept_deadline": 100, "value": 7, "fee": 1}
    rec = JobRecord(history=[])
    logs = [(10, 0, "JobOpened", opened), (12, 3, "JobAccepted", {"work_deadline": 200}),
            (12, 5, "VoteCounted", {"round": 0, "member": "0x" + "33" * 20, "score_bps": 9,
                                    "evidence_hash": b"\1" * 32}),
            (15, 1, "JobCancelled", {})]
    for block, idx, name, args in [*logs, *logs[1:]]:  # a range read twice
        rec.fold(block, name, args, b"", idx)
    assert [(b, f.state) for b, f in rec.history] == [(10, OPEN), (12, ACCEPTED), (15, 7)]
    assert rec.at(9) is None and rec.at(11) == rec.history[0][1] and rec.at(None).state == 7
    assert rec.at(12).deadline == 200 and rec.at(12).pact_id == 3 and rec.at(12).fee == 1
    assert rec.first_vote is not None and rec.first_vote_at(11) is None
    assert (rec.first_vote.score_bps, rec.first_vote_at(12).block) == (9, 12)
