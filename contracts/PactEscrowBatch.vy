# pragma version 0.4.3
# pragma nonreentrancy on
# pragma evm-version prague
"""
@title pactbond escrow batch facet
@license Apache-2.0
@notice settle_batch (many jobs' votes under one VoteBatch signature per member),
        request_unstake and withdraw_evaluator_stake, for PactEscrow. Runs only by delegatecall
        (PactEscrow -> PactEscrowAppeals -> here), on PactEscrow's storage (the shared
        escrow_core module); called directly, every function refuses.
"""

from .modules import types
from .modules import escrow_core as core

initializes: core

exports: (core.REGISTRY, core.EVALUATOR_COOLDOWN)

SELF: immutable(address)


@deploy
def __init__(registry: address, evaluator_cooldown: uint256):
    """
    @notice Deploy the facet with the same immutables as its escrow.
    """
    SELF = self
    core.__init__(registry, evaluator_cooldown)


@external
def settle_batch(pact_id: uint256, terms: types.PactTerms, round: uint256, jobs: DynArray[types.JobFields, core.MAX_BATCH], items: DynArray[types.BatchItem, core.MAX_BATCH], signatures: DynArray[types.BatchSignature, core.MAX_MEMBERS]):
    """
    @notice Post votes for many jobs of one pact, with one signature per member over a
            VoteBatch: the Merkle root (sorted pairs, an odd node carried up) of its Vote struct
            hashes, rebuilt here from that member's items in call order, so the call carries
            every vote of each signed batch and no proofs. Each vote is counted under the rules
            of single votes; items of one job must be adjacent, and `jobs` holds each run's job
            fields in order.
    """
    assert self != SELF, "escrow: call the escrow, not the facet"
    assert round <= 1, "vote: bad round"
    assert len(items) > 0, "vote: no votes"
    core._check_terms(pact_id, terms)
    leaves: DynArray[bytes32, core.MAX_BATCH] = []
    signer: DynArray[uint256, core.MAX_BATCH] = []
    jid: uint256 = 0
    runs: uint256 = 0
    j: core.Job = empty(core.Job)
    r: types.Roster = empty(types.Roster)
    vid: uint256 = 0
    before: uint256 = 0
    lanes: uint256 = 0
    evidence: bytes32 = empty(bytes32)
    for it: types.BatchItem in items:
        if it.job_id != jid:
            if jid != 0:
                if self._flush(jid, j, r.threshold, r.active, terms.challenge_window, before, lanes, round) != core.NO_SETTLE:
                    self._settle_now(jid, j, terms, r, lanes, evidence)
            jid = it.job_id
            assert runs < len(jobs), "vote: job fields missing"
            j = core._load(jid, jobs[runs])
            runs += 1
            assert j.pact_id == pact_id, "vote: job of another pact"
            nvid: uint256 = j.cv
            if round == 1:
                nvid = j.av
            if nvid != vid:
                vid = nvid
                r = staticcall core.IRegistry(core.REGISTRY).roster(vid, True, round == 1 or terms.challenge_window == 0)  # bond and penalty only where needed
            lanes = core._lanes(jid, j.lanes, len(r.members))
            before = lanes
            evidence = it.evidence_hash
        k: uint256 = core.MAX_MEMBERS
        for idx: uint256 in range(core.MAX_MEMBERS):
            if idx >= len(signatures):
                break
            if signatures[idx].member == it.member:
                k = idx
                break
        assert k < core.MAX_MEMBERS, "vote: member did not sign batch"
        deadline: uint256 = signatures[k].deadline
        leaves.append(core._vote_hash(jid, j.deliverable, terms.spec_hash, it.score_bps, it.evidence_hash, round, deadline))
        signer.append(k)
        if round == 0:
            lanes = core._count0(jid, j.state, j.deadline, j.close_at, j.reserved, r.members, r.active, lanes, it.member, it.score_bps, it.evidence_hash, deadline)
        else:
            lanes = core._count1(jid, j, r, terms.asset, lanes, it.member, it.score_bps, it.evidence_hash, deadline, empty(bytes32), b"")
    if self._flush(jid, j, r.threshold, r.active, terms.challenge_window, before, lanes, round) != core.NO_SETTLE:
        self._settle_now(jid, j, terms, r, lanes, evidence)
    # each member's root from its votes, in call order; then its one signature
    for k: uint256 in range(core.MAX_MEMBERS):
        if k >= len(signatures):
            break
        layer: DynArray[bytes32, core.MAX_BATCH] = []
        for i: uint256 in range(core.MAX_BATCH):
            if i >= len(leaves):
                break
            if signer[i] == k:
                layer.append(leaves[i])
        assert len(layer) > 0, "vote: signature without votes"
        bs: types.BatchSignature = signatures[k]
        assert self._root(layer) == bs.votes_root, "vote: votes differ from the signed batch"
        d: bytes32 = core._digest(keccak256(abi_encode(core.VOTE_BATCH_TYPEHASH, bs.votes_root, round, bs.deadline)))
        assert core._valid_signature(bs.member, d, bs.signature), "vote: bad signature"


@pure
@internal
def _root(leaves: DynArray[bytes32, core.MAX_BATCH]) -> bytes32:
    """
    @dev The sorted-pair Merkle root of `leaves` (pactbond.eip712.merkle_root): each layer
         pairs neighbours, and a last odd node is carried up unchanged.
    """
    layer: DynArray[bytes32, core.MAX_BATCH] = leaves
    n: uint256 = len(layer)
    for _: uint256 in range(9):
        if n == 1:
            break
        m: uint256 = 0
        for q: uint256 in range(core.MAX_BATCH // 2 + 1):
            i: uint256 = 2 * q
            if i >= n:
                break
            h: bytes32 = layer[i]
            if i + 1 < n:
                b: bytes32 = layer[i + 1]
                if convert(h, uint256) < convert(b, uint256):
                    h = keccak256(concat(h, b))
                else:
                    h = keccak256(concat(b, h))
            layer[m] = h
            m += 1
        n = m
    return layer[0]


@internal
def _flush(job_id: uint256, j: core.Job, threshold: uint256, active: uint256, window: uint256, before: uint256, lanes: uint256, round: uint256) -> uint256:
    """
    @dev A job's run of items is counted: store its lanes (round 0: with the verdict and close
         rules). Returns the score to settle with now, or NO_SETTLE. Scalars, not the terms and
         roster: Vyper copies struct arguments, and this runs once per job of the batch.
    """
    if round == 0:
        return core._after_round0(job_id, j, threshold, active, window, before, lanes)
    core._put_lanes(job_id, lanes)
    return core.NO_SETTLE


@internal
def _settle_now(job_id: uint256, j: core.Job, p: types.PactTerms, r: types.Roster, lanes: uint256, evidence: bytes32):
    jj: core.Job = j
    jj.lanes = lanes
    core._settle_score(job_id, jj, p, r, core._median(lanes), lanes, jj.reserved, evidence)


@external
def request_unstake(asset: address, amount: uint256):
    """
    @notice Start the cooldown for `amount` of evaluator stake that is neither reserved nor
            already pending. A new request adds to the pending amount and restarts the cooldown.
    """
    assert self != SELF, "escrow: call the escrow, not the facet"
    assert amount > 0, "stake: zero amount"
    w: uint256 = core.evaluator_stake_word[msg.sender][asset]
    assert amount + (w >> 128) <= w % core.U128, "stake: exceeds unreserved stake"
    core.evaluator_stake_word[msg.sender][asset] = w - amount
    pending: uint256 = core.evaluator_pending_word[msg.sender][asset] % core.U128 + amount
    assert pending < core.U128, "stake: amount too large"
    unlock_at: uint256 = block.timestamp + core.EVALUATOR_COOLDOWN
    core.evaluator_pending_word[msg.sender][asset] = pending | (unlock_at << 128)
    log core.UnstakeRequested(account=msg.sender, asset=asset, amount=amount, unlock_at=unlock_at)


@external
def withdraw_evaluator_stake(asset: address, to: address = msg.sender):
    """
    @notice After the cooldown, withdraw the pending evaluator stake. Reservations are always
            backed by stake outside the pending amount, so penalties never reach it.
    """
    assert self != SELF, "escrow: call the escrow, not the facet"
    assert to != empty(address), "stake: zero recipient"
    pw: uint256 = core.evaluator_pending_word[msg.sender][asset]
    pending: uint256 = pw % core.U128
    assert pending > 0, "stake: nothing pending"
    assert block.timestamp >= pw >> 128, "stake: cooldown not over"
    core.evaluator_pending_word[msg.sender][asset] = 0
    log core.StakeWithdrawn(account=msg.sender, asset=asset, amount=pending, evaluator=True)
    core._push(asset, to, pending)
