"""PactEscrow refuses an appeals facet whose immutables differ from its own (immutables live in
code, so the facet, run by delegatecall, would read its own)."""

import boa
import pytest

from tests.conftest import actor
from tests.contracts.conftest import CONTRACTS, COOLDOWN, MIN_ROTATION_DELAY, WINDOW_MAX


@pytest.mark.parametrize("what", ["registry", "cooldown"])
def test_escrow_constructor__facet_immutables_differ__refused(what):
    owner = actor("owner")
    with boa.env.anchor(), boa.env.prank(owner.address):
        registry = boa.load(str(CONTRACTS / "PactRegistry.vy"), WINDOW_MAX, MIN_ROTATION_DELAY)
        other = boa.load(str(CONTRACTS / "PactRegistry.vy"), WINDOW_MAX, MIN_ROTATION_DELAY)
        facet_registry = other.address if what == "registry" else registry.address
        facet_cooldown = COOLDOWN + 1 if what == "cooldown" else COOLDOWN
        facet = boa.load(str(CONTRACTS / "PactEscrowAppeals.vy"), facet_registry, facet_cooldown)
        with boa.reverts(f"escrow: facet {what} differs"):
            boa.load(str(CONTRACTS / "PactEscrow.vy"), registry.address, COOLDOWN, facet.address)
