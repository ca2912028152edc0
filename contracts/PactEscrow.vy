# pragma version 0.4.3
# pragma nonreentrancy on
# pragma evm-version prague
"""
@title pactbond escrow
@license Apache-2.0
@notice The money of pactbond: agent and evaluator stakes, pacts (a hash of immutable terms),
        jobs, EIP-712 committee votes, settlement, challenges and appeals, reputation counters
        and credits. Job calls pass the pact's terms and the job's fields; the job's word commits
        to both (ADR 011, 012). Payouts are pull credits, except the agent's payout and unlocked
        bond (to its free stake). docs/protocol.md states the rules. cancel, expire, challenge,
        appeal, resolve run in the PactEscrowAppeals facet, settle_batch and evaluator unstaking
        in PactEscrowBatch behind it, on this storage, via the fallback (EIP-170: 24,576 bytes).
"""

from .modules import types
from .modules import escrow_core as core

initializes: core

exports: (
    core.REGISTRY,
    core.EVALUATOR_COOLDOWN,
    core.pact_count,
    core.job_count,
    core.pact_hash,
    core.pact_owner,
    core.credits,
    core.burned,
    core.agent_counts,
    core.agent_money,
    core.pact_counts,
    core.pact_money,
)

APPEALS: public(immutable(address))


@deploy
def __init__(registry: address, evaluator_cooldown: uint256, appeals: address):
    """
    @notice Deploy the escrow against its registry and its appeals facet.
    @param evaluator_cooldown Evaluator unstake cooldown: longer than the longest possible
           accept + work + evaluation + challenge + appeal windows (5 x the window bound).
    @param appeals The PactEscrowAppeals facet (runs on this storage by delegatecall).
    """
    assert registry.is_contract, "escrow: registry has no code"
    assert appeals.is_contract, "escrow: appeals facet has no code"
    assert evaluator_cooldown > 5 * staticcall core.IRegistry(registry).WINDOW_MAX(), "escrow: cooldown too short"
    assert evaluator_cooldown < 2**40, "escrow: cooldown too long"
    assert staticcall core.IFacet(appeals).REGISTRY() == registry, "escrow: facet registry differs"
    assert staticcall core.IFacet(appeals).EVALUATOR_COOLDOWN() == evaluator_cooldown, "escrow: facet cooldown differs"
    core.__init__(registry, evaluator_cooldown)
    APPEALS = appeals


@payable
@external
@reentrant
def __default__():
    """
    @notice Runs cancel, expire, challenge, appeal and resolve in the appeals facet, and
            through it settle_batch, request_unstake and withdraw_evaluator_stake in the batch
            facet, on this contract's storage. Not locked here: each facet function takes the
            shared reentrancy lock itself. Facet functions return nothing.
    """
    ok: bool = False
    ret: Bytes[256] = b""
    ok, ret = raw_call(APPEALS, msg.data, max_outsize=256, is_delegate_call=True, revert_on_failure=False)
    if not ok:
        raw_revert(ret)


@external
def create_pact(terms: types.PactTerms) -> uint256:
    """
    @notice Create an immutable pact; the caller is its owner. Incoherent terms revert with a
            reason naming the term (PactRegistry.check_pact). Jobs open only once the admins of
            both named committees approve it.
    @return The pact id.
    """
    assert staticcall core.IRegistry(core.REGISTRY).check_pact(terms)
    pid: uint256 = core.pact_count + 1
    assert pid < 2**32, "escrow: too many pacts"
    core.pact_count = pid
    h: bytes32 = keccak256(abi_encode(terms))
    core.pact_hash[pid] = h
    core.pact_owner[pid] = msg.sender
    log core.PactCreated(pact_id=pid, owner=msg.sender, terms_hash=h, terms=terms)
    return pid


@payable
@external
def stake(asset: address, amount: uint256, evaluator: bool):
    """
    @notice Deposit agent stake (free at once) or evaluator stake in ETH (empty address) or an
            ERC-20; the full amount must arrive (fee-on-transfer is refused). Stake in an
            asset no pact uses is inert; the allowlist governs new pacts and committees only.
    """
    assert amount > 0, "stake: zero amount"
    core._pull(asset, msg.sender, amount)
    if evaluator:
        w: uint256 = core.evaluator_stake_word[msg.sender][asset]
        assert w % core.U128 + amount < core.U128, "stake: amount too large"
        core.evaluator_stake_word[msg.sender][asset] = w + amount
    else:
        w: uint256 = core.agent_stake_word[msg.sender][asset]
        assert w % core.U128 + amount < core.U128, "stake: amount too large"
        core.agent_stake_word[msg.sender][asset] = w + amount
    log core.Staked(account=msg.sender, asset=asset, amount=amount, evaluator=evaluator)


@external
def withdraw_stake(asset: address, amount: uint256, to: address = msg.sender):
    """
    @notice Withdraw free agent stake at any time; bonds locked by accepted jobs stay.
    """
    assert amount > 0, "stake: zero amount"
    assert to != empty(address), "stake: zero recipient"
    w: uint256 = core.agent_stake_word[msg.sender][asset]
    assert amount <= w % core.U128, "stake: exceeds free stake"
    core.agent_stake_word[msg.sender][asset] = w - amount
    log core.StakeWithdrawn(account=msg.sender, asset=asset, amount=amount, evaluator=False)
    core._push(asset, to, amount)


@external
def withdraw(asset: address, to: address = msg.sender) -> uint256:
    """
    @notice Withdraw every credit the caller holds in `asset` (pull payment).
    @return The amount sent.
    """
    assert to != empty(address), "escrow: zero recipient"
    amount: uint256 = core.credits[msg.sender][asset]
    assert amount > 0, "escrow: nothing to withdraw"
    core.credits[msg.sender][asset] = 0
    log core.Withdrawn(account=msg.sender, asset=asset, to=to, amount=amount)
    core._push(asset, to, amount)
    return amount


# ---------------------------------------------------------------------------------------------
# jobs


@payable
@external
def open(terms: types.PactTerms, pact_id: uint256, agent: address, amount: uint256, expected_version: uint256, expected_appeal_version: uint256) -> uint256:
    """
    @notice Open and fund a job for `agent`: the caller (buyer) pays amount + the pact's
            evaluator fee, and the evaluator penalty of every active member of the committee
            version is reserved. Reverts "escrow: committee changed" if a version differs from
            the buyer's expectation.
    @return The job id.
    """
    return self._open(terms, pact_id, agent, amount, expected_version, expected_appeal_version)


@payable
@external
def open_with_permit(terms: types.PactTerms, pact_id: uint256, agent: address, amount: uint256, expected_version: uint256, expected_appeal_version: uint256, permit_deadline: uint256, v: uint8, r: bytes32, s: bytes32) -> uint256:
    """
    @notice `open` for an EIP-2612 token, with the buyer's permit for amount + fee in the same
            call. A permit already used (front-run) is ignored when the allowance suffices.
    @return The job id.
    """
    assert terms.asset != empty(address), "escrow: permit needs a token"
    permitted: bool = raw_call(terms.asset, abi_encode(msg.sender, self, amount + terms.evaluator_fee, permit_deadline, v, r, s, method_id=method_id("permit(address,address,uint256,uint256,uint8,bytes32,bytes32)")), revert_on_failure=False)
    return self._open(terms, pact_id, agent, amount, expected_version, expected_appeal_version)


@payable
@internal
def _open(p: types.PactTerms, pact_id: uint256, agent: address, amount: uint256, ev: uint256, eav: uint256) -> uint256:
    th: bytes32 = core._check_terms(pact_id, p)
    assert amount > 0, "escrow: zero value"
    assert amount + p.evaluator_fee < core.U128, "escrow: value too large"
    assert agent != empty(address), "escrow: zero agent"
    assert agent != msg.sender, "escrow: buyer is agent"
    r: types.Roster = extcall core.IRegistry(core.REGISTRY).open_roster(pact_id, p.committee_id, p.appeal_committee_id, ev, eav, msg.sender, agent)
    # reserve the penalty of every active member: each must hold the bond outside any pending
    # withdrawal and the penalty unreserved
    n: uint256 = 0
    for i: uint256 in range(core.MAX_MEMBERS):
        if i >= len(r.members):
            break
        if (r.active >> i) & 1 == 0:
            continue
        m: address = r.members[i]
        w: uint256 = core.evaluator_stake_word[m][p.asset]
        unlocked: uint256 = w % core.U128
        assert unlocked >= r.bond, "escrow: member stake below bond"
        assert unlocked - (w >> 128) >= r.penalty, "escrow: member stake reserved"
        core.evaluator_stake_word[m][p.asset] = w + (r.penalty << 128)
        n += 1
    assert n >= r.threshold, "escrow: committee quorum unavailable"
    # the committee's reserved stake answers for everything withholding votes could move
    assert amount + p.evaluator_fee + core._ceil_bps(core._bond(p, amount), p.slash_bps) <= (n - r.threshold + 1) * r.penalty, "escrow: value above committee stake"
    core._pull(p.asset, msg.sender, amount + p.evaluator_fee)
    jid: uint256 = core.job_count + 1
    core.job_count = jid
    deadline: uint256 = block.timestamp + p.accept_window
    assert ev < 2**24 and eav < 2**24, "escrow: version id too large"
    core._save(jid, core.Job(buyer=msg.sender, state=core.OPEN, by_agent=False, pact_id=pact_id, cv=ev, av=eav, agent=agent, reserved=r.active, deadline=deadline, close_at=0, value=amount, fee=p.evaluator_fee, deliverable=empty(bytes32), r0=0, lanes=0, terms=th))
    log core.JobOpened(job_id=jid, pact_id=pact_id, buyer=msg.sender, agent=agent, value=amount, fee=p.evaluator_fee, committee_version=ev, appeal_version=eav, reserved=r.active, accept_deadline=deadline)
    return jid


@external
def accept(job_id: uint256, terms: types.PactTerms, job: types.JobFields):
    """
    @notice The agent accepts an core.OPEN job until the accept deadline, locking its bond from free
            stake, within its exposure cap under the pact.
    """
    assert not staticcall core.IRegistry(core.REGISTRY).paused(), "escrow: paused"
    j: core.Job = core._load(job_id, job, keccak256(abi_encode(terms)))
    assert j.state == core.OPEN, "escrow: not open"
    assert msg.sender == j.agent, "escrow: not agent"
    assert block.timestamp <= j.deadline, "escrow: accept window closed"
    e: uint256 = core.exposure_word[j.agent][j.pact_id]
    open_value: uint256 = e % core.U128 + j.value
    assert open_value <= min(terms.cap_initial + (e >> 128), terms.cap_max), "escrow: exposure cap"
    bond: uint256 = core._bond(terms, j.value)
    w: uint256 = core.agent_stake_word[j.agent][terms.asset]
    assert w % core.U128 >= bond, "escrow: agent stake below bond"
    j.state = core.ACCEPTED
    j.deadline = block.timestamp + terms.work_window
    core._save(job_id, j)
    core.exposure_word[j.agent][j.pact_id] = e + j.value
    core.agent_stake_word[j.agent][terms.asset] = w - bond + (bond << 128)
    log core.JobAccepted(job_id=job_id, agent=j.agent, bond=bond, work_deadline=j.deadline)


@external
def submit(job_id: uint256, terms: types.PactTerms, job: types.JobFields, deliverable_hash: bytes32, uri: String[256] = ""):
    """
    @notice The agent submits the hash of its deliverable (and optionally where to fetch it)
            until the work deadline; the evaluation window starts.
    """
    j: core.Job = core._load(job_id, job, keccak256(abi_encode(terms)))
    assert j.state == core.ACCEPTED, "escrow: not accepted"
    assert msg.sender == j.agent, "escrow: not agent"
    assert block.timestamp <= j.deadline, "escrow: work deadline passed"
    assert deliverable_hash != empty(bytes32), "escrow: empty deliverable"
    j.state = core.SUBMITTED
    j.deadline = block.timestamp + terms.eval_window
    j.close_at = j.deadline
    j.deliverable = deliverable_hash
    core._save(job_id, j)
    log core.JobSubmitted(job_id=job_id, deliverable_hash=deliverable_hash, uri=uri, eval_deadline=j.deadline)


@external
def settle(job_id: uint256, terms: types.PactTerms, job: types.JobFields, votes: DynArray[types.SignedVote, core.MAX_CALL_VOTES]):
    """
    @notice Post round-0 votes, one or many, each member once. The call whose votes reach the
            threshold has the verdict (logged); the vote that closes round 0 (every reserved,
            unrevoked member counted) with a zero challenge window also settles the job, with
            the call's first vote's evidence in Feedback. Any vote that does not count reverts
            the whole call with its reason.
    """
    assert len(votes) > 0, "vote: no votes"
    j: core.Job = core._load(job_id, job, keccak256(abi_encode(terms)))
    # only a zero challenge window lets this call settle, and settling needs the whole roster
    # (with bond and penalty); counting needs each voter's index alone, one read a voter
    r: types.Roster = empty(types.Roster)
    threshold: uint256 = 0
    size: uint256 = 0
    active: uint256 = 0
    indices: uint256 = 0
    if terms.challenge_window == 0:
        r = staticcall core.IRegistry(core.REGISTRY).roster(j.cv, True, True)
        threshold = r.threshold
        size = len(r.members)
        active = r.active
        for k: uint256 in range(len(votes), bound=core.MAX_CALL_VOTES):
            indices |= core._index(r.members, votes[k].member) << (8 * k)
    else:
        voters: DynArray[address, core.MAX_MEMBERS] = []
        for k: uint256 in range(len(votes), bound=core.MAX_CALL_VOTES):
            voters.append(votes[k].member)
        threshold, size, active, indices = staticcall core.IRegistry(core.REGISTRY).vote_roster(j.cv, voters)
    before: uint256 = core._lanes(job_id, j.lanes, size)
    lanes: uint256 = before
    domain: bytes32 = core._domain()
    for k: uint256 in range(len(votes), bound=core.MAX_CALL_VOTES):
        sv: types.SignedVote = votes[k]
        lanes = core._count0(job_id, j.state, j.deadline, j.close_at, j.reserved, active, lanes, (indices >> (8 * k)) % 256, sv.member, sv.score_bps, sv.evidence_hash, sv.deadline)
        digest: bytes32 = keccak256(concat(b"\x19\x01", domain, core._vote_hash(job_id, j.deliverable, terms.spec_hash, sv.score_bps, sv.evidence_hash, 0, sv.deadline)))
        assert core._valid_signature(sv.member, digest, sv.signature), "vote: bad signature"
    s0: uint256 = core._after_round0(job_id, j, threshold, active, terms.challenge_window, before, lanes)
    if s0 != core.NO_SETTLE:
        j.lanes = lanes
        core._settle_score(job_id, j, terms, r, s0, lanes, j.reserved, votes[0].evidence_hash)


@external
def finalize(job_id: uint256, terms: types.PactTerms, job: types.JobFields, evidence: types.Evidence):
    """
    @notice Settle a job with a round-0 verdict once its challenge deadline has passed.
            `evidence`: a counted round-0 vote whose evidence hash Feedback carries (empty
            member: none).
    """
    j: core.Job = core._load(job_id, job, keccak256(abi_encode(terms)))
    r: types.Roster = staticcall core.IRegistry(core.REGISTRY).roster(j.cv, False, True)
    lanes: uint256 = core._lanes(job_id, j.lanes, len(r.members))
    assert core._verdict(j, r, lanes), "escrow: no verdict"
    assert block.timestamp > j.close_at + terms.challenge_window, "escrow: challenge window open"
    core._settle_score(job_id, j, terms, r, core._median(lanes), lanes, j.reserved, core._evidence(job_id, j, terms, r, lanes, evidence))


@view
@external
def domain_separator() -> bytes32:
    """
    @notice The EIP-712 domain separator: {name: "pactbond", version: "1", chainId, this}.
    """
    return keccak256(abi_encode(core.EIP712_DOMAIN_TYPEHASH, core.NAME_HASH, core.VERSION_HASH, chain.id, self))


@view
@external
def vote_digest(job_id: uint256, deliverable_hash: bytes32, spec_hash: bytes32, score_bps: uint256, evidence_hash: bytes32, round: uint256, deadline: uint256) -> bytes32:
    """
    @notice The EIP-712 digest a member signs for a Vote.
    """
    return core._digest(core._vote_hash(job_id, deliverable_hash, spec_hash, score_bps, evidence_hash, round, deadline))


@view
@external
def batch_digest(votes_root: bytes32, round: uint256, deadline: uint256) -> bytes32:
    """
    @notice The EIP-712 digest a member signs for a VoteBatch.
    """
    return core._digest(keccak256(abi_encode(core.VOTE_BATCH_TYPEHASH, votes_root, round, deadline)))


@view
@external
def is_valid_signature(member: address, digest: bytes32, signature: Bytes[core.MAX_SIG_LEN]) -> bool:
    """
    @notice Whether `signature` by `member` over `digest` passes the vote signature rules.
    """
    return core._valid_signature(member, digest, signature)


# ---------------------------------------------------------------------------------------------
# views


@view
@external
def job_word(job_id: uint256) -> (uint256, uint256):
    """
    @notice A job's stored word (the 192-bit commitment to its types.JobFields | the current
            round's lanes of members 0-3) and the lanes of members 4-15. The fields come from
            the job's logs (JobOpened, JobAccepted, JobSubmitted, JobUpdated and the terminal
            event); `job` checks them.
    """
    return core.jobs[job_id], core.lanes_ext[job_id]


@view
@external
def agent_stake(agent: address, asset: address) -> (uint256, uint256):
    """
    @notice An agent's (free, locked) stake in `asset`.
    """
    w: uint256 = core.agent_stake_word[agent][asset]
    return w % core.U128, w >> 128


@view
@external
def evaluator_stake(evaluator: address, asset: address) -> (uint256, uint256, uint256, uint256):
    """
    @notice An evaluator's (stake, reserved, pending withdrawal, unlock time) in `asset`.
    """
    w: uint256 = core.evaluator_stake_word[evaluator][asset]
    pw: uint256 = core.evaluator_pending_word[evaluator][asset]
    return w % core.U128 + pw % core.U128, w >> 128, pw % core.U128, pw >> 128


@view
@external
def exposure(agent: address, pact_id: uint256) -> (uint256, uint256):
    """
    @notice The agent's (open value, cap bonus) under a pact; its cap is
            min(cap_initial + bonus, cap_max).
    """
    e: uint256 = core.exposure_word[agent][pact_id]
    return e % core.U128, e >> 128


# ---------------------------------------------------------------------------------------------
# token plumbing
