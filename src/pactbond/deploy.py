"""Deploy pactbond from the shipped artifacts with web3, and its deployment manifest.

Order: PactRegistry(window_max, min_rotation_delay) -> PactEscrowBatch(registry, cooldown) ->
PactEscrowAppeals(registry, cooldown, batch) -> PactEscrow(registry, evaluator_cooldown,
appeals) -> registry.set_escrow(escrow), then optionally registry.set_guardian(guardian).
The manifest records the chain, the deployment block and, per contract, the address and the
keccak of its deployed code (immutables included), which clients and oracles check before
they trust an address.
"""

from __future__ import annotations

import importlib.resources
import json
from functools import cache
from pathlib import Path
from typing import Annotated, Any

from eth_account.signers.local import LocalAccount
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from web3 import Web3
from web3.contract import Contract
from web3.types import TxParams, TxReceipt

from pactbond.errors import PactbondError
from pactbond.models import _address

HOUR = 3600
DAY = 24 * HOUR
VYPER_VERSION = "0.4.3"
EVM_VERSION = "prague"
CONTRACTS = ("PactRegistry", "PactEscrow", "PactEscrowAppeals", "PactEscrowBatch")
DEPLOYMENTS_DIR = Path("deployments")

Address = Annotated[str, Field(min_length=42, max_length=42)]
HexHash = Annotated[str, Field(pattern=r"^0x[0-9a-f]{64}$")]


class DeployError(PactbondError, RuntimeError):
    """A deployment transaction failed or the chain is not what the deployer expects."""


class DeployConstants(BaseModel):
    """The deployment constants (immutable once deployed)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    window_max: Annotated[int, Field(gt=0, lt=2**64)] = 7 * DAY
    min_rotation_delay: Annotated[int, Field(ge=0, lt=2**64)] = HOUR
    evaluator_cooldown: Annotated[int, Field(gt=0, lt=2**40)] = 36 * DAY

    @model_validator(mode="after")
    def _cooldown_covers_windows(self) -> DeployConstants:
        # a job's accept + work + evaluation + challenge + appeal windows are each <= window_max
        if self.evaluator_cooldown <= 5 * self.window_max:
            raise ValueError(
                f"evaluator_cooldown {self.evaluator_cooldown} must exceed 5 x window_max "
                f"({5 * self.window_max})"
            )
        return self


class ContractRecord(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    address: Address
    code_hash: HexHash

    @field_validator("address", mode="before")
    @classmethod
    def _addr(cls, v: Any) -> str:
        return _address(v)


class Manifest(BaseModel):
    """What a deployment wrote to deployments/<network>.json."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    chain_id: Annotated[int, Field(gt=0)]
    network: str
    block: Annotated[int, Field(ge=0)]
    deployer: Address
    contracts: dict[str, ContractRecord]
    constants: DeployConstants
    vyper: str = VYPER_VERSION
    evm_version: str = EVM_VERSION

    @field_validator("deployer", mode="before")
    @classmethod
    def _addr(cls, v: Any) -> str:
        return _address(v)

    @field_validator("contracts")
    @classmethod
    def _all_contracts(cls, v: dict[str, ContractRecord]) -> dict[str, ContractRecord]:
        missing = [c for c in CONTRACTS if c not in v]
        if missing:
            raise ValueError(f"manifest lacks {missing}")
        return v

    def address(self, name: str) -> str:
        return self.contracts[name].address

    def save(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.model_dump(mode="json"), indent=2) + "\n")
        return path

    @classmethod
    def load(cls, path: Path) -> Manifest:
        return cls.model_validate_json(path.read_text())

    @classmethod
    def path_for(cls, network: str, directory: Path = DEPLOYMENTS_DIR) -> Path:
        return directory / f"{network}.json"


# -- artifacts ------------------------------------------------------------------------------


@cache
def artifact(name: str) -> dict[str, Any]:
    """A shipped artifact (abi, bytecode, runtimeSize, runtimeCodeHash) of pactbond.artifacts."""
    if name not in CONTRACTS:
        raise KeyError(f"no artifact {name!r}; known: {CONTRACTS}")
    text = importlib.resources.files("pactbond.artifacts").joinpath(f"{name}.json").read_text()
    data: dict[str, Any] = json.loads(text)
    return data


def abi(name: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = artifact(name)["abi"]
    return out


def contract_at(w3: Web3, name: str, address: str) -> Contract:
    """`name`'s ABI bound at `address` (for the facet: the escrow's address)."""
    return w3.eth.contract(address=to_checksum_address(address), abi=abi(name))


def code_hash(w3: Web3, address: str, block: int | str = "latest") -> str:
    """keccak of the deployed code (includes immutables), 0x-hex."""
    code = bytes(w3.eth.get_code(to_checksum_address(address), block))  # type: ignore[arg-type]
    if not code:
        raise DeployError(f"no code at {address}")
    return "0x" + keccak(code).hex()


# -- transactions ---------------------------------------------------------------------------


class _Sender:
    """Signs and sends from one LocalAccount with a locally tracked nonce."""

    def __init__(self, w3: Web3, account: LocalAccount) -> None:
        self.w3 = w3
        self.account = account
        self.nonce: int = w3.eth.get_transaction_count(account.address, "pending")
        self.chain_id = w3.eth.chain_id

    def send(self, tx: TxParams, what: str, timeout: float) -> TxReceipt:
        params: dict[str, Any] = {**tx, "nonce": self.nonce, "chainId": self.chain_id}
        signed = self.account.sign_transaction(params)
        h = self.w3.eth.send_raw_transaction(signed.raw_transaction)
        self.nonce += 1
        receipt = self.w3.eth.wait_for_transaction_receipt(h, timeout=timeout)
        if receipt["status"] != 1:
            raise DeployError(f"{what} reverted (tx {h.hex()})")
        return receipt

    def deploy(self, name: str, args: list[Any], timeout: float) -> tuple[str, TxReceipt]:
        a = artifact(name)
        factory = self.w3.eth.contract(abi=a["abi"], bytecode=a["bytecode"])
        tx = factory.constructor(*args).build_transaction(
            {"from": self.account.address, "nonce": self.nonce}
        )
        receipt = self.send(tx, f"deploying {name}", timeout)
        address = receipt["contractAddress"]
        if address is None:
            raise DeployError(f"deploying {name}: no contract address in the receipt")
        return to_checksum_address(address), receipt

    def call(self, fn: Any, what: str, timeout: float) -> TxReceipt:
        tx: TxParams = fn.build_transaction({"from": self.account.address, "nonce": self.nonce})
        return self.send(tx, what, timeout)


def deploy(
    w3: Web3,
    account: LocalAccount,
    *,
    constants: DeployConstants | None = None,
    guardian: str | None = None,
    network: str = "local",
    out_dir: Path | None = DEPLOYMENTS_DIR,
    expected_chain_id: int | None = None,
    timeout: float = 120.0,
) -> Manifest:
    """Deploy the four contracts from `account`, bind them, and return the manifest.

    Writes it to `out_dir`/<network>.json unless `out_dir` is None. `expected_chain_id`, if
    given, must match the node's, or nothing is sent.
    """
    constants = constants or DeployConstants()
    chain_id = w3.eth.chain_id
    if expected_chain_id is not None and chain_id != expected_chain_id:
        raise DeployError(f"node reports chain id {chain_id}, expected {expected_chain_id}")
    s = _Sender(w3, account)
    registry, r0 = s.deploy(
        "PactRegistry", [constants.window_max, constants.min_rotation_delay], timeout
    )
    batch, _ = s.deploy("PactEscrowBatch", [registry, constants.evaluator_cooldown], timeout)
    appeals, _ = s.deploy(
        "PactEscrowAppeals", [registry, constants.evaluator_cooldown, batch], timeout
    )
    escrow, _ = s.deploy(
        "PactEscrow", [registry, constants.evaluator_cooldown, appeals], timeout
    )
    reg = contract_at(w3, "PactRegistry", registry)
    last = s.call(reg.functions.set_escrow(escrow), "registry.set_escrow", timeout)
    if guardian is not None:
        last = s.call(
            reg.functions.set_guardian(to_checksum_address(guardian)),
            "registry.set_guardian", timeout,
        )
    at = last["blockNumber"]
    addresses = {"PactRegistry": registry, "PactEscrow": escrow, "PactEscrowAppeals": appeals,
                 "PactEscrowBatch": batch}
    manifest = Manifest(
        chain_id=chain_id,
        network=network,
        block=r0["blockNumber"],
        deployer=account.address,
        contracts={
            n: ContractRecord(address=a, code_hash=code_hash(w3, a, at))
            for n, a in addresses.items()
        },
        constants=constants,
    )
    if out_dir is not None:
        manifest.save(Manifest.path_for(network, out_dir))
    return manifest


def verify(w3: Web3, manifest: Manifest) -> None:
    """Raise DeployError unless the node's chain id and every contract's code match."""
    if w3.eth.chain_id != manifest.chain_id:
        raise DeployError(
            f"node reports chain id {w3.eth.chain_id}, manifest says {manifest.chain_id}"
        )
    for name, rec in manifest.contracts.items():
        got = code_hash(w3, rec.address)
        if got != rec.code_hash:
            raise DeployError(f"{name} at {rec.address}: code hash {got} != {rec.code_hash}")
