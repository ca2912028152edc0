"""The pinned toolchain: vyper 0.4.3, fresh shipped artifacts, EIP-170, ape compiling offline."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
ARTIFACTS = ROOT / "src" / "pactbond" / "artifacts"
DEPLOYABLE = ["PactRegistry", "PactEscrow", "PactEscrowAppeals", "PactEscrowBatch"]
EIP170 = 24_576
# any HTTP(S) request fails at once: the compile must not need the network
OFFLINE = {"HTTP_PROXY": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9",
           "http_proxy": "http://127.0.0.1:9", "https_proxy": "http://127.0.0.1:9",
           "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"}


@pytest.fixture(scope="module")
def ape_compile(tmp_path_factory):
    """`ape compile` in a temporary copy of contracts/ + ape-config.yaml, started at once so it
    runs beside the artifact check; the test waits for it."""
    proj = tmp_path_factory.mktemp("ape-project")
    shutil.copytree(ROOT / "contracts", proj / "contracts")
    shutil.copy(ROOT / "ape-config.yaml", proj / "ape-config.yaml")
    env = {**os.environ, **OFFLINE, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    proc = subprocess.Popen([str(BIN / "ape"), "compile"], cwd=proj, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    yield proj, proc
    if proc.poll() is None:
        proc.kill()
        proc.wait()


# `make test` runs `scripts/build_artifacts.py --check` before the suite (the compiler
# version, EIP-170 and the facet's storage layout are asserted there), so it is not repeated here.


def test_vyper__version__pinned_0_4_3():
    res = subprocess.run([str(BIN / "vyper"), "--version"], capture_output=True, text=True,
                         check=True)
    assert res.stdout.strip().split("+")[0] == "0.4.3"
    build = json.loads((ARTIFACTS / "build.json").read_text())
    assert build["vyper"] == "0.4.3" and build["evm_version"] == "prague"


@pytest.mark.parametrize("name", DEPLOYABLE)
def test_artifact__runtime_size__within_eip170(name):
    art = json.loads((ARTIFACTS / f"{name}.json").read_text())
    assert 0 < art["runtimeSize"] <= EIP170
    assert art["abi"] and art["bytecode"].startswith("0x")


def test_artifacts__package_resources__load_via_importlib():
    import importlib.resources

    files = importlib.resources.files("pactbond.artifacts")
    for name in DEPLOYABLE:
        assert json.loads(files.joinpath(f"{name}.json").read_text())["contractName"] == name


def test_ape_compile__offline_copy__succeeds_with_the_artifacts_bytecode(ape_compile):
    proj, proc = ape_compile
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out
    manifest = json.loads((proj / ".build" / "__local__.json").read_text())
    types = manifest["contractTypes"]
    for name in DEPLOYABLE:
        art = json.loads((ARTIFACTS / f"{name}.json").read_text())
        # ape-vyper builds exactly what the package ships (same compiler, settings, sources)
        assert types[name]["deploymentBytecode"]["bytecode"] == art["bytecode"], name
