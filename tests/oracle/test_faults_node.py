"""Node and chain faults (RELIABILITY.md "Oracle service" F8-F13, F17, F18), scaled down: real
`pactbond oracle run` processes against this module's private anvil, some through a loopback
proxy that can cut the node off or delay its answers.

Mining: anvil mines every 0.2 s until a test pauses it (interval mining off, automine off, as the
faults need); from then on a thread of the `mining` fixture mines every 0.2 s, because anvil's
`evm_setIntervalMining` takes whole seconds and cannot restore a 0.2 s block time.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any, Self

import pytest
from prometheus_client.parser import text_string_to_metric_families
from web3 import Web3

from pactbond import JobState
from pactbond.devnet import Devnet, DevnetError, dev_account
from pactbond.oracle.spec import content_hash
from tests.client.conftest import E18, World
from tests.oracle.conftest import BLOCK_TIME, Cluster, deliver, schema_spec, upload, wait_for
from tests.oracle.harness import OracleProc, track_fields
from tests.oracle.proxy import Proxy

ANSWER = {"answer": "42"}  # passes the schema: every oracle scores 10,000
DATA = json.dumps(ANSWER).encode()
LIVE = ("signed", "sent", "mined")
# F8: RELIABILITY.md's 5-minute outage, scaled down (`make faults-long`: 300 s)
OUTAGE = float(os.environ.get("PACTBOND_FAULT_OUTAGE", "10"))


# -- mining control ------------------------------------------------------------------------
class Mining:
    """Block production of the module's anvil: pause() stops it, resume() mines every
    BLOCK_TIME from a thread (see the module docstring), mine() makes blocks by hand."""

    def __init__(self, net: Devnet) -> None:
        self.net = net
        self._thread: threading.Thread | None = None
        self._halt = threading.Event()
        self._taken_over = False  # anvil's own interval mining is off from the first pause

    def pause(self) -> None:
        self._stop_thread()
        self.net.rpc("evm_setIntervalMining", [0])
        self.net.rpc("evm_setAutomine", [False])
        self._taken_over = True

    def resume(self) -> None:
        if not self._taken_over or (self._thread is not None and self._thread.is_alive()):
            return
        self._halt.clear()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def mine(self, n: int = 1) -> None:
        for _ in range(n):
            self.net.rpc("evm_mine")

    def _loop(self) -> None:
        while not self._halt.wait(BLOCK_TIME):
            with contextlib.suppress(DevnetError, OSError):
                self.net.rpc("evm_mine")

    def _stop_thread(self) -> None:
        self._halt.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None


@pytest.fixture(scope="module")
def mining(net: Devnet) -> Iterator[Mining]:
    m = Mining(net)
    yield m
    m._stop_thread()


@pytest.fixture(autouse=True)
def _mining_resumed(mining: Mining, net: Devnet) -> Iterator[None]:
    # a test that fails while mining is paused, or leaves a stopped oracle's transaction in
    # the pool, must not stall or shift the nonces of the next one (torn down after `cluster`)
    yield
    net.rpc("anvil_dropAllTransactions")
    mining.resume()


@pytest.fixture
def proxy(net: Devnet) -> Iterator[Proxy]:
    with Proxy(net.port) as p:
        yield p


# -- reading the oracle's database, its metrics and the chain ---------------------------------
def q(p: OracleProc, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    """One read of an oracle's SQLite (WAL: a reader never blocks the service)."""
    db = sqlite3.connect(p.config["db"], timeout=5)
    try:
        return db.execute(sql, args).fetchall()
    finally:
        db.close()


def txs(p: OracleProc) -> list[dict[str, Any]]:
    cols = ("id", "intent_id", "nonce", "tx_hash", "max_fee", "tip", "status", "sent_block",
            "mined_block", "mined_hash", "receipt_status")
    return [dict(zip(cols, r, strict=True)) for r in q(p, f"SELECT {', '.join(cols)} FROM txs "
                                                         "ORDER BY id")]


def live(p: OracleProc) -> int:
    return int(q(p, "SELECT COUNT(*) FROM txs WHERE status IN ('signed', 'sent', 'mined')")[0][0])


def follows(p: OracleProc, jid: int) -> bool:
    return bool(q(p, "SELECT 1 FROM jobs WHERE job_id = ?", jid))


def sent_row(p: OracleProc) -> dict[str, Any] | None:
    rows = [t for t in txs(p) if t["status"] == "sent"]
    return rows[-1] if rows else None


def metric(p: OracleProc, name: str, **labels: str) -> float:
    for fam in text_string_to_metric_families(p.get("/metrics").text):
        for s in fam.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return float(s.value)
    return 0.0


def log_lines(p: OracleProc, msg: str) -> list[dict[str, Any]]:
    out = []
    for line in p.log_text().splitlines():
        try:
            doc = json.loads(line)
        except ValueError:
            continue
        if isinstance(doc, dict) and str(doc.get("msg", "")).startswith(msg):
            out.append(doc)
    return out


def pool(net: Devnet) -> set[bytes]:
    """Hashes of the transactions waiting in the node's pool."""
    content = net.rpc("txpool_content")
    return {bytes.fromhex(tx["hash"][2:]) for part in ("pending", "queued")
            for by_nonce in content[part].values() for tx in by_nonce.values()}


def counted(world: World, jid: int, member: str) -> list[Any]:
    return [e for e in world.keeper.events(names="VoteCounted", job_id=jid) if e.member == member]


def settled(world: World, jid: int) -> list[Any]:
    return list(world.keeper.events(names="JobSettled", job_id=jid))


def sent_by(w3: Web3, who: str, first: int) -> dict[int, bytes]:
    """nonce -> hash of every transaction of `who` in the canonical chain from block `first`."""
    out: dict[int, bytes] = {}
    for n in range(first, w3.eth.block_number + 1):
        for tx in w3.eth.get_block(n, full_transactions=True)["transactions"]:
            if tx["from"] == who:  # type: ignore[index]
                assert tx["nonce"] not in out, "one nonce twice in the chain"  # type: ignore[index]
                out[int(tx["nonce"])] = bytes(tx["hash"])  # type: ignore[index]
    return out


def check_nonces(p: OracleProc, w3: Web3, n0: int, first: int,
                 outside: frozenset[int] = frozenset()) -> dict[int, bytes]:
    """No duplicate nonce use and no gap: the signer's nonces from `n0` are contiguous on-chain;
    each maps to exactly one mined/confirmed row of the oracle's DB with the same hash (or was
    consumed by a transaction the test sent: `outside`); nothing signed is left unused."""
    chain = sent_by(w3, p.member, first)
    count = int(w3.eth.get_transaction_count(p.member))
    assert sorted(chain) == list(range(n0, count)), "the signer's nonces have a gap"
    rows = txs(p)
    assert not [r for r in rows if r["status"] in LIVE], "transactions still in flight"
    final = [r for r in rows if r["status"] in ("mined", "confirmed")]
    per_nonce = Counter(r["nonce"] for r in final)
    assert all(c == 1 for c in per_nonce.values()), f"a nonce final twice: {per_nonce}"
    for r in final:
        assert chain.get(r["nonce"]) == bytes(r["tx_hash"]), f"row {r['id']} not on-chain"
    for n in chain:
        assert per_nonce[n] == (0 if n in outside else 1), f"nonce {n} not the DB's"
    signed = {r["nonce"] for r in rows}
    assert signed <= set(range(n0, count)), f"signed nonces {signed} left unused"
    return chain


def submit_later(world: World, pid: int, data: bytes, value: int = E18) -> int:
    """Open, accept and submit a job whose deliverable is not uploaded yet: the oracles follow
    it and wait (nothing to evaluate) until the test uploads it."""
    jid = world.buyer.open_job(pid, world.agent.address, value)
    world.agent.accept(jid)
    world.agent.submit(jid, content_hash(data))
    return jid


def through(proxy: Proxy, procs: list[OracleProc]) -> list[OracleProc]:
    """Start oracles that reach the node through `proxy`."""
    for p in procs:
        p.config["rpc_url"] = proxy.url
        p.start()
    return procs


def is_settled(world: World, jid: int) -> bool:
    return world.keeper.job(jid).state == JobState.SETTLED


# -- F8 ------------------------------------------------------------------------------------
def test_f8_node_down_then_back__no_crash_bounded_backoff_backlog_drained(
        world: World, proxy: Proxy, cluster: Cluster, docs: Any) -> None:
    pid = world.pact(spec_hash=schema_spec(docs), challenge_window=0)
    procs = through(proxy, cluster.oracles([4, 5, 6], [world.cid], start=False))
    wait_for(lambda: all(p.get("/ready").status_code == 200 for p in procs), timeout=20,
             what="oracles ready")

    proxy.cut()
    cut_at = time.monotonic()
    jids = [deliver(world, pid, procs[i].api, ANSWER) for i in range(3)]
    while time.monotonic() - cut_at < OUTAGE:
        assert all(p.alive for p in procs), "an oracle died while the node was down"
        assert all(p.get("/health").status_code == 200 for p in procs)
        time.sleep(0.5)
    for jid in jids:
        assert world.keeper.job(jid).round0 == {}, "a vote got out while the node was down"

    proxy.restore()
    back_at = time.monotonic()
    wait_for(lambda: any(counted(world, j, p.member) for j in jids for p in procs),
             timeout=20, what="the first vote after the outage")
    recovered = time.monotonic() - back_at
    wait_for(lambda: all(is_settled(world, j) for j in jids), timeout=40, what="backlog settled")
    drained = time.monotonic() - back_at
    print(f"\nF8: node down {OUTAGE:g} s; first vote {recovered:.1f} s after it came back, "
          f"{len(jids)} jobs drained in {drained:.1f} s")
    assert all(p.alive for p in procs)
    for jid in jids:
        assert len(settled(world, jid)) == 1
    for p in procs:
        during = [d["ts"] for d in log_lines(p, "tick failed, backing off")]
        # backing off, not spinning (0.1 s polls would be ~100 failures in 10 s) ...
        # backoff doubles up to 5 s: about OUTAGE / 5 + 6 failed ticks, never a busy loop
        most = int(OUTAGE / 5) + 14
        assert 3 <= len(during) <= most, f"{p.name}: {len(during)} failed ticks in the outage"
        # ... and bounded: at most 5 s of pause (+ the failing tick itself) between attempts
        gaps = [b - a for a, b in itertools.pairwise(during)]
        assert max(gaps) <= 5.0 + 3.0, f"{p.name}: backoff gaps {gaps}"
        assert metric(p, "pactbond_failures_total", kind="node") >= 3
    # retrying is bounded too: the first vote came within one full backoff of the node's return
    assert recovered <= 5.0 + 5.0


# -- F9 ------------------------------------------------------------------------------------
def test_f9_node_slower_than_client_timeout__no_duplicate_nonce(
        world: World, proxy: Proxy, cluster: Cluster, docs: Any) -> None:
    pid = world.pact(spec_hash=schema_spec(docs), challenge_window=0)
    w3 = world.keeper.w3
    procs = through(proxy, cluster.oracles([4, 5, 6], [world.cid], start=False,
                                           rpc_timeout=1.0))
    n0 = {p.name: int(w3.eth.get_transaction_count(p.member)) for p in procs}
    first = int(w3.eth.block_number)
    # the send is where a timeout hurts: the node takes the transaction but the answer comes
    # after the client gave up, so the client cannot tell whether it was sent
    proxy.delay(2.5, only=b"eth_sendRawTransaction")
    jids = [deliver(world, pid, procs[i].api, ANSWER) for i in range(3)]
    wait_for(lambda: all(any("Timeout" in str(d.get("error"))
                             for d in log_lines(p, "broadcast failed")) for p in procs),
             timeout=30, what="every oracle's broadcast timing out")
    # the node took what timed out: the oracles follow it to finality while the node is
    # still slow (by receipts, not by the answers that never came)
    wait_for(lambda: all(any(r["status"] == "confirmed" for r in txs(p)) for p in procs),
             timeout=30, what="transactions final while the node is slow")
    proxy.delay(0)
    wait_for(lambda: all(is_settled(world, j) for j in jids), timeout=30, what="jobs settled")
    wait_for(lambda: all(live(p) == 0 for p in procs), timeout=30, what="transactions final")
    print(f"\nF9: {proxy.delayed} node answers held 2.5 s past the 1 s client timeout")
    assert proxy.delayed >= 3
    for jid in jids:
        assert len(settled(world, jid)) == 1
    for p in procs:
        check_nonces(p, w3, n0[p.name], first)
        for jid in jids:  # every reserved vote counted (the job settled), each once
            assert len(counted(world, jid, p.member)) == 1


class Sampler:
    """Calls `sample()` from a thread every `every` seconds inside a `with` block."""

    every = 0.1

    def __init__(self) -> None:
        self._halt = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._halt.set()
        self._thread.join(timeout=5)

    def _loop(self) -> None:
        while not self._halt.wait(self.every):
            self.sample()

    def sample(self) -> None:
        raise NotImplementedError


# -- F10 -----------------------------------------------------------------------------------
class FinalityWatch(Sampler):
    """Samples the oracles' tx rows: a row seen final while its block is less than
    `confirmations` deep is a violation (the DB is read before the head, so the head read is
    at least the one the oracle decided on)."""

    every = 0.05

    def __init__(self, procs: list[OracleProc], url: str, confirmations: int) -> None:
        super().__init__()
        self.procs, self.confirmations = procs, confirmations
        self.w3 = Web3(Web3.HTTPProvider(url))  # its own connection: it runs in a thread
        self.violations: list[tuple[str, int, int, int]] = []
        self.samples = 0

    def sample(self) -> None:
        rows = [(p.name, r) for p in self.procs for r in txs(p) if r["status"] == "confirmed"]
        head = int(self.w3.eth.block_number)
        self.samples += 1
        for name, r in rows:
            if head - r["mined_block"] < self.confirmations:
                self.violations.append((name, r["id"], r["mined_block"], head))


@pytest.mark.parametrize("depth", [1, 2, 3])
def test_f10_reorg_after_inclusion__settled_once_final_after_confirmations(
        world: World, cluster: Cluster, docs: Any, net: Devnet, mining: Mining,
        depth: int) -> None:
    conf = max(2, depth)
    pid = world.pact(spec_hash=schema_spec(docs), challenge_window=0)
    w3 = world.keeper.w3
    procs = cluster.oracles([4, 5, 6], [world.cid], confirmations=conf)
    n0 = {p.name: int(w3.eth.get_transaction_count(p.member)) for p in procs}
    first = int(w3.eth.block_number)
    agent_free = world.agent.agent_stake(world.agent.address).free
    jid = submit_later(world, pid, DATA)
    wait_for(lambda: all(follows(p, jid) for p in procs), timeout=20, what="job followed")
    # the submission lies deeper than the reorg will reach
    submitted = int(w3.eth.block_number)
    wait_for(lambda: w3.eth.block_number >= submitted + depth + 1, timeout=10)
    mining.pause()
    for p in procs:
        upload(p.api, DATA)
    wait_for(lambda: all(sent_row(p) for p in procs), timeout=20, what="votes broadcast")

    with FinalityWatch(procs, net.url, conf) as watch:
        mining.mine()
        mined_at = int(w3.eth.block_number)
        assert world.keeper.job(jid).round0, "no vote counted in the block to be reorged"
        for _ in range(depth - 1):
            mining.mine()
        head = int(w3.eth.block_number)
        assert head - mined_at < conf  # mined, not yet final
        wait_for(lambda: all(any(r["status"] == "mined" for r in txs(p)) for p in procs),
                 timeout=10, what="the oracles seeing their votes mined")
        assert not [r for p in procs for r in txs(p) if r["status"] == "confirmed"]

        net.rpc("anvil_reorg", [depth, []])
        assert int(w3.eth.block_number) == head
        assert world.keeper.job(jid).round0 == {}, "the reorg did not undo the votes"
        assert settled(world, jid) == []
        wait_for(lambda: all(log_lines(p, "reorg: transaction back to the mempool")
                             for p in procs), timeout=10, what="the oracles seeing the reorg")
        mining.resume()
        wait_for(lambda: is_settled(world, jid), timeout=30, what="settled again")
        wait_for(lambda: all(live(p) == 0 for p in procs), timeout=30, what="transactions final")
        time.sleep(0.2)

    print(f"\nF10: reorg depth {depth} (confirmations {conf}) survived; {watch.samples} "
          "finality samples")
    assert watch.violations == [], "a transaction was final before its confirmations"
    ev = settled(world, jid)
    assert len(ev) == 1, "settled more (or less) than once in the canonical chain"
    assert ev[0].block_number > head  # in a block after the reorged ones
    # the money moved once: the whole value to the agent's free stake
    assert world.agent.agent_stake(world.agent.address).free == agent_free + E18
    j = world.keeper.job(jid)
    assert sorted(j.round0.values()) == [10_000, 10_000, 10_000]
    for p in procs:
        assert len(counted(world, jid, p.member)) == 1
        check_nonces(p, w3, n0[p.name], first)
        for row in txs(p):
            if row["status"] == "confirmed":  # final rows name canonical blocks
                block = w3.eth.get_block(row["mined_block"])
                assert bytes(row["mined_hash"]) == bytes(block["hash"])


def test_f10_terminal_state_reorged_away__job_followed_until_final(
        world: World, cluster: Cluster, docs: Any, net: Devnet, mining: Mining) -> None:
    # someone else's finalize settles the job at the head; a reorg then undoes it. The oracle
    # ends a job only once its terminal state is as deep as its confirmations, so it still
    # follows the job and its keeper finalizes it again.
    window = 3_600
    pid = world.pact(spec_hash=schema_spec(docs), challenge_window=window, appeal_window=window)
    w3 = world.keeper.w3
    procs = cluster.oracles([4, 5, 6], [world.cid], confirmations=3)
    jid = submit_later(world, pid, DATA)
    wait_for(lambda: all(follows(p, jid) for p in procs), timeout=20, what="job followed")
    for p in procs:
        upload(p.api, DATA)
    wait_for(lambda: len(world.keeper.job(jid).round0) == 3, timeout=20, what="three votes")
    wait_for(lambda: all(live(p) == 0 for p in procs), timeout=20, what="the votes final")

    mining.pause()
    j, t = world.keeper.job(jid), world.keeper.pact(pid)
    net.rpc("evm_setNextBlockTimestamp", [j.deadline + window + 1])  # round 0 closes at E
    outsider = dev_account(9).address  # anvil's dev accounts are unlocked
    w3.eth.send_transaction({"from": outsider, "to": world.keeper.escrow.address, "gas": 1_000_000,
                             "data": world.keeper._esc.call(
                                 "finalize", jid, t.as_tuple(), j.fields.as_tuple(),
                                 world.keeper.evidence(jid)).data})
    mining.mine()
    assert is_settled(world, jid), "the outsider's finalize did not settle the job"
    settled_at = int(w3.eth.block_number)
    wait_for(lambda: all(metric(p, "pactbond_head_block") >= settled_at for p in procs),
             timeout=10, what="the oracles seeing the settlement")
    time.sleep(3 * procs[0].config["poll_interval"])  # a few ticks with the job settled at head
    for p in procs:
        assert q(p, "SELECT done FROM jobs WHERE job_id = ?", jid) == [(0,)], \
            f"{p.name} ended the job before its settlement had the confirmations"

    net.rpc("anvil_reorg", [1, []])
    assert world.keeper.job(jid).state == JobState.VERDICT, "the reorg did not undo the finalize"
    if world.keeper.now() <= j.deadline + window:  # the new block's time may lie before it
        net.rpc("evm_setNextBlockTimestamp", [j.deadline + window + 2])
    mining.resume()
    wait_for(lambda: is_settled(world, jid), timeout=30, what="finalized again")
    wait_for(lambda: all(q(p, "SELECT done FROM jobs WHERE job_id = ?", jid) == [(1,)]
                         for p in procs), timeout=20, what="the job ended once final")
    ev = settled(world, jid)
    assert len(ev) == 1, "settled more (or less) than once in the canonical chain"
    assert w3.eth.get_transaction(ev[0].tx_hash)["from"] in {p.member for p in procs}, \
        "not finalized by an oracle"


# -- F11 -----------------------------------------------------------------------------------
def test_f11_dropped_transaction__rebroadcast_and_counted(
        world: World, cluster: Cluster, docs: Any, net: Devnet, mining: Mining) -> None:
    pid = world.pact(spec_hash=schema_spec(docs), challenge_window=0)
    w3 = world.keeper.w3
    (p,) = cluster.oracles([4], [world.cid])
    n0, first = int(w3.eth.get_transaction_count(p.member)), int(w3.eth.block_number)
    jid = submit_later(world, pid, DATA)
    wait_for(lambda: follows(p, jid), timeout=20, what="job followed")
    mining.pause()
    upload(p.api, DATA)
    row = wait_for(lambda: sent_row(p), timeout=20, what="vote broadcast")
    h = bytes(row["tx_hash"])
    assert h in pool(net)

    net.rpc("anvil_dropTransaction", ["0x" + h.hex()])
    wait_for(lambda: log_lines(p, "transaction dropped by the node"), timeout=10,
             what="the oracle noticing the drop")
    wait_for(lambda: h in pool(net), timeout=10, what="the same transaction re-sent")
    mining.resume()
    wait_for(lambda: counted(world, jid, p.member), timeout=20, what="vote counted")
    wait_for(lambda: live(p) == 0, timeout=20, what="transaction final")

    assert len(counted(world, jid, p.member)) == 1
    chain = check_nonces(p, w3, n0, first)
    assert chain == {n0: h}  # re-sent as it was: no second nonce, no second transaction
    assert [r["status"] for r in txs(p)] == ["confirmed"]
    assert q(p, "SELECT counted FROM votes WHERE job_id = ?", jid) == [(1,)]


# -- F12 -----------------------------------------------------------------------------------
def test_f12_base_fee_spike__bumped_to_the_cap_alert_then_mined(
        world: World, cluster: Cluster, docs: Any, net: Devnet, mining: Mining) -> None:
    cap = 20 * 10**9
    pid = world.pact(spec_hash=schema_spec(docs), challenge_window=0)
    w3 = world.keeper.w3
    (p,) = cluster.oracles([4], [world.cid], max_fee_cap_wei=cap, bump_after_blocks=2)
    n0, first = int(w3.eth.get_transaction_count(p.member)), int(w3.eth.block_number)
    jid = submit_later(world, pid, DATA)
    wait_for(lambda: follows(p, jid), timeout=20, what="job followed")
    mining.pause()
    upload(p.api, DATA)
    row = wait_for(lambda: sent_row(p), timeout=20, what="vote broadcast")
    assert row["max_fee"] < cap

    # the base fee jumps far above the cap and stays there, block after block
    spike = 50 * cap
    try:
        for _ in range(30):
            net.rpc("anvil_setNextBlockBaseFeePerGas", [hex(spike)])
            mining.mine()
            time.sleep(0.25)
            if any(r["max_fee"] == cap for r in txs(p)) and \
                    metric(p, "pactbond_alerts_total", kind="fee_cap") > 0:
                break
        rows = txs(p)
        assert max(r["max_fee"] for r in rows) == cap, "not bumped to the cap"
        assert all(r["max_fee"] <= cap for r in rows)
        assert metric(p, "pactbond_alerts_total", kind="fee_cap") > 0
        assert [d for d in log_lines(p, "ALERT") if d.get("alert") == "fee_cap"]
        assert counted(world, jid, p.member) == []  # nothing can be mined during the spike
    finally:
        # fees fall (whatever happened: a later test must not inherit the spike)
        net.rpc("anvil_setNextBlockBaseFeePerGas", [hex(10**9)])
        mining.resume()
    # the transaction at the cap is mined
    wait_for(lambda: counted(world, jid, p.member), timeout=20, what="vote counted")
    wait_for(lambda: live(p) == 0, timeout=20, what="transaction final")
    rows = txs(p)
    print(f"\nF12: {len(rows)} attempts of nonce {n0}, fees "
          f"{[r['max_fee'] for r in rows]} wei, cap {cap}")
    assert {r["nonce"] for r in rows} == {n0}
    (final,) = [r for r in rows if r["status"] == "confirmed"]
    assert final["max_fee"] == cap
    assert [r for r in rows if r["status"] == "replaced"], "never bumped"
    assert len(counted(world, jid, p.member)) == 1
    check_nonces(p, w3, n0, first)


# -- F13 -----------------------------------------------------------------------------------
def test_f13_nonce_consumed_outside__intent_redone_once(
        world: World, cluster: Cluster, docs: Any, net: Devnet, mining: Mining) -> None:
    pid = world.pact(spec_hash=schema_spec(docs), challenge_window=0)
    w3 = world.keeper.w3
    (p,) = cluster.oracles([4], [world.cid])
    n0, first = int(w3.eth.get_transaction_count(p.member)), int(w3.eth.block_number)
    jid = submit_later(world, pid, DATA)
    wait_for(lambda: follows(p, jid), timeout=20, what="job followed")
    mining.pause()
    upload(p.api, DATA)
    row = wait_for(lambda: sent_row(p), timeout=20, what="vote broadcast")
    assert row["nonce"] == n0

    # the same key spends the nonce elsewhere, paying more: the node keeps that one
    key = dev_account(4)
    raw = key.sign_transaction({
        "to": key.address, "value": 0, "gas": 21_000, "nonce": n0, "chainId": net.chain_id,
        "type": 2, "maxFeePerGas": 2 * row["max_fee"], "maxPriorityFeePerGas": 2 * row["tip"],
    }).raw_transaction
    outside = bytes(w3.eth.send_raw_transaction(raw))
    assert outside in pool(net) and bytes(row["tx_hash"]) not in pool(net)
    mining.resume()
    wait_for(lambda: counted(world, jid, p.member), timeout=30, what="vote counted")
    wait_for(lambda: live(p) == 0, timeout=20, what="transaction final")

    rows = txs(p)
    print(f"\nF13: rows {[(r['nonce'], r['status']) for r in rows]}")
    assert len(counted(world, jid, p.member)) == 1
    chain = check_nonces(p, w3, n0, first, outside=frozenset({n0}))
    assert chain[n0] == outside
    assert [(r["nonce"], r["status"]) for r in rows] == [(n0, "superseded"),
                                                         (n0 + 1, "confirmed")]
    assert metric(p, "pactbond_alerts_total", kind="nonce") >= 1
    # one vote transaction of this oracle on-chain: no double submit
    escrow = world.keeper.escrow.address
    votes_sent = [n for n, h in chain.items() if w3.eth.get_transaction(h)["to"] == escrow]
    assert votes_sent == [n0 + 1]


def test_f13_outside_nonce_reorged_away__not_redone_no_gap(
        world: World, cluster: Cluster, docs: Any, net: Devnet, mining: Mining) -> None:
    # the transaction that took the nonce is itself undone by a reorg before it is final: the
    # nonce is free again, so redoing the intent on a new nonce would leave a gap behind it
    pid = world.pact(spec_hash=schema_spec(docs), challenge_window=0)
    w3 = world.keeper.w3
    (p,) = cluster.oracles([4], [world.cid], confirmations=3)
    n0, first = int(w3.eth.get_transaction_count(p.member)), int(w3.eth.block_number)
    jid = submit_later(world, pid, DATA)
    wait_for(lambda: follows(p, jid), timeout=20, what="job followed")
    mining.pause()
    upload(p.api, DATA)
    row = wait_for(lambda: sent_row(p), timeout=20, what="vote broadcast")
    key = dev_account(4)
    w3.eth.send_raw_transaction(key.sign_transaction({
        "to": key.address, "value": 0, "gas": 21_000, "nonce": n0, "chainId": net.chain_id,
        "type": 2, "maxFeePerGas": 2 * row["max_fee"], "maxPriorityFeePerGas": 2 * row["tip"],
    }).raw_transaction)
    mining.mine()
    assert int(w3.eth.get_transaction_count(p.member)) == n0 + 1  # taken, not yet final
    time.sleep(1.0)  # ten polls of the oracle
    net.rpc("anvil_reorg", [1, []])
    assert int(w3.eth.get_transaction_count(p.member)) == n0  # free again
    mining.resume()
    wait_for(lambda: counted(world, jid, p.member), timeout=20, what="vote counted")
    wait_for(lambda: live(p) == 0, timeout=20, what="transaction final")
    assert len(counted(world, jid, p.member)) == 1
    chain = check_nonces(p, w3, n0, first)
    assert chain == {n0: bytes(row["tx_hash"])}
    assert [r["status"] for r in txs(p)] == ["confirmed"]


# -- F17 -----------------------------------------------------------------------------------
def test_f17_signer_out_of_gas_money__waits_alerts_resumes_after_top_up(
        world: World, cluster: Cluster, docs: Any, net: Devnet) -> None:
    pid = world.pact(spec_hash=schema_spec(docs), challenge_window=0)
    w3 = world.keeper.w3
    (p,) = cluster.oracles([4], [world.cid])
    n0, first = int(w3.eth.get_transaction_count(p.member)), int(w3.eth.block_number)
    funds = int(w3.eth.get_balance(p.member))
    wait_for(lambda: p.get("/ready").status_code == 200, timeout=10, what="ready")
    net.rpc("anvil_setBalance", [p.member, hex(1_000)])
    try:
        time.sleep(0.5)
        assert p.get("/ready").status_code == 200  # nothing to pay for yet
        jid = deliver(world, pid, p.api, ANSWER)
        jid2 = deliver(world, pid, p.api, ANSWER)  # two votes ready: a batch is tried too
        wait_for(lambda: metric(p, "pactbond_alerts_total", kind="balance") > 0, timeout=20,
                 what="a balance alert")
        assert p.get(f"/votes/{jid}").status_code == 200  # signed and waiting
        r = p.get("/ready")
        assert r.status_code == 503 and "balance" in r.json()["reason"]
        head = int(w3.eth.block_number)
        wait_for(lambda: w3.eth.block_number >= head + 5, timeout=10)
        assert txs(p) == []  # nothing signed it cannot pay for
        # no row a tick: at most the batch a tick is trying at the moment of reading (it is
        # dropped again when the send finds no money), never one more per tick
        seen = []
        with contextlib.closing(sqlite3.connect(p.config["db"])) as db:
            for _ in range(10):
                seen.append(db.execute(
                    "SELECT COUNT(*) FROM intents WHERE kind = 'batch'").fetchone()[0])
                time.sleep(0.3)
        assert max(seen) <= 1, seen
        assert counted(world, jid, p.member) == []
        assert int(w3.eth.get_transaction_count(p.member)) == n0
        assert [d for d in log_lines(p, "ALERT") if d.get("alert") == "balance"]
    finally:
        net.rpc("anvil_setBalance", [p.member, hex(funds)])
    wait_for(lambda: counted(world, jid, p.member) and counted(world, jid2, p.member),
             timeout=20, what="votes counted")
    wait_for(lambda: p.get("/ready").status_code == 200, timeout=10, what="ready again")
    wait_for(lambda: live(p) == 0, timeout=20, what="transaction final")
    alerts = metric(p, "pactbond_alerts_total", kind="balance")
    print(f"\nF17: {alerts:g} balance alert(s) while the signer was dry")
    assert 1 <= alerts <= 2  # one per episode, not one per poll while it waits
    assert len(counted(world, jid, p.member)) == len(counted(world, jid2, p.member)) == 1
    check_nonces(p, w3, n0, first)


# -- F18 -----------------------------------------------------------------------------------
def send_all(w3: Web3, key: Any, chain_id: int, calls: list[tuple[Any, int]]) -> list[Any]:
    """Sign and send calls (Call, value) with consecutive nonces, then wait for every receipt:
    one block holds many, where the client's send-and-wait would take a block each."""
    nonce = int(w3.eth.get_transaction_count(key.address, "pending"))
    base = int(w3.eth.get_block("latest")["baseFeePerGas"])
    first, value0 = calls[0]
    gas = int(w3.eth.estimate_gas({"from": key.address, "to": first.to, "data": first.data,
                                   "value": value0})) * 3 // 2
    hashes = []
    for i, (call, value) in enumerate(calls):
        raw = key.sign_transaction({
            "to": call.to, "data": call.data, "value": value, "gas": gas, "nonce": nonce + i,
            "chainId": chain_id, "type": 2, "maxFeePerGas": 4 * base + 10**9,
            "maxPriorityFeePerGas": 10**9}).raw_transaction
        hashes.append(w3.eth.send_raw_transaction(raw))
    receipts = [w3.eth.wait_for_transaction_receipt(h, timeout=60) for h in hashes]
    assert all(r["status"] == 1 for r in receipts)
    return receipts


class InFlight(Sampler):
    """Samples each oracle's transactions in flight (its DB, and its metric)."""

    def __init__(self, procs: list[OracleProc]) -> None:
        super().__init__()
        self.procs = procs
        self.db_max = 0
        self.metric_max = 0.0

    def sample(self) -> None:
        for p in self.procs:
            self.db_max = max(self.db_max, live(p))
            self.metric_max = max(self.metric_max, metric(p, "pactbond_txs_in_flight"))


def test_f18_burst_of_jobs__bounded_in_flight_all_settled_no_gaps(
        world: World, cluster: Cluster, docs: Any, net: Devnet) -> None:
    # RELIABILITY.md's 1,000 jobs scaled down (`make faults-long`: 1,000)
    jobs, max_in_flight, value = int(os.environ.get("PACTBOND_FAULT_BURST", "100")), 8, 5 * 10**15
    w3 = world.keeper.w3
    # a 2-of-3 committee with a small penalty, so 100 open jobs fit the members' stake
    cid = world.admin.create_committee([e.address for e in world.evals], 2, 10**16, 10**16)
    for e in world.evals:
        e.accept_version(e.current_version(cid))
    # the agent's exposure cap holds every job of the burst at once
    pid = world.pact(committee_id=cid, spec_hash=schema_spec(docs), challenge_window=0,
                     evaluator_fee=10**14, cap_initial=jobs * value, cap_max=jobs * value)
    procs = cluster.oracles([4, 5, 6], [cid], max_in_flight=max_in_flight)
    n0 = {p.name: int(w3.eth.get_transaction_count(p.member)) for p in procs}
    first = int(w3.eth.block_number)
    for p in procs:
        upload(p.api, DATA)  # one deliverable for every job: the same bytes, the same hash

    buyer, agent = dev_account(2), dev_account(3)
    t, cv, av = world.buyer._check_open(pid, agent.address, value, None)
    esc = world.buyer._esc
    with InFlight(procs) as sampler:
        opened = send_all(w3, buyer, net.chain_id, [
            (esc.call("open", t.as_tuple(), pid, agent.address, value, cv, av),
             value + t.evaluator_fee)] * jobs)
        jids = [int(world.buyer._events(r, "JobOpened")[0]["args"]["job_id"]) for r in opened]
        fields = track_fields(world.buyer, opened)
        track_fields(world.buyer, send_all(w3, agent, net.chain_id, [
            (esc.call("accept", j, t.as_tuple(), fields[j].as_tuple()), 0) for j in jids]),
            fields)
        send_all(w3, agent, net.chain_id, [(esc.call("submit", j, t.as_tuple(),
                                                     fields[j].as_tuple(), content_hash(DATA),
                                                     ""), 0) for j in jids])
        burst_at = time.monotonic()

        def n_settled() -> int:
            return len({e.job_id for e in world.keeper.events(first, names="JobSettled")
                        if e.job_id in set(jids)})

        wait_for(lambda: n_settled() == jobs, timeout=150 + jobs // 5, every=0.5, what="all jobs settled")
        drain = time.monotonic() - burst_at
        wait_for(lambda: all(live(p) == 0 for p in procs), timeout=30, what="transactions final")

    sent = {p.name: len(txs(p)) for p in procs}
    print(f"\nF18: {jobs} jobs drained in {drain:.1f} s; in flight at most {sampler.db_max} "
          f"(DB) / {sampler.metric_max:g} (metric), bound {max_in_flight}; txs sent {sent}")
    assert 1 <= sampler.db_max <= max_in_flight
    assert sampler.metric_max <= max_in_flight
    events = [e for e in world.keeper.events(first, names="JobSettled") if e.job_id in set(jids)]
    assert sorted(e.job_id for e in events) == sorted(jids)  # each exactly once
    for p in procs:
        check_nonces(p, w3, n0[p.name], first)
