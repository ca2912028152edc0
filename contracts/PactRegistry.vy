# pragma version 0.4.3
# pragma nonreentrancy on
# pragma evm-version prague
"""
@title pactbond registry
@license Apache-2.0
@notice Who judges and under what rules: the deployment's admin (two-step owner, guardian,
        pause, asset allowlist), committees (versioned members who consent, threshold,
        evaluator bond and penalty, delayed rotation, self-revocation, pact approval), and the
        checks on pact terms. Holds no money: PactEscrow holds every claim, so no call here
        can move or change one.
"""

from .modules import types

MAX_MEMBERS: constant(uint256) = types.MAX_MEMBERS
BPS: constant(uint256) = 10_000
U64: constant(uint256) = 2**64
# versions one member may accept: revoke_key marks its bit in each (so rosters read one word,
# not a revocation flag per member: ADR 011); past this, a member serves under a new key
MAX_ACCEPTED: constant(uint256) = 256
ACCEPTED_AT: constant(uint256) = 80  # version_meta: accepted bitmap at bits 80-95
REVOKED_AT: constant(uint256) = 96  # version_meta: revoked bitmap at bits 96-111


interface IEscrow:
    def pact_hash(pact_id: uint256) -> bytes32: view


struct Committee:
    admin: address
    asset: address
    rotation_delay: uint256


event OwnershipTransferStarted:
    previous_owner: indexed(address)
    new_owner: indexed(address)

event OwnershipTransferred:
    previous_owner: indexed(address)
    new_owner: indexed(address)

event GuardianSet:
    guardian: indexed(address)

event PausedSet:
    paused: bool
    by: indexed(address)

event AssetAllowed:
    asset: indexed(address)
    allowed: bool

event EscrowSet:
    escrow: indexed(address)

event CommitteeCreated:
    committee_id: indexed(uint256)
    admin: indexed(address)
    asset: address
    rotation_delay: uint256

event VersionProposed:
    committee_id: indexed(uint256)
    version_id: indexed(uint256)
    members: DynArray[address, MAX_MEMBERS]
    threshold: uint256
    evaluator_bond: uint256
    evaluator_penalty: uint256
    effective_at: uint256

event VersionAccepted:
    version_id: indexed(uint256)
    member: indexed(address)

event KeyRevoked:
    member: indexed(address)

event PactApproved:
    committee_id: indexed(uint256)
    pact_id: indexed(uint256)


owner: public(address)
pending_owner: public(address)
guardian: public(address)
paused: public(bool)
asset_allowed: public(HashMap[address, bool])
escrow: public(address)

WINDOW_MAX: public(immutable(uint256))
MIN_ROTATION_DELAY: public(immutable(uint256))

committee_count: public(uint256)
version_count: public(uint256)
committees: public(HashMap[uint256, Committee])
# current version (low 64) | pending version (next 64) | pending effective time (next 64)
schedule: HashMap[uint256, uint256]
# committee id (low 64) | threshold (next 8) | size (next 8) | accepted-member bitmap (next 16)
# | revoked-member bitmap (next 16: accepted members whose key is revoked)
version_meta: HashMap[uint256, uint256]
# evaluator bond (low 128) | evaluator penalty (high 128)
version_money: HashMap[uint256, uint256]
member_at: public(HashMap[uint256, HashMap[uint256, address]])
member_index: public(HashMap[uint256, HashMap[address, uint256]])  # index + 1; 0: not listed
revoked: public(HashMap[address, bool])
accepted_count: public(HashMap[address, uint256])  # versions the member accepted
accepted_at: public(HashMap[address, HashMap[uint256, uint256]])  # k-th accepted version
approved: public(HashMap[uint256, HashMap[uint256, bool]])  # committee -> pact -> approved
# per pact: bit 0 its committee approved it, bit 1 its appeal committee approved it (one read at open)
approvals: HashMap[uint256, uint256]
disjoint: HashMap[uint256, HashMap[uint256, bool]]  # (version, appeal version) checked once


@deploy
def __init__(window_max: uint256, min_rotation_delay: uint256):
    """
    @notice Deploy the registry. Its deployment constants are immutable, so no admin call can
            change the rules of a pact or job in flight.
    @param window_max Upper bound of each pact window, in seconds.
    @param min_rotation_delay Minimum committee rotation delay, in seconds.
    """
    assert window_max > 0 and window_max < U64, "admin: window bound out of range"
    assert min_rotation_delay < U64, "admin: rotation delay out of range"
    WINDOW_MAX = window_max
    MIN_ROTATION_DELAY = min_rotation_delay
    self.owner = msg.sender
    log OwnershipTransferred(previous_owner=empty(address), new_owner=msg.sender)


# ---------------------------------------------------------------------------------------------
# admin

@external
def transfer_ownership(new_owner: address):
    """
    @notice Start a two-step ownership transfer; `new_owner` completes it with accept_ownership.
    """
    assert msg.sender == self.owner, "admin: not owner"
    self.pending_owner = new_owner
    log OwnershipTransferStarted(previous_owner=self.owner, new_owner=new_owner)


@external
def accept_ownership():
    """
    @notice Complete a two-step ownership transfer.
    """
    assert msg.sender == self.pending_owner, "admin: not pending owner"
    log OwnershipTransferred(previous_owner=self.owner, new_owner=msg.sender)
    self.owner = msg.sender
    self.pending_owner = empty(address)


@external
def set_guardian(guardian: address):
    """
    @notice Set the guardian, who may pause open, accept and the creation of pacts and
            committees (never refunds, expiry, finalization or withdrawal).
    """
    assert msg.sender == self.owner, "admin: not owner"
    self.guardian = guardian
    log GuardianSet(guardian=guardian)


@external
def set_paused(paused: bool):
    """
    @notice Pause or unpause (guardian or owner).
    """
    assert msg.sender == self.guardian or msg.sender == self.owner, "admin: not guardian"
    self.paused = paused
    log PausedSet(paused=paused, by=msg.sender)


@external
def set_asset_allowed(asset: address, allowed: bool):
    """
    @notice Allow or refuse an ERC-20 for new pacts, committees and stakes. ETH (the empty
            address) is always allowed. Existing pacts and jobs are unaffected.
    """
    assert msg.sender == self.owner, "admin: not owner"
    assert asset.is_contract, "admin: asset has no code"
    self.asset_allowed[asset] = allowed
    log AssetAllowed(asset=asset, allowed=allowed)


@external
def set_escrow(escrow: address):
    """
    @notice Bind the registry to its escrow, once.
    """
    assert msg.sender == self.owner, "admin: not owner"
    assert self.escrow == empty(address), "admin: escrow already set"
    assert escrow.is_contract, "admin: escrow has no code"
    self.escrow = escrow
    log EscrowSet(escrow=escrow)


# ---------------------------------------------------------------------------------------------
# committees

@external
def create_committee(asset: address, rotation_delay: uint256, members: DynArray[address, MAX_MEMBERS], threshold: uint256, evaluator_bond: uint256, evaluator_penalty: uint256) -> uint256:
    """
    @notice Create a committee; the caller is its admin. Its first version is in force at once;
            each listed member counts only once it accepts the version.
    @param asset Asset of evaluator stake, bonds and penalties (empty address: ETH); pacts
           naming the committee must use it.
    @param rotation_delay Delay before a later version takes effect (>= the deployment minimum).
    @return The committee id.
    """
    assert not self.paused, "escrow: paused"
    assert asset == empty(address) or self.asset_allowed[asset], "committee: asset not allowed"
    assert rotation_delay >= MIN_ROTATION_DELAY, "committee: rotation delay too short"
    assert rotation_delay < U64, "committee: rotation delay too long"
    cid: uint256 = self.committee_count + 1
    self.committee_count = cid
    self.committees[cid] = Committee(admin=msg.sender, asset=asset, rotation_delay=rotation_delay)
    log CommitteeCreated(committee_id=cid, admin=msg.sender, asset=asset, rotation_delay=rotation_delay)
    vid: uint256 = self._new_version(cid, members, threshold, evaluator_bond, evaluator_penalty, block.timestamp)
    self.schedule[cid] = vid
    return cid


@external
def propose_version(committee_id: uint256, members: DynArray[address, MAX_MEMBERS], threshold: uint256, evaluator_bond: uint256, evaluator_penalty: uint256) -> uint256:
    """
    @notice Propose the committee's next version. It takes effect after the rotation delay and
            never touches a job opened before; it replaces a proposal not yet in force. Works
            while paused (pause blocks only open, accept and creating pacts and committees).
    @return The new version id.
    """
    c: Committee = self.committees[committee_id]
    assert c.admin == msg.sender, "committee: not admin"
    current: uint256 = self._current_version(committee_id)
    effective_at: uint256 = block.timestamp + c.rotation_delay
    vid: uint256 = self._new_version(committee_id, members, threshold, evaluator_bond, evaluator_penalty, effective_at)
    self.schedule[committee_id] = current | (vid << 64) | (effective_at << 128)
    return vid


@internal
def _new_version(cid: uint256, members: DynArray[address, MAX_MEMBERS], threshold: uint256, bond: uint256, penalty: uint256, effective_at: uint256) -> uint256:
    assert threshold >= 1 and threshold <= len(members), "committee: threshold out of range"
    assert penalty <= bond, "committee: penalty above bond"
    assert bond < 2**128, "committee: bond too large"
    vid: uint256 = self.version_count + 1
    self.version_count = vid
    self.version_meta[vid] = cid | (threshold << 64) | (len(members) << 72)
    self.version_money[vid] = bond | (penalty << 128)
    i: uint256 = 0
    for m: address in members:
        assert m != empty(address), "committee: zero member"
        assert self.member_index[vid][m] == 0, "committee: duplicate member"
        self.member_index[vid][m] = i + 1
        self.member_at[vid][i] = m
        i += 1
    log VersionProposed(committee_id=cid, version_id=vid, members=members, threshold=threshold, evaluator_bond=bond, evaluator_penalty=penalty, effective_at=effective_at)
    return vid


@external
def accept_version(version_id: uint256):
    """
    @notice A listed member consents to serve in this version and answer with its stake.
    """
    idx: uint256 = self.member_index[version_id][msg.sender]
    assert idx != 0, "committee: not listed"
    meta: uint256 = self.version_meta[version_id]
    assert (meta >> (ACCEPTED_AT + idx - 1)) & 1 == 0, "committee: already accepted"
    meta |= 1 << (ACCEPTED_AT + idx - 1)
    if self.revoked[msg.sender]:
        meta |= 1 << (REVOKED_AT + idx - 1)  # accepted, never active
    else:
        n: uint256 = self.accepted_count[msg.sender]
        assert n < MAX_ACCEPTED, "committee: too many versions accepted"
        self.accepted_at[msg.sender][n] = version_id
        self.accepted_count[msg.sender] = n + 1
    self.version_meta[version_id] = meta
    log VersionAccepted(version_id=version_id, member=msg.sender)


@external
def revoke_key():
    """
    @notice Revoke the caller's own key at once: every vote it signed that is posted afterwards
            is refused, in-flight jobs included. Counted votes stay counted; reservations, stake
            and cooldowns are unchanged.
    """
    assert not self.revoked[msg.sender], "committee: already revoked"
    self.revoked[msg.sender] = True
    # the member's bit in every version it accepted: rosters read it from the version's word
    for k: uint256 in range(MAX_ACCEPTED):
        if k >= self.accepted_count[msg.sender]:
            break
        vid: uint256 = self.accepted_at[msg.sender][k]
        idx: uint256 = self.member_index[vid][msg.sender]
        self.version_meta[vid] |= 1 << (REVOKED_AT + idx - 1)
    log KeyRevoked(member=msg.sender)


@external
def approve_pact(committee_id: uint256, pact_id: uint256, terms: types.PactTerms):
    """
    @notice The committee admin accepts that a pact may name this committee (as committee or
            appeal committee). Without both approvals no job opens on the pact.
    @param terms The pact's terms, checked against the hash the escrow holds.
    """
    assert self.committees[committee_id].admin == msg.sender, "committee: not admin"
    assert staticcall IEscrow(self.escrow).pact_hash(pact_id) == keccak256(abi_encode(terms)), "committee: terms do not match pact"
    assert terms.committee_id == committee_id or terms.appeal_committee_id == committee_id, "committee: pact does not name it"
    self.approved[committee_id][pact_id] = True
    bits: uint256 = self.approvals[pact_id]
    if terms.committee_id == committee_id:
        bits |= 1
    if terms.appeal_committee_id == committee_id:
        bits |= 2
    self.approvals[pact_id] = bits
    log PactApproved(committee_id=committee_id, pact_id=pact_id)


# ---------------------------------------------------------------------------------------------
# reads for the escrow and clients

@view
@internal
def _current_version(cid: uint256) -> uint256:
    sched: uint256 = self.schedule[cid]
    pending: uint256 = (sched >> 64) % U64
    if pending != 0 and block.timestamp >= sched >> 128:
        return pending
    return sched % U64


@view
@external
def current_version(committee_id: uint256) -> uint256:
    """
    @notice The version a job opened now would bind to (0: unknown committee).
    """
    return self._current_version(committee_id)


@view
@external
def pending_version(committee_id: uint256) -> (uint256, uint256):
    """
    @notice The proposed version and when it takes effect (0, 0 if none).
    """
    sched: uint256 = self.schedule[committee_id]
    return (sched >> 64) % U64, sched >> 128


@view
@internal
def _roster(vid: uint256, money: bool, live: bool) -> types.Roster:
    meta: uint256 = self.version_meta[vid]
    size: uint256 = (meta >> 72) % 256
    mask: uint256 = (meta >> ACCEPTED_AT) % 2**16
    r: types.Roster = types.Roster(committee_id=meta % U64, threshold=(meta >> 64) % 256, bond=0, penalty=0, members=[], accepted=mask, active=0)
    if live:
        r.active = mask & ~((meta >> REVOKED_AT) % 2**16)
    if money:
        w: uint256 = self.version_money[vid]
        r.bond = w % 2**128
        r.penalty = w >> 128
    for i: uint256 in range(MAX_MEMBERS):
        if i >= size:
            break
        r.members.append(self.member_at[vid][i])
    return r


@view
@external
def roster(version_id: uint256, live: bool = True, money: bool = True) -> types.Roster:
    """
    @notice A version's terms, listed members by index, the accepted ones, and (when `live`)
            which are active now: accepted and not revoked (else `active` is 0). With `money`
            false, bond and penalty read as 0 (one storage read fewer: vote counting needs
            neither).
    """
    return self._roster(version_id, money, live)


@view
@external
def vote_roster(version_id: uint256, voters: DynArray[address, MAX_MEMBERS]) -> (uint256, uint256, uint256, uint256):
    """
    @notice What counting votes needs, without reading the member list (one storage read per
            voter instead of one per member): the version's threshold, its member count, its
            active members now (accepted, key not revoked; bitmap by index) and each voter's
            index, 8 bits per voter in call order (MAX_MEMBERS: not listed). An unknown version
            reads as size 0 and nobody listed.
    @return (threshold, member count, active bitmap, voters' indices)
    """
    meta: uint256 = self.version_meta[version_id]
    indices: uint256 = 0
    for k: uint256 in range(len(voters), bound=MAX_MEMBERS):
        i: uint256 = MAX_MEMBERS  # not listed
        listed: uint256 = self.member_index[version_id][voters[k]]  # index + 1; 0: not listed
        if listed != 0:
            i = listed - 1
        indices |= i << (8 * k)
    active: uint256 = ((meta >> ACCEPTED_AT) % 2**16) & ~((meta >> REVOKED_AT) % 2**16)
    return (meta >> 64) % 256, (meta >> 72) % 256, active, indices


@view
@external
def accepted_mask(version_id: uint256) -> uint256:
    """
    @notice Bitmap by member index of the members that accepted this version.
    """
    return (self.version_meta[version_id] >> ACCEPTED_AT) % 2**16


@view
@internal
def _popcount(x: uint256) -> uint256:
    n: uint256 = 0
    y: uint256 = x
    for i: uint256 in range(MAX_MEMBERS):
        if y == 0:
            break
        n += y & 1
        y >>= 1
    return n


@external
def open_roster(pact_id: uint256, committee_id: uint256, appeal_committee_id: uint256, expected_version: uint256, expected_appeal_version: uint256, buyer: address, agent: address) -> types.Roster:
    """
    @notice The checks of DESIGN's committee rules for opening a job, and the roster of the
            committee version it binds to. Reverts "escrow: committee changed" if either version
            differs from the buyer's expectation. Caches the (version, appeal version)
            disjointness, a fixed fact, the first time it is checked.
    """
    assert not self.paused, "escrow: paused"
    assert self.approvals[pact_id] == 3, "escrow: pact not approved"
    cv: uint256 = self._current_version(committee_id)
    av: uint256 = self._current_version(appeal_committee_id)
    assert cv == expected_version and av == expected_appeal_version, "escrow: committee changed"
    r: types.Roster = self._roster(cv, True, True)
    # the appeal version: its word only (threshold, accepted and revoked bits), and the
    # parties looked up in its member index rather than its member list read
    ameta: uint256 = self.version_meta[av]
    for party: address in [buyer, agent]:
        for m: address in r.members:
            assert m != party, "escrow: party is evaluator"
        assert self.member_index[av][party] == 0, "escrow: party is evaluator"
    athreshold: uint256 = (ameta >> 64) % 256
    assert athreshold >= r.threshold, "escrow: appeal threshold low"
    if not self.disjoint[cv][av]:
        for m: address in r.members:
            assert self.member_index[av][m] == 0, "escrow: committees overlap"
        self.disjoint[cv][av] = True
    aactive: uint256 = (ameta >> ACCEPTED_AT) % 2**16 & ~((ameta >> REVOKED_AT) % 2**16)
    assert self._popcount(aactive) >= athreshold, "escrow: appeal quorum unavailable"
    return r


@view
@external
def check_pact(t: types.PactTerms) -> bool:
    """
    @notice Revert with a reason naming the first incoherent term; True if the terms hold.
    """
    assert not self.paused, "escrow: paused"
    assert t.asset == empty(address) or self.asset_allowed[t.asset], "pact: asset not allowed"
    assert self.committees[t.committee_id].admin != empty(address), "pact: unknown committee_id"
    assert self.committees[t.appeal_committee_id].admin != empty(address), "pact: unknown appeal_committee_id"
    assert t.committee_id != t.appeal_committee_id, "pact: appeal_committee_id equals committee_id"
    assert self.committees[t.committee_id].asset == t.asset, "pact: committee asset differs"
    assert self.committees[t.appeal_committee_id].asset == t.asset, "pact: appeal committee asset differs"
    assert t.spec_hash != empty(bytes32), "pact: empty spec_hash"
    assert t.pass_at_bps <= BPS, "pact: pass_at_bps above 10000"
    assert t.fail_below_bps <= t.pass_at_bps, "pact: fail_below_bps above pass_at_bps"
    assert t.bond_bps <= BPS, "pact: bond_bps above 10000"
    assert t.slash_bps <= BPS, "pact: slash_bps above 10000"
    assert t.slash_buyer_bps + t.slash_insurance_bps + t.slash_burn_bps == BPS, "pact: slash shares must sum to 10000"
    assert t.slash_insurance_bps == 0 or t.insurance != empty(address), "pact: zero insurance address"
    assert not t.shadow or (t.bond_bps == 0 and t.slash_bps == 0), "pact: shadow pact takes no bond or slash"
    assert t.appeal_fee <= t.challenge_bond, "pact: appeal_fee above challenge_bond"
    assert t.challenge_window == 0 or t.challenge_bond > 0, "pact: zero challenge_bond"
    assert t.min_appeal_delta_bps >= 1 and t.min_appeal_delta_bps <= BPS, "pact: min_appeal_delta_bps out of range"
    assert t.accept_window >= 1 and t.accept_window <= WINDOW_MAX, "pact: accept_window out of bounds"
    assert t.work_window >= 1 and t.work_window <= WINDOW_MAX, "pact: work_window out of bounds"
    assert t.eval_window >= 1 and t.eval_window <= WINDOW_MAX, "pact: eval_window out of bounds"
    assert t.challenge_window <= WINDOW_MAX, "pact: challenge_window out of bounds"
    assert t.appeal_window <= WINDOW_MAX, "pact: appeal_window out of bounds"
    assert t.challenge_window == 0 or t.appeal_window >= 1, "pact: zero appeal_window"
    assert t.cap_max > 0, "pact: zero cap_max"
    assert t.cap_initial <= t.cap_max, "pact: cap_initial above cap_max"
    for x: uint256 in [t.bond_cap, t.evaluator_fee, t.challenge_bond, t.min_expansion_value, t.cap_step, t.cap_max]:
        assert x < 2**128, "pact: amount above 2**128"
    return True
