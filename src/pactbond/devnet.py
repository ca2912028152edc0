"""A local anvil devnet: 127.0.0.1, a free port, a unique chain id, the pinned `prague` EVM.

The node binary comes from the project's npm install (`make setup` runs `npm ci`). Before use
the devnet checks that the node answering on its port reports the requested chain id, so
another process's node that holds the port is refused rather than used. It is stopped by its
own PID (terminate, then kill after a timeout), never by name.
"""

from __future__ import annotations

import atexit
import http.client
import json
import os
import platform
import secrets
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from eth_account import Account
from eth_account.signers.local import LocalAccount

from pactbond.errors import PactbondError

HARDFORK = "prague"
HOST = "127.0.0.1"
# anvil's own default mnemonic; passed explicitly so the funded dev accounts are known
DEFAULT_MNEMONIC = "test test test test test test test test test test test junk"
# random chain ids come from here: clear of mainnets, common testnets and anvil's 31337
CHAIN_ID_MIN = 1_000_000
CHAIN_ID_MAX = 2**31 - 1
_ARCH = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}
_PLATFORM = {"linux": "linux", "darwin": "darwin", "win32": "win32"}
_used_chain_ids: set[int] = set()


class DevnetError(PactbondError, RuntimeError):
    """The local node could not be found, started, verified or stopped."""


class AnvilNotFoundError(DevnetError, FileNotFoundError):
    """No anvil binary in the project's node_modules."""


def _search_roots(project_root: Path | None) -> list[Path]:
    if project_root is not None:
        return [project_root]
    here = Path.cwd().resolve()
    # the working directory and its parents, then the source tree this module lives in
    # (src/pactbond/devnet.py -> the repository root)
    roots = [here, *here.parents, Path(__file__).resolve().parents[2]]
    return list(dict.fromkeys(roots))


def anvil_candidates(root: Path) -> list[Path]:
    """Where npm puts anvil under `root`: the platform package's binary, then the .bin shim."""
    arch = _ARCH.get(platform.machine().lower(), platform.machine().lower())
    plat = _PLATFORM.get(sys.platform, sys.platform)
    exe = "anvil.exe" if plat == "win32" else "anvil"
    nm = root / "node_modules"
    return [nm / "@foundry-rs" / f"anvil-{plat}-{arch}" / "bin" / exe, nm / ".bin" / exe]


def find_anvil(project_root: Path | None = None) -> Path:
    """The anvil binary inside the project's node_modules.

    Looks only under `project_root` if given, else under the working directory and its
    parents, then the source tree; raises AnvilNotFoundError naming the paths tried and
    `make setup` if there is none.
    """
    tried: list[Path] = []
    for root in _search_roots(project_root):
        if not (root / "node_modules").is_dir():
            continue
        for path in anvil_candidates(root):
            tried.append(path)
            if path.is_file() and os.access(path, os.X_OK):
                return path
    where = ", ".join(str(p) for p in tried) or "no node_modules directory found"
    raise AnvilNotFoundError(
        f"anvil not found (tried: {where}); run `make setup` (npm ci --ignore-scripts) "
        "in the project root"
    )


def free_port(host: str = HOST) -> int:
    """A port that was free a moment ago (the chain-id check catches a lost race)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def port_in_use(port: int, host: str = HOST) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.2)
        return s.connect_ex((host, port)) == 0


def unique_chain_id() -> int:
    """A random chain id not handed out before in this process."""
    while True:
        cid = CHAIN_ID_MIN + secrets.randbelow(CHAIN_ID_MAX - CHAIN_ID_MIN)
        if cid not in _used_chain_ids:
            _used_chain_ids.add(cid)
            return cid


def rpc(url: str, method: str, params: Sequence[Any] = (), timeout: float = 5.0) -> Any:
    """One JSON-RPC call; raises DevnetError on an RPC error."""
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)})
    req = urllib.request.Request(  # noqa: S310 (the URL is http://127.0.0.1 built here)
        url, data=body.encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310
        out = json.loads(resp.read())
    if "error" in out:
        raise DevnetError(f"{method}: {out['error']}")
    return out["result"]


def chain_id_at(url: str, timeout: float = 1.0) -> int | None:
    """The chain id the node at `url` reports, or None if nothing answers JSON-RPC there."""
    try:
        return int(rpc(url, "eth_chainId", timeout=timeout), 16)
    except (OSError, ValueError, http.client.HTTPException, DevnetError):
        return None


def dev_account(index: int, mnemonic: str = DEFAULT_MNEMONIC) -> LocalAccount:
    """The `index`-th funded account of a devnet started with `mnemonic`."""
    Account.enable_unaudited_hdwallet_features()
    acct: LocalAccount = Account.from_mnemonic(mnemonic, account_path=f"m/44'/60'/0'/0/{index}")
    return acct


class Devnet:
    """One anvil process: start() / stop(), or `with Devnet() as net:`.

    `port=None` picks a free port and `chain_id=None` a random unique chain id. `block_time`
    (seconds) turns on interval mining; without it every transaction is mined at once.
    """

    def __init__(
        self,
        *,
        port: int | None = None,
        chain_id: int | None = None,
        block_time: float | None = None,
        accounts: int = 10,
        balance_eth: int = 10_000,
        mnemonic: str = DEFAULT_MNEMONIC,
        gas_limit: int | None = None,
        anvil: Path | None = None,
        project_root: Path | None = None,
        startup_timeout: float = 15.0,
        stop_timeout: float = 5.0,
        extra_args: Sequence[str] = (),
    ) -> None:
        if chain_id is not None and not 0 < chain_id < 2**63:
            raise DevnetError(f"chain id out of range: {chain_id}")
        self.requested_port = port
        self.chain_id = chain_id if chain_id is not None else unique_chain_id()
        self.block_time = block_time
        self.accounts = accounts
        self.balance_eth = balance_eth
        self.mnemonic = mnemonic
        self.gas_limit = gas_limit
        self.anvil_path = anvil
        self.project_root = project_root
        self.startup_timeout = startup_timeout
        self.stop_timeout = stop_timeout
        self.extra_args = list(extra_args)
        self.port: int = 0
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    # -- properties ------------------------------------------------------------------------

    @property
    def url(self) -> str:
        if not self.port:
            raise DevnetError("devnet not started")
        return f"http://{HOST}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def account(self, index: int = 0) -> LocalAccount:
        """A funded dev account (derived from the devnet's mnemonic)."""
        if not 0 <= index < self.accounts:
            raise DevnetError(f"account index {index} outside 0..{self.accounts - 1}")
        return dev_account(index, self.mnemonic)

    def rpc(self, method: str, params: Sequence[Any] = ()) -> Any:
        return rpc(self.url, method, params)

    # -- lifecycle -------------------------------------------------------------------------

    def command(self, port: int) -> list[str]:
        exe = self.anvil_path or find_anvil(self.project_root)
        cmd = [
            str(exe), "--host", HOST, "--port", str(port), "--chain-id", str(self.chain_id),
            "--hardfork", HARDFORK, "--accounts", str(self.accounts),
            "--balance", str(self.balance_eth), "--mnemonic", self.mnemonic, "--quiet",
        ]
        if self.block_time is not None:
            cmd += ["--block-time", f"{self.block_time:g}"]
        if self.gas_limit is not None:
            cmd += ["--gas-limit", str(self.gas_limit)]
        return cmd + self.extra_args

    def start(self) -> Devnet:
        """Start anvil and return once it answers with the requested chain id."""
        if self._proc is not None:
            raise DevnetError("devnet already started")
        if self.requested_port is not None:
            if port_in_use(self.requested_port):
                self._refuse_foreign(self.requested_port)
            attempts = [self.requested_port]
        else:
            attempts = [free_port() for _ in range(3)]
        last: DevnetError | None = None
        for port in attempts:
            try:
                self._launch(port)
                self._wait_ready()
                atexit.register(self.stop)
                return self
            except _PortLostError as e:  # another process took the port first: next one
                last = e
                self.stop()
            except BaseException:
                self.stop()
                raise
        assert last is not None
        raise last

    def _refuse_foreign(self, port: int) -> None:
        url = f"http://{HOST}:{port}"
        got = chain_id_at(url)
        if got is None:
            raise DevnetError(f"port {port} on {HOST} is in use by another process")
        raise DevnetError(
            f"the node on {url} reports chain id {got}, not {self.chain_id}: another process's "
            "node holds the port; refusing to use it"
        )

    def _launch(self, port: int) -> None:
        self.port = port
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 (closed in stop)
        self._proc = subprocess.Popen(  # noqa: S603 (fixed argv, no shell)
            self.command(port), stdin=subprocess.DEVNULL, stdout=self._log,
            stderr=subprocess.STDOUT, start_new_session=True,
        )

    def _output(self) -> str:
        if self._log is None:
            return ""
        self._log.seek(0)
        return self._log.read()[-2000:].decode(errors="replace").strip()

    def _wait_ready(self) -> None:
        assert self._proc is not None
        deadline = time.monotonic() + self.startup_timeout
        while True:
            exited = self._proc.poll() is not None
            got = chain_id_at(self.url)
            if got is not None:
                if got != self.chain_id:
                    raise DevnetError(
                        f"the node on {self.url} reports chain id {got}, not {self.chain_id}: "
                        "another process's node holds the port; refusing to use it"
                    )
                if exited:  # our anvil died but something answers with our chain id
                    raise DevnetError(f"anvil exited ({self._proc.returncode}) yet "
                                      f"{self.url} answers: refusing it")
                return
            if exited:
                out = self._output()
                if "in use" in out.lower():
                    raise _PortLostError(f"port {self.port} was taken: {out}")
                raise DevnetError(f"anvil exited with code {self._proc.returncode}: {out}")
            if time.monotonic() > deadline:
                raise DevnetError(
                    f"anvil did not answer on {self.url} within {self.startup_timeout:g} s: "
                    f"{self._output()}"
                )
            time.sleep(0.05)

    def stop(self) -> None:
        """Stop the node by its PID: terminate, then kill after `stop_timeout` seconds."""
        proc, self._proc = self._proc, None
        atexit.unregister(self.stop)
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=self.stop_timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=self.stop_timeout)
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> Devnet:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = f"pid {self.pid} on {self.url}" if self.running else "stopped"
        return f"<Devnet chain {self.chain_id}, {state}>"


class _PortLostError(DevnetError):
    """The free port was taken between picking it and anvil binding it."""

