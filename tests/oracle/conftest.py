"""Oracle service tests: a private anvil mining every 0.2 s (so confirmations advance), the
contracts deployed, a 2-of-3 committee (accounts 4-6) and an appeal committee (7-9), and real
`pactbond oracle run` processes started per test and stopped by PID."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
from web3 import Web3

from pactbond.deploy import Manifest, deploy
from pactbond.devnet import Devnet, dev_account
from pactbond.oracle.spec import content_hash
from tests.client.conftest import E18, World, make_world
from tests.oracle.harness import OracleProc, oracle_config, ports, wait_for, write_doc

BLOCK_TIME = 0.2
SCHEMA = {"type": "object", "required": ["answer"],
          "properties": {"answer": {"type": "string", "minLength": 1}}}


@pytest.fixture(scope="module")
def net() -> Iterator[Devnet]:
    with Devnet(accounts=20, block_time=BLOCK_TIME) as d:
        yield d


@pytest.fixture(scope="module")
def manifest_path(net: Devnet, tmp_path_factory: pytest.TempPathFactory) -> Path:
    w3 = Web3(Web3.HTTPProvider(net.url))
    out = tmp_path_factory.mktemp("deployments")
    m = deploy(w3, net.account(0), out_dir=out, expected_chain_id=net.chain_id)
    return m.save(out / "local.json")


@pytest.fixture(scope="module")
def world(net: Devnet, manifest_path: Path) -> World:
    return make_world(net, Manifest.load(manifest_path))


@pytest.fixture(scope="module")
def docs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("docs")


def schema_spec(docs: Path, fail_below: int = 5000, pass_at: int = 8000,
                **extra: Any) -> bytes:
    return write_doc(docs, {
        "pactbond_spec": 1, "name": "answer-format",
        "evaluator": {"name": "json-schema", "version": "1"},
        "thresholds": {"fail_below_bps": fail_below, "pass_at_bps": pass_at},
        "params": {"schema": SCHEMA, **extra},
    })


@dataclass
class Cluster:
    """Oracle processes of one test; all stopped at the end of it."""

    net: Devnet
    manifest: Path
    docs: Path
    workdir: Path
    procs: list[OracleProc] = field(default_factory=list)

    def oracles(self, accounts: list[int], committees: list[int], peers_of: list[int] | None = None,
                start: bool = True, **over: Any) -> list[OracleProc]:
        """One oracle per dev account; each knows the others (and `peers_of`) as peers."""
        everyone = sorted(set(accounts) | set(peers_of or []))
        port_of = dict(zip(everyone, ports(len(everyone)), strict=True))
        peers = {dev_account(i).address: f"http://127.0.0.1:{port_of[i]}" for i in everyone}
        out = []
        for i in accounts:
            name = f"oracle{i}"
            cfg = oracle_config(self.net.url, self.manifest, committees, "ORACLE_KEY",
                                self.workdir / f"{name}.db", port_of[i], peers, self.docs,
                                **over)
            p = OracleProc(name, self.workdir, cfg,
                           env={"ORACLE_KEY": "0x" + bytes(dev_account(i).key).hex()})
            self.procs.append(p)
            if start:
                p.start()
            out.append(p)
        return out

    def stop(self) -> None:
        for p in self.procs:
            p.stop()


@pytest.fixture
def cluster(net: Devnet, manifest_path: Path, docs: Path, tmp_path: Path) -> Iterator[Cluster]:
    c = Cluster(net, manifest_path, docs, tmp_path)
    yield c
    c.stop()
    for p in c.procs:
        assert not p.alive, f"{p.name} still running"


def upload(api: str, data: bytes) -> bytes:
    r = requests.post(f"{api}/deliverables", data=data, timeout=5)
    assert r.status_code in (200, 201), r.text
    return content_hash(data)


def deliver(world: World, pid: int, api: str, answer: Any, value: int = E18) -> int:
    """Open, accept and submit a job whose deliverable (JSON) is uploaded to `api`."""
    data = json.dumps(answer).encode()
    jid = world.buyer.open_job(pid, world.agent.address, value)
    world.agent.accept(jid)
    h = upload(api, data)
    world.agent.submit(jid, h)
    return jid


__all__ = ["BLOCK_TIME", "Cluster", "deliver", "schema_spec", "upload", "wait_for"]
