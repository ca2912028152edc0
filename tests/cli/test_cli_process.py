"""`python -m pactbond` as real processes: exit codes and one-line errors reach the terminal
without a traceback; `devnet up` / `status` / `down` for real in a scratch directory (its anvil
stopped by PID, gone afterwards); `deploy` through ape fails cleanly on an unknown network."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from pactbond import Pactbond
from pactbond.devnet import chain_id_at
from tests.cli.conftest import MISSING_AMOUNT, Cli, addr, run_process
from tests.client.conftest import E18, ROOT

DEV = 9  # `devnet up` funds accounts 0-9


def _gone(pid: int) -> bool:
    """No such process, or only a zombie waiting for its (re-)parent to reap it."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rpartition(")")[2].split()[0] == "Z"


def _is_anvil(pid: int) -> bool:
    try:
        return b"anvil" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def test_exit_codes__real_processes(tmp_path):
    """Usage errors exit 2, refusals exit 1, each with one line on stderr and no traceback."""
    cases: dict[str, tuple[list[str], int, set[str]]] = {
        "unknown command": (["jobs"], 2, {"pactbond: No such command 'jobs'. "
                                          "(see `pactbond --help`)"}),
        "missing argument": (["stake", "deposit"], 2, MISSING_AMOUNT),
        "bad address": (["job", "open", "1", "--agent", "0x123", "--value", "1", "--key-env",
                         "PB_NONE"], 1, {"pactbond: agent: not an address: '0x123' (expected "
                                         "0x followed by 40 hex digits)"}),
        "unreadable file": (["pact", "create", "nope.yaml", "--key-env", "PB_NONE"], 1,
                            {"pactbond: cannot read nope.yaml: No such file or directory"}),
    }
    env = {k: v for k, v in os.environ.items() if not k.startswith("PACTBOND_")}
    # started together: each process pays the interpreter's start-up once, in parallel
    procs = {name: subprocess.Popen([sys.executable, "-m", "pactbond", *argv], cwd=tmp_path,
                                    env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    text=True)
             for name, (argv, _, _) in cases.items()}
    for name, p in procs.items():
        out, err = p.communicate(timeout=60)
        _, code, lines = cases[name]
        assert (name, p.returncode, err.endswith("\n"), err.rstrip("\n") in lines) \
            == (name, code, True, True), err
        assert "Traceback" not in out + err


def test_devnet_up_status_down__real(tmp_path, capsys, monkeypatch):
    """`up` and `down` as real processes (the chain outlives `up`; `down` stops it by PID from
    another process); the rest in-process in the same directory."""
    monkeypatch.chdir(tmp_path)
    for name in ("PACTBOND_RPC_URL", "PACTBOND_MANIFEST"):
        monkeypatch.delenv(name, raising=False)
    cli = Cli(capsys, monkeypatch, [])
    res = cli("devnet", "status")
    assert (res.code, res.out) == (1, "devnet: down\n")
    res = cli("devnet", "down")
    assert (res.code, res.err) == (
        1, "pactbond: no devnet is up (nothing in .pactbond/devnet.json)\n")

    r = run_process("devnet", "up", "--json", cwd=tmp_path)
    state_file = tmp_path / ".pactbond" / "devnet.json"
    pid = json.loads(state_file.read_text())["pid"] if state_file.exists() else None
    try:
        assert (r.returncode, "Traceback" in r.stdout + r.stderr) == (0, False), r.stderr
        up = json.loads(r.stdout)
        assert up["pid"] == pid and _is_anvil(pid)
        assert up["manifest"] == str(tmp_path / "deployments" / "devnet.json")
        assert chain_id_at(up["url"]) == up["chain_id"]
        pb = Pactbond.connect(up["url"], Path(up["manifest"]))  # verifies chain and code
        assert set(up["contracts"]) == set(pb.manifest.contracts)

        res = cli("devnet", "up")  # a second `up` reuses it
        assert (res.code, res.out) == (
            0, f"devnet already up: {up['url']} (chain {up['chain_id']}, pid {pid})\n")
        res = cli("devnet", "status", "--json")
        assert (res.code, res.json["up"], res.json["pid"]) == (0, True, pid)
        assert res.json["block"] >= pb.manifest.block
        res = cli("devnet", "status")
        assert res.out.startswith(f"devnet: up {up['url']} chain {up['chain_id']} pid {pid} ")

        # --dev-account and the connection come from the devnet's state file
        res = cli("stake", "deposit", "0.5", "--dev-account", DEV, "--yes")
        assert (res.code, res.out) == (0, "staked 0.5 ETH (agent)\n"), res.err
        assert pb.agent_stake(addr(DEV)).free == E18 // 2
        res = cli("stake", "show", "--dev-account", DEV, "--json")
        assert (res.code, res.json["agent"]["free"]) == (0, E18 // 2)

        r = run_process("devnet", "down", cwd=tmp_path)
        assert (r.returncode, r.stdout, r.stderr) == (0, f"devnet down (pid {pid})\n", "")
        assert _gone(pid) and chain_id_at(up["url"]) is None
        assert not state_file.exists()
        res = cli("devnet", "status")
        assert (res.code, res.out) == (1, "devnet: down\n")
    finally:
        if pid is not None and not _gone(pid) and _is_anvil(pid):
            os.kill(pid, signal.SIGKILL)


def test_deploy__unknown_ape_network__fails_cleanly():
    """`pactbond deploy` hands over to `ape run deploy` (from the source tree); a network ape
    does not know ends non-zero, with ape's usage message and no traceback."""
    pytest.importorskip("ape")
    try:
        r = run_process("deploy", "--network", "ethereum:pactbond-no-such-net:node", cwd=ROOT,
                        timeout=20)
    except subprocess.TimeoutExpired:
        pytest.skip("ape took more than 20 s to start")
    out = r.stdout + r.stderr
    assert r.returncode != 0 and "Traceback" not in out
    assert "pactbond-no-such-net" in out


def test_devnet_state_pointing_at_another_process__never_killed(tmp_path, capsys, monkeypatch):
    """A stale state file whose PID now belongs to someone else (PID reuse) and whose URL no
    node answers: `status` says down and `down` does not kill that process."""
    monkeypatch.chdir(tmp_path)
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (tmp_path / ".pactbond").mkdir()
        (tmp_path / ".pactbond" / "devnet.json").write_text(json.dumps(
            {"pid": other.pid, "url": "http://127.0.0.1:9", "chain_id": 123456789}))
        cli = Cli(capsys, monkeypatch, [])
        res = cli("devnet", "status")
        assert (res.code, res.out.split(" ")[:2]) == (1, ["devnet:", "down"])
        res = cli("devnet", "down")
        assert res.code == 0 and other.poll() is None  # alive: not ours to stop
    finally:
        other.kill()
        other.wait()
