"""`pactbond demo` interrupted with Ctrl-C still stops everything it started."""

from __future__ import annotations

import importlib
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest


def _cmdlines() -> dict[int, str]:
    out = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                raw = (d / "cmdline").read_bytes()
                state = (d / "stat").read_text().split()[2]
            except OSError:
                continue
            if state != "Z":
                out[int(d.name)] = raw.replace(b"\0", b" ").decode(errors="replace")
    return out


def test_ctrl_c_during_the_demo_stops_the_chain_and_every_oracle(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "pactbond", "demo"], cwd=tmp_path, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert proc.stdout is not None
    port = None
    seen: list[str] = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        seen.append(line)
        m = re.search(r"local chain http://127\.0\.0\.1:(\d+)", line)
        if m:
            port = m.group(1)
        if "oracles 4, 5, 6 serve committee" in line:  # six oracle processes are up
            break
    assert port, "".join(seen)
    ours = {pid: c for pid, c in _cmdlines().items()
            if f"--port {port}" in c or "pactbond-demo-" in c}
    assert any("anvil" in c for c in ours.values())
    assert sum("oracle run" in c for c in ours.values()) == 6
    proc.send_signal(signal.SIGINT)
    rest = proc.communicate(timeout=60)[0]
    assert proc.returncode != 0
    assert "Traceback" not in rest
    time.sleep(0.5)
    left = {pid: c for pid, c in _cmdlines().items() if pid in ours}
    assert left == {}, f"still running after Ctrl-C: {left}"


def test_oracle_failing_to_start__those_already_started_are_in_the_callers_list(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """start_oracles hands each process to the caller as it starts: when a later one fails, the
    caller's clean-up stops the earlier ones (they used to run on, holding their ports)."""
    demo = importlib.import_module("pactbond.cli.demo")  # the package's `demo` is the command
    real = subprocess.Popen
    started: list[subprocess.Popen[bytes]] = []

    def popen(argv: list[str], **kw: object) -> subprocess.Popen[bytes]:
        if started:
            raise OSError("no more processes")
        p = real([sys.executable, "-c", "import time; time.sleep(60)"],
                 stdout=subprocess.PIPE, start_new_session=True)
        started.append(p)
        return p

    monkeypatch.setattr(subprocess, "Popen", popen)
    out: list[Any] = []
    with pytest.raises(OSError, match="no more processes"):
        demo.start_oracles(tmp_path, "http://127.0.0.1:1", tmp_path / "m.json", tmp_path,
                           [([4, 5], [1])], out)
    assert [o.proc for o in out] == started and started[0].poll() is None
    demo.stop_oracles(out)
    assert started[0].poll() is not None
