# pragma version 0.4.3
# pragma nonreentrancy on
# pragma evm-version prague
"""
@title pactbond escrow appeals facet
@license Apache-2.0
@notice cancel, expire, challenge, appeal (round-1 votes) and resolve for PactEscrow. Runs
        only by delegatecall from PactEscrow's fallback, on PactEscrow's storage (the shared
        escrow_core module); called directly, every function refuses. Its own fallback runs
        the rest (batch vote posting, evaluator unstaking) in PactEscrowBatch, on the same
        storage.
"""

from .modules import types
from .modules import escrow_core as core

initializes: core

exports: (core.REGISTRY, core.EVALUATOR_COOLDOWN)

SELF: immutable(address)
BATCH: public(immutable(address))


@deploy
def __init__(registry: address, evaluator_cooldown: uint256, batch: address):
    """
    @notice Deploy the facet with the same immutables as its escrow: immutables live in code,
            so under delegatecall the facet reads its own (the escrow checks they are equal).
    @param batch The PactEscrowBatch facet, with the same immutables (checked here).
    """
    assert batch.is_contract, "escrow: batch facet has no code"
    assert staticcall core.IFacet(batch).REGISTRY() == registry, "escrow: facet registry differs"
    assert staticcall core.IFacet(batch).EVALUATOR_COOLDOWN() == evaluator_cooldown, "escrow: facet cooldown differs"
    SELF = self
    BATCH = batch
    core.__init__(registry, evaluator_cooldown)


@payable
@external
@reentrant
def __default__():
    """
    @notice Runs settle_batch, request_unstake and withdraw_evaluator_stake in PactEscrowBatch
            on the escrow's storage. Not locked here: each function there takes the shared
            reentrancy lock itself. Called at this facet's own address it refuses (the batch
            facet's guard would see this address, not its own, and pass).
    """
    self._only_delegated()
    ok: bool = False
    ret: Bytes[256] = b""
    ok, ret = raw_call(BATCH, msg.data, max_outsize=256, is_delegate_call=True, revert_on_failure=False)
    if not ok:
        raw_revert(ret)


@view
@internal
def _only_delegated():
    assert self != SELF, "escrow: call the escrow, not the facet"


@external
def cancel(job_id: uint256, terms: types.PactTerms, job: types.JobFields):
    """
    @notice Cancel an core.OPEN job: the buyer any time before acceptance, anyone after the accept
            deadline. Value and fee go back to the buyer; nothing is recorded.
    """
    self._only_delegated()
    j: core.Job = core._load(job_id, job, keccak256(abi_encode(terms)))
    assert j.state == core.OPEN, "escrow: not open"
    assert msg.sender == j.buyer or block.timestamp > j.deadline, "escrow: accept window open"
    j.state = core.CANCELLED
    core._save(job_id, j)
    core._end_reservations(job_id, j, terms.asset, staticcall core.IRegistry(core.REGISTRY).roster(j.cv, False, True), 0)
    core._credit(j.buyer, terms.asset, j.value + j.fee, job_id)
    log core.JobCancelled(job_id=job_id, by=msg.sender)


@external
def expire(job_id: uint256, terms: types.PactTerms, job: types.JobFields):
    """
    @notice Anyone expires a job past its deadline: core.ACCEPTED after the work deadline (no
            delivery: refund, slash as a fail, cap reset), or core.SUBMITTED without a verdict after
            the evaluation deadline (evaluator silence: the pact's declared default, silent
            members' reservations burned).
    """
    self._only_delegated()
    j: core.Job = core._load(job_id, job, keccak256(abi_encode(terms)))
    r: types.Roster = staticcall core.IRegistry(core.REGISTRY).roster(j.cv, False, True)
    to_agent: uint256 = 0
    slashed: uint256 = 0
    if j.state == core.ACCEPTED:
        assert block.timestamp > j.deadline, "escrow: work window open"
        j.state = core.EXPIRED_NO_DELIVERY
        core._save(job_id, j)
        core._end_reservations(job_id, j, terms.asset, r, 0)
        core._credit(j.buyer, terms.asset, j.value + j.fee, job_id)
        slashed = core._close_bond(job_id, j, terms, True)
        core._record(j, terms.asset, core.C_NO_DELIVERY, 0, slashed)
        core._set_bonus(j, 0)
        log core.JobExpired(job_id=job_id, no_delivery=True, to_agent=0, slashed=slashed)
        log core.Feedback(agent=j.agent, job_id=job_id, pact_id=j.pact_id, buyer=j.buyer, score_bps=0, evidence_hash=empty(bytes32))
        return
    lanes: uint256 = core._lanes(job_id, j.lanes, len(r.members))
    assert j.state == core.SUBMITTED and not core._verdict(j, r, lanes), "escrow: not expirable"
    assert block.timestamp > j.deadline, "escrow: evaluation window open"
    j.state = core.EXPIRED_NO_VERDICT
    core._save(job_id, j)
    core._end_reservations(job_id, j, terms.asset, r, j.reserved & ~core._voters(lanes))
    if terms.silence_release:
        to_agent = j.value
        core._to_free(j.agent, terms.asset, to_agent, job_id)
        core._credit(j.buyer, terms.asset, j.fee, job_id)
    else:
        core._credit(j.buyer, terms.asset, j.value + j.fee, job_id)
    core._close_bond(job_id, j, terms, False)
    core._record(j, terms.asset, core.C_NO_VERDICT, to_agent, 0)
    log core.JobExpired(job_id=job_id, no_delivery=False, to_agent=to_agent, slashed=0)


# ---------------------------------------------------------------------------------------------
# votes


@payable
@external
def challenge(job_id: uint256, terms: types.PactTerms, job: types.JobFields, expected_score: uint256):
    """
    @notice The buyer or the agent challenges the round-0 verdict after round-0 close and until
            the challenge deadline, paying the pact's challenge bond. Reverts "escrow: score
            changed" unless the round-0 median equals `expected_score`.
    """
    self._only_delegated()
    j: core.Job = core._load(job_id, job, keccak256(abi_encode(terms)))
    r: types.Roster = staticcall core.IRegistry(core.REGISTRY).roster(j.cv, False, False)
    lanes: uint256 = core._lanes(job_id, j.lanes, len(r.members))
    assert core._verdict(j, r, lanes), "escrow: no verdict to challenge"
    assert terms.challenge_window > 0, "escrow: pact has no challenges"
    # "after round-0 close": close_at is E, or the second every reserved unrevoked member voted
    assert block.timestamp > j.close_at, "escrow: round 0 open"
    assert block.timestamp <= j.close_at + terms.challenge_window, "escrow: challenge window closed"
    assert msg.sender == j.buyer or msg.sender == j.agent, "escrow: not a party"
    s0: uint256 = core._median(lanes)
    assert s0 == expected_score, "escrow: score changed"
    j.state = core.CHALLENGED
    j.by_agent = msg.sender == j.agent
    j.deadline = block.timestamp + terms.appeal_window
    # the round-0 lanes move into the fields; the clear bits start round 1
    j.r0 = lanes
    j.lanes = 0
    core._save(job_id, j)
    if lanes >= core.U64:
        core.lanes_ext[job_id] = 0
    core._updated(job_id, j)
    core._pull(terms.asset, msg.sender, terms.challenge_bond)
    log core.JobChallenged(job_id=job_id, challenger=msg.sender, score_bps=s0, appeal_deadline=j.deadline)


@external
def appeal(job_id: uint256, terms: types.PactTerms, job: types.JobFields, votes: DynArray[types.SignedVote, core.MAX_CALL_VOTES]):
    """
    @notice Post round-1 votes of the appeal committee version bound to the job, until the
            appeal deadline. A member counts if it accepted that version, its key is not
            revoked, and it holds the version's evaluator bond outside any pending withdrawal.
    """
    self._only_delegated()
    assert len(votes) > 0, "vote: no votes"
    j: core.Job = core._load(job_id, job, keccak256(abi_encode(terms)))
    r: types.Roster = staticcall core.IRegistry(core.REGISTRY).roster(j.av, True, True)
    lanes: uint256 = core._lanes(job_id, j.lanes, len(r.members))
    for sv: types.SignedVote in votes:
        digest: bytes32 = core._digest(core._vote_hash(job_id, j.deliverable, terms.spec_hash, sv.score_bps, sv.evidence_hash, 1, sv.deadline))
        lanes = core._count1(job_id, j, r, terms.asset, lanes, sv.member, sv.score_bps, sv.evidence_hash, sv.deadline, digest, sv.signature)
    core._put_lanes(job_id, lanes)


@external
def resolve(job_id: uint256, terms: types.PactTerms, job: types.JobFields, evidence: types.Evidence):
    """
    @notice Resolve a challenged job after the appeal deadline, or as soon as every accepted,
            unrevoked member of the appeal version has voted and the appeal threshold is met.
            Pays the appeal fee, the challenge bond and any penalties, then settles with the
            appeal median if it overturns the verdict, else with the round-0 median.
    """
    self._only_delegated()
    j: core.Job = core._load(job_id, job, keccak256(abi_encode(terms)))
    assert j.state == core.CHALLENGED, "escrow: not challenged"
    ar: types.Roster = staticcall core.IRegistry(core.REGISTRY).roster(j.av, True, False)
    r1: uint256 = core._lanes(job_id, j.lanes, len(ar.members))
    voters1: uint256 = core._voters(r1)
    n1: uint256 = core._popcount(voters1)
    if block.timestamp <= j.deadline:
        # early: every accepted, unrevoked appeal member has voted and the threshold is met
        assert n1 >= ar.threshold and ar.active & ~voters1 == 0, "escrow: appeal open"
    r: types.Roster = staticcall core.IRegistry(core.REGISTRY).roster(j.cv, False, True)
    r0: uint256 = j.r0
    s0: uint256 = core._median(r0)
    evidence_hash: bytes32 = core._evidence(job_id, j, terms, r, r0, evidence)
    challenger: address = j.buyer
    other: address = j.agent
    if j.by_agent:
        challenger = j.agent
        other = j.buyer
    asset: address = terms.asset
    if n1 < ar.threshold:
        # no round-1 quorum: s0 stands and the whole bond goes back
        core._credit(challenger, asset, terms.challenge_bond, job_id)
        core._bump_challenge(j, False, False)
        log core.AppealResolved(job_id=job_id, quorum=False, overturned=False, challenger_won=False, score_bps=s0)
        core._settle_score(job_id, j, terms, r, s0, r0, j.reserved, evidence_hash)
        return
    s1: uint256 = core._median(r1)
    pay0: uint256 = core._pay(terms, s0)
    pay1: uint256 = core._pay(terms, s1)
    overturned: bool = max(pay0, pay1) - min(pay0, pay1) >= terms.min_appeal_delta_bps
    favoured: address = j.agent
    if pay1 < pay0:
        favoured = j.buyer
    won: bool = overturned and favoured == challenger
    # the appeal fee to the counted round-1 voters (floor), remainder to the challenger
    fee_each: uint256 = terms.appeal_fee // n1
    to_challenger: uint256 = terms.appeal_fee - fee_each * n1
    for i: uint256 in range(core.MAX_MEMBERS):
        if (r1 >> (16 * i)) % core.LANE != 0:
            core._credit(ar.members[i], asset, fee_each, job_id)
    rest: uint256 = terms.challenge_bond - terms.appeal_fee
    if won:
        to_challenger += rest
    else:
        core._credit(other, asset, rest // 2, job_id)
        core._burn(asset, rest - rest // 2, job_id)
    core._credit(challenger, asset, to_challenger, job_id)
    # an overturn takes the reservation of every round-0 voter whose pay lies at least
    # min_appeal_delta beyond pay(s1) on pay(s0)'s side, for the favoured party
    release: uint256 = j.reserved
    if overturned:
        for i: uint256 in range(core.MAX_MEMBERS):
            lane: uint256 = (r0 >> (16 * i)) % core.LANE
            if lane == 0:
                continue
            pv: uint256 = core._pay(terms, lane - 1)
            hit: bool = pv + terms.min_appeal_delta_bps <= pay1
            if pay1 < pay0:
                hit = pv >= pay1 + terms.min_appeal_delta_bps
            if hit:
                m: address = r.members[i]
                core._take_penalty(m, asset, r.penalty)
                core._credit(favoured, asset, r.penalty, job_id)
                release &= ~(1 << i)
                log core.EvaluatorPenalized(job_id=job_id, member=m, amount=r.penalty, to=favoured)
    score: uint256 = s0
    if overturned:
        score = s1
    core._bump_challenge(j, overturned, j.by_agent and not won)
    log core.AppealResolved(job_id=job_id, quorum=True, overturned=overturned, challenger_won=won, score_bps=score)
    core._settle_score(job_id, j, terms, r, score, r0, release, evidence_hash)


