"""The oracle posts several ready votes in one settle_batch (one VoteBatch signature), and splits
a batch whose gas would pass `max_batch_gas` into parts that fit, each signed on its own (issue
7); every call carries exactly the votes its signature covers, with their jobs' fields."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

import pytest

from pactbond import eip712
from pactbond.models import Vote
from pactbond.oracle.spec import content_hash
from pactbond.oracle.store import Store
from tests.client.conftest import E18, World
from tests.oracle.conftest import Cluster, schema_spec, wait_for
from tests.oracle.harness import OracleProc

DATA = json.dumps({"answer": "42"}).encode()
JOBS = 8


def batch_txs(p: OracleProc) -> list[tuple[bytes, int]]:
    """(hash, batch size) of the oracle's confirmed settle_batch transactions."""
    db = sqlite3.connect(p.config["db"], timeout=5)
    try:
        return [(bytes(h), int(n)) for h, n in db.execute(
            "SELECT t.tx_hash, (SELECT COUNT(*) FROM batch_members b WHERE b.batch_intent = i.id) "
            "FROM txs t JOIN intents i ON i.id = t.intent_id "
            "WHERE i.kind = 'batch' AND t.status = 'confirmed' ORDER BY t.id")]
    finally:
        db.close()


def as_signed(world: World, p: OracleProc, h: bytes, n: int) -> None:
    """The settle_batch call `h` carries exactly the votes its one signature signed, in their
    order (the escrow rebuilds the root from the items, ADR 011: no proofs), each with its
    job's fields, and as many as the oracle put in that batch."""
    tx = world.keeper.w3.eth.get_transaction(h)
    fn, args = world.keeper.escrow.decode_function_input(tx["input"])
    assert fn.fn_name == "settle_batch"
    (sig,) = args["signatures"]
    items, jobs = args["items"], args["jobs"]
    assert len(items) == len(jobs) == n
    assert all(it["member"] == sig["member"] == p.member for it in items)
    spec = bytes(args["terms"]["spec_hash"])
    leaves = [eip712.vote_struct_hash(Vote(
        job_id=it["job_id"], deliverable_hash=bytes(f["deliverable"]), spec_hash=spec,
        score_bps=it["score_bps"], evidence_hash=bytes(it["evidence_hash"]),
        round=args["round"], deadline=sig["deadline"])) for it, f in zip(items, jobs, strict=True)]
    assert eip712.merkle_root(leaves) == bytes(sig["votes_root"])
    for it, f in zip(items, jobs, strict=True):
        assert bytes(f["deliverable"]) == world.keeper.job(it["job_id"]).deliverable_hash


def ready_at_once(world: World, cluster: Cluster, docs: Any, **over: Any) -> tuple[OracleProc, list[int]]:
    """JOBS submitted jobs, then one member whose store already holds their bytes: it follows
    them all in its first tick, so every vote is ready at once."""
    pid = world.pact(spec_hash=schema_spec(docs), challenge_window=0)
    first = int(world.keeper.w3.eth.block_number)
    jids = []
    for _ in range(JOBS):
        jid = world.buyer.open_job(pid, world.agent.address, 10**15)
        world.agent.accept(jid)
        world.agent.submit(jid, content_hash(DATA))
        jids.append(jid)
    (p,) = cluster.oracles([4], [world.cid], start=False, start_block=first, **over)
    store = Store(p.config["db"])
    try:
        store.put_blob(content_hash(DATA), "deliverable", DATA)  # as an upload would
    finally:
        store.close()
    p.start()
    return p, jids


def counted(world: World, p: OracleProc, jids: list[int]) -> bool:
    """Every job has a vote, and the oracle has no transaction short of final."""
    db = sqlite3.connect(p.config["db"], timeout=5)
    try:
        live = db.execute("SELECT COUNT(*) FROM txs WHERE status IN ('signed', 'sent', 'mined')")
        return all(world.keeper.job(j).round0 for j in jids) and live.fetchone()[0] == 0
    finally:
        db.close()


def test_votes_ready_together__posted_in_one_settle_batch(world: World, cluster: Cluster,
                                                          docs: Any) -> None:
    p, jids = ready_at_once(world, cluster, docs)
    wait_for(lambda: counted(world, p, jids), timeout=40, what="votes counted")
    w3 = world.keeper.w3
    (h, n), = batch_txs(p)
    assert n == JOBS
    as_signed(world, p, h, n)
    receipt = w3.eth.get_transaction_receipt(h)
    assert receipt["status"] == 1
    block = receipt["blockNumber"]
    events = world.keeper.events(block, block, names="VoteCounted")
    assert sorted(int(e.job_id) for e in events if e.member == p.member) == jids


@pytest.mark.parametrize("bound", [200_000])  # eight votes take ~250k gas, four ~135k
def test_batch_over_the_gas_bound__split_into_parts_that_fit(world: World, cluster: Cluster,
                                                             docs: Any, bound: int) -> None:
    p, jids = ready_at_once(world, cluster, docs, max_batch_gas=bound)
    wait_for(lambda: counted(world, p, jids), timeout=40, what="votes counted")
    w3 = world.keeper.w3
    parts = batch_txs(p)
    print(f"\nparts {[n for _, n in parts]}, gas "
          f"{[w3.eth.get_transaction_receipt(h)['gasUsed'] for h, _ in parts]}")
    assert len(parts) >= 2 and sum(n for _, n in parts) <= JOBS
    for h, n in parts:
        r = w3.eth.get_transaction_receipt(h)
        assert r["status"] == 1 and r["gasUsed"] <= bound
        as_signed(world, p, h, n)  # each part signed on its own
    for j in jids:  # every vote counted once
        assert len([e for e in world.keeper.events(names="VoteCounted", job_id=j)
                    if e.member == p.member]) == 1


def test_batch_past_the_node_block_gas_limit__split_and_every_part_fits(
        world: World, cluster: Cluster, docs: Any) -> None:
    """The node cannot run the whole batch in a block (its estimate fails, and anvil answers an
    over-limit estimate with a bare revert) while max_batch_gas would allow it: the oracle splits
    on the node's answer instead of falling back to singles, and no part asks more gas than a
    block holds (such a transaction is refused at every broadcast, and its votes would never
    post). Every vote is counted once."""
    for e in world.evals:  # the module's earlier jobs hold their reservations
        e.stake(JOBS * 5 * E18, evaluator=True)
    rpc = world.keeper.w3.provider.make_request  # type: ignore[attr-defined]
    before = int(world.keeper.w3.eth.get_block("latest")["gasLimit"])
    # open, accept, submit and four votes fit (~135k gas); eight in one call (~250k) do not
    limit = 220_000
    rpc("evm_setBlockGasLimit", [hex(limit)])
    try:
        p, jids = ready_at_once(world, cluster, docs)
        wait_for(lambda: counted(world, p, jids), timeout=60, what="votes counted")
        w3 = world.keeper.w3
        parts = batch_txs(p)
        assert len(parts) >= 2 and sum(n for _, n in parts) <= JOBS
        for h, n in parts:
            assert w3.eth.get_transaction(h)["gas"] <= limit
            assert w3.eth.get_transaction_receipt(h)["status"] == 1
            as_signed(world, p, h, n)
        splits = [json.loads(line) for line in p.log_text().splitlines()
                  if "batch over the gas bound" in line]
        assert splits[0]["jobs"] == JOBS and splits[0]["gas"] is None  # the node's refusal
        assert all(s["bound"] == limit for s in splits)
        for j in jids:  # every vote counted once
            assert len([e for e in world.keeper.events(names="VoteCounted", job_id=j)
                        if e.member == p.member]) == 1
    finally:
        rpc("evm_setBlockGasLimit", [hex(before)])
