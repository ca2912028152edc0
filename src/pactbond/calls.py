"""Contract calls encoded and decoded from a pre-indexed ABI.

web3's contract objects search and re-validate the whole ABI on every call (the escrow's merged
ABI has ~70 entries and a 28-field struct), which costs more CPU than the node's own work on a
local chain. `LeanContract` indexes each function once by (name, argument count) and encodes
with eth-abi directly; results come back as web3 returns them (addresses checksummed, one
output unwrapped).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from eth_abi.abi import decode, encode
from eth_typing import HexStr
from eth_utils.abi import collapse_if_tuple, function_abi_to_4byte_selector
from eth_utils.address import to_checksum_address
from web3 import HTTPProvider, Web3
from web3._utils.error_formatters_utils import raise_contract_logic_error_on_revert
from web3.exceptions import Web3RPCError
from web3.types import BlockIdentifier, RPCEndpoint, TxParams


@dataclass(frozen=True)
class Call:
    """An encoded call of one contract function."""

    to: str
    data: bytes
    name: str


def _norm(entry: dict[str, Any], value: Any) -> Any:
    t = str(entry["type"])
    if t.endswith("]"):
        inner = {**entry, "type": t[: t.rindex("[")]}
        return [_norm(inner, v) for v in value]
    if t == "tuple":
        return tuple(_norm(c, v) for c, v in zip(entry["components"], value, strict=True))
    if t == "address":
        return to_checksum_address(value)
    return value


@dataclass(frozen=True)
class _Fn:
    selector: bytes
    inputs: list[str]
    outputs: list[dict[str, Any]]
    output_types: list[str]


class LeanContract:
    """A contract address with its functions indexed by (name, number of arguments)."""

    def __init__(self, w3: Web3, address: str, abi: Sequence[dict[str, Any]]) -> None:
        self.w3 = w3
        self.address = to_checksum_address(address)
        self._fns: dict[tuple[str, int], _Fn] = {}
        for e in abi:
            if e.get("type") != "function":
                continue
            outputs = list(e.get("outputs", []))
            self._fns[(e["name"], len(e["inputs"]))] = _Fn(
                selector=function_abi_to_4byte_selector(e),  # type: ignore[arg-type]
                inputs=[collapse_if_tuple(i) for i in e["inputs"]],
                outputs=outputs,
                output_types=[collapse_if_tuple(o) for o in outputs],
            )

    def _fn(self, name: str, nargs: int) -> _Fn:
        try:
            return self._fns[(name, nargs)]
        except KeyError:
            raise AttributeError(f"no function {name} with {nargs} arguments") from None

    def call(self, name: str, *args: Any) -> Call:
        """The encoded call (for `Pactbond.transact`)."""
        fn = self._fn(name, len(args))
        return Call(self.address, fn.selector + encode(fn.inputs, args), name)

    def read(self, name: str, *args: Any, block: BlockIdentifier = "latest") -> Any:
        """eth_call a view function; a revert raises web3's ContractLogicError."""
        fn = self._fn(name, len(args))
        data = "0x" + (fn.selector + encode(fn.inputs, args)).hex()
        at = block if isinstance(block, str) else hex(int(block))
        if not isinstance(self.w3.provider, HTTPProvider):
            # other providers (web3's in-process tester) need web3's request formatting and
            # its default sender
            params: TxParams = {"to": to_checksum_address(self.address), "data": HexStr(data)}
            raw_out = bytes(self.w3.eth.call(params, block))
            resp: Any = {"result": "0x" + raw_out.hex()}
        else:
            # straight to the provider: web3's request pipeline costs more CPU than the call
            resp = self.w3.provider.make_request(
                RPCEndpoint("eth_call"), [{"to": self.address, "data": data}, at]
            )
        if "error" in resp:
            raise_contract_logic_error_on_revert(resp)  # a revert: ContractLogicError
            raise Web3RPCError(f"eth_call {name}: {resp['error']}")
        raw = bytes.fromhex(str(resp["result"])[2:])
        out = [_norm(o, v) for o, v in
               zip(fn.outputs, decode(fn.output_types, raw), strict=True)]
        return out[0] if len(out) == 1 else tuple(out)
