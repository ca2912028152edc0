"""The CLI's fixtures: tests.client's private anvil with pactbond deployed and its `world`
(evaluators staked deeper, so the many jobs of one module never run out of unreserved stake),
the manifest saved to a file, anvil's public test keys in environment variables, and `cli`: one
in-process run of `pactbond ARGV` in a fresh working directory, with its exit code and output."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pactbond.cli import main
from pactbond.devnet import dev_account
from pactbond.wallets import write_keystore
from tests.client.conftest import E18, World, devnet, make_world, manifest, mock_erc20_artifact

__all__ = ["devnet", "manifest", "mock_erc20_artifact"]  # tests.client.conftest's fixtures

# roles by devnet account index (tests.client.conftest.World): the committee admin creates
# committees, evaluators 4-6 form committee `cid`, appeal evaluators 7-9 committee `aid`
OWNER, ADMIN, BUYER, AGENT, KEEPER, SPARE = 0, 1, 2, 3, 11, 13
EVALS, APPEAL = (4, 5, 6), (7, 8, 9)
KEY_ENV = "PB_TEST_KEY_{}"
# `stake deposit` without AMOUNT: click's message as main() prints it now (str), and as it would
# with click's format_message (a change proposed for pactbond.cli.main)
MISSING_AMOUNT = {f"pactbond: {m} (see `pactbond stake deposit --help`)"
                  for m in ("Missing parameter: amount", "Missing argument 'AMOUNT'.")}


def key(i: int) -> list[str]:
    """`--key-env` options for devnet account i (its anvil test key is in the environment)."""
    return ["--key-env", KEY_ENV.format(i)]


def addr(i: int) -> str:
    return str(dev_account(i).address)


@dataclass
class Result:
    code: int
    out: str
    err: str

    @property
    def json(self) -> Any:
        return json.loads(self.out)

    @property
    def line(self) -> str:
        """The error line on stderr after a confirmation prompt (the answer, read from a pipe,
        is not echoed: the line goes on after the prompt)."""
        lines = self.err.splitlines()
        assert lines, f"nothing on stderr (stdout: {self.out!r})"
        return lines[-1].rpartition("[y/N]:")[2]


def error_line(r: Result) -> str:
    """stderr must be exactly one line; returns it."""
    assert r.err.count("\n") == 1 and r.err.endswith("\n"), f"not one line: {r.err!r}"
    return r.err.rstrip("\n")


class Cli:
    """Runs `pactbond ARGV` in-process against the module's deployment."""

    def __init__(self, capsys: Any, monkeypatch: Any, conn: list[str]) -> None:
        self.capsys = capsys
        self.monkeypatch = monkeypatch
        self.conn = conn

    def __call__(self, *argv: Any, stdin: str | None = None, conn: bool = True) -> Result:
        args = [str(a) for a in argv] + (self.conn if conn else [])
        if stdin is not None:
            self.monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
        self.capsys.readouterr()
        try:
            rv = main(args)
            code = 0 if rv is None else int(rv)
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        out, err = self.capsys.readouterr()
        assert "Traceback" not in out + err, out + err
        return Result(code, out, err)


@pytest.fixture(scope="module")
def world(devnet, manifest) -> World:
    return make_world(devnet, manifest, stake=2_000 * E18)


KEYSTORE_PASSWORD = "pw-for-tests"


@pytest.fixture(scope="module")
def keystore_source(tmp_path_factory) -> Path:
    """SPARE's key in a keystore written once per module (scrypt is slow on purpose)."""
    return write_keystore(tmp_path_factory.mktemp("keystore") / "ks.json",
                          bytes(dev_account(SPARE).key), KEYSTORE_PASSWORD)


@pytest.fixture
def keystore(tmp_path, keystore_source) -> Path:
    """A copy of it (mode 0600) in the test's working directory."""
    p = tmp_path / "ks.json"
    fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(keystore_source.read_bytes())
    return p


@pytest.fixture(scope="module")
def manifest_path(manifest, tmp_path_factory) -> Path:
    return manifest.save(tmp_path_factory.mktemp("manifest") / "manifest.json")


@pytest.fixture
def cli(capsys, monkeypatch, tmp_path, devnet, manifest_path) -> Cli:
    """A fresh working directory (no .pactbond/ state), the test keys in the environment, no
    PACTBOND_* connection variables, and the module's node and manifest on every command."""
    monkeypatch.chdir(tmp_path)
    for name in ("PACTBOND_RPC_URL", "PACTBOND_MANIFEST"):
        monkeypatch.delenv(name, raising=False)
    for i in range(14):
        monkeypatch.setenv(KEY_ENV.format(i), "0x" + bytes(dev_account(i).key).hex())
    return Cli(capsys, monkeypatch, ["--rpc-url", devnet.url, "--manifest", str(manifest_path)])


def run_process(*argv: str, cwd: Path, timeout: float = 60,
                env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`python -m pactbond ARGV` as a real process."""
    return subprocess.run([sys.executable, "-m", "pactbond", *argv], cwd=cwd,
                          env={**os.environ, **(env or {})},
                          capture_output=True, text=True, timeout=timeout, check=False)
