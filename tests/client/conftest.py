"""A private anvil (loopback, free port, unique chain id) with pactbond deployed, per module,
and a `world` of role-named clients over it."""

from __future__ import annotations

import contextlib
import functools
import json
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from eth_hash.auto import keccak
from web3 import Web3

from pactbond import KeyWallet, Pactbond, PactTerms
from pactbond.deploy import Manifest, deploy
from pactbond.devnet import Devnet
from pactbond.models import ZERO_ADDRESS
from pactbond.votes import SignedVote

E18 = 10**18
HOUR = 3600
ROOT = Path(__file__).resolve().parents[2]
BOND, PENALTY = 10 * E18, 5 * E18


@pytest.fixture(scope="module")
def devnet():
    with Devnet(accounts=14) as d:
        yield d


@pytest.fixture(scope="module")
def manifest(devnet, tmp_path_factory):
    w3 = Web3(Web3.HTTPProvider(devnet.url))
    return deploy(w3, devnet.account(0), out_dir=tmp_path_factory.mktemp("deployments"),
                  expected_chain_id=devnet.chain_id)


def client(devnet, manifest: Manifest, i: int) -> Pactbond:
    return Pactbond.connect(devnet.url, manifest, KeyWallet(devnet.account(i)))


@dataclass
class World:
    """Clients by role: owner 0, committee admin 1, buyer 2, agent 3, evaluators 4-6, appeal
    evaluators 7-9, guardian 10, keeper 11 (a stranger to every job), insurance 12."""

    devnet: Any
    manifest: Manifest
    owner: Pactbond
    admin: Pactbond
    buyer: Pactbond
    agent: Pactbond
    evals: list[Pactbond]
    appeal: list[Pactbond]
    guardian: Pactbond
    keeper: Pactbond
    insurance: str
    cid: int = 0
    aid: int = 0
    pacts: dict[int, PactTerms] = field(default_factory=dict)

    def warp(self, seconds: int) -> None:
        self.devnet.rpc("evm_increaseTime", [seconds])
        self.devnet.rpc("evm_mine")

    def terms(self, **over: Any) -> PactTerms:
        base: dict[str, Any] = dict(
            committee_id=self.cid, appeal_committee_id=self.aid, spec_hash=keccak(b"spec"),
            fail_below_bps=5000, pass_at_bps=8000, bond_bps=2000, bond_cap=10 * E18,
            slash_bps=5000, slash_buyer_bps=5000, slash_insurance_bps=3000, slash_burn_bps=2000,
            insurance=self.insurance, evaluator_fee=E18 // 100, challenge_bond=E18 // 10,
            appeal_fee=E18 // 100, min_appeal_delta_bps=1000, accept_window=HOUR,
            work_window=HOUR, eval_window=HOUR, challenge_window=0, appeal_window=0,
            cap_initial=3 * E18, cap_step=E18, cap_max=5 * E18,
        )
        base.update(over)
        return PactTerms(**base)

    def pact(self, **over: Any) -> int:
        """A pact created by the owner account and approved by both committees."""
        t = self.terms(**over)
        pid = self.owner.create_pact(t)
        self.admin.approve_pact(t.committee_id, pid)
        self.admin.approve_pact(t.appeal_committee_id, pid)
        self.pacts[pid] = t
        return pid

    def job(self, pid: int, value: int = E18, upto: str = "submit") -> int:
        jid = self.buyer.open_job(pid, self.agent.address, value)
        if upto in ("accept", "submit"):
            self.agent.accept(jid)
        if upto == "submit":
            self.agent.submit(jid, keccak(b"deliverable %d" % jid))
        return jid

    def votes(self, jid: int, scores: list[int], round_: int = 0) -> list[SignedVote]:
        members = self.appeal if round_ else self.evals
        return [m.sign_vote(m.vote_for(jid, s, keccak(b"evidence %d" % s), round_))
                for m, s in zip(members, scores, strict=False)]


def make_world(devnet, manifest: Manifest, stake: int = 100 * E18,
               agent_stake: int = 50 * E18) -> World:
    c = [client(devnet, manifest, i) for i in range(13)]
    w = World(devnet, manifest, owner=c[0], admin=c[1], buyer=c[2], agent=c[3], evals=c[4:7],
              appeal=c[7:10], guardian=c[10], keeper=c[11], insurance=c[12].address)
    w.owner.set_guardian(w.guardian.address)
    w.cid = w.admin.create_committee([e.address for e in w.evals], 2, BOND, PENALTY)
    w.aid = w.admin.create_committee([e.address for e in w.appeal], 2, BOND, PENALTY)
    for e, committee in [*[(x, w.cid) for x in w.evals], *[(x, w.aid) for x in w.appeal]]:
        e.accept_version(e.current_version(committee))
        e.stake(stake, evaluator=True)
    w.agent.stake(agent_stake)
    return w


@pytest.fixture(scope="module")
def world(devnet, manifest) -> World:
    return make_world(devnet, manifest)


# -- an ERC-20 (contracts/mocks/MockERC20.vy, compiled with the venv's vyper) ---------------


@functools.cache
def mock_artifact(name: str) -> tuple[list[Any], str]:
    """contracts/mocks/<name>.vy compiled with the venv's vyper: (abi, bytecode)."""
    vyper = Path(sys.executable).parent / "vyper"
    out = subprocess.run(
        [str(vyper), "-f", "abi,bytecode", str(ROOT / f"contracts/mocks/{name}.vy")],
        check=True, capture_output=True, text=True,
    ).stdout.split("\n")
    return json.loads(out[0]), out[1].strip()


@pytest.fixture(scope="session")
def mock_erc20_artifact() -> tuple[list[Any], str]:
    return mock_artifact("MockERC20")


def deploy_mock(w3: Web3, account: Any, name: str, *args: Any) -> Any:
    abi_, bytecode = mock_artifact(name)
    tx = w3.eth.contract(abi=abi_, bytecode=bytecode).constructor(*args).build_transaction(
        {"from": account.address, "nonce": w3.eth.get_transaction_count(account.address)})
    receipt = w3.eth.wait_for_transaction_receipt(
        w3.eth.send_raw_transaction(account.sign_transaction(tx).raw_transaction))
    return w3.eth.contract(address=receipt["contractAddress"], abi=abi_)


def deploy_token(w3: Web3, account: Any, artifact: tuple[list[Any], str], decimals: int = 6,
                 name: str = "Mock USD") -> Any:
    abi_, bytecode = artifact
    factory = w3.eth.contract(abi=abi_, bytecode=bytecode)
    tx = factory.constructor(name, "MUSD", decimals, 0).build_transaction(
        {"from": account.address, "nonce": w3.eth.get_transaction_count(account.address)})
    receipt = w3.eth.wait_for_transaction_receipt(
        w3.eth.send_raw_transaction(account.sign_transaction(tx).raw_transaction))
    return w3.eth.contract(address=receipt["contractAddress"], abi=abi_)


def send(w3: Web3, account: Any, fn: Any) -> None:
    tx = fn.build_transaction({"from": account.address,
                               "nonce": w3.eth.get_transaction_count(account.address)})
    receipt = w3.eth.wait_for_transaction_receipt(
        w3.eth.send_raw_transaction(account.sign_transaction(tx).raw_transaction))
    assert receipt["status"] == 1


Hook = Callable[[Any, Callable[[], Any]], Any]


@contextlib.contextmanager
def rpc_proxy(upstream: str, hook: Hook) -> Iterator[str]:
    """A loopback JSON-RPC proxy to the node at `upstream`, for faults a provider shows (range
    caps, lost answers): `hook(request, forward)` returns the reply (a JSON document, or an int
    HTTP status sent with no body); `forward()` asks the node. Yields the proxy's URL and stops
    it on exit."""

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))

            def forward() -> Any:
                up = urllib.request.Request(upstream, data=body,
                                            headers={"Content-Type": "application/json"})
                with urllib.request.urlopen(up, timeout=30) as r:
                    return json.loads(r.read())

            reply = hook(json.loads(body), forward)
            out = b"" if isinstance(reply, int) else json.dumps(reply).encode()
            self.send_response(reply if isinstance(reply, int) else 200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)

    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{srv.server_address[1]}"
    finally:
        srv.shutdown()
        srv.server_close()


__all__ = ["BOND", "E18", "HOUR", "PENALTY", "ZERO_ADDRESS", "World", "client", "deploy_mock",
           "deploy_token", "make_world", "mock_artifact", "rpc_proxy", "send"]
