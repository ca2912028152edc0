"""Sending is idempotent from the user's side: a send whose answer was lost (web3 retries it)
is followed to its receipt, not reported failed; a transaction not mined in time raises
TxPendingError naming it, and the keeper waits for it instead of sending the duty again."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from pactbond import Pactbond
from pactbond.cli.commands import keeper_pass
from pactbond.errors import TxPendingError
from tests.client.conftest import E18, HOUR, World, client, rpc_proxy


class LostAnswer:
    """Forwards to the node; the first `lose` eth_sendRawTransaction are delivered and their
    answers replaced by a 502 (a gateway that lost them): web3 then sends the same bytes again."""

    def __init__(self) -> None:
        self.lose, self.sends = 0, 0

    def __call__(self, req: Any, forward: Callable[[], Any]) -> Any:
        out = forward()
        if isinstance(req, dict) and req.get("method") == "eth_sendRawTransaction":
            self.sends += 1
            if self.lose > 0:
                self.lose -= 1
                return 502
        return out


def test_send_answer_lost__followed_to_its_receipt_sent_once(world: World,
                                                            manifest: Any) -> None:
    agent, lost = world.agent, LostAnswer()
    with rpc_proxy(world.devnet.url, lost) as url:
        _send_once(world, Pactbond.connect(url, manifest, agent.wallet), lost)


def _send_once(world: World, pb: Pactbond, lost: LostAnswer) -> None:
    agent = world.agent
    before = agent.agent_stake(agent.address).free
    nonce = int(pb.w3.eth.get_transaction_count(agent.address))
    lost.lose = 1
    receipt = pb.stake(E18 // 10)  # was "the node refused the transaction: nonce too low"
    assert receipt["status"] == 1 and lost.sends >= 2  # web3 did send it again
    assert int(pb.w3.eth.get_transaction_count(agent.address)) == nonce + 1
    assert agent.agent_stake(agent.address).free == before + E18 // 10


def test_not_mined_in_time__tx_pending_error_then_the_keeper_waits(world: World,
                                                                    manifest: Any) -> None:
    pid = world.pact(challenge_window=HOUR, appeal_window=HOUR)
    jid = world.job(pid, E18 // 2)
    world.keeper.settle(jid, world.votes(jid, [9000, 9000, 9000]))
    world.warp(HOUR + 1)
    keeper = Pactbond.connect(world.devnet.url, manifest, client(world.devnet, manifest, 3).wallet,
                              timeout=1.0)
    me = keeper.wallet.address  # type: ignore[union-attr]
    world.devnet.rpc("evm_setAutomine", [False])
    try:
        pending: dict[tuple[int, str], bytes] = {}
        (tried,), _ = keeper_pass(keeper, jid, pending)
        assert tried[:2] == (jid, "finalize") and "not mined within 1 s" in str(tried[2])
        h = pending[(jid, "finalize")]
        assert keeper.tx_status(h) == "pending"
        sent = int(keeper.w3.eth.get_transaction_count(me, "pending"))
        tried2, _ = keeper_pass(keeper, jid, pending)  # was: a second finalize, doomed to revert
        assert tried2 == [(jid, "finalize", f"waiting for transaction 0x{h.hex()}")]
        assert int(keeper.w3.eth.get_transaction_count(me, "pending")) == sent
        world.devnet.rpc("evm_mine")
        assert keeper.tx_status(h) == "mined"
        assert keeper_pass(keeper, jid, pending)[0] == []  # settled: nothing left to do
        with pytest.raises(TxPendingError, match="not mined within 1 s") as info:
            keeper.stake(10**15)  # the client itself: the error names the transaction
        assert keeper.tx_status(info.value.tx_hash) == "pending"
        world.devnet.rpc("evm_mine")
    finally:
        world.devnet.rpc("evm_setAutomine", [True])
