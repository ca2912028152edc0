"""pytest plugin loaded by scripts/coverage.py: attribute traced EVM code to the right .vy lines.

titanoboa's coverage hook (boa.coverage, 0.2.8) has two gaps this plugin closes:

- It maps the program counters of a call through the source map of the Python contract object
  the call was made on, and nested calls through whatever object was last registered at the
  code's address. The tests bind the appeals facet's ABI to the escrow's address
  (`load_partial(...).at(escrow)`), so the escrow's own code, run by `facet.cancel(...)`, would
  be read through the facet's source map: facet lines marked as run that never ran. Here each
  traced frame is resolved by the address whose code ran, and only to a contract object whose
  compiled runtime code is the code at that address.
- It reports every line a source-map node spans. The condition of an `if`, a `for` header and a
  function's entry and exit code map to the whole If / For / FunctionDef node, so evaluating
  `if x:` marked the entire body as run. Here a compound statement is attributed to its header
  line only; its body lines count when their own code runs.
"""

from __future__ import annotations

from typing import Any

import vyper.ast as vy_ast
from boa.environment import Env

# compound statements: their own code (a condition, the loop counter, entry/exit) is the header
COMPOUND = (vy_ast.If, vy_ast.For, vy_ast.FunctionDef, vy_ast.Module)

# canonical address -> the contract object whose compiled runtime code is deployed there
_VERIFIED: dict[bytes, Any] = {}

_original_register = Env.register_contract


class Span:
    """What boa.coverage's tracer reads from the `node` it is handed: a line range."""

    __slots__ = ("end_lineno", "lineno")

    def __init__(self, lineno: int, end_lineno: int):
        self.lineno = lineno
        self.end_lineno = end_lineno


def span(node: Any) -> Span:
    """The lines a source-map node's code stands for."""
    if isinstance(node, COMPOUND):
        return Span(node.lineno, node.lineno)
    return Span(node.lineno, node.end_lineno or node.lineno)


def _code_matches(env: Env, address: Any, obj: Any) -> bool:
    runtime = getattr(getattr(obj, "compiler_data", None), "bytecode_runtime", None)
    if runtime is None:
        return False
    code = env.evm.get_code(address)
    data_section = getattr(obj, "data_section_size", 0) or 0
    if data_section:
        code = code[:-data_section]
    return bool(code == runtime)


def _register_contract(self: Env, address: Any, obj: Any) -> None:
    _original_register(self, address, obj)
    from boa.util.abi import Address

    addr = Address(address)
    if _code_matches(self, addr, obj):
        _VERIFIED[addr.canonical_address] = obj


# id(pc map) -> (pc map, {pc: (file, first line, last line)}): resolved once per contract
_RESOLVED: dict[int, tuple[Any, dict[int, tuple[str, int, int]]]] = {}


def _resolved(ast_map: Any) -> dict[int, tuple[str, int, int]]:
    hit = _RESOLVED.get(id(ast_map))
    if hit is None or hit[0] is not ast_map:
        table = {}
        for pc, node in ast_map.items():
            s = span(node)
            table[pc] = (str(node.module_node.resolved_path), s.lineno, s.end_lineno)
        hit = _RESOLVED[id(ast_map)] = (ast_map, table)
    return hit[1]


def _trace_computation(self: Env, computation: Any, contract: Any = None) -> None:
    msg = computation.msg
    # a deployment runs init code: the deploying object is the right map (titanoboa swaps in
    # its deployment source map meanwhile); any other frame is looked up by the code it ran
    target = contract if msg.is_create else _VERIFIED.get(msg.code_address)
    if target is not None and hasattr(target, "source_map"):
        table = _resolved(target.source_map["pc_raw_ast_map"])
        # one report per distinct line range, not per program counter: the tracer's cost
        # is per call
        hits = {table[pc] for pc in set(computation.code._trace) if pc in table}
        for filename, lo, hi in hits:
            # boa.coverage reads `filename` and `node` from this call's frame
            self._trace_cov(filename, Span(lo, hi))
    for child in computation.children:
        if child.msg.code_address == b"":
            continue
        _trace_computation(self, child)


def pytest_configure(config: Any) -> None:
    Env.register_contract = _register_contract  # type: ignore[method-assign]
    Env._trace_computation = _trace_computation  # type: ignore[method-assign]
