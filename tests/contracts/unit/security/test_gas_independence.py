"""RELIABILITY C10: the gas of every job and money call is independent of how many jobs exist.

On a private anvil (prague; loopback, free port, unique chain id) with the shipped artifacts,
the benchmark's deployment (benchmarks/gas.py `Bench`: ETH committees of 3, threshold 2), one
cycle of every call is measured with a couple of open jobs, then PACTBOND_GAS_OPEN_JOBS more
jobs are opened in JSON-RPC batches, and the same cycle is measured again: 2,000 in `make test`
(the gas of a call cannot see the count: ~7 s), the full RELIABILITY count with
PACTBOND_GAS_OPEN_JOBS=10000 (~17 s).
Every call must differ by less than 5 % (storage is keyed by job id: no loop runs over jobs or
stakers). A warm-up cycle runs first so both measured cycles start from the same slot states.
"""

from __future__ import annotations

import os
from typing import Any

import pytest
from benchmarks.gas import BLOCK_GAS_LIMIT, ETH, FEE, VALUE, Bench, post
from eth_utils.crypto import keccak

from pactbond import eip712
from pactbond.devnet import Devnet
from pactbond.models import Vote

MANY = int(os.environ.get("PACTBOND_GAS_OPEN_JOBS", "2000"))
E18 = 10**18
SETTLED = 6


def gas(receipt: dict[str, Any]) -> int:
    return int(receipt["gasUsed"], 16)


def cycle(b: Bench) -> dict[str, int]:
    """Every call of a job's life and of the money paths, once; their gas. Job calls pass the
    job's fields, tracked from the receipts' logs (Bench.jtx, ADR 011); the facets' calls go
    to the escrow's address with the merged ABI."""
    ch, ev, esc = b.ch, b.evaluators, b.escrow
    out: dict[str, int] = {}
    out["stake"] = gas(ch.tx(b.agent, esc, "stake", ETH, E18, False, value=E18))
    # pact B (no challenge window): the closing vote settles
    j, r = b.open(b.pact_b)
    out["open"] = gas(r)
    out["accept"] = gas(b.accept(j))
    out["submit"] = gas(b.submit(j))
    out["settle_closes_and_settles"] = gas(b.settle(j, ev, [9000, 8500, 9500]))
    assert b.state(j) == SETTLED
    # pact A: a verdict only, finalized later
    j2, _ = b.open(b.pact_a)
    b.accept(j2)
    b.submit(j2)
    out["settle_verdict_only"] = gas(b.settle(j2, ev[:2], [9000, 8500]))
    # pact A: early close, challenge, appeal, resolve
    j3, _ = b.open(b.pact_a)
    b.accept(j3)
    b.submit(j3)
    b.settle(j3, ev, [9000, 9000, 9000])
    ch.warp(1)
    t = b.pacts[b.pact_a]
    out["challenge"] = gas(b.jtx(b.buyer, "challenge", j3, 9000, c=b.esc, value=t.challenge_bond))
    votes = round1_votes(b, j3, [2000, 2000, 2000])
    out["appeal"] = gas(b.jtx(b.keeper, "appeal", j3, votes, c=b.esc))
    out["resolve"] = gas(b.jtx(b.keeper, "resolve", j3, evidence(b, j3), c=b.esc))
    assert b.state(j3) == SETTLED
    # cancel by the buyer
    j4, _ = b.open(b.pact_a)
    out["cancel"] = gas(b.jtx(b.buyer, "cancel", j4, c=b.esc))
    # no delivery
    j5, _ = b.open(b.pact_a)
    b.accept(j5)
    ch.warp(t.challenge_window + t.work_window + 1)
    out["finalize"] = gas(b.finalize(j2))
    out["expire_no_delivery"] = gas(b.jtx(b.keeper, "expire", j5, c=b.esc))
    # pulls
    out["withdraw"] = gas(ch.tx(ev[0], b.escrow, "withdraw", ETH, ev[0].address))
    out["withdraw_buyer"] = gas(ch.tx(b.buyer, b.escrow, "withdraw", ETH, b.buyer.address))
    out["withdraw_stake"] = gas(ch.tx(b.agent, b.escrow, "withdraw_stake", ETH, E18 // 100,
                                      b.agent.address))
    return out


def evidence(b: Bench, jid: int) -> tuple[Any, ...]:
    """Feedback's evidence for resolve: the job's first counted round-0 vote (as finalize's)."""
    m, s, ev, deadline, sig = b.last_votes[jid][0]
    return (m, s, ev, deadline, False, [], sig)


def round1_votes(b: Bench, jid: int, scores: list[int]) -> list[tuple[Any, ...]]:
    """The appeal members' signed round-1 votes (Bench.votes signs round 0), deadline P."""
    f = b.job(jid)
    dom = eip712.domain_separator(b.ch.chain_id, b.escrow.address)
    out = []
    for m, s in zip(b.appeal, scores, strict=True):
        ev = keccak(f"appeal:{jid}:{m.address}".encode())
        v = Vote(job_id=jid, deliverable_hash=f.deliverable, spec_hash=b.pacts[f.pact_id].spec_hash,
                 score_bps=s, evidence_hash=ev, round=1, deadline=f.deadline)
        sig = eip712.sign_digest(m.key, eip712.digest(dom, eip712.vote_struct_hash(v)))
        out.append((m.address, s, ev, f.deadline, sig))
    return out


def bulk_open(b: Bench, n: int, chunk: int = 500) -> list[str]:
    """`n` jobs on pact A, sent unsigned (anvil signs for its dev accounts: local signing is
    the slow part) in JSON-RPC batches with automine off, one block per chunk; their
    transaction hashes."""
    t = b.pacts[b.pact_a]
    cv, av = b.versions(t)
    data = b.escrow.encode_abi("open", args=[t.as_tuple(), b.pact_a, b.agent.address, VALUE,
                                             cv, av])
    tx = {"from": b.bulk_buyer.address, "to": b.escrow.address, "data": data,
          "value": hex(VALUE + FEE), "gas": hex(400_000)}
    nonce = b.ch.w3.eth.get_transaction_count(b.bulk_buyer.address)
    hashes: list[str] = []
    b.ch.rpc("evm_setAutomine", [False])
    try:
        done = 0
        while done < n:
            k = min(chunk, n - done)
            out = post(b.ch.url, [{"jsonrpc": "2.0", "id": i, "method": "eth_sendTransaction",
                                   "params": [{**tx, "nonce": hex(nonce + done + i)}]}
                                  for i in range(k)])
            assert isinstance(out, list), out
            assert [o["error"] for o in out if "error" in o] == []
            hashes += [o["result"] for o in sorted(out, key=lambda o: o["id"])]
            b.ch.rpc("evm_mine")
            done += k
    finally:
        b.ch.rpc("evm_setAutomine", [True])
    return hashes


@pytest.fixture(scope="module")
def bench():
    with Devnet(accounts=16, balance_eth=10**7, gas_limit=BLOCK_GAS_LIMIT) as net:
        b = Bench(net)
        b.setup()
        b.ch.tx(b.agent, b.escrow, "stake", ETH, 100 * E18, False, value=100 * E18)
        yield b


def test_gas__every_call__within_5pct_with_few_and_with_many_open_jobs(bench):
    b = bench
    cycle(b)  # warm-up: both measured cycles start from the same slot states
    few_open = b.ch.call(b.escrow, "job_count")
    few = cycle(b)
    before = b.ch.call(b.escrow, "job_count")
    hashes = bulk_open(b, MANY)
    assert b.ch.call(b.escrow, "job_count") == before + MANY
    lots = cycle(b)
    diff = {k: abs(lots[k] - few[k]) / few[k] * 100 for k in few}
    assert sorted(few) == sorted(lots) and len(few) == 15
    print(f"C10: {few_open} vs {before + MANY} jobs; max diff {max(diff.values()):.3f} %; "
          + ", ".join(f"{k} {few[k]:,}/{lots[k]:,}" for k in few))
    assert {k: d for k, d in diff.items() if d >= 5} == {}, (few, lots)
    # the jobs left open by the bulk are all still there, untouched: the first and the last,
    # their fields from their JobOpened logs, checked against the stored words
    for h in (hashes[0], hashes[-1]):
        b.track({"transactionHash": h})
    assert b.state(before + 1) == 1 and b.state(before + MANY) == 1
