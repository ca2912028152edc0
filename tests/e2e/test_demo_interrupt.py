"""`pactbond demo` interrupted with Ctrl-C still stops everything it started."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path


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
