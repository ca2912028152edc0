"""PactRegistry admin: deployment constants, two-step ownership, guardian, pause, asset allowlist, escrow."""

import boa
import pytest

from tests.conftest import CONTRACTS
from tests.contracts.conftest import MIN_ROTATION_DELAY, WINDOW_MAX
from tests.contracts.unit.registry.conftest import ZERO, events

U64 = 2**64


@pytest.fixture(scope="module")
def registry_deployer():
    return boa.load_partial(str(CONTRACTS / "PactRegistry.vy"))


@pytest.fixture
def fresh(world, registry_deployer):
    """A registry deployed by the owner and not yet bound to an escrow."""
    with boa.env.prank(world.owner.address):
        return registry_deployer.deploy(WINDOW_MAX, MIN_ROTATION_DELAY)


# -- deployment ----------------------------------------------------------------------------

def test_init__valid_constants__sets_them_and_owner(world, registry_deployer):
    with boa.env.prank(world.owner.address):
        fresh = registry_deployer.deploy(WINDOW_MAX, MIN_ROTATION_DELAY)
    assert events(fresh) == [("OwnershipTransferred", {"previous_owner": ZERO, "new_owner": world.owner.address})]
    assert fresh.WINDOW_MAX() == WINDOW_MAX
    assert fresh.MIN_ROTATION_DELAY() == MIN_ROTATION_DELAY
    assert fresh.owner() == world.owner.address
    assert fresh.pending_owner() == ZERO
    assert fresh.escrow() == ZERO
    assert fresh.paused() is False


@pytest.mark.parametrize("window_max", [0, U64])
def test_init__window_bound_out_of_range__reverts(world, registry_deployer, window_max):
    with boa.env.prank(world.owner.address), boa.reverts("admin: window bound out of range"):
        registry_deployer.deploy(window_max, MIN_ROTATION_DELAY)


def test_init__rotation_delay_out_of_range__reverts(world, registry_deployer):
    with boa.env.prank(world.owner.address):
        ok = registry_deployer.deploy(U64 - 1, U64 - 1)  # both bounds inclusive of 2**64 - 1
        assert (ok.WINDOW_MAX(), ok.MIN_ROTATION_DELAY()) == (U64 - 1, U64 - 1)
        with boa.reverts("admin: rotation delay out of range"):
            registry_deployer.deploy(WINDOW_MAX, U64)


# -- two-step ownership --------------------------------------------------------------------

def test_transfer_ownership__owner__sets_pending_and_emits(world):
    r, new = world.registry, world.attacker.address
    with boa.env.prank(world.owner.address):
        r.transfer_ownership(new)
    assert events(r) == [("OwnershipTransferStarted", {"previous_owner": world.owner.address, "new_owner": new})]
    assert r.pending_owner() == new
    assert r.owner() == world.owner.address  # nothing changes until accepted


def test_transfer_ownership__not_owner__reverts(world):
    for who in (world.attacker, world.guardian):
        with boa.env.prank(who.address), boa.reverts("admin: not owner"):
            world.registry.transfer_ownership(who.address)
    assert world.registry.pending_owner() == ZERO


def test_accept_ownership__pending_owner__becomes_owner_and_emits(world):
    r, new = world.registry, world.pact_owner.address
    with boa.env.prank(world.owner.address):
        r.transfer_ownership(new)
    with boa.env.prank(new):
        r.accept_ownership()
    assert events(r) == [("OwnershipTransferred", {"previous_owner": world.owner.address, "new_owner": new})]
    assert r.owner() == new
    assert r.pending_owner() == ZERO
    # the old owner lost its rights, the new one has them
    with boa.env.prank(world.owner.address), boa.reverts("admin: not owner"):
        r.set_guardian(world.owner.address)
    with boa.env.prank(new):
        r.set_guardian(world.buyer.address)
    assert r.guardian() == world.buyer.address


def test_accept_ownership__not_pending_owner__reverts(world):
    r = world.registry
    with boa.env.prank(world.attacker.address), boa.reverts("admin: not pending owner"):
        r.accept_ownership()  # nothing pending
    with boa.env.prank(world.owner.address):
        r.transfer_ownership(world.pact_owner.address)
    for who in (world.attacker, world.owner):
        with boa.env.prank(who.address), boa.reverts("admin: not pending owner"):
            r.accept_ownership()
    assert r.owner() == world.owner.address
    assert r.pending_owner() == world.pact_owner.address


def test_accept_ownership__replaced_pending_owner__reverts(world):
    r = world.registry
    with boa.env.prank(world.owner.address):
        r.transfer_ownership(world.pact_owner.address)
        r.transfer_ownership(world.buyer.address)
    with boa.env.prank(world.pact_owner.address), boa.reverts("admin: not pending owner"):
        r.accept_ownership()
    with boa.env.prank(world.buyer.address):
        r.accept_ownership()
    assert r.owner() == world.buyer.address


def test_accept_ownership__twice__second_reverts(world):
    r, new = world.registry, world.pact_owner.address
    with boa.env.prank(world.owner.address):
        r.transfer_ownership(new)
    with boa.env.prank(new):
        r.accept_ownership()
        with boa.reverts("admin: not pending owner"):
            r.accept_ownership()


# -- guardian and pause --------------------------------------------------------------------

def test_set_guardian__owner__sets_and_emits(world):
    r = world.registry
    with boa.env.prank(world.owner.address):
        r.set_guardian(world.insurance.address)
    assert events(r) == [("GuardianSet", {"guardian": world.insurance.address})]
    assert r.guardian() == world.insurance.address


def test_set_guardian__not_owner__reverts(world):
    for who in (world.attacker, world.guardian):
        with boa.env.prank(who.address), boa.reverts("admin: not owner"):
            world.registry.set_guardian(world.attacker.address)
    assert world.registry.guardian() == world.guardian.address


def test_set_paused__guardian__pauses_and_emits(world):
    r = world.registry
    with boa.env.prank(world.guardian.address):
        r.set_paused(True)
    assert events(r) == [("PausedSet", {"paused": True, "by": world.guardian.address})]
    assert r.paused() is True


def test_set_paused__owner__unpauses_and_emits(world):
    r = world.registry
    with boa.env.prank(world.guardian.address):
        r.set_paused(True)
    with boa.env.prank(world.owner.address):
        r.set_paused(False)
    assert events(r) == [("PausedSet", {"paused": False, "by": world.owner.address})]
    assert r.paused() is False


def test_set_paused__neither_guardian_nor_owner__reverts(world):
    r = world.registry
    for who in (world.attacker, world.admin, world.evaluators[0]):
        with boa.env.prank(who.address), boa.reverts("admin: not guardian"):
            r.set_paused(True)
    assert r.paused() is False


def test_set_paused__replaced_guardian__reverts(world):
    r = world.registry
    with boa.env.prank(world.owner.address):
        r.set_guardian(world.insurance.address)
    with boa.env.prank(world.guardian.address), boa.reverts("admin: not guardian"):
        r.set_paused(True)
    with boa.env.prank(world.insurance.address):
        r.set_paused(True)
    assert r.paused() is True


# -- asset allowlist -----------------------------------------------------------------------

def test_set_asset_allowed__owner__allows_then_refuses_with_events(world, token_deployer):
    r = world.registry
    t = token_deployer.deploy("Token", "TKN", 6, 0)
    assert r.asset_allowed(t.address) is False
    with boa.env.prank(world.owner.address):
        r.set_asset_allowed(t.address, True)
        assert events(r) == [("AssetAllowed", {"asset": t.address, "allowed": True})]
        assert r.asset_allowed(t.address) is True
        r.set_asset_allowed(t.address, False)
        assert events(r) == [("AssetAllowed", {"asset": t.address, "allowed": False})]
    assert r.asset_allowed(t.address) is False


def test_set_asset_allowed__not_owner__reverts(world, token_deployer):
    t = token_deployer.deploy("Token", "TKN", 18, 0)
    with boa.env.prank(world.guardian.address), boa.reverts("admin: not owner"):
        world.registry.set_asset_allowed(t.address, True)
    assert world.registry.asset_allowed(t.address) is False


@pytest.mark.parametrize("asset", ["eoa", "zero"])
def test_set_asset_allowed__asset_without_code__reverts(world, asset):
    a = world.attacker.address if asset == "eoa" else ZERO
    with boa.env.prank(world.owner.address), boa.reverts("admin: asset has no code"):
        world.registry.set_asset_allowed(a, True)
    assert world.registry.asset_allowed(a) is False


# -- escrow binding ------------------------------------------------------------------------

def test_set_escrow__first_time__binds_and_emits(world, fresh):
    with boa.env.prank(world.owner.address):
        fresh.set_escrow(world.escrow.address)
    assert events(fresh) == [("EscrowSet", {"escrow": world.escrow.address})]
    assert fresh.escrow() == world.escrow.address


def test_set_escrow__already_set__reverts(world, fresh):
    with boa.env.prank(world.owner.address):
        with boa.reverts("admin: escrow already set"):
            world.registry.set_escrow(world.registry.address)  # the fixture's registry is bound
        fresh.set_escrow(world.escrow.address)
        with boa.reverts("admin: escrow already set"):
            fresh.set_escrow(world.registry.address)
    assert fresh.escrow() == world.escrow.address
    assert world.registry.escrow() == world.escrow.address


def test_set_escrow__not_owner__reverts(world, fresh):
    with boa.env.prank(world.attacker.address), boa.reverts("admin: not owner"):
        fresh.set_escrow(world.escrow.address)
    assert fresh.escrow() == ZERO


def test_set_escrow__no_code__reverts(world, fresh):
    with boa.env.prank(world.owner.address), boa.reverts("admin: escrow has no code"):
        fresh.set_escrow(world.attacker.address)
    assert fresh.escrow() == ZERO
