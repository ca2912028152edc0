"""PactRegistry.check_pact: every incoherent term refused with its reason, boundaries, and through escrow.create_pact."""

import boa
import pytest

from tests.contracts.conftest import E18, WINDOW_MAX
from tests.contracts.unit.registry.conftest import ZERO, new_actors, raw_terms

BPS = 10_000
ZERO_HASH = b"\x00" * 32
SAME = "same as committee_id"

# one bad term (or the smallest coherent change that reaches the check) from the valid baseline
BAD_TERMS = [
    ({"committee_id": 99}, "pact: unknown committee_id"),
    ({"appeal_committee_id": 99}, "pact: unknown appeal_committee_id"),
    ({"appeal_committee_id": SAME}, "pact: appeal_committee_id equals committee_id"),
    ({"spec_hash": ZERO_HASH}, "pact: empty spec_hash"),
    ({"pass_at_bps": BPS + 1}, "pact: pass_at_bps above 10000"),
    ({"fail_below_bps": 8001}, "pact: fail_below_bps above pass_at_bps"),
    ({"bond_bps": BPS + 1}, "pact: bond_bps above 10000"),
    ({"slash_bps": BPS + 1}, "pact: slash_bps above 10000"),
    ({"slash_buyer_bps": 5001}, "pact: slash shares must sum to 10000"),
    ({"slash_burn_bps": 1999}, "pact: slash shares must sum to 10000"),
    ({"insurance": ZERO}, "pact: zero insurance address"),
    ({"shadow": True}, "pact: shadow pact takes no bond or slash"),
    ({"shadow": True, "bond_bps": 0}, "pact: shadow pact takes no bond or slash"),
    ({"shadow": True, "slash_bps": 0}, "pact: shadow pact takes no bond or slash"),
    ({"appeal_fee": E18 // 10 + 1}, "pact: appeal_fee above challenge_bond"),
    ({"challenge_bond": 0, "appeal_fee": 0}, "pact: zero challenge_bond"),
    ({"min_appeal_delta_bps": 0}, "pact: min_appeal_delta_bps out of range"),
    ({"min_appeal_delta_bps": BPS + 1}, "pact: min_appeal_delta_bps out of range"),
    ({"accept_window": 0}, "pact: accept_window out of bounds"),
    ({"work_window": 0}, "pact: work_window out of bounds"),
    ({"eval_window": 0}, "pact: eval_window out of bounds"),
    ({"challenge_window": WINDOW_MAX + 1}, "pact: challenge_window out of bounds"),
    ({"appeal_window": WINDOW_MAX + 1}, "pact: appeal_window out of bounds"),
    ({"appeal_window": 0}, "pact: zero appeal_window"),
    ({"cap_max": 0, "cap_initial": 0}, "pact: zero cap_max"),
    ({"cap_initial": 5 * E18 + 1}, "pact: cap_initial above cap_max"),
    ({"bond_cap": 2**128}, "pact: amount above 2**128"),
]


def _bad(world, over):
    if over.get("appeal_committee_id") == SAME:
        over = {**over, "appeal_committee_id": world.committee_id}
    return raw_terms(world, **over)


def _check(world, t):
    return world.registry.check_pact(t.as_tuple())


def test_check_pact__baseline__true(world):
    assert _check(world, world.terms()) is True


@pytest.mark.parametrize(("over", "reason"), BAD_TERMS, ids=[r.split(": ")[1] + f"-{i}" for i, (_, r) in enumerate(BAD_TERMS)])
def test_check_pact__bad_term__reverts_with_its_reason(world, over, reason):
    with boa.reverts(reason):
        _check(world, _bad(world, over))


def test_check_pact__paused__reverts(world):
    with boa.env.prank(world.guardian.address):
        world.registry.set_paused(True)
    with boa.reverts("escrow: paused"):
        _check(world, world.terms())


def test_check_pact__asset_not_allowed__reverts(world, token_deployer):
    t = token_deployer.deploy("Token", "TKN", 18, 0)
    with boa.reverts("pact: asset not allowed"):
        _check(world, raw_terms(world, asset=t.address))
    with boa.reverts("pact: asset not allowed"):
        _check(world, raw_terms(world, asset=world.attacker.address))


def test_check_pact__committee_asset_differs__reverts(world, token):
    # both fixture committees are ETH committees; the pact is in an allowed token
    with boa.reverts("pact: committee asset differs"):
        _check(world, raw_terms(world, asset=token.address))


def test_check_pact__appeal_committee_asset_differs__reverts(world, token):
    cid = world.create_committee(new_actors(world, "t", 2), 2, asset=token.address)
    with boa.reverts("pact: appeal committee asset differs"):
        _check(world, raw_terms(world, asset=token.address, committee_id=cid))
    acid = world.create_committee(new_actors(world, "u", 2), 2, asset=token.address)
    assert _check(world, raw_terms(world, asset=token.address, committee_id=cid, appeal_committee_id=acid)) is True


# -- boundaries ----------------------------------------------------------------------------

@pytest.mark.parametrize("field", ["pass_at_bps", "bond_bps", "slash_bps"])
def test_check_pact__bps_bounds__0_and_10000_accepted_10001_refused(world, field):
    base = {"fail_below_bps": 0} if field == "pass_at_bps" else {}
    assert _check(world, raw_terms(world, **base, **{field: 0})) is True
    assert _check(world, raw_terms(world, **base, **{field: BPS})) is True
    with boa.reverts(f"pact: {field} above 10000"):
        _check(world, raw_terms(world, **base, **{field: BPS + 1}))


def test_check_pact__score_band_edges__accepted(world):
    assert _check(world, raw_terms(world, fail_below_bps=8000, pass_at_bps=8000)) is True
    assert _check(world, raw_terms(world, fail_below_bps=BPS, pass_at_bps=BPS)) is True
    assert _check(world, raw_terms(world, fail_below_bps=0, pass_at_bps=0)) is True


def test_check_pact__min_appeal_delta_edges__accepted(world):
    assert _check(world, raw_terms(world, min_appeal_delta_bps=1)) is True
    assert _check(world, raw_terms(world, min_appeal_delta_bps=BPS)) is True


@pytest.mark.parametrize("field", ["accept_window", "work_window", "eval_window"])
def test_check_pact__required_window_bounds__1_to_window_max(world, field):
    with boa.reverts(f"pact: {field} out of bounds"):
        _check(world, raw_terms(world, **{field: 0}))
    assert _check(world, raw_terms(world, **{field: 1})) is True
    assert _check(world, raw_terms(world, **{field: WINDOW_MAX})) is True
    with boa.reverts(f"pact: {field} out of bounds"):
        _check(world, raw_terms(world, **{field: WINDOW_MAX + 1}))


def test_check_pact__challenge_window_bounds__0_to_window_max(world):
    assert _check(world, raw_terms(world, challenge_window=0)) is True
    assert _check(world, raw_terms(world, challenge_window=1)) is True
    assert _check(world, raw_terms(world, challenge_window=WINDOW_MAX)) is True
    with boa.reverts("pact: challenge_window out of bounds"):
        _check(world, raw_terms(world, challenge_window=WINDOW_MAX + 1))


def test_check_pact__appeal_window_bounds__0_only_without_challenges(world):
    with boa.reverts("pact: zero appeal_window"):
        _check(world, raw_terms(world, appeal_window=0))
    assert _check(world, raw_terms(world, challenge_window=0, appeal_window=0)) is True
    assert _check(world, raw_terms(world, appeal_window=1)) is True
    assert _check(world, raw_terms(world, appeal_window=WINDOW_MAX)) is True
    with boa.reverts("pact: appeal_window out of bounds"):
        _check(world, raw_terms(world, appeal_window=WINDOW_MAX + 1))


def test_check_pact__no_challenges__zero_challenge_bond_accepted(world):
    t = raw_terms(world, challenge_window=0, appeal_window=0, challenge_bond=0, appeal_fee=0)
    assert _check(world, t) is True


def test_check_pact__shadow_without_bond_or_slash__accepted(world):
    assert _check(world, raw_terms(world, shadow=True, bond_bps=0, slash_bps=0)) is True


def test_check_pact__slash_shares_edges__accepted(world):
    # insurance may be zero when its share is; appeal fee may equal the challenge bond; cap_initial may equal cap_max
    assert _check(world, raw_terms(world, slash_buyer_bps=8000, slash_insurance_bps=0, insurance=ZERO)) is True
    assert _check(world, raw_terms(world, slash_buyer_bps=0, slash_insurance_bps=0, slash_burn_bps=BPS)) is True
    assert _check(world, raw_terms(world, appeal_fee=E18 // 10)) is True
    assert _check(world, raw_terms(world, cap_initial=5 * E18)) is True


@pytest.mark.parametrize("field", ["bond_cap", "evaluator_fee", "challenge_bond", "min_expansion_value", "cap_step", "cap_max"])
def test_check_pact__amount_at_2_128__refused(world, field):
    assert _check(world, raw_terms(world, **{field: 2**128 - 1})) is True
    with boa.reverts("pact: amount above 2**128"):
        _check(world, raw_terms(world, **{field: 2**128}))


# -- through escrow.create_pact ------------------------------------------------------------

def _create_pact(world, t):
    with boa.env.prank(world.pact_owner.address):
        return world.escrow.create_pact(t.as_tuple())


def test_create_pact__valid_terms__stored(world):
    n = world.escrow.pact_count()
    pid = _create_pact(world, world.terms())
    assert pid == n + 1 == world.escrow.pact_count()
    assert world.escrow.pact_owner(pid) == world.pact_owner.address


@pytest.mark.parametrize(("over", "reason"), [
    ({"pass_at_bps": BPS + 1}, "pact: pass_at_bps above 10000"),
    ({"appeal_committee_id": SAME}, "pact: appeal_committee_id equals committee_id"),
    ({"work_window": WINDOW_MAX + 1}, "pact: work_window out of bounds"),
    ({"shadow": True}, "pact: shadow pact takes no bond or slash"),
    ({"cap_max": 2**128}, "pact: amount above 2**128"),
])
def test_create_pact__bad_term__reverts_with_check_pact_reason(world, over, reason):
    n = world.escrow.pact_count()
    with boa.reverts(reason):
        _create_pact(world, _bad(world, over))
    assert world.escrow.pact_count() == n


def test_create_pact__paused__reverts(world):
    n = world.escrow.pact_count()
    with boa.env.prank(world.guardian.address):
        world.registry.set_paused(True)
    with boa.reverts("escrow: paused"):
        _create_pact(world, world.terms())
    with boa.env.prank(world.owner.address):
        world.registry.set_paused(False)
    assert _create_pact(world, world.terms()) == n + 1
