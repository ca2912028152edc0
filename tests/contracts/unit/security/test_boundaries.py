"""RELIABILITY C9: boundaries. T-1, T and T+1 on every deadline ("until X" includes X, "after
X" means > X); amounts 0 / 1 / max; bps 0 / 1 / 10,000 / 10,001; quorum M-1 / M / N.

Each deadline test builds the state once and tries the call at the three instants inside
`boa.env.anchor()`, so every instant starts from the same state.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import boa
import pytest
from boa.contracts.base_evm_contract import BoaError

from pactbond import money
from tests.conftest import actor
from tests.contracts.conftest import E18, ETH, HOUR, MIN_ROTATION_DELAY
from tests.contracts.unit.security.conftest import (
    ACCEPTED,
    CHALLENGED,
    EXPIRED_NO_DELIVERY,
    OPEN,
    SETTLED,
    SUBMITTED,
    U128,
    VERDICT,
    assert_books,
    call_as,
    warp_to,
)
from tests.contracts.unit.votes.conftest import raw_vote

Outcome = str | None  # None: the call succeeds; a string: it reverts with that reason


def at_edges(world: Any, deadline: int, outcomes: tuple[Outcome, Outcome, Outcome],
             call: Callable[[], Any], check: Callable[[], Any] | None = None) -> None:
    """Try `call` at deadline - 1, deadline and deadline + 1, each from the same state."""
    for offset, reason in zip((-1, 0, 1), outcomes, strict=True):
        with boa.env.anchor():
            warp_to(world, deadline + offset)
            if reason is None:
                call()
                if check:
                    check()
            else:
                with boa.reverts(reason):
                    call()


def opened(world: Any, **over: Any) -> tuple[int, Any]:
    pid, t = world.create_pact(**over)
    world.stake_agent()
    return world.open(pid), t


def accepted(world: Any, **over: Any) -> tuple[int, Any]:
    jid, t = opened(world, **over)
    world.accept(jid)
    return jid, t


def submitted(world: Any, **over: Any) -> tuple[int, Any]:
    jid, t = accepted(world, **over)
    world.submit(jid)
    return jid, t


def _assert_r0(world: Any, jid: int, lanes: int) -> None:
    assert world.job(jid)["r0"] == lanes


def state(world: Any, jid: int, expected: int) -> Callable[[], None]:
    def check() -> None:
        assert world.job(jid)["state"] == expected
    return check


# -- every deadline: T-1, T, T+1 ------------------------------------------------------------------

OK = None


def test_accept_deadline__accept_until_A_inclusive(world):
    jid, _ = opened(world)
    a = world.job(jid)["deadline"]
    at_edges(world, a, (OK, OK, "escrow: accept window closed"), lambda: world.accept(jid),
             state(world, jid, ACCEPTED))


def test_accept_deadline__anyone_cancels_only_after_A_the_buyer_any_time(world):
    jid, t = opened(world)
    a = world.job(jid)["deadline"]
    stranger = lambda: call_as(world.attacker, world.facet.cancel, jid, t.as_tuple())  # noqa: E731
    at_edges(world, a, ("escrow: accept window open", "escrow: accept window open", OK), stranger)
    buyer = lambda: call_as(world.buyer, world.facet.cancel, jid, t.as_tuple())  # noqa: E731
    at_edges(world, a, (OK, OK, OK), buyer)


def test_work_deadline__submit_until_W_expire_only_after(world):
    jid, t = accepted(world)
    w = world.job(jid)["deadline"]
    at_edges(world, w, (OK, OK, "escrow: work deadline passed"), lambda: world.submit(jid),
             state(world, jid, SUBMITTED))
    expire = lambda: call_as(world.attacker, world.facet.expire, jid, t.as_tuple())  # noqa: E731
    at_edges(world, w, ("escrow: work window open", "escrow: work window open", OK), expire,
             state(world, jid, EXPIRED_NO_DELIVERY))


def test_evaluation_deadline__votes_until_E_silence_expiry_only_after(world):
    jid, t = submitted(world)
    e = world.job(jid)["deadline"]
    vote = world.vote(world.evaluators[0], jid, 9000)
    at_edges(world, e, (OK, OK, "vote: deadline passed"), lambda: world.settle(jid, [vote]),
             lambda: _assert_r0(world, jid, 9001))
    expire = lambda: call_as(world.attacker, world.facet.expire, jid, t.as_tuple())  # noqa: E731
    at_edges(world, e, ("escrow: evaluation window open", "escrow: evaluation window open", OK),
             expire)


def test_signed_vote_deadline__before_E__counts_until_it_inclusive(world):
    jid, _ = submitted(world, eval_window=2 * HOUR)
    d = world.job(jid)["deadline"] - HOUR
    vote = world.vote(world.evaluators[0], jid, 9000, deadline=d)
    at_edges(world, d, (OK, OK, "vote: deadline passed"), lambda: world.settle(jid, [vote]))


def test_round0_close_at_E__challenge_only_after_it(world):
    jid, t = submitted(world)
    world.settle(jid, [world.vote(m, jid, 9000) for m in world.evaluators[:2]])
    e = world.job(jid)["close_at"]
    assert e == world.job(jid)["deadline"]  # two of three: round 0 closes at E
    go = lambda: call_as(world.buyer, world.facet.challenge, jid, t.as_tuple(), 9000,  # noqa: E731
                         value=t.challenge_bond)
    at_edges(world, e, ("escrow: round 0 open", "escrow: round 0 open", OK), go,
             state(world, jid, CHALLENGED))


@pytest.mark.parametrize("early", [False, True], ids=["close-at-E", "early-close"])
def test_challenge_deadline__challenge_until_C_finalize_only_after(world, early):
    jid, t = submitted(world)
    voters = world.evaluators if early else world.evaluators[:2]
    world.settle(jid, [world.vote(m, jid, 9000) for m in voters])
    c = world.job(jid)["close_at"] + t.challenge_window
    go = lambda: call_as(world.buyer, world.facet.challenge, jid, t.as_tuple(), 9000,  # noqa: E731
                         value=t.challenge_bond)
    at_edges(world, c, (OK, OK, "escrow: challenge window closed"), go)
    fin = lambda: call_as(world.attacker, world.escrow.finalize, jid, t.as_tuple())  # noqa: E731
    at_edges(world, c, ("escrow: challenge window open", "escrow: challenge window open", OK), fin,
             state(world, jid, SETTLED))


def challenged(world: Any) -> tuple[int, Any]:
    jid, t = submitted(world)
    world.settle(jid, [world.vote(m, jid, 9000) for m in world.evaluators])
    world.warp(1)
    call_as(world.buyer, world.facet.challenge, jid, t.as_tuple(), 9000, value=t.challenge_bond)
    return jid, t


def test_appeal_deadline__round1_votes_until_P_resolve_only_after(world):
    jid, t = challenged(world)
    p = world.job(jid)["deadline"]
    vote = world.vote(world.appeal_evaluators[0], jid, 2000, round_=1)
    at_edges(world, p, (OK, OK, "vote: deadline passed"), lambda: world.appeal(jid, [vote]))
    world.appeal(jid, [world.vote(m, jid, 2000, round_=1) for m in world.appeal_evaluators[:2]])
    res = lambda: call_as(world.attacker, world.facet.resolve, jid, t.as_tuple())  # noqa: E731
    at_edges(world, p, ("escrow: appeal open", "escrow: appeal open", OK), res,
             state(world, jid, SETTLED))


def test_evaluator_cooldown__withdraw_from_unlock_time(world):
    e = world.evaluators[0]
    call_as(e, world.escrow.request_unstake, ETH, E18)
    u = world.escrow.evaluator_stake(e.address, ETH)[3]
    assert u == world.now() + world.escrow.EVALUATOR_COOLDOWN()
    at_edges(world, u, ("stake: cooldown not over", OK, OK),
             lambda: call_as(e, world.escrow.withdraw_evaluator_stake, ETH))


def test_rotation_effective_time__new_version_from_R(world):
    pid, t = world.create_pact()
    old, av = world.versions(t)
    newcomers = [actor(f"rot-{i}") for i in range(3)]
    world.fund(*newcomers)
    with boa.env.prank(world.admin.address):
        vid = world.registry.propose_version(t.committee_id, [m.address for m in newcomers], 2,
                                             10 * E18, 5 * E18)
    r = world.registry.pending_version(t.committee_id)[1]
    assert r == world.now() + MIN_ROTATION_DELAY
    for offset, current in ((-1, old), (0, vid), (1, vid)):
        with boa.env.anchor():
            warp_to(world, r + offset)
            assert world.registry.current_version(t.committee_id) == current
    opener = lambda: call_as(world.buyer, world.escrow.open, t.as_tuple(), pid,  # noqa: E731
                             world.agent.address, E18, old, av, value=E18 + t.evaluator_fee)
    at_edges(world, r, (OK, "escrow: committee changed", "escrow: committee changed"), opener)


# -- amounts: 0 / 1 / max -------------------------------------------------------------------------

def test_open_value__0_refused_1_settles_to_the_wei(world):
    pid, t = world.create_pact(challenge_window=0, appeal_window=0)
    with boa.reverts("escrow: zero value"):
        world.open(pid, value=0)
    world.stake_agent()
    jid = world.open(pid, value=1)
    world.accept(jid)
    assert world.escrow.agent_stake(world.agent.address, ETH)[1] == 1  # ceil(1 x 20 %)
    world.warp(t.work_window + 1)
    before = world.escrow.credits(world.buyer.address, ETH)
    call_as(world.attacker, world.facet.expire, jid, t.as_tuple())
    # no delivery: value and fee back, slash ceil(1 x 50 %) = 1 split 50/30/20 floor -> buyer
    assert world.escrow.credits(world.buyer.address, ETH) - before == 1 + t.evaluator_fee + 1
    assert world.escrow.agent_stake(world.agent.address, ETH) == (10 * E18 - 1, 0)
    assert_books(world)


def max_value_world(world: Any) -> tuple[int, Any, int, list[Any]]:
    """A committee whose reserved stake backs a job of 2^128 - 1 (value + fee): penalty 2^127,
    three members; a pact without bond or slash whose cap allows it."""
    big = [actor(f"whale-{i}") for i in range(3)]
    world.fund(*big, amount=2**130)
    world.fund(world.buyer, amount=2**130)
    cid = world.create_committee(big, 2, bond=2**127, penalty=2**127, stake=2**127)
    pid, t = world.create_pact(committee_id=cid, bond_bps=0, bond_cap=0, slash_bps=0,
                               challenge_window=0, appeal_window=0,
                               cap_initial=U128 - 1, cap_max=U128 - 1, cap_step=0)
    return pid, t, U128 - 1 - t.evaluator_fee, big


def test_open_value__max_settles_and_every_wei_leaves_one_more_refused(world):
    pid, t, vmax, big = max_value_world(world)
    cv, av = world.versions(t)
    with boa.env.prank(world.buyer.address), boa.reverts("escrow: value too large"):
        world.escrow.open(t.as_tuple(), pid, world.agent.address, vmax + 1, cv, av,
                          value=vmax + 1 + t.evaluator_fee)
    jid = world.open(pid, value=vmax)
    world.accept(jid)
    world.submit(jid)
    world.settle(jid, [world.vote(m, jid, 9000) for m in big])
    assert world.job(jid)["state"] == SETTLED
    assert world.escrow.agent_stake(world.agent.address, ETH) == (vmax, 0)
    assert_books(world, extra=tuple(big))
    agent0 = boa.env.get_balance(world.agent.address)
    call_as(world.agent, world.escrow.withdraw_stake, ETH, vmax)
    assert boa.env.get_balance(world.agent.address) == agent0 + vmax
    for m in big:
        call_as(m, world.escrow.withdraw, ETH)
    assert_books(world, extra=tuple(big))


@pytest.mark.parametrize("evaluator", [False, True], ids=["agent", "evaluator"])
def test_stake_amount__0_refused_1_and_up_to_2_128_minus_1_taken_then_refused(world, evaluator):
    who = actor("staker")
    world.fund(who, amount=2**130)
    st = world.escrow.stake
    with boa.reverts("stake: zero amount"):
        call_as(who, st, ETH, 0, evaluator, value=0)
    call_as(who, st, ETH, 1, evaluator, value=1)
    call_as(who, st, ETH, U128 - 2, evaluator, value=U128 - 2)
    total = (world.escrow.evaluator_stake(who.address, ETH)[0] if evaluator
             else world.escrow.agent_stake(who.address, ETH)[0])
    assert total == U128 - 1
    with boa.reverts("stake: amount too large"):
        call_as(who, st, ETH, 1, evaluator, value=1)
    assert_books(world, extra=(who,))


def test_withdraw_stake_amount__0_and_free_plus_1_refused_1_and_all_sent(world):
    world.stake_agent(10 * E18)
    ws = world.escrow.withdraw_stake
    with boa.reverts("stake: zero amount"):
        call_as(world.agent, ws, ETH, 0)
    with boa.reverts("stake: exceeds free stake"):
        call_as(world.agent, ws, ETH, 10 * E18 + 1)
    call_as(world.agent, ws, ETH, 1)
    call_as(world.agent, ws, ETH, 10 * E18 - 1)
    assert world.escrow.agent_stake(world.agent.address, ETH) == (0, 0)


def test_request_unstake_amount__0_and_unreserved_plus_1_refused(world):
    pid, _ = world.create_pact()
    world.open(pid)  # reserves 5 ETH of each member's 20
    e = world.evaluators[0]
    ru = world.escrow.request_unstake
    with boa.reverts("stake: zero amount"):
        call_as(e, ru, ETH, 0)
    with boa.reverts("stake: exceeds unreserved stake"):
        call_as(e, ru, ETH, 15 * E18 + 1)
    call_as(e, ru, ETH, 15 * E18)
    assert world.escrow.evaluator_stake(e.address, ETH)[:3] == (20 * E18, 5 * E18, 15 * E18)


def test_withdraw_credit__nothing_owed__refused(world):
    with boa.reverts("escrow: nothing to withdraw"):
        call_as(world.attacker, world.escrow.withdraw, ETH)


# -- 128-bit ledger lanes at their limit (finding F1: see docs/security.md) ----------------------

# finding F1 of docs/security.md, fixed: a payout or returned bond the agent's 128-bit free-stake
# lane cannot hold is credited instead (ADR 010); a pending unstake above 2**128 is refused


def agent_claims(world: Any) -> int:
    free, locked = world.escrow.agent_stake(world.agent.address, ETH)
    return free + locked + world.escrow.credits(world.agent.address, ETH)


def test_agent_free_stake_near_2_128__payout__nothing_wraps(world):
    world.fund(world.agent, amount=2**130)
    call_as(world.agent, world.escrow.stake, ETH, U128 - 2, False, value=U128 - 2)
    pid, _ = world.create_pact(bond_bps=0, challenge_window=0, appeal_window=0)
    jid = world.open(pid, value=10)
    world.accept(jid)
    world.submit(jid)
    world.settle(jid, [world.vote(m, jid, 9000) for m in world.evaluators])
    assert world.escrow.agent_stake(world.agent.address, ETH)[1] == 0  # nothing locked
    assert agent_claims(world) == U128 - 2 + 10
    assert_books(world)


def test_agent_free_stake_near_2_128__bond_returned__nothing_wraps(world):
    world.fund(world.agent, amount=2**130)
    pid, t = world.create_pact(slash_bps=0)
    world.stake_agent(E18)
    jid = world.open(pid, value=E18)
    world.accept(jid)  # bond 0.2 ETH locked
    free = world.escrow.agent_stake(world.agent.address, ETH)[0]
    call_as(world.agent, world.escrow.stake, ETH, U128 - 1 - free, False, value=U128 - 1 - free)
    world.warp(t.work_window + 1)
    call_as(world.attacker, world.facet.expire, jid, t.as_tuple())  # no delivery, slash 0
    assert world.escrow.agent_stake(world.agent.address, ETH)[1] == 0
    assert agent_claims(world) == U128 - 1 + money.bond(t, E18)
    assert_books(world)


def test_evaluator_pending_near_2_128__second_request__refused_or_kept_whole(world):
    e = actor("big-evaluator")
    world.fund(e, amount=2**130)
    for _ in range(2):
        call_as(e, world.escrow.stake, ETH, U128 - 1, True, value=U128 - 1)
        with contextlib.suppress(BoaError):  # refusing the request is a fine answer
            call_as(e, world.escrow.request_unstake, ETH, U128 - 1)
    stake, _, _, unlock = world.escrow.evaluator_stake(e.address, ETH)
    assert stake == 2 * (U128 - 1)
    assert unlock == world.now() + world.escrow.EVALUATOR_COOLDOWN()
    assert_books(world, extra=(e,))


# -- bps: 0 / 1 / 10,000 / 10,001 ----------------------------------------------------------------

BPS_TERMS = [
    # (field, value, other terms it needs, reason or None)
    ("pass_at_bps", 0, {"fail_below_bps": 0}, OK),
    ("pass_at_bps", 1, {"fail_below_bps": 0}, OK),
    ("pass_at_bps", 10_000, {}, OK),
    ("pass_at_bps", 10_001, {}, "pact: pass_at_bps above 10000"),
    ("fail_below_bps", 0, {}, OK),
    ("fail_below_bps", 1, {}, OK),
    ("fail_below_bps", 10_000, {"pass_at_bps": 10_000}, OK),
    ("fail_below_bps", 10_001, {"pass_at_bps": 10_000}, "pact: fail_below_bps above pass_at_bps"),
    ("bond_bps", 0, {}, OK),
    ("bond_bps", 1, {}, OK),
    ("bond_bps", 10_000, {}, OK),
    ("bond_bps", 10_001, {}, "pact: bond_bps above 10000"),
    ("slash_bps", 0, {}, OK),
    ("slash_bps", 1, {}, OK),
    ("slash_bps", 10_000, {}, OK),
    ("slash_bps", 10_001, {}, "pact: slash_bps above 10000"),
    ("min_appeal_delta_bps", 0, {}, "pact: min_appeal_delta_bps out of range"),
    ("min_appeal_delta_bps", 1, {}, OK),
    ("min_appeal_delta_bps", 10_000, {}, OK),
    ("min_appeal_delta_bps", 10_001, {}, "pact: min_appeal_delta_bps out of range"),
    ("slash_buyer_bps", 0, {"slash_insurance_bps": 10_000, "slash_burn_bps": 0}, OK),
    ("slash_buyer_bps", 1, {"slash_insurance_bps": 9_999, "slash_burn_bps": 0}, OK),
    ("slash_buyer_bps", 10_000, {"slash_insurance_bps": 0, "slash_burn_bps": 0}, OK),
    ("slash_buyer_bps", 10_001, {"slash_insurance_bps": 0, "slash_burn_bps": 0},
     "pact: slash shares must sum to 10000"),
    ("slash_burn_bps", 10_001, {"slash_buyer_bps": 0, "slash_insurance_bps": 0},
     "pact: slash shares must sum to 10000"),
]


@pytest.mark.parametrize(("field", "value", "extra", "reason"), BPS_TERMS,
                         ids=[f"{f}={v}" for f, v, _, _ in BPS_TERMS])
def test_check_pact__bps_edges(world, field, value, extra, reason):
    t = world.terms().model_copy(update={field: value, **extra})
    if reason is None:
        assert world.registry.check_pact(t.as_tuple()) is True
    else:
        with boa.reverts(reason):
            world.registry.check_pact(t.as_tuple())


@pytest.mark.parametrize(("score", "reason"), [(0, OK), (1, OK), (10_000, OK),
                                               (10_001, "vote: score above 10000")])
def test_vote_score__bps_edges(world, score, reason):
    jid, _ = submitted(world)
    e0 = world.evaluators[0]
    vote = raw_vote(world, e0.key, e0.address, jid, score)
    if reason is None:
        world.settle(jid, [vote])
        assert world.job(jid)["r0"] == score + 1
    else:
        with boa.reverts(reason):
            world.settle(jid, [vote])


def test_no_delivery_money__bond_and_slash_bps_at_0_1_10000__exact_to_the_wei(world):
    """The bond and its slash round up, the shares down (remainder to the buyer), at every
    bps edge, for a 1-wei and a 1-ether-and-1-wei job."""
    world.stake_agent(50 * E18)
    checked = 0
    for bond_bps in (0, 1, 10_000):
        for slash_bps in (0, 1, 10_000):
            pid, t = world.create_pact(bond_bps=bond_bps, slash_bps=slash_bps, bond_cap=10 * E18,
                                       cap_initial=5 * E18, slash_buyer_bps=3_333,
                                       slash_insurance_bps=3_333, slash_burn_bps=3_334)
            for value in (1, E18 + 1):
                with boa.env.anchor():
                    jid = world.open(pid, value=value)
                    world.accept(jid)
                    world.warp(t.work_window + 1)
                    free0 = world.escrow.agent_stake(world.agent.address, ETH)[0]
                    b0, i0 = (world.escrow.credits(a.address, ETH) for a in (world.buyer, world.insurance))
                    burned0 = world.escrow.burned(ETH)
                    call_as(world.attacker, world.facet.expire, jid, t.as_tuple())
                    bond, cut = money.bond(t, value), money.slashed(t, value)
                    to_buyer, to_ins, to_burn = money.slash_split(t, cut)
                    assert world.escrow.agent_stake(world.agent.address, ETH) == (free0 + bond - cut, 0)
                    assert world.escrow.credits(world.buyer.address, ETH) - b0 == value + t.evaluator_fee + to_buyer
                    assert world.escrow.credits(world.insurance.address, ETH) - i0 == to_ins
                    assert world.escrow.burned(ETH) - burned0 == to_burn
                    assert to_buyer + to_ins + to_burn == cut <= bond
                    assert_books(world)
                    checked += 1
    assert checked == 18


# -- quorum: M-1 / M / N ------------------------------------------------------------------------------

@pytest.fixture
def five(world):
    """A committee of five, threshold three, an appeal committee of three (threshold three:
    never below the committee's), and a pact on them."""
    members = [actor(f"five-{i}") for i in range(5)]
    appeal = [actor(f"five-appeal-{i}") for i in range(3)]
    world.fund(*members, *appeal)
    cid = world.create_committee(members, 3, stake=20 * E18)
    aid = world.create_committee(appeal, 3, stake=20 * E18)
    pid, t = world.create_pact(committee_id=cid, appeal_committee_id=aid)
    return members, pid, t


@pytest.mark.parametrize(("votes", "state_", "closed"), [(2, SUBMITTED, False), (3, VERDICT, False),
                                                           (5, VERDICT, True)],
                         ids=["M-1", "M", "N"])
def test_round0_quorum__m_minus_1_m_n(world, five, votes, state_, closed):
    members, pid, _ = five
    world.stake_agent()
    jid = world.open(pid)
    world.accept(jid)
    world.submit(jid)
    votes_ = [world.vote(m, jid, 9000) for m in members[:votes]]
    for k in range(0, votes, 4):  # ADR 011: at most 4 votes a settle call
        world.settle(jid, votes_[k:k + 4])
    j = world.job(jid)
    assert j["state"] == state_
    assert (j["close_at"] < j["deadline"]) is closed


@pytest.mark.parametrize(("active", "reason"), [(2, "escrow: committee quorum unavailable"), (3, OK), (5, OK)],
                         ids=["M-1", "M", "N"])
def test_open_active_members__m_minus_1_m_n(world, five, active, reason):
    members, pid, _ = five
    for m in members[active:]:
        call_as(m, world.registry.revoke_key)
    if reason is None:
        jid = world.open(pid, value=E18 // 100)
        assert bin(world.job(jid)["reserved"]).count("1") == active
        assert world.job(jid)["state"] == OPEN
    else:
        with boa.reverts(reason):
            world.open(pid, value=E18 // 100)


@pytest.mark.parametrize(("n1", "early", "quorum"), [(1, False, False), (2, False, True), (3, True, True)],
                         ids=["M-1", "M", "N"])
def test_round1_quorum__m_minus_1_m_n(world, n1, early, quorum):
    jid, t = challenged(world)
    world.appeal(jid, [world.vote(m, jid, 2000, round_=1) for m in world.appeal_evaluators[:n1]])
    res = lambda: call_as(world.attacker, world.facet.resolve, jid, t.as_tuple())  # noqa: E731
    if not early:
        with boa.reverts("escrow: appeal open"):
            res()
        warp_to(world, world.job(jid)["deadline"] + 1)
    res()
    logs = [e for e in world.facet.get_logs() if type(e).__name__ == "AppealResolved"]
    assert [e.quorum for e in logs] == [quorum]
    assert world.job(jid)["state"] == SETTLED
    assert_books(world)
