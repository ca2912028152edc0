"""The local devnet (anvil) and the web3 deployment from the shipped artifacts."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from eth_utils.crypto import keccak
from pydantic import ValidationError
from web3 import Web3
from web3.exceptions import ContractLogicError

from pactbond import devnet as devnet_mod
from pactbond.deploy import (
    DAY,
    HOUR,
    DeployConstants,
    DeployError,
    Manifest,
    contract_at,
    deploy,
    verify,
)
from pactbond.devnet import AnvilNotFoundError, Devnet, DevnetError, find_anvil, free_port
from pactbond.models import PactTerms

ROOT = Path(__file__).resolve().parents[1]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture(scope="module")
def net():
    with Devnet() as n:
        yield n


@pytest.fixture(scope="module")
def deployed(net, tmp_path_factory):
    out = tmp_path_factory.mktemp("deployments")
    w3 = Web3(Web3.HTTPProvider(net.url))
    guardian = net.account(1).address
    m = deploy(w3, net.account(0), guardian=guardian, network="devnet-test", out_dir=out,
               expected_chain_id=net.chain_id)
    return w3, m, out / "devnet-test.json", guardian


@pytest.fixture
def foreign_node():
    """Another process's anvil on a free port, started directly (not through Devnet)."""
    port, chain_id = free_port(), 4242
    proc = subprocess.Popen(
        [str(find_anvil()), "--host", "127.0.0.1", "--port", str(port), "--chain-id",
         str(chain_id), "--quiet"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(200):
            if devnet_mod.chain_id_at(f"http://127.0.0.1:{port}") == chain_id:
                break
            time.sleep(0.05)
        else:
            raise RuntimeError("foreign anvil did not start")
        yield port, chain_id, proc
    finally:
        proc.terminate()
        proc.wait(timeout=10)


# -- deploy ------------------------------------------------------------------------------------


def test_deploy__fresh_devnet__manifest_records_chain_and_code_hashes(net, deployed):
    w3, m, path, _ = deployed
    on_disk = json.loads(path.read_text())
    assert set(on_disk) == {"chain_id", "network", "block", "deployer", "contracts", "constants",
                            "vyper", "evm_version"}
    assert set(on_disk["contracts"]) == {"PactRegistry", "PactEscrow", "PactEscrowAppeals",
                                         "PactEscrowBatch"}
    assert on_disk["chain_id"] == net.chain_id == w3.eth.chain_id
    assert on_disk["vyper"] == "0.4.3" and on_disk["evm_version"] == "prague"
    assert on_disk["deployer"] == net.account(0).address
    assert on_disk["constants"] == {"window_max": 7 * DAY, "min_rotation_delay": HOUR,
                                    "evaluator_cooldown": 36 * DAY}
    assert 1 <= on_disk["block"] <= w3.eth.block_number
    for rec in on_disk["contracts"].values():
        code = bytes(w3.eth.get_code(rec["address"]))
        assert rec["code_hash"] == "0x" + keccak(code).hex()
    assert Manifest.load(path) == m


def test_deploy__fresh_devnet__contracts_bound_and_views_answer(deployed):
    w3, m, _, guardian = deployed
    registry = contract_at(w3, "PactRegistry", m.address("PactRegistry"))
    escrow = contract_at(w3, "PactEscrow", m.address("PactEscrow"))
    facet = contract_at(w3, "PactEscrowAppeals", m.address("PactEscrow"))
    batch = contract_at(w3, "PactEscrowBatch", m.address("PactEscrow"))
    assert registry.functions.escrow().call() == m.address("PactEscrow")
    assert registry.functions.owner().call() == m.deployer
    assert registry.functions.guardian().call() == guardian
    assert registry.functions.WINDOW_MAX().call() == 7 * DAY
    assert registry.functions.MIN_ROTATION_DELAY().call() == HOUR
    assert escrow.functions.REGISTRY().call() == m.address("PactRegistry")
    assert escrow.functions.APPEALS().call() == m.address("PactEscrowAppeals")
    assert escrow.functions.EVALUATOR_COOLDOWN().call() == 36 * DAY
    assert escrow.functions.job_count().call() == 0
    # the chain of facets: the escrow's fallback delegatecalls the appeals facet, whose fallback
    # delegatecalls the batch facet (its immutables equal the escrow's)
    direct = contract_at(w3, "PactEscrowAppeals", m.address("PactEscrowAppeals"))
    direct_batch = contract_at(w3, "PactEscrowBatch", m.address("PactEscrowBatch"))
    assert direct.functions.BATCH().call() == m.address("PactEscrowBatch")
    assert direct_batch.functions.REGISTRY().call() == m.address("PactRegistry")
    assert direct_batch.functions.EVALUATOR_COOLDOWN().call() == 36 * DAY
    # each facet's ABI at the escrow's address runs on the escrow's storage; at the facet's own
    # address it refuses
    terms = PactTerms(committee_id=1, appeal_committee_id=2, spec_hash=b"\x01" * 32,
                      fail_below_bps=5000, pass_at_bps=8000, accept_window=1, work_window=1,
                      eval_window=1, cap_initial=1, cap_max=1).as_tuple()
    no_fields = (0, 0, 0, b"\0" * 32, 0)
    with pytest.raises(ContractLogicError, match="escrow: unknown job"):
        facet.functions.cancel(1, terms, no_fields).call()
    with pytest.raises(ContractLogicError, match="escrow: call the escrow, not the facet"):
        direct.functions.cancel(1, terms, no_fields).call()
    with pytest.raises(ContractLogicError, match="vote: no votes"):
        batch.functions.settle_batch(1, terms, 0, [], [], []).call()
    with pytest.raises(ContractLogicError, match="stake: zero amount"):
        batch.functions.request_unstake("0x" + "00" * 20, 0).call()
    with pytest.raises(ContractLogicError, match="escrow: call the escrow, not the facet"):
        direct_batch.functions.request_unstake("0x" + "00" * 20, 0).call()


def test_verify__manifest_of_this_chain__passes_and_other_code__refused(deployed):
    w3, m, _, _ = deployed
    verify(w3, m)
    forged = m.model_copy(update={"contracts": {
        **m.contracts,
        "PactEscrow": m.contracts["PactEscrow"].model_copy(
            update={"code_hash": m.contracts["PactRegistry"].code_hash}),
    }})
    with pytest.raises(DeployError, match=r"PactEscrow at .* code hash"):
        verify(w3, forged)


def test_deploy__wrong_expected_chain_id__refused_before_sending(net, tmp_path):
    w3 = Web3(Web3.HTTPProvider(net.url))
    acct = net.account(2)
    nonce = w3.eth.get_transaction_count(acct.address)
    with pytest.raises(DeployError, match=f"node reports chain id {net.chain_id}, expected 1"):
        deploy(w3, acct, out_dir=tmp_path, expected_chain_id=1)
    assert w3.eth.get_transaction_count(acct.address) == nonce
    assert not list(tmp_path.iterdir())


def test_deploy_constants__cooldown_not_above_five_windows__refused():
    with pytest.raises(ValidationError, match="must exceed 5 x window_max"):
        DeployConstants(window_max=7 * DAY, evaluator_cooldown=35 * DAY)
    assert DeployConstants(window_max=7 * DAY, evaluator_cooldown=35 * DAY + 1).window_max == 7 * DAY


def test_manifest__save_then_load__round_trips(deployed, tmp_path):
    _, m, _, _ = deployed
    path = m.save(Manifest.path_for("again", tmp_path / "sub"))
    assert path == tmp_path / "sub" / "again.json"
    assert Manifest.load(path) == m


# -- devnet ------------------------------------------------------------------------------------


def test_devnet__started__answers_requested_chain_id_on_loopback_with_funded_accounts(net):
    assert net.url.startswith("http://127.0.0.1:")
    assert int(net.rpc("eth_chainId"), 16) == net.chain_id
    assert int(net.rpc("eth_getBalance", [net.account(0).address, "latest"]), 16) > 0
    assert net.running and alive(net.pid)


def test_devnet__second_devnet__own_port_and_chain_and_no_collision(net, deployed):
    with Devnet() as other:
        assert other.port != net.port
        assert other.chain_id != net.chain_id
        assert int(other.rpc("eth_chainId"), 16) == other.chain_id
        # the first devnet's deployment is not on the second chain
        assert other.rpc("eth_getCode", [deployed[1].address("PactEscrow"), "latest"]) == "0x"
        assert int(other.rpc("eth_blockNumber"), 16) == 0
    assert int(net.rpc("eth_chainId"), 16) == net.chain_id


def test_devnet__foreign_node_on_port__refused_by_chain_id(foreign_node):
    port, foreign_chain, proc = foreign_node
    d = Devnet(port=port, chain_id=777_001)
    with pytest.raises(DevnetError, match=f"reports chain id {foreign_chain}, not 777001"):
        d.start()
    assert d.pid is None and not d.running
    assert proc.poll() is None  # the other process's node is left alone


def test_devnet__foreign_node_wins_port_race__refused_by_chain_id_and_own_anvil_stopped(
        foreign_node, monkeypatch):
    # the port looked free when picked; by launch time another node holds it
    port, foreign_chain, proc = foreign_node
    monkeypatch.setattr(devnet_mod, "port_in_use", lambda *_a, **_k: False)
    launched: list[subprocess.Popen[bytes]] = []
    real_launch = Devnet._launch

    def spy(self, p):
        real_launch(self, p)
        launched.append(self._proc)

    monkeypatch.setattr(Devnet, "_launch", spy)
    d = Devnet(port=port, chain_id=777_002)
    with pytest.raises(DevnetError, match=f"reports chain id {foreign_chain}, not 777002"):
        d.start()
    assert len(launched) == 1
    assert launched[0].poll() is not None  # our anvil was stopped
    assert proc.poll() is None


def test_devnet__stop__process_gone_by_pid():
    d = Devnet().start()
    pid = d.pid
    assert pid is not None and alive(pid)
    d.stop()
    assert not alive(pid)
    assert d.pid is None and not d.running
    d.stop()  # idempotent


def test_devnet__context_manager_exit_on_error__process_gone():
    with pytest.raises(ZeroDivisionError), Devnet() as d:
        pid = d.pid
        1 / 0  # noqa: B018
    assert not alive(pid)


FAKE_ANVIL = r'''#!{python}
# answers eth_chainId with the --chain-id it was given and ignores SIGTERM
import json, signal, sys
from http.server import BaseHTTPRequestHandler, HTTPServer
signal.signal(signal.SIGTERM, signal.SIG_IGN)
args = sys.argv[1:]
port, cid = int(args[args.index("--port") + 1]), int(args[args.index("--chain-id") + 1])
class H(BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers["Content-Length"]))
        body = json.dumps({{"jsonrpc": "2.0", "id": 1, "result": hex(cid)}}).encode()
        self.send_response(200); self.send_header("Content-Length", str(len(body)))
        self.end_headers(); self.wfile.write(body)
    def log_message(self, *a): pass
HTTPServer(("127.0.0.1", port), H).serve_forever()
'''


def test_devnet__node_ignores_terminate__killed_after_timeout(tmp_path):
    fake = tmp_path / "anvil"
    fake.write_text(FAKE_ANVIL.format(python=sys.executable))
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    d = Devnet(anvil=fake, stop_timeout=0.5).start()
    pid = d.pid
    t0 = time.monotonic()
    d.stop()
    assert time.monotonic() - t0 >= 0.5  # it waited for terminate first
    assert not alive(pid)


def test_devnet__block_time__mines_without_transactions():
    with Devnet(block_time=0.5) as d:
        time.sleep(1.6)
        assert int(d.rpc("eth_blockNumber"), 16) >= 2


def test_devnet__chain_id_out_of_range__refused():
    with pytest.raises(DevnetError, match="chain id out of range"):
        Devnet(chain_id=0)


def test_find_anvil__project_node_modules__platform_binary():
    path = find_anvil(ROOT)
    assert path.parent.parent.parent.name == "@foundry-rs"
    assert path.is_file() and os.access(path, os.X_OK)


def test_find_anvil__only_npm_bin_shim__found(tmp_path):
    shim = tmp_path / "node_modules" / ".bin" / "anvil"
    shim.parent.mkdir(parents=True)
    shim.write_text("#!/bin/sh\n")
    shim.chmod(0o755)
    assert find_anvil(tmp_path) == shim


def test_find_anvil__missing__error_says_make_setup(tmp_path):
    with pytest.raises(AnvilNotFoundError, match="run `make setup`"):
        find_anvil(tmp_path)
    with pytest.raises(AnvilNotFoundError, match="run `make setup`"):
        Devnet(project_root=tmp_path).start()
