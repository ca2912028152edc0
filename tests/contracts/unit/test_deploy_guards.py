"""The deploy chain checks its facets' immutables (immutables live in code, so a facet run by
delegatecall reads its own): PactEscrow refuses an appeals facet, and (ADR 011) the appeals
facet refuses a batch facet, whose registry or cooldown differ, or that has no code."""

from types import SimpleNamespace
from typing import Any

import boa
import pytest

from tests.conftest import actor
from tests.contracts.conftest import CONTRACTS, COOLDOWN, MIN_ROTATION_DELAY, WINDOW_MAX


@pytest.fixture(scope="module")
def deployers() -> Any:
    """The four contracts, compiled once for the module."""
    files = {"registry": "PactRegistry", "batch": "PactEscrowBatch",
             "appeals": "PactEscrowAppeals", "escrow": "PactEscrow"}
    return SimpleNamespace(**{name: boa.load_partial(str(CONTRACTS / f"{file}.vy"))
                              for name, file in files.items()})


def two_registries(d: Any) -> tuple[Any, Any]:
    return (d.registry.deploy(WINDOW_MAX, MIN_ROTATION_DELAY),
            d.registry.deploy(WINDOW_MAX, MIN_ROTATION_DELAY))


@pytest.mark.parametrize("what", ["registry", "cooldown"])
def test_escrow_constructor__facet_immutables_differ__refused(deployers, what):
    d = deployers
    with boa.env.anchor(), boa.env.prank(actor("owner").address):
        registry, other = two_registries(d)
        facet_registry = other.address if what == "registry" else registry.address
        facet_cooldown = COOLDOWN + 1 if what == "cooldown" else COOLDOWN
        batch = d.batch.deploy(facet_registry, facet_cooldown)
        facet = d.appeals.deploy(facet_registry, facet_cooldown, batch.address)
        with boa.reverts(f"escrow: facet {what} differs"):
            d.escrow.deploy(registry.address, COOLDOWN, facet.address)
        # the control: a facet with the escrow's own immutables is taken
        batch = d.batch.deploy(registry.address, COOLDOWN)
        facet = d.appeals.deploy(registry.address, COOLDOWN, batch.address)
        assert d.escrow.deploy(registry.address, COOLDOWN, facet.address).APPEALS() == facet.address


@pytest.mark.parametrize("what", ["registry", "cooldown"])
def test_appeals_constructor__batch_facet_immutables_differ__refused(deployers, what):
    d = deployers
    with boa.env.anchor(), boa.env.prank(actor("owner").address):
        registry, other = two_registries(d)
        batch = d.batch.deploy(other.address if what == "registry" else registry.address,
                               COOLDOWN + 1 if what == "cooldown" else COOLDOWN)
        with boa.reverts(f"escrow: facet {what} differs"):
            d.appeals.deploy(registry.address, COOLDOWN, batch.address)
        good = d.batch.deploy(registry.address, COOLDOWN)
        assert d.appeals.deploy(registry.address, COOLDOWN, good.address).BATCH() == good.address


def test_facet_constructors__facet_without_code__refused(deployers):
    d = deployers
    nobody = actor("no-code").address
    with boa.env.anchor(), boa.env.prank(actor("owner").address):
        registry, _ = two_registries(d)
        with boa.reverts("escrow: batch facet has no code"):
            d.appeals.deploy(registry.address, COOLDOWN, nobody)
        with boa.reverts("escrow: appeals facet has no code"):
            d.escrow.deploy(registry.address, COOLDOWN, nobody)
