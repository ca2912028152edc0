"""Evaluator plugins: the interface (`base`), the registry (`get`, `names`) and the built-ins
(`reference`, `schema` = "json-schema", `command`, `http_probe` = "http-probe")."""

from pactbond.oracle.evaluators.base import (
    Check,
    Context,
    Evaluator,
    EvaluatorError,
    Outcome,
    ratio_bps,
)
from pactbond.oracle.evaluators.registry import check_spec, get, names

__all__ = [
    "Check",
    "Context",
    "Evaluator",
    "EvaluatorError",
    "Outcome",
    "check_spec",
    "get",
    "names",
    "ratio_bps",
]
