"""Compile the contracts and write the artifacts the package ships.

Asserts the compiler version (0.4.3), the EVM version (prague), EIP-170 (runtime code at most
24,576 bytes) and that PactEscrow and its two delegatecall facets have identical storage layouts.
Writes src/pactbond/artifacts/<Name>.json (abi, bytecode, runtime code hash, size) and
build.json (compiler, evm version, code hashes). `--check` fails if the committed artifacts
differ from a fresh build.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from eth_utils import keccak

ROOT = Path(__file__).resolve().parents[1]
CONTRACTS = ROOT / "contracts"
OUT = ROOT / "src" / "pactbond" / "artifacts"
VYPER_VERSION = "0.4.3"
EVM_VERSION = "prague"
EIP170 = 24_576
DEPLOYABLE = ["PactRegistry", "PactEscrow", "PactEscrowAppeals", "PactEscrowBatch"]


def vyper(*args: str) -> str:
    exe = Path(sys.executable).with_name("vyper")
    res = subprocess.run(
        [str(exe), "--evm-version", EVM_VERSION, *args],
        cwd=CONTRACTS, capture_output=True, text=True, check=False,
    )
    if res.returncode != 0:
        raise SystemExit(f"vyper {' '.join(args)} failed:\n{res.stderr}")
    return res.stdout


def build() -> dict[str, str]:
    version = vyper("--version").strip().split("+")[0]
    if version != VYPER_VERSION:
        raise SystemExit(f"vyper {version} found; pactbond pins {VYPER_VERSION}")
    files: dict[str, str] = {}
    layouts = {}
    hashes = {}
    for name in DEPLOYABLE:
        out = json.loads(vyper("-f", "combined_json", f"{name}.vy"))
        c = out[f"{name}.vy"]
        runtime = bytes.fromhex(c["bytecode_runtime"][2:])
        if len(runtime) > EIP170:
            raise SystemExit(f"{name}: runtime code {len(runtime)} bytes > EIP-170 limit {EIP170}")
        layouts[name] = c["layout"]
        hashes[name] = "0x" + keccak(runtime).hex()
        files[f"{name}.json"] = json.dumps(
            {
                "contractName": name,
                "abi": c["abi"],
                "bytecode": c["bytecode"],
                "runtimeCodeHash": hashes[name],
                "runtimeSize": len(runtime),
            },
            indent=1, sort_keys=True,
        ) + "\n"
    esc = layouts["PactEscrow"]
    for facet in ("PactEscrowAppeals", "PactEscrowBatch"):
        for key in ("storage_layout", "transient_storage_layout"):
            if esc.get(key) != layouts[facet].get(key):
                raise SystemExit(f"PactEscrow and {facet} differ in {key}")
    files["build.json"] = json.dumps(
        {"vyper": VYPER_VERSION, "evm_version": EVM_VERSION, "runtime_code_hashes": hashes},
        indent=1, sort_keys=True,
    ) + "\n"
    return files


def main() -> None:
    files = build()
    if "--check" in sys.argv:
        stale = [n for n, t in files.items()
                 if not (OUT / n).is_file() or (OUT / n).read_text() != t]
        if stale:
            raise SystemExit(f"artifacts out of date: {stale}; run `make build`")
        print("artifacts up to date")
        return
    OUT.mkdir(parents=True, exist_ok=True)
    for n, t in files.items():
        (OUT / n).write_text(t)
    sizes = {n: json.loads(t)["runtimeSize"] for n, t in files.items() if n != "build.json"}
    print("built:", ", ".join(f"{n[:-5]} {s:,} B" for n, s in sizes.items()))


if __name__ == "__main__":
    main()
