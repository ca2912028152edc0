"""Real oracle processes over a private anvil: configs, start/stop/kill by PID, logs, waits."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
import yaml

from pactbond import jobfields
from pactbond.devnet import free_port
from pactbond.jobfields import JobFields
from pactbond.oracle.spec import content_hash

ROOT = Path(__file__).resolve().parents[2]


def wait_for(pred: Callable[[], Any], timeout: float = 30.0, every: float = 0.1,
             what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        got = pred()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(every)


def write_doc(directory: Path, doc: Any) -> bytes:
    """Write a JSON document named by its hash; returns the hash."""
    directory.mkdir(parents=True, exist_ok=True)
    data = json.dumps(doc, indent=1).encode()
    h = content_hash(data)
    (directory / f"0x{h.hex()}.json").write_bytes(data)
    return h


@dataclass
class OracleProc:
    """One `pactbond oracle run` process."""

    name: str
    workdir: Path
    config: dict[str, Any]
    env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None
    api: str = ""
    member: str = ""

    @property
    def config_path(self) -> Path:
        return self.workdir / f"{self.name}.yaml"

    @property
    def log_path(self) -> Path:
        return self.workdir / f"{self.name}.log"

    def start(self, wait: bool = True, kill_at: str | None = None,
              extra_env: dict[str, str] | None = None) -> OracleProc:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(yaml.safe_dump(self.config))
        env = {k: v for k, v in os.environ.items() if not k.startswith("PACTBOND_")}
        env.update(self.env)
        env.update(extra_env or {})
        if kill_at:
            env["PACTBOND_TEST_KILL_AT"] = kill_at
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "pactbond", "oracle", "run", "--config",
             str(self.config_path)],
            stdout=subprocess.PIPE, stderr=log, env=env, cwd=self.workdir,
            start_new_session=True,
        )
        log.close()
        if wait:
            assert self.proc.stdout is not None
            line = self.proc.stdout.readline()
            if not line:
                self.proc.wait(5)
                raise AssertionError(f"{self.name} exited {self.proc.returncode}: "
                                     f"{self.log_text()[-2000:]}")
            doc = json.loads(line)
            self.api, self.member = doc["api"], doc["member"]
        return self

    def log_text(self) -> str:
        return self.log_path.read_text() if self.log_path.exists() else ""

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def wait_exit(self, timeout: float = 30.0) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout)

    def terminate(self, timeout: float = 15.0) -> tuple[int, float]:
        """SIGTERM; returns (exit code, seconds to exit)."""
        assert self.proc is not None
        t0 = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout)
        return code, time.monotonic() - t0

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            try:
                self.terminate(12)
            except subprocess.TimeoutExpired:
                self.kill()
        if self.proc is not None and self.proc.stdout is not None:
            self.proc.stdout.close()

    def get(self, path: str, **kw: Any) -> requests.Response:
        return requests.get(self.api + path, timeout=5, **kw)


def oracle_config(rpc_url: str, manifest: Path, committees: list[int], key_env: str,
                  db: Path, port: int, peers: dict[str, str], docs: Path,
                  **over: Any) -> dict[str, Any]:
    cfg: dict[str, Any] = {
        "rpc_url": rpc_url, "manifest": str(manifest), "committees": committees,
        "key_env": key_env, "db": str(db), "http": {"host": "127.0.0.1", "port": port},
        "peers": peers, "documents": [str(docs)], "confirmations": 1,
        "poll_interval": 0.1, "margin": 30, "log_level": "INFO", "bump_after_blocks": 20,
    }
    cfg.update(over)
    return cfg


def ports(n: int) -> list[int]:
    out: list[int] = []
    while len(out) < n:
        p = free_port()
        if p not in out:
            out.append(p)
    return out


def track_fields(pb: Any, receipts: list[Any],
                 fields: dict[int, JobFields] | None = None) -> dict[int, JobFields]:
    """Job fields folded from the job events of `receipts` (in order) into `fields`: calls
    sent raw and in bulk pass each job's current fields (ADR 011) without a read per job."""
    out = {} if fields is None else fields
    for r in receipts:
        logs = [(ev["logIndex"], name, ev["args"]) for name in jobfields.EVENTS
                for ev in pb._events(r, name)]
        for _, name, args in sorted(logs, key=lambda x: x[0]):
            jid = int(args["job_id"])
            f = jobfields.apply(out.get(jid), name, args)
            if f is not None:
                out[jid] = f
    return out
