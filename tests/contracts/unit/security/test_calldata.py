"""The bad-input corpus (RELIABILITY C5), the parts other files do not cover: malformed calldata
and ETH where none is due, and the state corpus (an unknown job, a job already terminal) for
every job call. Each is refused, nothing changes, and no ETH stays behind."""

from __future__ import annotations

from typing import Any

import boa
import pytest
from boa.contracts.base_evm_contract import BoaError
from eth.exceptions import Revert, VMError
from eth_abi import decode, encode
from eth_hash.auto import keccak

from tests.contracts.conftest import E18, ETH
from tests.contracts.unit.security.conftest import (
    CANCELLED,
    EXPIRED_NO_DELIVERY,
    EXPIRED_NO_VERDICT,
    SETTLED,
    assert_books,
    call_as,
)


def raw(world: Any, data: bytes, value: int = 0, sender: str | None = None) -> bool:
    """Send `data` to the escrow (from the attacker by default); True if it went through."""
    try:
        comp = boa.env.raw_call(world.escrow.address, sender=sender or world.attacker.address,
                                data=data, value=value)
    except (BoaError, VMError):  # a revert, as boa or py-evm reports it
        return False
    world.escrow.observe(comp)  # a job call around the proxy: track the fields it changed
    return True


def selector(sig: str) -> bytes:
    return keccak(sig.encode())[:4]


def word(data: bytes, i: int, new: bytes) -> bytes:
    """`data` (a selector and words) with word `i` replaced."""
    at = 4 + 32 * i
    return data[:at] + new + data[at + 32:]


@pytest.fixture
def live(world):
    """Money in the escrow and calls that would go through if well formed: the attacker holds
    free stake (withdraw_stake), job A is submitted (settle), job B accepted (submit)."""
    pid, _ = world.create_pact()
    world.stake_agent()
    call_as(world.attacker, world.escrow.stake, ETH, E18, False, value=E18)
    a, b = world.open(pid, E18 // 10), world.open(pid, E18 // 10)
    world.accept(a)
    world.accept(b)
    world.submit(a)
    return a, b


U256_MAX = (2**256 - 1).to_bytes(32, "big")


def cases(world: Any, a: int, b: int) -> dict[str, tuple[bytes, int, bytes | None, int]]:
    """name: (malformed calldata, ETH sent, its well-formed twin or None, ETH for the twin)."""
    esc = world.escrow
    me = world.attacker.address
    ws = esc.withdraw_stake.prepare_calldata(ETH, 1, me)
    st = esc.stake.prepare_calldata(ETH, 1, True)
    settle = esc.settle.prepare_calldata(a, world.terms_of(a), [world.vote(world.evaluators[0], a, 9000)])
    # settle's head: job id (word 0), the 28 words of the terms, the 5 of the job's fields
    # (ADR 011), the votes' offset (word 34); the votes' length is word 35
    assert settle[4 + 32 * 34:4 + 32 * 35] == (35 * 32).to_bytes(32, "big")
    assert settle[4 + 32 * 35:4 + 32 * 36] == (1).to_bytes(32, "big")
    sub_ok = esc.submit.prepare_calldata(b, world.terms_of(b), b"\x01" * 32, "x" * 256)
    # submit's head: job id, terms, fields, deliverable (word 34), the uri's offset (word 35);
    # the uri's length is word 36
    assert sub_ok[4 + 32 * 35:4 + 32 * 36] == (36 * 32).to_bytes(32, "big")
    sub_bad = sub_ok[:4 + 32 * 36] + encode(["string"], ["x" * 257])[32:]
    ivs = "is_valid_signature(address,bytes32,bytes)"
    e0 = world.evaluators[0].address
    return {
        "empty calldata with ETH (plain transfer)": (b"", E18, None, 0),
        "empty calldata": (b"", 0, None, 0),
        "unknown selector": (b"\xde\xad\xbe\xef", 0, None, 0),
        "unknown selector with ETH": (b"\xde\xad\xbe\xef" + bytes(64), E18, None, 0),
        "selector only (arguments missing)": (ws[:4], 0, ws, 0),
        "truncated argument": (ws[:-1], 0, ws, 0),
        "address with dirty high bits (to)": (word(ws, 2, b"\x01" + ws[4 + 64 + 1:4 + 96]), 0, ws, 0),
        "address with dirty high bits (asset)": (word(ws, 0, b"\x01" + bytes(31)), 0, ws, 0),
        "bool that is 2": (word(st, 2, (2).to_bytes(32, "big")), 1, st, 1),
        "ETH to a non-payable function": (ws, 1, ws, 0),
        "votes offset out of bounds": (word(settle, 34, U256_MAX), 0, settle, 0),
        # ADR 011: settle takes at most 4 votes a call (was 16)
        "votes length beyond the bound (5)": (word(settle, 35, (5).to_bytes(32, "big")), 0,
                                              settle, 0),
        "votes length 2**256 - 1": (word(settle, 35, U256_MAX), 0, settle, 0),
        "votes truncated mid-signature": (settle[:-40], 0, settle, 0),
        "signature longer than 1040 bytes": (
            selector(ivs) + encode(["address", "bytes32", "bytes"], [e0, bytes(32), bytes(1041)]), 0,
            selector(ivs) + encode(["address", "bytes32", "bytes"], [e0, bytes(32), bytes(1040)]), 0),
        "uri longer than 256 bytes": (sub_bad, 0, sub_ok, 0),
    }


CASES = [
    "empty calldata with ETH (plain transfer)", "empty calldata", "unknown selector",
    "unknown selector with ETH", "selector only (arguments missing)", "truncated argument",
    "address with dirty high bits (to)", "address with dirty high bits (asset)", "bool that is 2",
    "ETH to a non-payable function", "votes offset out of bounds",
    "votes length beyond the bound (5)", "votes length 2**256 - 1",
    "votes truncated mid-signature", "signature longer than 1040 bytes", "uri longer than 256 bytes",
]


def snapshot(world: Any, jobs: tuple[int, int]) -> tuple[Any, ...]:
    esc = world.escrow
    return (boa.env.get_balance(esc.address), *(world.job(j) for j in jobs),
            esc.agent_stake(world.attacker.address, ETH), esc.evaluator_stake(world.attacker.address, ETH))


@pytest.mark.parametrize("case", CASES)
def test_malformed_calldata__refused_nothing_changes__well_formed_twin_goes_through(world, live, case):
    bad, value, good, good_value = cases(world, *live)[case]
    sender = world.agent.address if case.startswith("uri") else None  # submit is the agent's
    before = snapshot(world, live)
    assert raw(world, bad, value, sender) is False
    assert snapshot(world, live) == before
    assert_books(world, extra=())
    if good is not None:
        assert raw(world, good, good_value, sender) is True, "the well-formed twin must go through"
        assert_books(world)


def test_facet__called_directly__every_function_refused(world, live):
    """The facets run only by delegatecall from the escrow: called at its own address each
    refuses everything, so its empty storage can never be written or read as if real. ADR 011:
    settle_batch and the evaluator unstaking moved to the batch facet, which refuses at its own
    address too, and so does the appeals facet's fallback that reaches it (without its own
    guard, the batch facet's would have seen the appeals facet's address and passed)."""
    live = live[0]
    appeals = world.escrow.APPEALS()
    # the facet's own view, at its address (the escrow's fallback returns no data)
    batch = world.escrow.raw[1].deployer.at(appeals).BATCH()
    t = world.terms_of(live)
    guard = ("escrow: call the escrow, not the facet",)
    batch_calls = (("settle_batch", (1, t, 0, [], [])), ("request_unstake", (ETH, 1)),
                   ("withdraw_evaluator_stake", (ETH,)))
    for at, calls in ((appeals, (("cancel", (live, t)), ("expire", (live, t)),
                                 ("challenge", (live, t, 0)), ("appeal", (live, t, [])),
                                 ("resolve", (live, t)))),
                      (batch, batch_calls)):
        for name, args in calls:
            data = getattr(world.facet, name).prepare_calldata(*args)
            with pytest.raises(Revert) as info:
                boa.env.raw_call(at, sender=world.buyer.address, data=data)
            assert info.value.args[0][:4] == bytes.fromhex("08c379a0")  # Error(string)
            assert decode(["string"], info.value.args[0][4:]) == guard, name
    for name, args in batch_calls:
        data = getattr(world.facet, name).prepare_calldata(*args)
        with pytest.raises(Revert) as info:
            boa.env.raw_call(appeals, sender=world.buyer.address, data=data)
        assert decode(["string"], info.value.args[0][4:]) == guard, f"{name} via the appeals facet"


# -- the state corpus: an unknown job, a terminal job ---------------------------------------------

def job_calls(world: Any, jid: int, t: Any) -> dict[str, Any]:
    esc, fac, tt = world.escrow, world.facet, t.as_tuple()
    vote = (world.evaluators[0].address, 9000, bytes(32), 2**40 - 1, bytes(65))
    return {
        "accept": lambda: call_as(world.agent, esc.accept, jid, tt),
        "submit": lambda: call_as(world.agent, esc.submit, jid, tt, b"\x01" * 32, ""),
        "settle": lambda: call_as(world.attacker, esc.settle, jid, tt, [vote]),
        "finalize": lambda: call_as(world.attacker, esc.finalize, jid, tt),
        "cancel": lambda: call_as(world.buyer, fac.cancel, jid, tt),
        "expire": lambda: call_as(world.attacker, fac.expire, jid, tt),
        "challenge": lambda: call_as(world.buyer, fac.challenge, jid, tt, 9000, value=t.challenge_bond),
        "appeal": lambda: call_as(world.attacker, fac.appeal, jid, tt, [vote]),
        "resolve": lambda: call_as(world.attacker, fac.resolve, jid, tt),
    }


@pytest.mark.parametrize("call", ["accept", "submit", "settle", "finalize", "cancel", "expire",
                                  "challenge", "appeal", "resolve"])
def test_unknown_job__every_job_call__refused(world, call):
    pid, t = world.create_pact()
    world.open(pid)
    with boa.reverts("escrow: unknown job"):
        job_calls(world, 999, t)[call]()
    with boa.reverts("escrow: unknown job"):
        job_calls(world, 0, t)[call]()


# the reason each call gives on a terminal job (its state check comes first)
TERMINAL_REASONS = {
    "accept": "escrow: not open", "submit": "escrow: not accepted",
    "settle": "vote: job not in evaluation", "finalize": "escrow: no verdict",
    "cancel": "escrow: not open", "expire": "escrow: not expirable",
    "challenge": "escrow: no verdict to challenge", "appeal": "vote: job not in appeal",
    "resolve": "escrow: not challenged",
}


def terminal_jobs(world: Any) -> tuple[dict[int, int], Any]:
    """One job in each terminal state: {state: job id}."""
    pid, t = world.create_pact(challenge_window=0, appeal_window=0)
    world.stake_agent(10 * E18)
    out = {}
    j = world.open(pid, E18 // 10)
    call_as(world.buyer, world.facet.cancel, j, t.as_tuple())
    out[CANCELLED] = j
    j = world.open(pid, E18 // 10)
    world.accept(j)
    world.submit(j)
    world.settle(j, [world.vote(m, j, 9000) for m in world.evaluators])
    out[SETTLED] = j
    j1, j2 = world.open(pid, E18 // 10), world.open(pid, E18 // 10)
    world.accept(j1)
    world.accept(j2)
    world.submit(j2)
    world.warp(t.work_window + 1)
    call_as(world.attacker, world.facet.expire, j1, t.as_tuple())
    call_as(world.attacker, world.facet.expire, j2, t.as_tuple())
    out[EXPIRED_NO_DELIVERY], out[EXPIRED_NO_VERDICT] = j1, j2
    return out, t


def test_terminal_job__every_job_call_in_every_terminal_state__refused_with_its_reason(world):
    jobs, t = terminal_jobs(world)
    refused = 0
    for state, jid in jobs.items():
        assert world.job(jid)["state"] == state
        for call, fn in job_calls(world, jid, t).items():
            with boa.reverts(TERMINAL_REASONS[call]):
                fn()
            refused += 1
        assert world.job(jid)["state"] == state
    assert refused == 4 * 9
    assert_books(world)
