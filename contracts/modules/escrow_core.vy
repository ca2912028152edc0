# pragma version 0.4.3
# pragma nonreentrancy on
# pragma evm-version prague
"""
@title pactbond escrow core
@license Apache-2.0
@notice Storage, events and internal logic shared by PactEscrow and its delegatecall facet
        PactEscrowAppeals. Both contracts initialize this module and declare no storage of
        their own, so their storage layouts are identical (a test holds them equal).
"""

from ethereum.ercs import IERC20
from . import types

interface IFacet:
    def REGISTRY() -> address: view
    def EVALUATOR_COOLDOWN() -> uint256: view

interface IRegistry:
    def open_roster(pact_id: uint256, committee_id: uint256, appeal_committee_id: uint256, expected_version: uint256, expected_appeal_version: uint256, buyer: address, agent: address) -> types.Roster: nonpayable
    def roster(version_id: uint256, live: bool, money: bool) -> types.Roster: view
    def vote_roster(version_id: uint256, voters: DynArray[address, MAX_MEMBERS]) -> (uint256, uint256, uint256, uint256): view
    def check_pact(t: types.PactTerms) -> bool: view
    def paused() -> bool: view
    def asset_allowed(asset: address) -> bool: view
    def WINDOW_MAX() -> uint256: view

# ---------------------------------------------------------------------------------------------
# constants

MAX_MEMBERS: constant(uint256) = types.MAX_MEMBERS
MAX_SIG_LEN: constant(uint256) = types.MAX_SIG_LEN
MAX_PROOF: constant(uint256) = types.MAX_PROOF
MAX_BATCH: constant(uint256) = 256
# votes per settle or appeal call: Vyper reserves memory for an argument's full bound, and the
# 16-vote bound cost every call ~2,700 gas of memory expansion (ADR 011); a larger committee
# posts its votes in several calls, which its lanes let land in one block
MAX_CALL_VOTES: constant(uint256) = 4
BPS: constant(uint256) = 10_000
U128: constant(uint256) = 2**128
U40: constant(uint256) = 2**40
U64: constant(uint256) = 2**64
CLEAR_MEMBERS: constant(uint256) = 4  # members whose lanes sit in the job word's clear bits
NO_SETTLE: constant(uint256) = max_value(uint256)  # _after_round0: nothing to settle now
ERC1271_GAS: constant(uint256) = 250_000
ERC1271_MAGIC: constant(bytes4) = 0x1626ba7e
SECP256K1_HALF_N: constant(uint256) = 57896044618658097711785492504343953926418782139537452191302581570759080747168
LANE: constant(uint256) = 65536  # vote lanes: 16 bits per member index, score + 1, 0 = no vote
LANE_LOWS: constant(uint256) = 1766874025136433896750911497805568136923323180981774075523881651146915841  # each lane's lowest bit
LANE_GATHER: constant(uint256) = 1766900986317273406530518280719747121391491205567195105433173375773081600  # sum of 2**(240 - 15 i), i < 16

EIP712_DOMAIN_TYPEHASH: constant(bytes32) = keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)")
VOTE_TYPEHASH: constant(bytes32) = keccak256("Vote(uint256 jobId,bytes32 deliverableHash,bytes32 specHash,uint16 scoreBps,bytes32 evidenceHash,uint8 round,uint64 deadline)")
VOTE_BATCH_TYPEHASH: constant(bytes32) = keccak256("VoteBatch(bytes32 votesRoot,uint8 round,uint64 deadline)")
NAME_HASH: constant(bytes32) = keccak256("pactbond")
VERSION_HASH: constant(bytes32) = keccak256("1")

# job states (one-way)
OPEN: constant(uint256) = 1
ACCEPTED: constant(uint256) = 2
SUBMITTED: constant(uint256) = 3
VERDICT: constant(uint256) = 4
CHALLENGED: constant(uint256) = 5
SETTLED: constant(uint256) = 6
CANCELLED: constant(uint256) = 7
EXPIRED_NO_DELIVERY: constant(uint256) = 8
EXPIRED_NO_VERDICT: constant(uint256) = 9

# reputation counters: 32-bit lanes of one word per agent and per pact
C_SETTLED: constant(uint256) = 0
C_PASSED: constant(uint256) = 1
C_PARTIAL: constant(uint256) = 2
C_FAILED: constant(uint256) = 3
C_NO_DELIVERY: constant(uint256) = 4
C_NO_VERDICT: constant(uint256) = 5
C_CHALLENGES: constant(uint256) = 6
C_SEVENTH: constant(uint256) = 7  # agent: challenges it lost; pact: overturned verdicts

# ---------------------------------------------------------------------------------------------
# types

struct Job:
    buyer: address
    state: uint256
    by_agent: bool  # the challenger is the agent (else the buyer)
    pact_id: uint256
    cv: uint256
    av: uint256
    agent: address
    reserved: uint256
    deadline: uint256  # OPEN: accept A; ACCEPTED: work W; SUBMITTED, VERDICT: evaluation E; CHALLENGED: appeal P
    close_at: uint256  # round-0 close: E, or the time every reserved unrevoked member had voted
    value: uint256
    fee: uint256
    deliverable: bytes32
    r0: uint256  # round-0 lanes once challenged (types.JobFields.r0)
    lanes: uint256  # the current round's lanes held in the clear: members 0-3 (see _lanes)
    terms: bytes32  # keccak256(abi_encode(the pact's terms)): the commitment covers it (ADR 012)

# ---------------------------------------------------------------------------------------------
# events

event PactCreated:
    pact_id: indexed(uint256)
    owner: indexed(address)
    terms_hash: bytes32
    terms: types.PactTerms

event Staked:
    account: indexed(address)
    asset: indexed(address)
    amount: uint256
    evaluator: bool

event UnstakeRequested:
    account: indexed(address)
    asset: indexed(address)
    amount: uint256
    unlock_at: uint256

event StakeWithdrawn:
    account: indexed(address)
    asset: indexed(address)
    amount: uint256
    evaluator: bool

event JobOpened:
    job_id: indexed(uint256)
    pact_id: indexed(uint256)
    buyer: indexed(address)
    agent: address
    value: uint256
    fee: uint256
    committee_version: uint256
    appeal_version: uint256
    reserved: uint256
    accept_deadline: uint256

event JobCancelled:
    job_id: indexed(uint256)
    by: indexed(address)

event JobAccepted:
    job_id: indexed(uint256)
    agent: indexed(address)
    bond: uint256
    work_deadline: uint256

event JobSubmitted:
    job_id: indexed(uint256)
    deliverable_hash: bytes32
    uri: String[256]
    eval_deadline: uint256

event JobUpdated:
    # the job's new fields, where no other event of the transition states them (ADR 011)
    job_id: indexed(uint256)
    head: uint256
    tail: uint256
    r0: uint256

event VoteCounted:
    job_id: indexed(uint256)
    member: indexed(address)
    round: uint256
    score_bps: uint256
    evidence_hash: bytes32

event VerdictReached:
    job_id: indexed(uint256)
    votes: uint256

event RoundClosed:
    job_id: indexed(uint256)
    score_bps: uint256
    challenge_deadline: uint256

event JobChallenged:
    job_id: indexed(uint256)
    challenger: indexed(address)
    score_bps: uint256
    appeal_deadline: uint256

event AppealResolved:
    job_id: indexed(uint256)
    quorum: bool
    overturned: bool
    challenger_won: bool
    score_bps: uint256

event EvaluatorPenalized:
    job_id: indexed(uint256)
    member: indexed(address)
    amount: uint256
    to: address  # empty address: burned

event JobSettled:
    job_id: indexed(uint256)
    score_bps: uint256
    to_agent: uint256
    to_buyer: uint256
    slashed: uint256

event JobExpired:
    job_id: indexed(uint256)
    no_delivery: bool
    to_agent: uint256
    slashed: uint256

event Feedback:
    agent: indexed(address)
    job_id: indexed(uint256)
    pact_id: uint256
    buyer: address
    score_bps: uint256
    evidence_hash: bytes32

event Credited:
    account: indexed(address)
    asset: indexed(address)
    job_id: indexed(uint256)
    amount: uint256

event Withdrawn:
    account: indexed(address)
    asset: indexed(address)
    to: address
    amount: uint256

event Burned:
    asset: indexed(address)
    job_id: indexed(uint256)
    amount: uint256

# ---------------------------------------------------------------------------------------------
# storage

REGISTRY: public(immutable(address))
EVALUATOR_COOLDOWN: public(immutable(uint256))

pact_count: public(uint256)
job_count: public(uint256)
pact_hash: public(HashMap[uint256, bytes32])
pact_owner: public(HashMap[uint256, address])
# the 192-bit commitment to the job's types.JobFields | the current round's lanes of members
# 0-3 in the clear (16 bits each: score + 1), so concurrent votes never change the commitment
jobs: HashMap[uint256, uint256]
lanes_ext: HashMap[uint256, uint256]  # the current round's lanes of members 4-15

agent_stake_word: HashMap[address, HashMap[address, uint256]]  # free 128 | locked 128
# stake not pending withdrawal 128 | reserved 128 (reserved <= the first: reservations are
# always backed by stake that cannot leave, so open and round-1 votes read one word)
evaluator_stake_word: HashMap[address, HashMap[address, uint256]]
evaluator_pending_word: HashMap[address, HashMap[address, uint256]]  # pending 128 | unlock time 128
exposure_word: HashMap[address, HashMap[uint256, uint256]]  # open value 128 | cap bonus 128
credits: public(HashMap[address, HashMap[address, uint256]])
burned: public(HashMap[address, uint256])

agent_counts: public(HashMap[address, uint256])  # 8 x 32-bit lanes (C_*)
agent_money: public(HashMap[address, HashMap[address, uint256]])  # released 128 | slashed 128
pact_counts: public(HashMap[uint256, uint256])
pact_money: public(HashMap[uint256, uint256])


@deploy
def __init__(registry: address, evaluator_cooldown: uint256):
    REGISTRY = registry
    EVALUATOR_COOLDOWN = evaluator_cooldown


@view
@internal
def _check_terms(pact_id: uint256, terms: types.PactTerms) -> bytes32:
    h: bytes32 = keccak256(abi_encode(terms))
    assert self.pact_hash[pact_id] == h, "escrow: wrong pact terms"
    return h


# ---------------------------------------------------------------------------------------------
# stakes


@internal
def _count0(job_id: uint256, state: uint256, jdeadline: uint256, close_at: uint256, reserved: uint256, active: uint256, lanes: uint256, i: uint256, member: address, score: uint256, evidence: bytes32, deadline: uint256) -> uint256:
    """
    @dev Checks one round-0 vote but its signature, and returns the lanes with it counted.
         The caller checks the signature next (settle) or has checked the batch's. `i`: the
         member's index in the roster (MAX_MEMBERS: not listed).
    """
    assert state == SUBMITTED, "vote: job not in evaluation"
    assert block.timestamp <= min(deadline, jdeadline), "vote: deadline passed"
    assert close_at == jdeadline, "vote: round closed"
    assert score <= BPS, "vote: score above 10000"
    assert i < MAX_MEMBERS and (reserved >> i) & 1 == 1, "vote: member not reserved"
    assert (active >> i) & 1 == 1, "vote: key revoked"
    assert (lanes >> (16 * i)) % LANE == 0, "vote: duplicate vote"
    log VoteCounted(job_id=job_id, member=member, round=0, score_bps=score, evidence_hash=evidence)
    return lanes | ((score + 1) << (16 * i))


@internal
def _count1(job_id: uint256, j: Job, r: types.Roster, asset: address, lanes: uint256, member: address, score: uint256, evidence: bytes32, deadline: uint256, digest: bytes32, sig: Bytes[MAX_SIG_LEN]) -> uint256:
    assert j.state == CHALLENGED, "vote: job not in appeal"
    assert block.timestamp <= min(deadline, j.deadline), "vote: deadline passed"
    assert score <= BPS, "vote: score above 10000"
    i: uint256 = self._index(r.members, member)
    assert i < MAX_MEMBERS and (r.accepted >> i) & 1 == 1, "vote: not an appeal member"
    assert (r.active >> i) & 1 == 1, "vote: key revoked"
    assert self.evaluator_stake_word[member][asset] % U128 >= r.bond, "vote: member stake below bond"
    assert (lanes >> (16 * i)) % LANE == 0, "vote: duplicate vote"
    if digest != empty(bytes32):
        assert self._valid_signature(member, digest, sig), "vote: bad signature"
    log VoteCounted(job_id=job_id, member=member, round=1, score_bps=score, evidence_hash=evidence)
    return lanes | ((score + 1) << (16 * i))


@internal
def _after_round0(job_id: uint256, j: Job, threshold: uint256, active: uint256, window: uint256, before: uint256, lanes: uint256) -> uint256:
    """
    @dev Stores the lanes (`before`: the job's lanes before this call) in the clear; logs the
         verdict when the threshold is reached (VERDICT is derived, never stored); when every
         reserved member without a vote is revoked, closes round 0. Returns the median to
         settle with at once (a close with a verdict and a zero challenge window: the caller
         settles, close_at unchanged), else NO_SETTLE. Scalars, not the roster and terms:
         Vyper copies struct arguments.
    """
    voters: uint256 = self._voters(lanes)
    n: uint256 = self._popcount(voters)
    verdict: bool = n >= threshold
    if verdict and self._popcount(self._voters(before)) < threshold:
        log VerdictReached(job_id=job_id, votes=n)
    if j.reserved & ~voters & active != 0:
        self._put_lanes(job_id, lanes)
        return NO_SETTLE
    if verdict:
        s0: uint256 = self._median(lanes)
        log RoundClosed(job_id=job_id, score_bps=s0, challenge_deadline=block.timestamp + window)
        if window == 0:
            return s0
    jj: Job = j
    jj.lanes = lanes
    jj.close_at = block.timestamp
    self._save(job_id, jj)
    self._updated(job_id, jj)
    return NO_SETTLE


@internal
def _settle_score(job_id: uint256, j: Job, p: types.PactTerms, r: types.Roster, score: uint256, r0: uint256, release: uint256, evidence: bytes32):
    """
    @dev The terminal transition of a job with a verdict: escrow split by pay(score) (all to
         the agent on a shadow pact), the fee to the counted round-0 voters, the slash on a
         fail, the reservations in `release` ended, counters, exposure, Feedback.
    """
    jj: Job = j
    jj.state = SETTLED
    self._save(job_id, jj)
    to_agent: uint256 = j.value * self._pay(p, score) // BPS
    if p.shadow:
        to_agent = j.value
    to_buyer: uint256 = j.value - to_agent
    voters: uint256 = self._voters(r0)
    n0: uint256 = self._popcount(voters)
    fee_each: uint256 = j.fee // n0
    to_buyer += j.fee - fee_each * n0
    for i: uint256 in range(MAX_MEMBERS):
        if (voters >> i) & 1 == 1:
            self._credit(r.members[i], p.asset, fee_each, job_id)
    jr: Job = j
    jr.reserved = release
    self._end_reservations(job_id, jr, p.asset, r, 0)
    band: uint256 = C_PARTIAL
    if score >= p.pass_at_bps:
        band = C_PASSED
    elif score < p.fail_below_bps:
        band = C_FAILED
    slashed: uint256 = self._close_bond(job_id, j, p, band == C_FAILED)
    self._to_free(j.agent, p.asset, to_agent, job_id)
    self._credit(j.buyer, p.asset, to_buyer, job_id)
    self._record(j, p.asset, band, to_agent, slashed)
    if band == C_PASSED and j.value >= p.min_expansion_value:
        bonus: uint256 = self.exposure_word[j.agent][j.pact_id] >> 128
        self._set_bonus(j, min(bonus + min(p.cap_step, j.value), p.cap_max - p.cap_initial))
    elif band == C_FAILED:
        self._set_bonus(j, 0)
    log JobSettled(job_id=job_id, score_bps=score, to_agent=to_agent, to_buyer=to_buyer, slashed=slashed)
    log Feedback(agent=j.agent, job_id=job_id, pact_id=j.pact_id, buyer=j.buyer, score_bps=score, evidence_hash=evidence)


@internal
def _close_bond(job_id: uint256, j: Job, p: types.PactTerms, slash: bool) -> uint256:
    """
    @dev Ends an accepted job's exposure and bond: the bond returns to free stake less the
         slash when `slash`; the slash is split buyer / insurance / burn (floor each, the
         remainder to the buyer).
    """
    self.exposure_word[j.agent][j.pact_id] -= j.value
    bond: uint256 = self._bond(p, j.value)
    slashed: uint256 = 0
    if slash:
        slashed = self._ceil_bps(bond, p.slash_bps)
    # locked -= bond; free += bond - slashed
    self.agent_stake_word[j.agent][p.asset] -= bond << 128
    self._to_free(j.agent, p.asset, bond - slashed, job_id)
    if slashed > 0:
        to_ins: uint256 = slashed * p.slash_insurance_bps // BPS
        to_burn: uint256 = slashed * p.slash_burn_bps // BPS
        self._credit(j.buyer, p.asset, slashed - to_ins - to_burn, job_id)
        self._credit(p.insurance, p.asset, to_ins, job_id)
        self._burn(p.asset, to_burn, job_id)
    return slashed


@internal
def _to_free(agent: address, asset: address, amount: uint256, job_id: uint256):
    """
    @dev Adds to the agent's free stake; an amount the 128-bit lane cannot hold is credited
         instead (pull), so no carry ever reaches the locked lane (ADR 010).
    """
    if amount == 0:
        return
    w: uint256 = self.agent_stake_word[agent][asset]
    if w % U128 + amount < U128:
        self.agent_stake_word[agent][asset] = w + amount
    else:
        self._credit(agent, asset, amount, job_id)


@internal
def _end_reservations(job_id: uint256, j: Job, asset: address, r: types.Roster, burn: uint256):
    """
    @dev Ends the reservations in j.reserved: members in `burn` lose their penalty to
         `burned` (evaluator silence), the others get it back.
    """
    if r.penalty == 0:
        return
    for i: uint256 in range(MAX_MEMBERS):
        if (j.reserved >> i) & 1 == 0:
            continue
        m: address = r.members[i]
        if (burn >> i) & 1 == 1:
            self._take_penalty(m, asset, r.penalty)
            self._burn(asset, r.penalty, job_id)
            log EvaluatorPenalized(job_id=job_id, member=m, amount=r.penalty, to=empty(address))
        else:
            self.evaluator_stake_word[m][asset] -= r.penalty << 128


@internal
def _take_penalty(m: address, asset: address, penalty: uint256):
    # the reservation itself is taken: stake and reserved both drop
    self.evaluator_stake_word[m][asset] -= penalty + (penalty << 128)


@internal
def _record(j: Job, asset: address, lane: uint256, released: uint256, slashed: uint256):
    bump: uint256 = 1 << (32 * lane)
    if lane <= C_FAILED:
        bump += 1  # settled with a verdict
    self.agent_counts[j.agent] += bump
    self.pact_counts[j.pact_id] += bump
    money: uint256 = released | (slashed << 128)
    self.agent_money[j.agent][asset] += money
    self.pact_money[j.pact_id] += money


@internal
def _bump_challenge(j: Job, overturned: bool, agent_lost: bool):
    c: uint256 = 1 << (32 * C_CHALLENGES)
    self.pact_counts[j.pact_id] += c + convert(overturned, uint256) * (1 << (32 * C_SEVENTH))
    self.agent_counts[j.agent] += c + convert(agent_lost, uint256) * (1 << (32 * C_SEVENTH))


@internal
def _set_bonus(j: Job, bonus: uint256):
    e: uint256 = self.exposure_word[j.agent][j.pact_id]
    self.exposure_word[j.agent][j.pact_id] = e % U128 | (bonus << 128)


@internal
def _credit(account: address, asset: address, amount: uint256, job_id: uint256):
    if amount == 0:
        return
    self.credits[account][asset] += amount
    log Credited(account=account, asset=asset, job_id=job_id, amount=amount)


@internal
def _burn(asset: address, amount: uint256, job_id: uint256):
    if amount == 0:
        return
    self.burned[asset] += amount
    log Burned(asset=asset, job_id=job_id, amount=amount)


# ---------------------------------------------------------------------------------------------
# job words


@view
@internal
def _load(job_id: uint256, f: types.JobFields, terms: bytes32) -> Job:
    """
    @dev The job, from its fields in calldata checked against the stored commitment, which
         also covers the hash of its pact's terms (`terms`), so a job call needs no read of
         pact_hash (ADR 012); `lanes` holds the clear lanes only (members 0-3; _lanes adds the
         rest).
    """
    w: uint256 = self.jobs[job_id]
    assert w != 0, "escrow: unknown job"
    if w >> 64 != convert(keccak256(abi_encode(job_id, f, terms)), uint256) >> 64:
        # only on the failing path: tell the caller which argument is wrong
        assert self.pact_hash[(f.head >> 176) % 2**32] == terms, "escrow: wrong pact terms"
        raise "escrow: stale job fields"
    return Job(
        buyer=convert(convert(f.head % 2**160, uint160), address),
        state=(f.head >> 160) % 256,
        by_agent=(f.head >> 168) % 256 == 1,
        pact_id=(f.head >> 176) % 2**32,
        cv=(f.head >> 208) % 2**24,
        av=f.head >> 232,
        agent=convert(convert(f.tail % 2**160, uint160), address),
        reserved=(f.tail >> 160) % 2**16,
        deadline=(f.tail >> 176) % U40,
        close_at=f.tail >> 216,
        value=f.money % U128,
        fee=f.money >> 128,
        deliverable=f.deliverable,
        r0=f.r0,
        lanes=w % U64,
        terms=terms,
    )


@pure
@internal
def _fields(j: Job) -> types.JobFields:
    return types.JobFields(
        head=convert(j.buyer, uint256) | (j.state << 160) | (convert(j.by_agent, uint256) << 168) | (j.pact_id << 176) | (j.cv << 208) | (j.av << 232),
        tail=convert(j.agent, uint256) | (j.reserved << 160) | (j.deadline << 176) | (j.close_at << 216),
        money=j.value | (j.fee << 128),
        deliverable=j.deliverable,
        r0=j.r0,
    )


@internal
def _save(job_id: uint256, j: Job):
    """
    @dev A serial transition: the commitment to j's fields, and j.lanes in the clear.
    """
    assert j.deadline < U40 and j.close_at < U40
    self.jobs[job_id] = convert(keccak256(abi_encode(job_id, self._fields(j), j.terms)), uint256) >> 64 << 64 | j.lanes % U64
    if j.lanes >= U64:
        self.lanes_ext[job_id] = j.lanes >> 64


@internal
def _updated(job_id: uint256, j: Job):
    f: types.JobFields = self._fields(j)
    log JobUpdated(job_id=job_id, head=f.head, tail=f.tail, r0=f.r0)


@internal
def _put_lanes(job_id: uint256, lanes: uint256):
    """
    @dev A vote: only the clear lanes (and the spill word) change, never the commitment.
    """
    self.jobs[job_id] = self.jobs[job_id] >> 64 << 64 | lanes % U64
    if lanes >= U64:
        self.lanes_ext[job_id] = lanes >> 64


@view
@internal
def _lanes(job_id: uint256, clear: uint256, size: uint256) -> uint256:
    """
    @dev The current round's lanes of every member of a roster of `size` members, from the
         word's clear lanes (`clear`) and, past 4 members, the spill word.
    """
    if size <= CLEAR_MEMBERS:
        return clear
    return clear | (self.lanes_ext[job_id] << 64)


@view
@internal
def _verdict(j: Job, r: types.Roster, lanes: uint256) -> bool:
    return j.state == SUBMITTED and self._popcount(self._voters(lanes)) >= r.threshold


@view
@internal
def _evidence(job_id: uint256, j: Job, p: types.PactTerms, r: types.Roster, r0: uint256, e: types.Evidence) -> bytes32:
    """
    @dev Feedback's evidence hash where the settling call has no vote: `e` must be a counted
         round-0 vote, signed alone or in a VoteBatch; an empty member gives none (a member's
         wallet may no longer sign, and settlement must not wait on it).
    """
    if e.member == empty(address):
        return empty(bytes32)
    i: uint256 = self._index(r.members, e.member)
    assert i < MAX_MEMBERS and e.score_bps <= BPS, "escrow: evidence vote not counted"
    assert (r0 >> (16 * i)) % LANE == e.score_bps + 1, "escrow: evidence vote not counted"
    leaf: bytes32 = self._vote_hash(job_id, j.deliverable, p.spec_hash, e.score_bps, e.evidence_hash, 0, e.deadline)
    if e.batch:
        leaf = keccak256(abi_encode(VOTE_BATCH_TYPEHASH, self._merkle_root(leaf, e.proof), empty(uint256), e.deadline))
    assert self._valid_signature(e.member, self._digest(leaf), e.signature), "escrow: evidence vote unsigned"
    return e.evidence_hash


# ---------------------------------------------------------------------------------------------
# pure helpers


@pure
@internal
def _ceil_bps(x: uint256, bps: uint256) -> uint256:
    return (x * bps + BPS - 1) // BPS


@pure
@internal
def _bond(p: types.PactTerms, amount: uint256) -> uint256:
    return min(p.bond_cap, (amount * p.bond_bps + BPS - 1) // BPS)


@pure
@internal
def _pay(p: types.PactTerms, score: uint256) -> uint256:
    if score >= p.pass_at_bps:
        return BPS
    if score < p.fail_below_bps:
        return 0
    return BPS * (score - p.fail_below_bps) // (p.pass_at_bps - p.fail_below_bps)


@pure
@internal
def _index(members: DynArray[address, MAX_MEMBERS], member: address) -> uint256:
    for i: uint256 in range(MAX_MEMBERS):
        if i >= len(members):
            break
        if members[i] == member:
            return i
    return MAX_MEMBERS


@pure
@internal
def _voters(lanes: uint256) -> uint256:
    """
    @dev Bitmap by member index of the lanes holding a vote, without a loop: OR-fold each 16-bit
         lane into its lowest bit, then gather those 16 bits into the top 16 with one multiply
         (the products of distinct lane bits land on distinct bits, so nothing carries).
    """
    y: uint256 = lanes | (lanes >> 1)
    y |= y >> 2
    y |= y >> 4
    y |= y >> 8
    return unsafe_mul(y & LANE_LOWS, LANE_GATHER) >> 240


@pure
@internal
def _popcount(x: uint256) -> uint256:
    """
    @dev Set bits of a 16-bit member bitmap (x < 2**16), without a loop.
    """
    y: uint256 = x - ((x >> 1) & 21845)  # 0x5555: pairs
    y = (y & 13107) + ((y >> 2) & 13107)  # 0x3333: nibbles
    y = (y + (y >> 4)) & 3855  # 0x0F0F: bytes
    return (y + (y >> 8)) & 31


@pure
@internal
def _median(lanes: uint256) -> uint256:
    """
    @dev Median of the counted scores; for an even count, the floor of the mean of the two
         middle scores.
    """
    xs: DynArray[uint256, MAX_MEMBERS] = []
    for i: uint256 in range(MAX_MEMBERS):
        if lanes >> (16 * i) == 0:
            break
        lane: uint256 = (lanes >> (16 * i)) % LANE
        if lane == 0:
            continue
        x: uint256 = lane - 1
        xs.append(x)
        k: uint256 = len(xs) - 1
        for _: uint256 in range(MAX_MEMBERS):
            if k == 0 or xs[k - 1] <= x:
                break
            xs[k] = xs[k - 1]
            k -= 1
        xs[k] = x
    n: uint256 = len(xs)
    if n % 2 == 1:
        return xs[n // 2]
    return (xs[n // 2 - 1] + xs[n // 2]) // 2


@pure
@internal
def _merkle_root(leaf: bytes32, proof: DynArray[bytes32, MAX_PROOF]) -> bytes32:
    h: bytes32 = leaf
    for sibling: bytes32 in proof:
        h = self._pair(h, sibling)
    return h


@pure
@internal
def _pair(a: bytes32, b: bytes32) -> bytes32:
    """
    @dev A sorted-pair Merkle node: the hash of the smaller word, then the larger.
    """
    if convert(a, uint256) < convert(b, uint256):
        return keccak256(concat(a, b))
    return keccak256(concat(b, a))


# ---------------------------------------------------------------------------------------------
# EIP-712 and signatures


@view
@internal
def _digest(struct_hash: bytes32) -> bytes32:
    return keccak256(concat(b"\x19\x01", self._domain(), struct_hash))


@view
@internal
def _domain() -> bytes32:
    # computed, not cached: the facets run on the escrow's address by delegatecall, and a fork
    # changes chain.id
    return keccak256(abi_encode(EIP712_DOMAIN_TYPEHASH, NAME_HASH, VERSION_HASH, chain.id, self))


@pure
@internal
def _vote_hash(job_id: uint256, deliverable: bytes32, spec: bytes32, score: uint256, evidence: bytes32, round: uint256, deadline: uint256) -> bytes32:
    return keccak256(abi_encode(VOTE_TYPEHASH, job_id, deliverable, spec, score, evidence, round, deadline))


@view
@internal
def _valid_signature(member: address, digest: bytes32, sig: Bytes[MAX_SIG_LEN]) -> bool:
    """
    @dev ecrecover first: 65 bytes, low s, v in {27, 28}, a non-zero signer equal to the
         member. Only if that fails and the member has code (EIP-7702: code does not prove a
         contract wallet), ERC-1271 with a gas cap, and exactly the magic value returned.
    """
    if len(sig) == 65:
        r: uint256 = extract32(sig, 0, output_type=uint256)
        s: uint256 = extract32(sig, 32, output_type=uint256)
        v: uint256 = convert(slice(sig, 64, 1), uint256)
        if (v == 27 or v == 28) and s <= SECP256K1_HALF_N:
            signer: address = ecrecover(digest, v, r, s)
            if signer != empty(address) and signer == member:
                return True
    if not member.is_contract:
        return False
    ok: bool = False
    # room for more than one word, so that a longer reply is seen (and refused)
    ret: Bytes[64] = b""
    ok, ret = raw_call(member, abi_encode(digest, sig, method_id=method_id("isValidSignature(bytes32,bytes)")), max_outsize=64, gas=ERC1271_GAS, is_static_call=True, revert_on_failure=False)
    return ok and len(ret) == 32 and extract32(ret, 0) == convert(ERC1271_MAGIC, bytes32)


@payable
@internal
def _pull(asset: address, payer: address, amount: uint256):
    if asset == empty(address):
        assert msg.value == amount, "escrow: wrong ETH amount"
        return
    assert msg.value == 0, "escrow: ETH sent to a token pact"
    if amount == 0:
        return
    before: uint256 = staticcall IERC20(asset).balanceOf(self)
    ok: bool = False
    ret: Bytes[32] = b""
    ok, ret = raw_call(asset, abi_encode(payer, self, amount, method_id=method_id("transferFrom(address,address,uint256)")), max_outsize=32, revert_on_failure=False)
    assert ok and (len(ret) == 0 or convert(ret, bool)), "escrow: token transfer failed"
    assert staticcall IERC20(asset).balanceOf(self) == before + amount, "escrow: fee-on-transfer token"


@internal
def _push(asset: address, to: address, amount: uint256):
    ok: bool = False
    if asset == empty(address):
        ok = raw_call(to, b"", value=amount, revert_on_failure=False)
        assert ok, "escrow: ETH transfer failed"
        return
    ret: Bytes[32] = b""
    ok, ret = raw_call(asset, abi_encode(to, amount, method_id=method_id("transfer(address,uint256)")), max_outsize=32, revert_on_failure=False)
    assert ok and (len(ret) == 0 or convert(ret, bool)), "escrow: token transfer failed"
