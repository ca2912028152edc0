"""PactRegistry committees: creation, versions and rotation, consent, revocation, pact approval, pause scope."""

import boa
import pytest

from tests.contracts.conftest import E18, ETH, EVAL_BOND, EVAL_PENALTY, MIN_ROTATION_DELAY
from tests.contracts.unit.registry.conftest import ZERO, events, new_actors

U64 = 2**64


def _create(world, members, threshold=1, bond=EVAL_BOND, penalty=EVAL_PENALTY, asset=ETH,
            delay=MIN_ROTATION_DELAY, admin=None):
    with boa.env.prank((admin or world.admin).address):
        return world.registry.create_committee(asset, delay, [getattr(m, "address", m) for m in members],
                                               threshold, bond, penalty)


def _propose(world, cid, members, threshold=1, bond=EVAL_BOND, penalty=EVAL_PENALTY, admin=None):
    with boa.env.prank((admin or world.admin).address):
        return world.registry.propose_version(cid, [m.address for m in members], threshold, bond, penalty)


def _pause(world):
    with boa.env.prank(world.guardian.address):
        world.registry.set_paused(True)


# -- create_committee ----------------------------------------------------------------------

def test_create_committee__valid__version_one_in_force_at_once(world):
    r = world.registry
    members = new_actors(world, "m", 3)
    count, vcount = r.committee_count(), r.version_count()
    cid = _create(world, members, threshold=2)
    assert cid == count + 1 == r.committee_count()
    vid = vcount + 1
    assert r.version_count() == vid
    assert r.current_version(cid) == vid  # no delay for the first version
    assert r.pending_version(cid) == (0, 0)
    assert r.committees(cid) == (world.admin.address, ETH, MIN_ROTATION_DELAY)
    roster = r.roster(vid)
    assert (roster.committee_id, roster.threshold, roster.bond, roster.penalty) == (cid, 2, EVAL_BOND, EVAL_PENALTY)
    assert roster.members == [m.address for m in members]
    assert (roster.accepted, roster.active) == (0, 0)  # listed, not yet consented
    for i, m in enumerate(members):
        assert r.member_index(vid, m.address) == i + 1
        assert r.member_at(vid, i) == m.address


def test_create_committee__valid__emits_created_and_version_proposed(world):
    r = world.registry
    members = new_actors(world, "m", 2)
    cid, vid, now = r.committee_count() + 1, r.version_count() + 1, world.now()
    with boa.env.prank(world.admin.address):
        r.create_committee(ETH, MIN_ROTATION_DELAY, [m.address for m in members], 2, 3 * E18, E18)
    assert events(r) == [
        ("CommitteeCreated", {"committee_id": cid, "admin": world.admin.address, "asset": ETH, "rotation_delay": MIN_ROTATION_DELAY}),
        ("VersionProposed", {"committee_id": cid, "version_id": vid, "members": [m.address for m in members],
                             "threshold": 2, "evaluator_bond": 3 * E18, "evaluator_penalty": E18, "effective_at": now}),
    ]


def test_create_committee__paused__reverts(world):
    _pause(world)
    count = world.registry.committee_count()
    with boa.reverts("escrow: paused"):
        _create(world, new_actors(world, "m", 1))
    with boa.env.prank(world.owner.address):
        world.registry.set_paused(False)
    assert _create(world, new_actors(world, "m", 1)) == count + 1


def test_create_committee__asset_not_allowed__reverts(world, token):
    with boa.env.prank(world.owner.address):
        world.registry.set_asset_allowed(token.address, False)
    with boa.reverts("committee: asset not allowed"):
        _create(world, new_actors(world, "m", 1), asset=token.address)
    with boa.reverts("committee: asset not allowed"):
        _create(world, new_actors(world, "m", 1), asset=world.attacker.address)


def test_create_committee__allowed_token__records_asset(world, token):
    cid = _create(world, new_actors(world, "m", 1), asset=token.address)
    assert world.registry.committees(cid)[1] == token.address


def test_create_committee__rotation_delay_bounds__refused_outside(world):
    m = new_actors(world, "m", 1)
    with boa.reverts("committee: rotation delay too short"):
        _create(world, m, delay=MIN_ROTATION_DELAY - 1)
    with boa.reverts("committee: rotation delay too long"):
        _create(world, m, delay=U64)
    lo = _create(world, m, delay=MIN_ROTATION_DELAY)
    hi = _create(world, m, delay=U64 - 1)
    assert world.registry.committees(lo)[2] == MIN_ROTATION_DELAY
    assert world.registry.committees(hi)[2] == U64 - 1


@pytest.mark.parametrize("threshold", [0, 4])
def test_create_committee__threshold_out_of_range__reverts(world, threshold):
    count = world.registry.committee_count()
    with boa.reverts("committee: threshold out of range"):
        _create(world, new_actors(world, "m", 3), threshold=threshold)
    assert world.registry.committee_count() == count


def test_create_committee__threshold_equals_members__accepted(world):
    cid = _create(world, new_actors(world, "m", 3), threshold=3)
    assert world.registry.roster(world.registry.current_version(cid)).threshold == 3


def test_create_committee__no_members__reverts(world):
    with boa.reverts("committee: threshold out of range"):
        _create(world, [], threshold=0)


def test_create_committee__sixteen_members__accepted(world):
    members = new_actors(world, "m", 16)
    cid = _create(world, members, threshold=16)
    assert world.registry.roster(world.registry.current_version(cid)).members == [m.address for m in members]


def test_create_committee__penalty_above_bond__reverts(world):
    m = new_actors(world, "m", 1)
    with boa.reverts("committee: penalty above bond"):
        _create(world, m, bond=E18, penalty=E18 + 1)
    cid = _create(world, m, bond=E18, penalty=E18)  # equal is fine
    assert world.registry.roster(world.registry.current_version(cid)).penalty == E18


def test_create_committee__bond_too_large__reverts(world):
    m = new_actors(world, "m", 1)
    with boa.reverts("committee: bond too large"):
        _create(world, m, bond=2**128, penalty=0)
    cid = _create(world, m, bond=2**128 - 1, penalty=2**128 - 1)
    roster = world.registry.roster(world.registry.current_version(cid))
    assert (roster.bond, roster.penalty) == (2**128 - 1, 2**128 - 1)


def test_create_committee__zero_member__reverts(world):
    m = new_actors(world, "m", 1)
    with boa.reverts("committee: zero member"):
        _create(world, [m[0].address, ZERO], threshold=1)


def test_create_committee__duplicate_member__reverts(world):
    m = new_actors(world, "m", 2)
    with boa.reverts("committee: duplicate member"):
        _create(world, [m[0], m[1], m[0]], threshold=2)


# -- accept_version ------------------------------------------------------------------------

def test_accept_version__listed_member__sets_bit_and_emits(world):
    r = world.registry
    members = new_actors(world, "m", 3)
    cid = _create(world, members, threshold=2)
    vid = r.current_version(cid)
    with boa.env.prank(members[1].address):
        r.accept_version(vid)
    assert events(r) == [("VersionAccepted", {"version_id": vid, "member": members[1].address})]
    assert r.accepted_mask(vid) == 0b010
    assert r.roster(vid).active == 0b010


def test_accept_version__not_listed__reverts(world):
    r = world.registry
    vid = r.current_version(world.committee_id)
    for who in (world.attacker, world.appeal_evaluators[0]):  # a member of another version is not listed here
        with boa.env.prank(who.address), boa.reverts("committee: not listed"):
            r.accept_version(vid)
    with boa.env.prank(world.evaluators[0].address), boa.reverts("committee: not listed"):
        r.accept_version(r.version_count() + 1)  # unknown version
    assert r.accepted_mask(vid) == 0b111


def test_accept_version__already_accepted__reverts(world):
    vid = world.registry.current_version(world.committee_id)
    with boa.env.prank(world.evaluators[2].address), boa.reverts("committee: already accepted"):
        world.registry.accept_version(vid)


def test_accept_version__pending_version__accepted_before_it_takes_effect(world):
    r = world.registry
    new = new_actors(world, "m", 2)
    vid = _propose(world, world.committee_id, new, threshold=2)
    with boa.env.prank(new[0].address):
        r.accept_version(vid)
    assert r.current_version(world.committee_id) != vid
    assert r.roster(vid).accepted == 0b01


# -- revoke_key ----------------------------------------------------------------------------

def test_revoke_key__member__revoked_and_emits(world):
    r, m = world.registry, world.evaluators[1]
    with boa.env.prank(m.address):
        r.revoke_key()
    assert events(r) == [("KeyRevoked", {"member": m.address})]
    assert r.revoked(m.address) is True
    roster = r.roster(r.current_version(world.committee_id))
    assert (roster.accepted, roster.active) == (0b111, 0b101)  # consent stays recorded, the key is inactive


def test_revoke_key__already_revoked__reverts(world):
    m = world.evaluators[0]
    with boa.env.prank(m.address):
        world.registry.revoke_key()
        with boa.reverts("committee: already revoked"):
            world.registry.revoke_key()
    assert world.registry.revoked(m.address) is True


def test_revoke_key__marks_every_version_it_accepted__not_the_ones_it_did_not(world):
    """ADR 011: a revocation sets the member's bit in the word of every version it accepted
    (rosters read one word, no flag per member); a version where it is listed but never
    accepted shows it neither accepted nor active, before and after."""
    r = world.registry
    m, other = new_actors(world, "m", 2)
    cid = _create(world, [m, other])
    v1 = r.current_version(cid)
    v2 = _propose(world, cid, [other, m])
    v3 = _propose(world, cid, [m, other])  # replaces v2 as the proposal; m never accepts it
    for vid in (v1, v2):
        for who in (m, other):
            with boa.env.prank(who.address):
                r.accept_version(vid)
    with boa.env.prank(other.address):
        r.accept_version(v3)
    assert r.accepted_count(m.address) == 2
    assert [r.accepted_at(m.address, k) for k in range(2)] == [v1, v2]
    before = [(r.roster(v).accepted, r.roster(v).active) for v in (v1, v2, v3)]
    assert before == [(0b11, 0b11), (0b11, 0b11), (0b10, 0b10)]
    with boa.env.prank(m.address):
        r.revoke_key()
    after = [(r.roster(v).accepted, r.roster(v).active) for v in (v1, v2, v3)]
    assert after == [(0b11, 0b10), (0b11, 0b01), (0b10, 0b10)]  # v2 lists m second


def test_accept_version__after_revocation__accepted_never_active(world):
    r = world.registry
    (m,) = new_actors(world, "m", 1)
    cid = _create(world, [m])
    with boa.env.prank(m.address):
        r.revoke_key()
        r.accept_version(r.current_version(cid))
    roster = r.roster(r.current_version(cid))
    assert (roster.accepted, roster.active) == (0b1, 0)
    assert r.accepted_count(m.address) == 0  # nothing for a revocation to mark later


def test_accept_version__256_versions_accepted__the_next_refused_revocation_still_works(world):
    """A key accepts at most 256 versions (ADR 011: revoke_key marks each, so its loop must
    stay bounded, and the member controls the count)."""
    r = world.registry
    (m,) = new_actors(world, "m", 1)
    cid = _create(world, [m])
    with boa.env.prank(m.address):
        r.accept_version(r.current_version(cid))
    vids = [_propose(world, cid, [m]) for _ in range(256)]
    with boa.env.prank(m.address):
        for vid in vids[:255]:
            r.accept_version(vid)
        assert r.accepted_count(m.address) == 256
        with boa.reverts("committee: too many versions accepted"):
            r.accept_version(vids[255])
        r.revoke_key()
    assert r.roster(vids[254]).active == 0 and r.roster(vids[254]).accepted == 1
    assert r.roster(r.current_version(cid)).active == 0


def test_roster__without_money_or_live__bond_penalty_or_active_read_as_zero(world):
    """roster(version, live, money): counting votes needs neither bond nor penalty (ADR 011),
    settlement needs no liveness."""
    r = world.registry
    vid = r.current_version(world.committee_id)
    full = r.roster(vid, True, True)
    assert (full.bond, full.penalty, full.active) == (EVAL_BOND, EVAL_PENALTY, 0b111)
    lean = r.roster(vid, True, False)
    assert (lean.bond, lean.penalty, lean.active) == (0, 0, 0b111)
    assert (lean.members, lean.accepted, lean.threshold) == (
        full.members, full.accepted, full.threshold)
    dead = r.roster(vid, False, True)
    assert (dead.bond, dead.penalty, dead.active, dead.accepted) == (
        EVAL_BOND, EVAL_PENALTY, 0, 0b111)


# -- roster --------------------------------------------------------------------------------

def test_roster__mixed_consent__active_excludes_unaccepted_and_revoked(world):
    r = world.registry
    members = new_actors(world, "m", 4)
    cid = _create(world, members, threshold=2, bond=7 * E18, penalty=3 * E18)
    vid = r.current_version(cid)
    for m in (members[0], members[2], members[3]):
        with boa.env.prank(m.address):
            r.accept_version(vid)
    with boa.env.prank(members[2].address):
        r.revoke_key()
    with boa.env.prank(members[1].address):
        r.revoke_key()  # revoked and never accepted
    roster = r.roster(vid)
    assert roster.committee_id == cid
    assert roster.members == [m.address for m in members]
    assert (roster.threshold, roster.bond, roster.penalty) == (2, 7 * E18, 3 * E18)
    assert roster.accepted == 0b1101
    assert roster.active == 0b1001


def test_roster__unknown_version__empty(world):
    roster = world.registry.roster(world.registry.version_count() + 1)
    assert (roster.committee_id, roster.threshold, roster.members, roster.accepted, roster.active) == (0, 0, [], 0, 0)


# -- propose_version and rotation ----------------------------------------------------------

def test_propose_version__admin__pending_then_in_force_exactly_at_effective_at(world):
    r, cid = world.registry, world.committee_id
    old = r.current_version(cid)
    new = new_actors(world, "m", 3)
    vid = _propose(world, cid, new, threshold=3, bond=2 * E18, penalty=E18)
    eff = world.now() + MIN_ROTATION_DELAY
    assert events(r) == [("VersionProposed", {"committee_id": cid, "version_id": vid, "members": [m.address for m in new],
                                              "threshold": 3, "evaluator_bond": 2 * E18, "evaluator_penalty": E18, "effective_at": eff})]
    assert r.pending_version(cid) == (vid, eff)
    assert r.current_version(cid) == old
    world.warp(eff - 1 - world.now())
    assert r.current_version(cid) == old  # T - 1
    world.warp(1)
    assert world.now() == eff
    assert r.current_version(cid) == vid  # T
    roster = r.roster(vid)
    assert (roster.committee_id, roster.threshold, roster.bond, roster.penalty) == (cid, 3, 2 * E18, E18)


def test_propose_version__not_admin__reverts(world):
    r, cid = world.registry, world.committee_id
    n = r.version_count()
    for who in (world.attacker, world.owner, world.evaluators[0]):
        with boa.reverts("committee: not admin"):
            _propose(world, cid, world.evaluators, admin=who)
    with boa.reverts("committee: not admin"):
        _propose(world, r.committee_count() + 1, world.evaluators)  # unknown committee has no admin
    assert r.version_count() == n
    assert r.pending_version(cid) == (0, 0)


def test_propose_version__invalid_terms__reverts_with_version_reason(world):
    cid = world.committee_id
    with boa.reverts("committee: threshold out of range"):
        _propose(world, cid, world.evaluators, threshold=4)
    with boa.reverts("committee: penalty above bond"):
        _propose(world, cid, world.evaluators, bond=E18, penalty=2 * E18)
    with boa.reverts("committee: duplicate member"):
        _propose(world, cid, [world.evaluators[0], world.evaluators[0]])
    assert world.registry.pending_version(cid) == (0, 0)


def test_propose_version__second_before_first_in_force__replaces_it(world):
    r, cid = world.registry, world.committee_id
    old = r.current_version(cid)
    v2 = _propose(world, cid, new_actors(world, "a", 2))
    eff2 = world.now() + MIN_ROTATION_DELAY
    world.warp(MIN_ROTATION_DELAY // 2)
    v3 = _propose(world, cid, new_actors(world, "b", 2))
    eff3 = world.now() + MIN_ROTATION_DELAY
    assert r.pending_version(cid) == (v3, eff3)
    world.warp(eff2 - world.now())
    assert r.current_version(cid) == old  # v2 never takes effect
    world.warp(eff3 - world.now())
    assert r.current_version(cid) == v3
    assert v2 not in (r.current_version(cid), r.pending_version(cid)[0])


def test_propose_version__after_previous_took_effect__keeps_it_current_until_next(world):
    r, cid = world.registry, world.committee_id
    v2 = _propose(world, cid, new_actors(world, "a", 2))
    world.warp(MIN_ROTATION_DELAY)
    assert r.current_version(cid) == v2
    v3 = _propose(world, cid, new_actors(world, "b", 2))
    assert r.current_version(cid) == v2
    world.warp(MIN_ROTATION_DELAY - 1)
    assert r.current_version(cid) == v2
    world.warp(1)
    assert r.current_version(cid) == v3


def test_current_version__unknown_committee__zero(world):
    cid = world.registry.committee_count() + 1
    assert world.registry.current_version(cid) == 0
    assert world.registry.pending_version(cid) == (0, 0)


# -- approve_pact --------------------------------------------------------------------------

def test_approve_pact__admin__approves_and_emits(world):
    r = world.registry
    pid, t = world.create_pact(approve=False)
    assert r.approved(world.committee_id, pid) is False
    with boa.env.prank(world.admin.address):
        r.approve_pact(world.appeal_committee_id, pid, t.as_tuple())
    assert events(r) == [("PactApproved", {"committee_id": world.appeal_committee_id, "pact_id": pid})]
    assert r.approved(world.appeal_committee_id, pid) is True
    assert r.approved(world.committee_id, pid) is False


def test_approve_pact__not_admin__reverts(world):
    pid, t = world.create_pact(approve=False)
    for who in (world.attacker, world.pact_owner, world.evaluators[0], world.owner):
        with boa.env.prank(who.address), boa.reverts("committee: not admin"):
            world.registry.approve_pact(world.committee_id, pid, t.as_tuple())
    assert world.registry.approved(world.committee_id, pid) is False


def test_approve_pact__terms_not_matching__reverts(world):
    pid, t = world.create_pact(approve=False)
    other = world.terms(pass_at_bps=9000)
    with boa.env.prank(world.admin.address):
        with boa.reverts("committee: terms do not match pact"):
            world.registry.approve_pact(world.committee_id, pid, other.as_tuple())
        with boa.reverts("committee: terms do not match pact"):
            world.registry.approve_pact(world.committee_id, pid + 1, t.as_tuple())  # no such pact
    assert world.registry.approved(world.committee_id, pid) is False


def test_approve_pact__pact_does_not_name_committee__reverts(world):
    cid = world.create_committee(new_actors(world, "m", 2), 2)  # same admin, not named by the pact
    pid, t = world.create_pact(approve=False)
    with boa.env.prank(world.admin.address), boa.reverts("committee: pact does not name it"):
        world.registry.approve_pact(cid, pid, t.as_tuple())
    assert world.registry.approved(cid, pid) is False


# -- pause scope: consent, rotation, revocation and approval always work ------------------

def test_propose_version__paused__still_works(world):
    _pause(world)
    vid = _propose(world, world.committee_id, new_actors(world, "m", 2))
    assert world.registry.pending_version(world.committee_id)[0] == vid


def test_accept_version__paused__still_works(world):
    new = new_actors(world, "m", 2)
    vid = _propose(world, world.committee_id, new)
    _pause(world)
    with boa.env.prank(new[1].address):
        world.registry.accept_version(vid)
    assert world.registry.accepted_mask(vid) == 0b10


def test_revoke_key__paused__still_works(world):
    _pause(world)
    with boa.env.prank(world.evaluators[0].address):
        world.registry.revoke_key()
    assert world.registry.revoked(world.evaluators[0].address) is True


def test_approve_pact__paused__still_works(world):
    pid, t = world.create_pact(approve=False)
    _pause(world)
    with boa.env.prank(world.admin.address):
        world.registry.approve_pact(world.committee_id, pid, t.as_tuple())
    assert world.registry.approved(world.committee_id, pid) is True
