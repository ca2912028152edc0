"""Helpers shared by the PactRegistry unit tests."""

from __future__ import annotations

from typing import Any

import boa
import pytest

from pactbond.models import PactTerms
from tests.conftest import Actor, actor

ZERO = "0x" + "00" * 20


def events(contract: Any) -> list[tuple[str, dict[str, Any]]]:
    """The events of the last call, as (name, fields) pairs (the emitter's address dropped)."""
    out = []
    for e in contract.get_logs():
        fields = e._asdict()
        fields.pop("address", None)
        out.append((type(e).__name__, fields))
    return out


def raw_terms(world: Any, **over: Any) -> PactTerms:
    """The valid baseline terms with `over` applied unvalidated (so out-of-range values reach the contract)."""
    return world.terms().model_copy(update=over)


def new_actors(world: Any, prefix: str, n: int) -> list[Actor]:
    """`n` fresh funded actors, in no fixture committee."""
    out = [actor(f"{prefix}-{i}") for i in range(n)]
    world.fund(*out)
    return out


@pytest.fixture(scope="package")
def token_deployer(erc20_deployer):
    return erc20_deployer


@pytest.fixture
def token(world, token_deployer):
    """An ERC-20 on the allowlist."""
    t = token_deployer.deploy("Token", "TKN", 18, 0)
    with boa.env.prank(world.owner.address):
        world.registry.set_asset_allowed(t.address, True)
    return t
