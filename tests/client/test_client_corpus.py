"""RELIABILITY C5 / C6 on the client side: the whole bad-vote corpus, posted by a relayer,
is refused by the client's checks before sending (Pactbond.settle / appeal / verify_vote,
nothing sent) with the very reason the contract gives when the same bytes are sent unchecked
(Pactbond.transact); a valid vote goes through both ways. Signatures (the 41 items of
tests/contracts/unit/votes/conftest.py), signers, content, time, state and ERC-1271 replies."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from eth_hash.auto import keccak

from pactbond import Pactbond
from pactbond.errors import ContractError
from tests.client.conftest import BOND, E18, HOUR, PENALTY, client, deploy_mock, send
from tests.contracts.unit.votes.conftest import CORPUS, VoteCtx, build_corpus

SCORE = 7000


def reasons(k: Pactbond, post: Any, raw_call: Any) -> tuple[str, str]:
    """(the client's reason, sending nothing; the contract's reason for the unchecked call)."""
    nonce = k.w3.eth.get_transaction_count(k.address)
    with pytest.raises(ContractError) as checked:
        post()
    assert k.w3.eth.get_transaction_count(k.address) == nonce
    with pytest.raises(ContractError) as sent:
        k.transact(raw_call)
    return checked.value.reason, sent.value.reason


def settle_call(k: Pactbond, jid: int, votes: list[tuple[Any, ...]]) -> Any:
    return k._job_call("settle", k.job(jid), votes)


def appeal_call(k: Pactbond, jid: int, votes: list[tuple[Any, ...]]) -> Any:
    return k._job_call("appeal", k.job(jid), votes)


def ctx(world: Any, jid: int, member_index: int = 4) -> VoteCtx:
    k = world.keeper
    j = k.job(jid)
    acct = world.devnet.account(member_index)
    return VoteCtx(chain_id=k.chain_id, verifying=k.escrow.address, key=bytes(acct.key),
                   member=acct.address, job_id=jid, deliverable=j.deliverable_hash,
                   spec=k.pact(j.pact_id).spec_hash, score=SCORE, evidence=keccak(b"evidence"),
                   deadline=j.deadline)


@pytest.fixture(scope="module")
def corpus_job(world):
    return world.job(world.pact(), E18)


@pytest.mark.parametrize("name", CORPUS)
def test_signature_corpus__client_and_contract__same_refusal(world, corpus_job, name):
    k = world.keeper
    c = ctx(world, corpus_job)
    sig = build_corpus(c, bytes(world.devnet.account(5).key), bytes(world.devnet.account(11).key))[name]
    vote = (c.member, c.score, c.evidence, c.deadline, sig)
    got = reasons(k, lambda: k.settle(corpus_job, [vote]), settle_call(k, corpus_job, [vote]))
    assert got == ("vote: bad signature", "vote: bad signature")


def test_signature_corpus__control__the_valid_vote_counts(world, corpus_job):
    k = world.keeper
    c = ctx(world, corpus_job)
    k.settle(corpus_job, [c.signed_vote()])
    assert k.job(corpus_job).round0 == {0: SCORE}


def signed(world: Any, member_index: int, jid: int, score: int = SCORE, round_: int = 0,
           deadline: int | None = None) -> tuple[Any, ...]:
    """A SignedVote tuple by dev account `member_index` (no client-side range checks)."""
    c = ctx(world, jid, member_index)
    c = replace(c, score=score, round=round_, deadline=c.deadline if deadline is None else deadline)
    return c.signed_vote()


def test_signer_content_and_state_corpus__client_and_contract__same_refusal(world):
    k = world.keeper
    pid = world.pact(challenge_window=HOUR, appeal_window=HOUR)
    jid = world.job(pid, E18)
    cases: dict[str, tuple[list[tuple[Any, ...]], str]] = {
        "outsider signs for itself": ([signed(world, 11, jid)], "vote: member not reserved"),
        "appeal member signs round 0": ([signed(world, 7, jid)], "vote: member not reserved"),
        "score above 10000": ([signed(world, 4, jid, score=10_001)], "vote: score above 10000"),
        "expired signed deadline": ([signed(world, 4, jid, deadline=k.now() - 1)], "vote: deadline passed"),
        "duplicate in one call": ([signed(world, 4, jid), signed(world, 4, jid)], "vote: duplicate vote"),
        "one invalid among enough valid": (
            [signed(world, 4, jid), signed(world, 5, jid), (*signed(world, 6, jid)[:4], bytes(65))],
            "vote: bad signature"),
    }
    for name, (votes, reason) in cases.items():
        assert reasons(k, lambda v=votes: k.settle(jid, v), settle_call(k, jid, votes)) == (reason, reason), name
    # a vote before submission, on an unknown job, on a job already terminal
    accepted = world.job(pid, E18, upto="accept")
    v = (world.evals[0].address, SCORE, keccak(b"e"), 2**40, bytes(65))
    assert reasons(k, lambda: k.settle(accepted, [v]), settle_call(k, accepted, [v])) == (
        "vote: job not in evaluation",) * 2
    with pytest.raises(ContractError) as unknown:
        k.settle(10**6, [v])
    assert unknown.value.reason == "escrow: unknown job"
    k.settle(jid, [signed(world, 4, jid), signed(world, 5, jid), signed(world, 6, jid)])
    world.warp(HOUR + 1)
    k.finalize(jid)
    late = signed(world, 4, jid)
    assert reasons(k, lambda: k.settle(jid, [late]), settle_call(k, jid, [late])) == (
        "vote: job not in evaluation",) * 2


def test_round_corpus__closed_round_duplicate_and_round1_rules__same_refusal(world):
    k = world.keeper
    pid = world.pact(challenge_window=HOUR, appeal_window=HOUR)
    jid = world.job(pid, E18)
    k.settle(jid, [signed(world, i, jid) for i in (4, 5)])
    dup = signed(world, 4, jid, score=1)
    assert reasons(k, lambda: k.settle(jid, [dup]), settle_call(k, jid, [dup])) == ("vote: duplicate vote",) * 2
    k.settle(jid, [signed(world, 6, jid)])  # every reserved member counted: round 0 closes early
    world.warp(1)
    world.buyer.challenge(jid, SCORE)
    p = k.job(jid).deadline
    r1_by_r0_member = signed(world, 4, jid, round_=1, deadline=p)
    assert reasons(k, lambda: k.appeal(jid, [r1_by_r0_member]), appeal_call(k, jid, [r1_by_r0_member])) == (
        "vote: not an appeal member",) * 2
    ok = signed(world, 7, jid, round_=1, deadline=p)
    k.appeal(jid, [ok])
    assert reasons(k, lambda: k.appeal(jid, [ok]), appeal_call(k, jid, [ok])) == ("vote: duplicate vote",) * 2
    # a round-1 vote from a member whose stake is below the appeal bond
    member = world.appeal[1]
    s = k.evaluator_stake(member.address)
    member.request_unstake(s.unlocked - s.reserved - BOND + 1)
    low = signed(world, 8, jid, round_=1, deadline=p)
    assert reasons(k, lambda: k.appeal(jid, [low]), appeal_call(k, jid, [low])) == (
        "vote: member stake below bond",) * 2
    # a round-1 vote after the appeal deadline
    world.warp(HOUR + 1)
    late = signed(world, 9, jid, round_=1, deadline=p)
    assert reasons(k, lambda: k.appeal(jid, [late]), appeal_call(k, jid, [late])) == ("vote: deadline passed",) * 2


def test_round0_after_early_close__round_closed__same_refusal(world):
    """A member listed after open cannot post, and once every reserved member has voted the
    round is closed to any further vote."""
    k = world.keeper
    member = client(world.devnet, world.manifest, 13)
    cid = world.admin.create_committee([*[e.address for e in world.evals], member.address], 2, BOND, PENALTY)
    for x in world.evals:
        x.accept_version(x.current_version(cid))
    pid = world.pact(committee_id=cid, challenge_window=HOUR, appeal_window=HOUR)
    jid = world.job(pid, E18)
    member.accept_version(member.current_version(cid))  # after the open: no reservation
    member.stake(20 * E18, evaluator=True)
    not_reserved = signed(world, 13, jid)
    assert reasons(k, lambda: k.settle(jid, [not_reserved]), settle_call(k, jid, [not_reserved])) == (
        "vote: member not reserved",) * 2
    k.settle(jid, [signed(world, i, jid) for i in (4, 5, 6)])
    assert reasons(k, lambda: k.settle(jid, [not_reserved]), settle_call(k, jid, [not_reserved])) == (
        "vote: round closed",) * 2


def as_contract(world: Any, address: str, call: Any, value: int = 0) -> None:
    """Send a Call from a contract's address (anvil impersonation): the wallet member accepts
    its version and stakes as itself."""
    w3 = world.keeper.w3
    world.devnet.rpc("anvil_impersonateAccount", [address])
    world.devnet.rpc("anvil_setBalance", [address, hex(100 * E18)])
    try:
        h = w3.eth.send_transaction({"from": address, "to": call.to, "data": call.data, "value": value})
        assert w3.eth.wait_for_transaction_receipt(h)["status"] == 1
    finally:
        world.devnet.rpc("anvil_stopImpersonatingAccount", [address])


@pytest.fixture(scope="module")
def wallet_job(world):
    """A job judged by [an ERC-1271 wallet (owner key: account 12), evaluators 4 and 5]."""
    k, owner, a0 = world.keeper, world.devnet.account(12), world.devnet.account(0)
    wallet = deploy_mock(k.w3, a0, "MockWallet1271", owner.address, 0)
    cid = world.admin.create_committee([wallet.address, *[e.address for e in world.evals[:2]]], 2,
                                       BOND, PENALTY)
    vid = k.current_version(cid)
    as_contract(world, wallet.address, k._reg.call("accept_version", vid))
    as_contract(world, wallet.address, k._esc.call("stake", "0x" + "00" * 20, 20 * E18, True), 20 * E18)
    for e in world.evals[:2]:
        e.accept_version(vid)
    jid = world.job(world.pact(committee_id=cid), E18)
    assert k.job(jid).reserved == 0b111
    return jid, wallet


@pytest.mark.parametrize(("mode", "name"), [(1, "wrong magic"), (2, "reverts"), (3, "burns gas"),
                                            (4, "short reply"), (5, "long reply")])
def test_erc1271_corpus__client_and_contract__same_refusal(world, wallet_job, mode, name):
    k, a0 = world.keeper, world.devnet.account(0)
    jid, wallet = wallet_job
    c = VoteCtx(**{**ctx(world, jid, 12).__dict__, "member": wallet.address})
    send(k.w3, a0, wallet.functions.set_mode(mode))
    try:
        vote = c.signed_vote()
        got = reasons(k, lambda: k.settle(jid, [vote]), settle_call(k, jid, [vote]))
        assert got == ("vote: bad signature", "vote: bad signature"), name
    finally:
        send(k.w3, a0, wallet.functions.set_mode(0))


def test_erc1271_corpus__control__the_wallet_vote_counts(world, wallet_job):
    k = world.keeper
    jid, wallet = wallet_job
    c = VoteCtx(**{**ctx(world, jid, 12).__dict__, "member": wallet.address})
    k.settle(jid, [c.signed_vote()])
    assert k.job(jid).round0 == {0: SCORE}
