"""Votes and vote batches through the client: signing as EIP-712 typed data, verification under
the contract's counting and signature rules, and settle_batch for both rounds."""

from __future__ import annotations

import pytest
from eth_account import Account
from eth_hash.auto import keccak

from pactbond import JobState, eip712
from pactbond.errors import InvalidInputError, InvalidSignatureError, VoteRejectedError
from pactbond.votes import SignedVoteBatch, VoteBatch
from tests.client.conftest import E18, HOUR, client, deploy_mock, send
from tests.client.test_client_errors import refused


def test_sign_vote__typed_data__same_bytes_as_eth_account_and_contract_digest(world):
    jid = world.job(world.pact(), E18)
    e = world.evals[0]
    vote = e.vote_for(jid, 7321, keccak(b"evidence"))
    signed = e.sign_vote(vote)
    doc = eip712.typed_data(vote, e.chain_id, e.escrow.address)
    assert signed.signature == bytes(
        Account.sign_typed_data(bytes(world.devnet.account(4).key), full_message=doc).signature)
    digest = e._esc.read("vote_digest", jid, vote.deliverable_hash, vote.spec_hash,
                         vote.score_bps, vote.evidence_hash, 0, vote.deadline)
    assert digest == eip712.digest(e.domain(), eip712.vote_struct_hash(vote))
    assert e._esc.read("is_valid_signature", e.address, digest, signed.signature) is True
    e.verify_vote(signed)
    world.keeper.settle(jid, world.votes(jid, [1, 2, 3]))


def test_verify_vote__round1_rules__typed_refusals(world):
    k = world.keeper
    pid = world.pact(challenge_window=HOUR, appeal_window=HOUR)
    jid = world.job(pid, E18)
    with pytest.raises(VoteRejectedError, match="vote: job not in appeal"):
        world.appeal[0].vote_for(jid, 5000, keccak(b"e"), round_=1)
    k.settle(jid, world.votes(jid, [9000, 9000, 9000]))
    world.warp(1)
    world.buyer.challenge(jid, 9000)
    assert k.job(jid).state == JobState.CHALLENGED
    ok = world.votes(jid, [2000], round_=1)[0]
    k.verify_vote(ok)
    not_appeal = world.evals[0].sign_vote(ok.vote)
    with pytest.raises(VoteRejectedError, match="vote: not an appeal member"):
        k.verify_vote(not_appeal)
    refused(k, VoteRejectedError, "vote: not an appeal member",
            lambda: k.appeal(jid, [not_appeal]),
            k._esc.call("appeal", jid, world.pacts[pid].as_tuple(), k.job(jid).fields.as_tuple(),
                        [not_appeal.as_tuple()]))
    with pytest.raises(InvalidInputError):  # a round-1 vote posted as round 0
        k.settle(jid, [ok])
    world.warp(HOUR + 1)
    with pytest.raises(VoteRejectedError, match="vote: deadline passed"):
        k.verify_vote(ok)
    k.resolve(jid)  # no round-1 quorum by the appeal deadline: s0 stands, the bond returns
    assert k.job(jid).state == JobState.SETTLED


@pytest.mark.parametrize("n", [1, 2, 3, 5, 8, 9, 17])
def test_merkle_proof__any_size__every_leaf_walks_to_the_root(n):
    """The proofs Evidence arguments carry (eip712.merkle_proof) lead each leaf to
    eip712.merkle_root by the sorted-pair rule the escrow walks."""
    leaves = [keccak(b"%d" % i) for i in range(n)]
    root = eip712.merkle_root(leaves)
    for i in range(n):
        h = leaves[i]
        for sib in eip712.merkle_proof(leaves, i):
            h = keccak(min(h, sib) + max(h, sib))
        assert h == root, i


def batches_for(world, jids: list[int], scores: list[list[int]], round_: int, first: int = 0):
    """Each member's signed batch (from member `first` on) of its scores[i][member] on jids."""
    members = world.appeal if round_ else world.evals
    out = []
    for k, m in enumerate(members):
        if k < first:
            continue
        votes = [(jid, s[k], keccak(b"batch %d %d" % (jid, k))) for jid, s in zip(jids, scores, strict=True)]
        b = m.sign_batch(m.vote_batch(votes, round_))
        m.verify_batch(b)
        out.append(b)
    return out


def test_settle_batch__both_rounds__verdicts_appeals_resolved(world):
    k = world.keeper
    pid = world.pact(challenge_window=HOUR, appeal_window=HOUR, min_appeal_delta_bps=500,
                     cap_initial=5 * E18)
    jids = [world.job(pid, E18 + i) for i in range(3)]
    r0 = [[9000, 8000, 7000], [6000, 6500, 7000], [3000, 2000, 1000]]
    k.settle_batch(pid, 0, batches_for(world, jids, r0, 0))
    assert [k.job(j).round0 for j in jids] == [dict(enumerate(s)) for s in r0]
    assert [k.job(j).state for j in jids] == [JobState.VERDICT] * 3
    world.warp(1)
    world.buyer.challenge(jids[0])
    world.agent.challenge(jids[2])
    r1 = [[1000, 1500, 2000], [0, 0, 0], [9000, 9500, 10_000]]
    appealed = [jids[0], jids[2]]
    previews = [k.preview_appeal(j, r1[i * 2]) for i, j in enumerate(appealed)]
    k.settle_batch(pid, 1, batches_for(world, appealed, [r1[0], r1[2]], 1))
    assert [k.job(j).round1 for j in appealed] == [dict(enumerate(r1[0])), dict(enumerate(r1[2]))]
    for j, p in zip(appealed, previews, strict=True):
        k.resolve(j)
        resolved = next(k.events(names="AppealResolved", job_id=j))
        assert (resolved.overturned, resolved.challenger_won, resolved.score_bps) == (
            p.appeal.overturned, p.appeal.challenger_won, p.appeal.final_score)
        assert p.appeal.overturned and p.appeal.challenger_won
    world.warp(HOUR + 1)
    k.finalize(jids[1])
    assert [k.job(j).state for j in jids] == [JobState.SETTLED] * 3


def test_settle_batch__bad_batches__typed_refusals(world):
    k = world.keeper
    pid, other = world.pact(), world.pact()
    jid, foreign = world.job(pid, E18), world.job(other, E18)
    t = world.pacts[pid].as_tuple()
    e0, e1 = world.evals[0], world.evals[1]

    def raw(batches):
        items = [i for b in batches for i in b.items().values()]
        jobs = list(dict.fromkeys(i[0] for i in items))
        return k._esc.call("settle_batch", pid, t, 0, [k.job(j).fields.as_tuple() for j in jobs],
                           items, [b.signature_tuple() for b in batches])

    # a batch over two pacts' jobs (vote_batch refuses to make one: built from two)
    d = min(k.job(jid).deadline, k.job(foreign).deadline)
    parts = [e0.vote_batch([v], deadline=d) for v in ((jid, 9000, keccak(b"a")),
                                                      (foreign, 9000, keccak(b"b")))]
    mixed = e0.sign_batch(VoteBatch(round=0, deadline=d,
                                    votes=[*parts[0].votes, *parts[1].votes]))
    refused(k, VoteRejectedError, "vote: job of another pact",
            lambda: k.settle_batch(pid, 0, [mixed]), raw([mixed]))
    outsider = world.appeal[0].sign_batch(e0.vote_batch([(jid, 9000, keccak(b"a"))]))
    refused(k, VoteRejectedError, "vote: member not reserved",
            lambda: k.settle_batch(pid, 0, [outsider]), raw([outsider]))
    good = e0.sign_batch(e0.vote_batch([(jid, 9000, keccak(b"a"))]))
    # a vote naming another deliverable: the root the escrow rebuilds from the job's differs
    other = good.batch.model_copy(update={"votes": [good.batch.votes[0].model_copy(
        update={"deliverable_hash": keccak(b"another deliverable")})]})
    elsewhere = e0.sign_batch(other)
    refused(k, VoteRejectedError, "vote: votes differ from the signed batch",
            lambda: k.settle_batch(pid, 0, [elsewhere]), raw([elsewhere]))
    forged = SignedVoteBatch(batch=good.batch, member=e1.address, signature=good.signature)
    refused(k, InvalidSignatureError, "vote: bad signature",
            lambda: k.settle_batch(pid, 0, [forged]), raw([forged]))
    with pytest.raises(InvalidSignatureError):
        k.verify_batch(forged)
    with pytest.raises(VoteRejectedError, match="vote: no votes"):
        k.settle_batch(pid, 0, [])
    # batches no call could carry are not signed: too many votes, a job twice, two pacts
    with pytest.raises(InvalidInputError, match="257 votes: a batch holds at most 256"):
        e0.vote_batch([(jid, 9000, keccak(b"a"))] * 257)
    with pytest.raises(InvalidInputError, match=rf"one vote per job: job\(s\) \[{jid}\] twice"):
        e0.vote_batch([(jid, 9000, keccak(b"a")), (jid, 8000, keccak(b"b"))])
    with pytest.raises(VoteRejectedError, match="vote: job of another pact"):
        e0.vote_batch([(jid, 9000, keccak(b"a")), (foreign, 9000, keccak(b"b"))])
    with pytest.raises(InvalidInputError, match="one batch per member"):
        k.settle_batch(pid, 0, [good, good])
    k.settle_batch(pid, 0, [good])
    refused(k, VoteRejectedError, "vote: duplicate vote",
            lambda: k.settle_batch(pid, 0, [good]), raw([good]))
    assert k.job(jid).round0 == {0: 9000}


def test_settle_batch__more_than_32_jobs_settling__refused_before_sending_then_split(world):
    """A zero-window call closing round 0 on 33 jobs would settle them all: the client refuses
    it as the escrow does (at most 32 settlements a call), sending nothing, whether the closing
    votes are all in the call or partly counted before; verdicts alone are not bounded; 32 in
    one call and the rest in another settle."""
    k = world.keeper
    cid = world.admin.create_committee([e.address for e in world.evals], 2, 10 * E18, E18 // 20)
    for e in world.evals:
        e.accept_version(e.current_version(cid))
    pid = world.pact(committee_id=cid)
    jids = [world.job(pid, E18 // 100) for _ in range(33)]
    scores = [[9000, 8000, 8500]] * 33
    batches = batches_for(world, jids, scores, 0)

    def raw(batches):
        items = [m.items()[j] for j in jids for m in batches]
        return k._esc.call("settle_batch", pid, world.pacts[pid].as_tuple(), 0,
                           [k.job(j).fields.as_tuple() for j in jids], items,
                           [b.signature_tuple() for b in batches])

    e = refused(k, VoteRejectedError, "vote: batch settles too many jobs",
                lambda: k.settle_batch(pid, 0, batches), raw(batches))
    assert "more than 32 of these jobs would settle" in e.hint  # the client's own check
    assert {k.job(j).state for j in jids} == {JobState.SUBMITTED}
    k.settle_batch(pid, 0, batches[:2])  # two of three members: 33 verdicts, nothing settles
    assert {k.job(j).state for j in jids} == {JobState.VERDICT}
    # the third member's votes close round 0 on every job: the counted votes are the client's too
    refused(k, VoteRejectedError, "vote: batch settles too many jobs",
            lambda: k.settle_batch(pid, 0, batches[2:]), raw(batches[2:]))
    k.settle_batch(pid, 0, batches_for(world, jids[:32], scores[:32], 0, first=2))
    assert [k.job(j).state for j in jids] == [JobState.SETTLED] * 32 + [JobState.VERDICT]
    k.settle_batch(pid, 0, batches_for(world, jids[32:], scores[32:], 0, first=2))
    assert k.job(jids[32]).state == JobState.SETTLED


def test_settle_batch__revoked_member_silent__others_settle__bound_counts_them(
        world, devnet, manifest):
    """A reserved member that revoked its key no longer holds round 0 open: the other two
    members' votes settle each job, so 33 of them in one call are refused (client and escrow
    alike) and 32 settle."""
    k, (e0, e1) = world.keeper, world.evals[:2]
    member = client(devnet, manifest, 13)
    cid = world.admin.create_committee([e0.address, e1.address, member.address], 2, 10 * E18,
                                       E18 // 20)
    for x in (e0, e1, member):
        x.accept_version(x.current_version(cid))
    member.stake(20 * E18, evaluator=True)
    pid = world.pact(committee_id=cid)
    jids = [world.job(pid, E18 // 100) for _ in range(33)]
    member.revoke_key()

    def signed(js):
        return [m.sign_batch(m.vote_batch([(j, 9000, keccak(b"r %d %d" % (j, i))) for j in js]))
                for i, m in enumerate((e0, e1))]

    both = signed(jids)
    items = [b.items()[j] for j in jids for b in both]
    e = refused(k, VoteRejectedError, "vote: batch settles too many jobs",
                lambda: k.settle_batch(pid, 0, both),
                k._esc.call("settle_batch", pid, world.pacts[pid].as_tuple(), 0,
                            [k.job(j).fields.as_tuple() for j in jids], items,
                            [b.signature_tuple() for b in both]))
    assert "more than 32 of these jobs would settle" in e.hint  # the client's own check
    k.settle_batch(pid, 0, signed(jids[:32]))
    assert [k.job(j).state for j in jids] == [JobState.SETTLED] * 32 + [JobState.SUBMITTED]


def test_check_signature__erc1271_member__contract_rules_after_ecrecover(world):
    """A member with code: its ERC-1271 answer decides, through the escrow's own check (a
    Safe-style signature longer than 65 bytes included); a wrong magic value is refused."""
    k, owner = world.keeper, world.devnet.account(12)
    wallet = deploy_mock(k.w3, world.devnet.account(0), "MockWallet1271", owner.address, 0)
    digest = keccak(b"a vote digest")
    sig = eip712.sign_digest(bytes(owner.key), digest)
    k._check_signature(wallet.address, digest, sig)
    k._check_signature(wallet.address, digest, sig + b"\x00" * 65)  # 130 bytes: ERC-1271 only
    with pytest.raises(InvalidSignatureError, match="vote: bad signature"):
        k._check_signature(owner.address, digest, sig + b"\x00")  # an EOA: exactly 65 bytes
    send(k.w3, world.devnet.account(0), wallet.functions.set_mode(1))  # wrong magic value
    with pytest.raises(InvalidSignatureError, match="vote: bad signature"):
        k._check_signature(wallet.address, digest, sig)
