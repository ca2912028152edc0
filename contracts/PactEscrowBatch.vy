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
BATCH_LEVELS: constant(uint256) = 9  # subtree heights of a member's votes in one call: 0..8 (MAX_BATCH = 256 leaves)
# jobs one call may settle (round 0 closed with a verdict under a zero challenge window): a
# settlement writes ~14 words, so 256 of them would pass EIP-7825's 2**24 per-transaction gas
# cap; with this bound the heaviest full call measured takes 46 % of it (ADR 013)
MAX_BATCH_SETTLES: constant(uint256) = 32


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
            fields in order. At most MAX_BATCH_SETTLES (32) of its jobs may settle in the
            call (a zero challenge window and every reserved member's vote); split a batch
            that would settle more.
    """
    assert self != SELF, "escrow: call the escrow, not the facet"
    assert round <= 1, "vote: bad round"
    assert len(items) > 0, "vote: no votes"
    th: bytes32 = core._check_terms(pact_id, terms)
    # per signature k: its member, deadline, roster index (per committee version), and the
    # Merkle peaks of the votes seen so far (peaks[k][h]: the subtree of height h, present
    # where bit h of count[k] is set), so each root is built as its votes arrive
    signers: DynArray[address, core.MAX_MEMBERS] = []
    deadlines: uint256[core.MAX_MEMBERS] = empty(uint256[core.MAX_MEMBERS])
    at: uint256[core.MAX_MEMBERS] = empty(uint256[core.MAX_MEMBERS])
    peaks: bytes32[BATCH_LEVELS][core.MAX_MEMBERS] = empty(bytes32[BATCH_LEVELS][core.MAX_MEMBERS])
    count: uint256[core.MAX_MEMBERS] = empty(uint256[core.MAX_MEMBERS])
    for k: uint256 in range(len(signatures), bound=core.MAX_MEMBERS):
        signers.append(signatures[k].member)
        deadlines[k] = signatures[k].deadline
    jid: uint256 = 0
    runs: uint256 = 0
    j: core.Job = empty(core.Job)
    r: types.Roster = empty(types.Roster)
    vid: uint256 = max_value(uint256)  # no version yet: the first job reads its roster
    before: uint256 = 0
    lanes: uint256 = 0
    evidence: bytes32 = empty(bytes32)
    settled: uint256 = 0
    for it: types.BatchItem in items:
        if it.job_id != jid:
            if jid != 0:
                if self._flush(jid, j, r.threshold, r.active, terms.challenge_window, before, lanes, round) != core.NO_SETTLE:
                    settled = self._settle_now(jid, j, terms, r, lanes, evidence, settled)
            jid = it.job_id
            assert runs < len(jobs), "vote: job fields missing"
            j = core._load(jid, jobs[runs], th)
            runs += 1
            assert j.pact_id == pact_id, "vote: job of another pact"
            nvid: uint256 = j.cv
            if round == 1:
                nvid = j.av
            if nvid != vid:
                vid = nvid
                r = staticcall core.IRegistry(core.REGISTRY).roster(vid, True, round == 1 or terms.challenge_window == 0)  # bond and penalty only where needed
                for k: uint256 in range(len(signers), bound=core.MAX_MEMBERS):
                    at[k] = core._index(r.members, signers[k])
            lanes = core._lanes(jid, j.lanes, len(r.members))
            before = lanes
            evidence = it.evidence_hash
        k: uint256 = core.MAX_MEMBERS
        for s: uint256 in range(len(signers), bound=core.MAX_MEMBERS):
            if signers[s] == it.member:
                k = s
                break
        assert k < core.MAX_MEMBERS, "vote: member did not sign batch"
        # the vote's leaf joins member k's peaks: merge while the subtree of its height exists
        h: bytes32 = core._vote_hash(jid, j.deliverable, terms.spec_hash, it.score_bps, it.evidence_hash, round, deadlines[k])
        c: uint256 = count[k]
        count[k] = c + 1
        height: uint256 = 0
        for _: uint256 in range(BATCH_LEVELS):
            if c & 1 == 0:
                break
            h = core._pair(peaks[k][height], h)
            c >>= 1
            height += 1
        peaks[k][height] = h
        if round == 0:
            lanes = core._count0(jid, j.state, j.deadline, j.close_at, j.reserved, r.active, lanes, at[k], it.member, it.score_bps, it.evidence_hash, deadlines[k])
        else:
            lanes = core._count1(jid, j, r, terms.asset, lanes, it.member, it.score_bps, it.evidence_hash, deadlines[k], empty(bytes32), b"")
    if self._flush(jid, j, r.threshold, r.active, terms.challenge_window, before, lanes, round) != core.NO_SETTLE:
        settled = self._settle_now(jid, j, terms, r, lanes, evidence, settled)
    # each member's root: its peaks folded from the lowest (the last votes) up; then its one
    # signature
    for k: uint256 in range(len(signatures), bound=core.MAX_MEMBERS):
        c: uint256 = count[k]
        assert c > 0, "vote: signature without votes"
        root: bytes32 = empty(bytes32)
        started: bool = False
        for height: uint256 in range(BATCH_LEVELS):
            if c >> height == 0:
                break
            if (c >> height) & 1 == 1:
                if started:
                    root = core._pair(peaks[k][height], root)
                else:
                    root = peaks[k][height]
                    started = True
        bs: types.BatchSignature = signatures[k]
        assert root == bs.votes_root, "vote: votes differ from the signed batch"
        d: bytes32 = core._digest(keccak256(abi_encode(core.VOTE_BATCH_TYPEHASH, bs.votes_root, round, bs.deadline)))
        assert core._valid_signature(bs.member, d, bs.signature), "vote: bad signature"


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
def _settle_now(job_id: uint256, j: core.Job, p: types.PactTerms, r: types.Roster, lanes: uint256, evidence: bytes32, settled: uint256) -> uint256:
    """
    @dev Settles a job whose round 0 closed with a verdict under a zero window; returns the
         call's count of settlements, at most MAX_BATCH_SETTLES.
    """
    assert settled < MAX_BATCH_SETTLES, "vote: batch settles too many jobs"
    jj: core.Job = j
    jj.lanes = lanes
    core._settle_score(job_id, jj, p, r, core._median(lanes), lanes, jj.reserved, evidence)
    return settled + 1


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
