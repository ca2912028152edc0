"""Providers cap a log query's block range; the event reader halves a refused range and asks
again, so the client, the report and the oracle's watcher work through such a provider."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from web3 import Web3
from web3.exceptions import Web3RPCError

from pactbond import Pactbond
from pactbond.errors import UnknownObjectError
from pactbond.events import iter_events
from tests.client.conftest import E18, World, rpc_proxy

CAP = 3  # blocks per eth_getLogs, like a free-tier provider (far smaller than ours)


class Cap:
    """A provider refusing log queries over `blocks` blocks, counting its refusals."""

    def __init__(self, blocks: int = CAP) -> None:
        self.blocks, self.refused = blocks, 0

    def __call__(self, req: Any, forward: Callable[[], Any]) -> Any:
        if isinstance(req, dict) and req.get("method") == "eth_getLogs":
            f = req["params"][0]
            if int(f["toBlock"], 16) - int(f["fromBlock"], 16) + 1 > self.blocks:
                self.refused += 1
                return {"jsonrpc": "2.0", "id": req["id"], "error": {
                    "code": -32005, "message": f"query exceeds max block range {self.blocks}"}}
        return forward()


@pytest.fixture
def cap() -> Cap:
    return Cap()


@pytest.fixture
def capped_url(world: World, cap: Cap) -> Iterator[str]:
    with rpc_proxy(world.devnet.url, cap) as url:
        yield url


@pytest.fixture
def capped(capped_url: str) -> Web3:
    return Web3(Web3.HTTPProvider(capped_url))


def test_capped_provider__same_events_as_the_node(world: World, capped: Web3, cap: Cap) -> None:
    first = int(world.keeper.w3.eth.block_number) + 1
    pid = world.pact()
    for _ in range(5):  # a score of blocks with events, one block a transaction
        world.job(pid, E18 // 10)
    last = int(world.keeper.w3.eth.block_number)
    assert last - first + 1 > 4 * CAP
    esc = world.keeper.escrow
    direct = [(e.name, e.block_number, e.log_index) for e in
              iter_events(world.keeper.w3, esc, first, last)]
    via = [(e.name, e.block_number, e.log_index) for e in iter_events(capped, esc, first, last)]
    assert via == direct and len(direct) >= 10
    assert cap.refused > 0  # the cap was hit, and worked around


def test_provider_refusing_even_one_block__error_raised(world: World, capped: Web3,
                                                       cap: Cap) -> None:
    cap.blocks = 0
    head = int(world.keeper.w3.eth.block_number)
    with pytest.raises(Web3RPCError, match="max block range"):
        list(iter_events(capped, world.keeper.escrow, head - 10, head))


def test_capped_provider__pact_terms_read_by_the_client(world: World, manifest: Any,
                                                       capped_url: str, cap: Cap) -> None:
    """The client reads a pact's terms from its PactCreated log, from the deployment block on:
    one query over the whole range, refused by a capped provider, before."""
    pid = world.pact()
    pb = Pactbond.connect(capped_url, manifest)
    assert pb.pact(pid) == world.pacts[pid]
    assert cap.refused > 0
    with pytest.raises(UnknownObjectError, match="no pact 999999"):
        pb.pact(999_999)


def test_capped_provider__job_rebuilt_from_its_logs(world: World, manifest: Any,
                                                   capped_url: str, cap: Cap) -> None:
    """job() folds every job's logs from the deployment block on (ADR 011), asked straight of
    the provider: a refused range is halved there too."""
    jid = world.job(world.pact(), E18 // 10)
    pb = Pactbond.connect(capped_url, manifest)
    assert pb.job(jid) == world.keeper.job(jid)
    assert cap.refused > 0
