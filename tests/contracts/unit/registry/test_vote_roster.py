"""PactRegistry.vote_roster: threshold, size, live active bitmap and each voter's index, one byte
a voter, held against roster() (what the escrow's settle path reads instead)."""

import boa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.contracts.conftest import E18, MIN_ROTATION_DELAY
from tests.contracts.unit.registry.conftest import ZERO, new_actors

MAX_MEMBERS = 16  # types.MAX_MEMBERS: the byte a voter not listed in the version gets


def _bytes(indices, n):
    """The first `n` voter bytes of `indices`, and what is left above them (must be 0)."""
    return [(indices >> (8 * k)) % 256 for k in range(n)], indices >> (8 * n)


def _expected(members, voters):
    """Each voter's index in the roster's member list (MAX_MEMBERS: not listed)."""
    listed = [m.lower() for m in members]
    return [listed.index(v.lower()) if v.lower() in listed else MAX_MEMBERS for v in voters]


def _addr(who):
    return getattr(who, "address", who)


def _check_against_roster(r, vid, voters):
    """vote_roster(vid, voters) agrees with roster(vid, True, False) field for field, byte for byte."""
    voters = [_addr(v) for v in voters]
    threshold, size, active, indices = r.vote_roster(vid, voters)
    ro = r.roster(vid, True, False)
    assert (threshold, size, active) == (ro.threshold, len(ro.members), ro.active)
    got, rest = _bytes(indices, len(voters))
    assert got == _expected(ro.members, voters)
    assert rest == 0  # nothing written past the last voter's byte
    return threshold, size, active, got


def _accept(r, vid, *who):
    for m in who:
        with boa.env.prank(m.address):
            r.accept_version(vid)


def _revoke(r, *who):
    for m in who:
        with boa.env.prank(m.address):
            r.revoke_key()


# -- agreement with roster ---------------------------------------------------------------

def test_vote_roster__committee_version__matches_roster_and_call_order(world):
    r = world.registry
    members = new_actors(world, "vr", 5)
    cid = world.create_committee(members, 3)
    vid = r.current_version(cid)
    # arbitrary order with a repeat: bytes follow the call order, not the member order
    voters = [members[3], members[0], members[4], members[3], members[1]]
    threshold, size, active, got = _check_against_roster(r, vid, voters)
    assert (threshold, size, active) == (3, 5, 0b11111)
    assert got == [3, 0, 4, 3, 1]


def test_vote_roster__fixture_committee__indices_of_roster_members(world):
    r = world.registry
    vid = r.current_version(world.committee_id)
    ev = world.evaluators
    assert r.vote_roster(vid, [ev[2].address, ev[0].address, ev[1].address]) == (
        2, 3, 0b111, 2 | (0 << 8) | (1 << 16))
    _check_against_roster(r, vid, [ev[1], ev[1], ev[2]])


def test_vote_roster__sixteen_members_reversed__every_byte_position_used(world):
    r = world.registry
    members = new_actors(world, "vr16", MAX_MEMBERS)
    cid = world.create_committee(members, 9)
    vid = r.current_version(cid)
    voters = [m.address for m in reversed(members)]
    threshold, size, active, indices = r.vote_roster(vid, voters)
    assert (threshold, size, active) == (9, 16, 2**16 - 1)
    assert indices == sum((15 - k) << (8 * k) for k in range(16))
    _check_against_roster(r, vid, voters)


def test_vote_roster__same_address_in_two_versions__index_per_version(world):
    """member_index is keyed by version: a rotation that reorders members changes the bytes,
    and the proposed (not yet in force) version reads its own order at once."""
    r = world.registry
    members = new_actors(world, "vrv", 4)
    cid = world.create_committee(members, 2)
    v1 = r.current_version(cid)
    reordered = [members[2], members[0], members[3]]  # members[1] dropped
    with boa.env.prank(world.admin.address):
        v2 = r.propose_version(cid, [m.address for m in reordered], 2, 10 * E18, 5 * E18)
    voters = [m.address for m in members]
    assert _bytes(r.vote_roster(v1, voters)[3], 4)[0] == [0, 1, 2, 3]
    assert _bytes(r.vote_roster(v2, voters)[3], 4)[0] == [1, MAX_MEMBERS, 0, 2]
    assert r.vote_roster(v2, voters)[:3] == (2, 3, 0)  # nobody accepted v2 yet
    world.warp(MIN_ROTATION_DELAY)
    assert r.current_version(cid) == v2
    _check_against_roster(r, v1, voters)
    _check_against_roster(r, v2, voters)


# -- voters not listed ---------------------------------------------------------------------

def test_vote_roster__outsiders__byte_is_max_members_others_unaffected(world):
    r = world.registry
    members = new_actors(world, "vro", 3)
    cid = world.create_committee(members, 2)
    vid = r.current_version(cid)
    outsider = new_actors(world, "vro-out", 1)[0]
    listed_only = [members[2], members[0], members[1]]
    base = _bytes(r.vote_roster(vid, [m.address for m in listed_only])[3], 3)[0]
    assert base == [2, 0, 1]
    # the same voters with outsiders around them: a stranger, the zero address, an evaluator
    # listed in another committee, the committee's own admin
    voters = [outsider, members[2], ZERO, members[0], world.evaluators[0], members[1], world.admin]
    threshold, size, active, got = _check_against_roster(r, vid, voters)
    assert got == [MAX_MEMBERS, 2, MAX_MEMBERS, 0, MAX_MEMBERS, 1, MAX_MEMBERS]
    assert [got[1], got[3], got[5]] == base
    assert (threshold, size, active) == (2, 3, 0b111)  # outsiders change none of the rest


def test_vote_roster__only_outsiders__all_bytes_max_members(world):
    r = world.registry
    vid = r.current_version(world.committee_id)
    voters = [a.address for a in (world.attacker, world.buyer, world.agent)]
    threshold, size, active, indices = r.vote_roster(vid, voters)
    assert (threshold, size, active) == (2, 3, 0b111)
    assert indices == MAX_MEMBERS | (MAX_MEMBERS << 8) | (MAX_MEMBERS << 16)


# -- active is live ------------------------------------------------------------------------

def test_vote_roster__key_revoked__active_drops_bit_index_stays(world):
    r = world.registry
    members = new_actors(world, "vrr", 4)
    cid = world.create_committee(members, 2)
    vid = r.current_version(cid)
    voters = [members[1], members[3], members[0]]
    before = _check_against_roster(r, vid, voters)
    assert before == (2, 4, 0b1111, [1, 3, 0])
    _revoke(r, members[1])
    assert r.revoked(members[1].address) is True
    after = _check_against_roster(r, vid, voters)
    assert after == (2, 4, 0b1101, [1, 3, 0])  # bit 1 gone, its byte unchanged
    _revoke(r, members[3])
    assert r.vote_roster(vid, [members[3].address])[2:] == (0b0101, 3)


def test_vote_roster__member_not_accepted__listed_but_not_active(world):
    r = world.registry
    members = new_actors(world, "vra", 3)
    cid = world.create_committee(members, 2, accept=False)
    vid = r.current_version(cid)
    voters = [members[2], members[1], members[0]]
    assert _check_against_roster(r, vid, voters) == (2, 3, 0, [2, 1, 0])
    _accept(r, vid, members[0], members[2])
    assert _check_against_roster(r, vid, voters) == (2, 3, 0b101, [2, 1, 0])
    _accept(r, vid, members[1])
    assert r.vote_roster(vid, [])[2] == 0b111


def test_vote_roster__revoked_then_accepted__accepted_never_active(world):
    r = world.registry
    members = new_actors(world, "vrx", 2)
    cid = world.create_committee(members, 1, accept=False)
    vid = r.current_version(cid)
    _revoke(r, members[0])
    _accept(r, vid, members[0], members[1])
    assert r.accepted_mask(vid) == 0b11
    assert _check_against_roster(r, vid, members) == (1, 2, 0b10, [0, 1])


def test_vote_roster__revocation_marks_every_accepted_version(world):
    r = world.registry
    members = new_actors(world, "vrm", 2)
    cid = world.create_committee(members, 1)
    v1 = r.current_version(cid)
    with boa.env.prank(world.admin.address):
        v2 = r.propose_version(cid, [members[1].address, members[0].address], 1, 10 * E18, 5 * E18)
    _accept(r, v2, *members)
    _revoke(r, members[0])
    assert r.vote_roster(v1, [members[0].address])[2:] == (0b10, 0)
    assert r.vote_roster(v2, [members[0].address])[2:] == (0b01, 1)


# -- empty and unknown ---------------------------------------------------------------------

def test_vote_roster__no_voters__indices_zero(world):
    r = world.registry
    vid = r.current_version(world.committee_id)
    assert r.vote_roster(vid, []) == (2, 3, 0b111, 0)


@pytest.mark.parametrize("which", ["next", "zero", "far"])
def test_vote_roster__unknown_version__zeros_and_unlisted_bytes(world, which):
    r = world.registry
    vid = {"next": r.version_count() + 1, "zero": 0, "far": 2**64 + 1}[which]
    voters = [world.evaluators[0].address, world.attacker.address, ZERO]
    assert r.vote_roster(vid, voters) == (0, 0, 0, sum(MAX_MEMBERS << (8 * k) for k in range(3)))
    assert r.vote_roster(vid, []) == (0, 0, 0, 0)
    _check_against_roster(r, vid, voters)


def test_vote_roster__more_than_max_members_voters__reverts(world):
    r = world.registry
    vid = r.current_version(world.committee_id)
    voters = [world.evaluators[k % 3].address for k in range(MAX_MEMBERS + 1)]
    with boa.reverts():
        r.vote_roster(vid, voters)
    assert _bytes(r.vote_roster(vid, voters[:MAX_MEMBERS])[3], MAX_MEMBERS)[0] == [
        k % 3 for k in range(MAX_MEMBERS)]


# -- property: every byte against the roster -----------------------------------------------

@pytest.fixture
def mixed(world):
    """Two versions of one committee (the second reorders and drops members) with mixed
    consent and a revoked key, beside the fixture committees; plus outsiders."""
    r = world.registry
    members = new_actors(world, "vrp", 10)
    cid = world.create_committee(members, 4, accept=False)
    v1 = r.current_version(cid)
    _accept(r, v1, *members[:8])  # members 8 and 9 never accept
    second = [members[k] for k in (9, 4, 0, 7, 2, 5)]
    with boa.env.prank(world.admin.address):
        v2 = r.propose_version(cid, [m.address for m in second], 3, 10 * E18, 5 * E18)
    _accept(r, v2, *second[:4])
    _revoke(r, members[4], members[9])  # accepted in both, and accepted in v2 only
    outsiders = [*new_actors(world, "vrp-out", 3), world.evaluators[1], world.admin]
    pool = [m.address for m in members] + [o.address for o in outsiders] + [ZERO]
    vids = [v1, v2, r.current_version(world.committee_id), r.version_count() + 1]
    return vids, pool


@settings(max_examples=30, deadline=None,
          # `mixed` is built once per test, not per example: safe since vote_roster and roster
          # are views, so no example changes what the next one reads
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_vote_roster__random_voters__every_byte_matches_roster(mixed, world, data):
    vids, pool = mixed
    vid = data.draw(st.sampled_from(vids), label="version")
    voters = data.draw(st.one_of(
        st.lists(st.sampled_from(pool), max_size=MAX_MEMBERS),  # repeats allowed
        st.permutations(pool).map(lambda p: p[:MAX_MEMBERS]),
        st.lists(st.sampled_from(pool), unique=True, max_size=MAX_MEMBERS),
    ), label="voters")
    _, size, active, got = _check_against_roster(world.registry, vid, voters)
    assert len(got) == len(voters)
    assert all(b < size or b == MAX_MEMBERS for b in got)
    assert active < 2**size
