"""The evaluator plugins: registry, reference answers (incl. hidden sets), JSON schema, the
sandboxed command runner (incl. hostile deliverables) and the HTTP probe."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import socket
import tempfile
import textwrap
import threading
import time
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib.metadata import EntryPoint
from typing import Any, ClassVar

import pytest
from eth_hash.auto import keccak

from pactbond.oracle import evaluators
from pactbond.oracle.evaluators import Context, EvaluatorError, Outcome, registry
from pactbond.oracle.evaluators.command import CommandEvaluator, sandbox_support
from pactbond.oracle.evaluators.http_probe import HttpProbeEvaluator, percentile
from pactbond.oracle.evaluators.reference import (
    ReferenceEvaluator,
    canonical_json,
    item_commitment,
)
from pactbond.oracle.evaluators.schema import MAX_CHECKS, SchemaEvaluator
from pactbond.oracle.spec import Spec, SpecError, content_hash, hex32


class _QuietServer(ThreadingHTTPServer):
    """A probe that gives up on the slow route leaves a broken pipe here: expected, not news."""

    def handle_error(self, request: object, client_address: object) -> None:
        pass

SEED = keccak(b"job-7")


class Docs:
    """An in-memory document library: load(hash) like Library.get."""

    def __init__(self) -> None:
        self.by_hash: dict[bytes, bytes] = {}

    def add(self, doc: Any) -> str:
        data = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
        h = content_hash(data)
        self.by_hash[h] = data
        return hex32(h)

    def load(self, h: bytes) -> bytes:
        if h not in self.by_hash:
            raise SpecError(f"no document with hash {hex32(h)}")
        return self.by_hash[h]


@pytest.fixture
def docs() -> Docs:
    return Docs()


def ctx(docs: Docs, params: dict[str, Any], deliverable: Any, seed: bytes = SEED,
        **kw: Any) -> Context:
    data = deliverable if isinstance(deliverable, bytes) else json.dumps(deliverable).encode()
    return Context(deliverable=data, params=params, load=docs.load, seed=seed, **kw)


# --- registry ---------------------------------------------------------------------------------


class EchoJudge:
    """A third-party plugin: scores the deliverable's length."""

    name: ClassVar[str] = "echo"
    version: ClassVar[str] = "2"
    deterministic: ClassVar[bool] = True

    def check_params(self, params: Any) -> None:
        if "bad" in params:
            raise SpecError("echo: bad param")

    def evaluate(self, ctx: Context) -> Outcome:
        return Outcome(score_bps=min(len(ctx.deliverable), 10_000))


class NotAJudge:
    name = "broken"
    version = 1  # not a str
    deterministic = True


class Misnamed(EchoJudge):
    name: ClassVar[str] = "something-else"


def _ep(name: str, target: str) -> EntryPoint:
    return EntryPoint(name=name, value=target, group=registry.GROUP)


@pytest.fixture
def plugins(monkeypatch: pytest.MonkeyPatch) -> list[EntryPoint]:
    eps = [
        _ep("echo", "tests.oracle.test_evaluators:EchoJudge"),
        _ep("broken", "tests.oracle.test_evaluators:NotAJudge"),
        _ep("misnamed", "tests.oracle.test_evaluators:Misnamed"),
        _ep("missing", "tests.oracle.no_such_module:Judge"),
        _ep("reference", "tests.oracle.test_evaluators:EchoJudge"),  # cannot shadow a built-in
    ]
    monkeypatch.setattr(registry, "_entry_points", lambda: sorted(eps, key=lambda e: e.name))
    return eps


def test_names__builtins_first() -> None:
    assert registry.names()[:4] == ["reference", "json-schema", "command", "http-probe"]
    assert evaluators.names is registry.names


@pytest.mark.parametrize("name", ["reference", "json-schema", "command", "http-probe"])
def test_get__builtin__an_evaluator_instance(name: str) -> None:
    ev = evaluators.get(name)
    assert isinstance(ev, evaluators.Evaluator)
    assert ev.name == name and ev.version == "1"
    assert ev.deterministic is (name != "http-probe")


def test_get__unknown__lists_the_known() -> None:
    with pytest.raises(SpecError, match=r"unknown evaluator 'nope'; known: reference, json-schema"):
        registry.get("nope")


def test_get__entry_point_plugin(plugins: list[EntryPoint]) -> None:
    assert registry.names() == ["reference", "json-schema", "command", "http-probe", "broken",
                                "echo", "misnamed", "missing"]
    judge = registry.get("echo")
    assert isinstance(judge, EchoJudge)
    assert judge.evaluate(Context(deliverable=b"abc", params={}, load=bytes)).score_bps == 3


def test_get__plugin_cannot_shadow_a_builtin(plugins: list[EntryPoint]) -> None:
    assert isinstance(registry.get("reference"), ReferenceEvaluator)


@pytest.mark.parametrize(("name", "message"), [
    ("broken", r"'broken' \(entry point .*NotAJudge\) is not an evaluator: `version` is not a str"
               r"; no `check_params` method; no `evaluate` method"),
    ("misnamed", r"'misnamed' .* calls itself 'something-else'"),
    ("missing", r"'missing' .* failed to load: ModuleNotFoundError"),
])
def test_get__bad_plugin__refused(plugins: list[EntryPoint], name: str, message: str) -> None:
    with pytest.raises(SpecError, match=message):
        registry.get(name)


def _spec(evaluator: str, version: str, params: dict[str, Any]) -> Spec:
    return Spec.parse(json.dumps({
        "pactbond_spec": 1, "name": "t", "evaluator": {"name": evaluator, "version": version},
        "thresholds": {"fail_below_bps": 5000, "pass_at_bps": 9000}, "params": params,
    }).encode())


def test_check_spec__returns_the_plugin(plugins: list[EntryPoint]) -> None:
    assert isinstance(evaluators.check_spec(_spec("echo", "2", {})), EchoJudge)
    ref = evaluators.check_spec(_spec("reference", "1", {"reference": "0x" + "11" * 32}))
    assert isinstance(ref, ReferenceEvaluator)


def test_check_spec__version_mismatch__names_both(plugins: list[EntryPoint]) -> None:
    with pytest.raises(SpecError, match=r"version '1', but version '2' is installed"):
        evaluators.check_spec(_spec("echo", "1", {}))


def test_check_spec__bad_params__refused(plugins: list[EntryPoint]) -> None:
    with pytest.raises(SpecError, match="echo: bad param"):
        evaluators.check_spec(_spec("echo", "2", {"bad": 1}))
    with pytest.raises(SpecError, match=r"reference: params\.reference"):
        evaluators.check_spec(_spec("reference", "1", {"reference": "0x12"}))


# --- reference --------------------------------------------------------------------------------

ITEMS = [
    {"id": "q1", "question": "Capital of the island?", "answer": "Zanzibar City-7731"},
    {"id": "q2", "question": "Codename?", "answer": "Blue   Heron  Quokka"},
    {"id": "q3", "question": "Launch code?", "answer": "xylophone-4491-tangerine"},
    {"id": "q4", "question": "Motto?", "answer": "Ünïcode Straße"},
]


@pytest.fixture
def ref_set(docs: Docs) -> str:
    return docs.add({"items": ITEMS})


def test_reference__normalized_match(docs: Docs, ref_set: str) -> None:
    answers = {"q1": "  zanzibar city-7731 ", "q2": "blue heron\tquokka",
               "q3": "wrong", "q4": "ÜNÏCODE STRASSE"}
    out = ReferenceEvaluator().evaluate(ctx(docs, {"reference": ref_set}, {"answers": answers}))
    assert out.score_bps == 7500
    assert [c.passed for c in out.checks] == [True, True, False, True]
    assert out.checks[2].detail == "expected 'xylophone-4491-tangerine', got 'wrong'"
    assert out.hidden is None and out.error == ""
    assert out.outputs == {"total": 4, "correct": 3, "missing": 0, "unknown_ids": 0,
                           "match": "normalized", "hidden": False}


def test_reference__exact_match(docs: Docs, ref_set: str) -> None:
    answers = {"q1": "Zanzibar City-7731", "q2": "blue heron quokka"}
    out = ReferenceEvaluator().evaluate(
        ctx(docs, {"reference": ref_set, "match": "exact"}, {"answers": answers}))
    assert out.score_bps == 2500
    assert [c.passed for c in out.checks] == [True, False, False, False]


def test_reference__missing_answers_count_wrong_and_unknown_ids_are_ignored(
        docs: Docs, ref_set: str) -> None:
    out = ReferenceEvaluator().evaluate(ctx(
        docs, {"reference": ref_set},
        {"answers": {"q1": "Zanzibar City-7731", "zz": "x", "q9": "y"}}))
    assert out.score_bps == 2500
    assert out.outputs["missing"] == 3 and out.outputs["unknown_ids"] == 2
    assert out.checks[1].detail == "no answer"


@pytest.mark.parametrize(("deliverable", "why"), [
    (b"not json", "not JSON"),
    (b"\xff\xfe{}", "not UTF-8"),
    (b"[]", "is not {\"answers\""),
    (b'{"answers": ["q1"]}', "is not {\"answers\""),
    (b'{"answers": {"q1": 7}}', "answer to 'q1' is a int, not a string"),
    (b'{"answers": {"q1": "a", "q1": "Zanzibar City-7731"}}', "duplicate key 'q1'"),
    (b'{"answers": {"q1": NaN}}', "NaN is not JSON"),
    (b'{"answers": {"q1": 1e999}}', "1e999 is out of range"),
    (b'{"answers": {"q1": "\\ud800"}}', "lone surrogate"),
    (b"[" * 100_000 + b"]" * 100_000, "nests deeper than 128 levels"),
])
def test_reference__malformed_deliverable__scores_0_with_reason(
        docs: Docs, ref_set: str, deliverable: bytes, why: str) -> None:
    out = ReferenceEvaluator().evaluate(ctx(docs, {"reference": ref_set}, deliverable))
    assert out.score_bps == 0
    assert why in out.error
    assert out.checks[0].name == "deliverable" and not out.checks[0].passed
    assert why in out.checks[0].detail


def test_reference__brackets_inside_strings__not_nesting(docs: Docs, ref_set: str) -> None:
    deep = "[{" * 500
    out = ReferenceEvaluator().evaluate(ctx(docs, {"reference": ref_set},
                                            {"answers": {"q1": deep, "q2": "Blue Heron Quokka"}}))
    assert out.error == "" and out.score_bps == 2500


def test_reference__hidden__evidence_holds_no_answers_and_reveal_verifies(
        docs: Docs, ref_set: str) -> None:
    answers = {"q1": "Zanzibar City-7731", "q2": "Blue Heron Quokka", "q3": "guess-0000"}
    out = ReferenceEvaluator().evaluate(
        ctx(docs, {"reference": ref_set, "hidden": True}, {"answers": answers}))
    assert out.score_bps == 5000
    assert [(c.name, c.passed, c.detail) for c in out.checks] == [
        ("q1", True, "correct"), ("q2", True, "correct"),
        ("q3", False, "wrong"), ("q4", False, "no answer")]

    public = out.model_dump_json(exclude={"hidden"}).casefold()
    for secret in [it["answer"] for it in ITEMS] + list(answers.values()):
        assert secret.casefold() not in public
        assert json.dumps(secret).casefold()[1:-1] not in public  # nor JSON-escaped
    for word in ("zanzibar", "heron", "xylophone", "guess-0000", "straße", "stra\\u00df"):
        assert word not in public

    assert out.hidden is not None
    reveal = out.hidden["items"]
    assert [r["id"] for r in reveal] == ["q1", "q2", "q3", "q4"]
    for check, item, r in zip(out.checks, ITEMS, reveal, strict=True):
        assert r["answer"] == item["answer"]
        salt = bytes.fromhex(r["salt"][2:])
        assert salt == keccak(SEED + item["id"].encode())
        recomputed = "0x" + keccak(salt + canonical_json(
            {"id": r["id"], "answer": r["answer"]})).hex()
        assert check.commitment == recomputed == item_commitment(salt, r["id"], r["answer"])
    # a wrong answer does not open the commitment
    assert item_commitment(bytes.fromhex(reveal[0]["salt"][2:]), "q1", "Zanzibar") \
        != out.checks[0].commitment


def test_reference__hidden__same_job_same_evidence_other_seed_other_commitments(
        docs: Docs, ref_set: str) -> None:
    params = {"reference": ref_set, "hidden": True}
    d = {"answers": {"q1": "Zanzibar City-7731"}}
    a = ReferenceEvaluator().evaluate(ctx(docs, params, d))
    b = ReferenceEvaluator().evaluate(ctx(docs, params, d))
    c = ReferenceEvaluator().evaluate(ctx(docs, params, d, seed=keccak(b"job-8")))
    assert a == b
    assert {x.commitment for x in a.checks}.isdisjoint({x.commitment for x in c.checks})
    assert a.score_bps == c.score_bps == 2500


def test_reference__unloadable_or_malformed_set__evaluator_error(docs: Docs) -> None:
    with pytest.raises(EvaluatorError, match="cannot load the reference set"):
        ReferenceEvaluator().evaluate(ctx(docs, {"reference": "0x" + "ab" * 32}, {"answers": {}}))
    bad: Any
    for bad in ({"items": []}, {"items": [{"id": "a"}]}, {"items": [{"id": "a", "answer": 1}]},
                {"items": [{"id": "a", "answer": "x"}, {"id": "a", "answer": "y"}]}, [1]):
        with pytest.raises(EvaluatorError, match="malformed"):
            ReferenceEvaluator().evaluate(ctx(docs, {"reference": docs.add(bad)},
                                              {"answers": {}}))
    with pytest.raises(EvaluatorError, match="not JSON"):
        ReferenceEvaluator().evaluate(ctx(docs, {"reference": docs.add(b"{")}, {"answers": {}}))


@pytest.mark.parametrize(("params", "where"), [
    ({}, "params.reference: Field required"),
    ({"reference": "0x1234"}, "params.reference"),
    ({"reference": "0x" + "11" * 32, "hidden": "yes"}, "params.hidden"),
    ({"reference": "0x" + "11" * 32, "match": "fuzzy"}, "params.match"),
    ({"reference": "0x" + "11" * 32, "refrence": 1}, "params.refrence: Extra inputs"),
])
def test_reference__check_params__refuses_bad_params(params: dict[str, Any], where: str) -> None:
    with pytest.raises(SpecError, match=f"reference: {where}"):
        ReferenceEvaluator().check_params(params)


# --- json-schema ------------------------------------------------------------------------------

PRODUCT = {"type": "object", "required": ["name", "price"], "additionalProperties": False,
           "properties": {"name": {"type": "string", "minLength": 1},
                          "price": {"type": "integer", "minimum": 0}}}


def test_schema__whole_document(docs: Docs) -> None:
    ev = SchemaEvaluator()
    ok = ev.evaluate(ctx(docs, {"schema": PRODUCT}, {"name": "pen", "price": 3}))
    assert ok.score_bps == 10_000 and ok.checks[0].passed
    bad = ev.evaluate(ctx(docs, {"schema": PRODUCT}, {"name": "", "price": -1, "x": 1}))
    assert bad.score_bps == 0 and bad.error == ""
    assert [(c.name, c.detail.split(":")[0]) for c in bad.checks] == [
        ("/", "additionalProperties"), ("/name", "minLength"), ("/price", "minimum")]
    assert bad.outputs["errors"] == 3 and not bad.outputs["valid"]
    # deterministic: the same deliverable gives the same outcome
    assert bad == ev.evaluate(ctx(docs, {"schema": PRODUCT}, {"x": 1, "price": -1, "name": ""}))


def test_schema__items_key__fraction_of_valid_items(docs: Docs) -> None:
    items = [{"name": "a", "price": 1}, {"name": "b"}, {"name": "c", "price": 2}, "junk"]
    out = SchemaEvaluator().evaluate(
        ctx(docs, {"schema": PRODUCT, "items_key": "records"}, {"records": items}))
    assert out.score_bps == 5000
    assert out.outputs["items"] == 4 and out.outputs["valid_items"] == 2
    assert [c.name for c in out.checks] == ["items[1]/", "items[3]/"]
    empty = SchemaEvaluator().evaluate(
        ctx(docs, {"schema": PRODUCT, "items_key": "records"}, {"records": []}))
    assert empty.score_bps == 0
    all_ok = SchemaEvaluator().evaluate(
        ctx(docs, {"schema": PRODUCT, "items_key": "records"}, {"records": items[:1]}))
    assert all_ok.score_bps == 10_000 and all_ok.checks[0].detail == "all 1 items conform"


def test_schema__checks_capped_at_50(docs: Docs) -> None:
    out = SchemaEvaluator().evaluate(ctx(
        docs, {"schema": PRODUCT, "items_key": "r"}, {"r": [{"name": 1}] * 80 + [{"name": "ok",
                                                                                 "price": 0}]}))
    assert len(out.checks) == MAX_CHECKS and out.outputs["checks_capped"]
    assert out.outputs["valid_items"] == 1 and out.score_bps == 10_000 * 1 // 81
    whole = SchemaEvaluator().evaluate(ctx(
        docs, {"schema": {"type": "array", "items": {"type": "string"}}}, list(range(200))))
    assert len(whole.checks) == MAX_CHECKS and whole.outputs["errors"] == 200
    assert [c.name for c in whole.checks[:3]] == ["/0", "/1", "/10"]  # sorted, as pointers


@pytest.mark.parametrize(("deliverable", "why"), [
    (b"{", "not JSON"),
    (b'{"records": {}}', "no list at key 'records'"),
    (b"[]", "no list at key 'records'"),
])
def test_schema__malformed_deliverable(docs: Docs, deliverable: bytes, why: str) -> None:
    out = SchemaEvaluator().evaluate(
        ctx(docs, {"schema": PRODUCT, "items_key": "records"}, deliverable))
    assert out.score_bps == 0 and why in out.error and out.checks[0].name == "deliverable"


def test_schema__schema_by_hash(docs: Docs) -> None:
    h = docs.add(PRODUCT)
    SchemaEvaluator().check_params({"schema_hash": h})
    assert SchemaEvaluator().evaluate(
        ctx(docs, {"schema_hash": h}, {"name": "x", "price": 0})).score_bps == 10_000
    with pytest.raises(EvaluatorError, match="cannot load the schema"):
        SchemaEvaluator().evaluate(ctx(docs, {"schema_hash": "0x" + "22" * 32}, {}))
    with pytest.raises(EvaluatorError, match="invalid schema"):
        SchemaEvaluator().evaluate(ctx(docs, {"schema_hash": docs.add({"type": 5})}, {}))


@pytest.mark.parametrize(("params", "why"), [
    ({"schema": {"type": "strng"}}, "invalid schema at type"),
    ({"schema": {"minLength": -1}}, "invalid schema at minLength"),
    ({}, "exactly one of schema / schema_hash"),
    ({"schema": PRODUCT, "schema_hash": "0x" + "11" * 32}, "exactly one"),
    ({"schema": PRODUCT, "items_key": ""}, "params.items_key"),
    ({"schema": PRODUCT, "extra": 1}, "params.extra"),
])
def test_schema__check_params__refuses_bad_schemas(params: dict[str, Any], why: str) -> None:
    with pytest.raises(SpecError, match=f"json-schema: .*{why}"):
        SchemaEvaluator().check_params(params)


def test_schema__remote_ref__never_fetched(docs: Docs, http_server: HttpServer) -> None:
    schema = {"$ref": f"{http_server.url}/schema.json"}
    SchemaEvaluator().check_params({"schema": schema})
    with pytest.raises(EvaluatorError, match="cannot be resolved"):
        SchemaEvaluator().evaluate(ctx(docs, {"schema": schema}, {}))
    assert http_server.hits["/schema.json"] == 0


def test_schema__formats_only_when_asked(docs: Docs) -> None:
    schema = {"type": "string", "format": "date"}
    assert SchemaEvaluator().evaluate(ctx(docs, {"schema": schema}, "soon")).score_bps == 10_000
    assert SchemaEvaluator().evaluate(
        ctx(docs, {"schema": schema, "check_formats": True}, "soon")).score_bps == 0


# --- command ----------------------------------------------------------------------------------

RUNNER = textwrap.dedent('''
    import json, sys
    token = sys.stdin.readline().strip()
    TESTS = json.load(open("tests.json"))
    try:
        import solution
    except BaseException as e:
        print("import failed:", type(e).__name__, e, flush=True)
        sys.exit(1)
    for name in TESTS:
        try:
            ok = getattr(solution, name)()
        except Exception as e:
            print(token, "FAIL", name, type(e).__name__, e, flush=True)
        else:
            print(token, "PASS" if ok is True else "FAIL", name, repr(ok)[:80], flush=True)
''')


class Sandbox:
    def __init__(self, docs: Docs, root: str) -> None:
        self.docs = docs
        self.root = root
        self.marker = f"pactbond-test-{os.urandom(6).hex()}"

    def suite(self, tests: list[str]) -> str:
        return self.docs.add({
            "files": {"run_tests.py": RUNNER, "tests.json": json.dumps(tests)},
            "argv": ["python3", "run_tests.py", self.marker],
            "tests": tests,
        })

    def run(self, solution: str | dict[str, Any], tests: list[str] | None = None,
            **params: Any) -> Outcome:
        deliverable = ({"files": {"solution.py": textwrap.dedent(solution)}}
                       if isinstance(solution, str) else solution)
        p = {"suite": self.suite(tests or ["t1", "t2"]), **params}
        CommandEvaluator().check_params(p)
        return CommandEvaluator().evaluate(ctx(self.docs, p, deliverable, scratch_root=self.root))

    def leftovers(self) -> list[int]:
        """Processes whose argv still carries this test's marker."""
        found = []
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    if self.marker.encode() in f.read():
                        found.append(int(pid))
            except OSError:
                continue
        return found


@pytest.fixture
def sandbox(docs: Docs, monkeypatch: pytest.MonkeyPatch) -> Iterator[Sandbox]:
    if os.geteuid() != 0:  # a test host is disposable: let the runs go as this user
        monkeypatch.setenv("PACTBOND_COMMAND_UNSANDBOXED", "1")
    # o+x on the parents: the run's own uid must reach its scratch dir (/tmp is searchable)
    root = tempfile.mkdtemp(prefix="pactbond-sbx-")
    os.chmod(root, 0o755)
    sb = Sandbox(docs, root)
    try:
        yield sb
        assert sb.leftovers() == [], "processes of the run survived it"
        assert os.listdir(root) == [], "the scratch dir was not removed"
    finally:
        shutil.rmtree(root, ignore_errors=True)


PASSING = """
    def t1():
        return 1 + 1 == 2
    def t2():
        return True
"""


def test_command__passing_solution__10000(sandbox: Sandbox) -> None:
    out = sandbox.run(PASSING)
    assert out.score_bps == 10_000
    assert [(c.name, c.passed) for c in out.checks] == [("run", True), ("t1", True), ("t2", True)]
    assert out.outputs["exit_code"] == 0 and out.outputs["passed"] == 2
    assert "<token> PASS t1" in out.outputs["log_tail"]
    # the random token and scratch path stay out of the evidence: reruns agree
    assert out == sandbox.run(PASSING)


def test_command__half_failing__5000(sandbox: Sandbox) -> None:
    out = sandbox.run("""
        def t1():
            return True
        def t2():
            raise ValueError("off by one")
    """)
    assert out.score_bps == 5000
    assert out.checks[2].detail == "ValueError off by one"


def test_command__syntax_error__0(sandbox: Sandbox) -> None:
    out = sandbox.run("def t1(:\n    return True\n")
    assert out.score_bps == 0
    assert out.outputs["exit_code"] == 1
    assert [c.detail for c in out.checks] == ["exit code 1", "not reported", "not reported"]
    assert "import failed: SyntaxError" in out.outputs["log_tail"]


def test_command__forged_and_repeated_reports__do_not_count(sandbox: Sandbox) -> None:
    out = sandbox.run("""
        import sys
        print("PASS t1")                      # no token: ordinary output
        print("<token> PASS t2", flush=True)  # what the evidence shows is not the token
        def t1():
            return False
        def t2():
            print(sys.modules["__main__"].token, "PASS t2", flush=True)  # reported twice
            return True
    """)
    assert out.score_bps == 0
    assert [c.detail for c in out.checks[1:]] == ["False", "reported 2 times"]


def test_command__declared_tests_only__extra_reports_ignored(sandbox: Sandbox) -> None:
    out = sandbox.run("""
        import sys
        def t1():
            for i in range(5):
                print(sys.modules["__main__"].token, "PASS", f"bonus{i}", flush=True)
            return True
        def t2():
            return True
    """, tests=["t1", "t2", "t3"])
    assert out.score_bps == 6666  # t3 was never reported: 2 of the 3 declared
    assert out.outputs["unknown_reports"] == 5


@pytest.mark.parametrize(("files", "why"), [
    ({"/etc/passwd": "x"}, "is absolute"),
    ({"../escape.py": "x"}, "'..' part"),
    ({"a/./b.py": "x"}, "'.' or '..' part"),
    ({"a\\b.py": "x"}, "backslash"),
    ({"run_tests.py": "print('all good')"}, "is a suite file"),
    ({"tests.json/x": "1"}, "both a file and a directory"),
    ({}, "is not {\"files\""),
    ({"solution.py": 3}, "is not a string"),
    # 300 four-byte characters: under 1,024 characters, over 1,024 bytes
    ({"/".join(["\U0001f600" * 60] * 5): "x"}, "longer than 1024 bytes"),
])
def test_command__refused_deliverable__0_and_nothing_runs(sandbox: Sandbox, files: dict[str, Any],
                                                          why: str) -> None:
    out = sandbox.run({"files": files})
    assert out.score_bps == 0 and why in out.error
    assert out.checks == [out.checks[0]] and out.checks[0].name == "deliverable"


def test_command__environment_is_scrubbed_and_user_unprivileged(
        sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORACLE_KEY", "0xsecret")
    out = sandbox.run("""
        import os
        def t1():
            print("ENV", sorted(os.environ), "UID", os.getuid(), flush=True)
            return os.getcwd() == os.environ["HOME"] == os.environ["TMPDIR"]
        def t2():
            return "ORACLE_KEY" not in os.environ
    """)
    assert out.score_bps == 10_000
    log = out.outputs["log_tail"]
    assert ("ENV ['HOME', 'LANG', 'PATH', 'PYTHONDONTWRITEBYTECODE', 'PYTHONNOUSERSITE', "
            "'TMPDIR']") in log
    if sandbox_support().root:
        assert out.outputs["sandbox_user"] is True
        assert "UID 0" not in log


def test_command__deliverable_pth_in_the_user_site__never_runs(sandbox: Sandbox) -> None:
    """HOME is the scratch dir: a deliverable file under .local/lib/pythonX.Y/site-packages ran
    inside the runner at start-up, before it read the report token (it could forge reports)."""
    files = {"solution.py": "def t1():\n    return True\ndef t2():\n    return True\n"}
    for minor in range(8, 16):
        files[f".local/lib/python3.{minor}/site-packages/evil.pth"] = (
            "import sys; sys.stderr.write('PTH_RAN\\n')\n")
    out = sandbox.run({"files": files})
    assert out.score_bps == 10_000 and "PTH_RAN" not in out.outputs["log_tail"]


def test_command__not_root__refused_unless_the_operator_allows_it(
        sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    """As a normal user the agent's code would run as the service's own user: refused, with
    what to do, unless PACTBOND_COMMAND_UNSANDBOXED=1 (a host the operator can lose)."""
    from pactbond.oracle.evaluators import command

    real = command.sandbox_support()
    monkeypatch.setattr(command, "sandbox_support", lambda: dataclasses.replace(
        real, root=False, drop_user=False))
    monkeypatch.delenv("PACTBOND_COMMAND_UNSANDBOXED", raising=False)
    with pytest.raises(EvaluatorError, match="PACTBOND_COMMAND_UNSANDBOXED=1"):
        sandbox.run("def t1():\n    return True\ndef t2():\n    return True\n")


@pytest.mark.skipif(not sandbox_support().drop_user, reason="needs root to switch the run's uid")
def test_command__suite_files_are_read_only_to_the_run(sandbox: Sandbox) -> None:
    out = sandbox.run("""
        import os
        def t1():
            try:
                open("run_tests.py", "w").write("hijacked")
            except PermissionError:
                return True
        def t2():
            try:
                os.unlink("tests.json")
            except PermissionError:
                open("scratch-note", "w").write("own files are fine")
                return os.path.exists("scratch-note")
    """)
    assert out.score_bps == 10_000


def test_command__infinite_loop__killed_at_the_timeout(sandbox: Sandbox) -> None:
    t0 = time.monotonic()
    out = sandbox.run("while True:\n    pass\n", timeout_s=2, cpu_s=30)
    assert time.monotonic() - t0 < 6
    assert out.score_bps == 0
    assert out.outputs["timed_out"] is True and out.outputs["exit_code"] is None
    assert out.checks[0].detail == "killed at the timeout"


def test_command__cpu_limit__kills_a_spinning_process(sandbox: Sandbox) -> None:
    t0 = time.monotonic()
    out = sandbox.run("""
        def t1():
            while True:
                pass
        def t2():
            return True
    """, timeout_s=20, cpu_s=1)
    assert time.monotonic() - t0 < 8
    assert out.score_bps == 0 and not out.outputs["timed_out"]
    assert out.checks[0].detail == "killed by signal 24"  # SIGXCPU


def test_command__fork_bomb__bounded_and_all_killed(sandbox: Sandbox) -> None:
    t0 = time.monotonic()
    out = sandbox.run("""
        import os, time
        def t1():
            made = 0
            for _ in range(50):
                try:
                    pid = os.fork()
                except OSError:
                    break
                if pid == 0:
                    os.setsid()          # try to leave the process group, too
                    time.sleep(120)
                    os._exit(0)
                made += 1
            print("forked", made, flush=True)
            return made < 50
        def t2():
            return True
    """, max_procs=8)
    assert time.monotonic() - t0 < 8
    assert out.score_bps == 10_000  # t1 reports that forking hit the limit
    forked = int(out.outputs["log_tail"].split("forked ")[1].split()[0])
    assert 0 < forked < 8
    # the sandbox fixture asserts no process carrying the marker survived


def test_command__disk_filling__stopped_at_max_file(sandbox: Sandbox) -> None:
    tmp_probe = f"/tmp/{sandbox.marker}-left-behind"
    out = sandbox.run(f"""
        import errno, os
        def t1():
            try:
                with open("big", "wb") as f:
                    for _ in range(64):
                        f.write(b"x" * 2**20)
                        f.flush()
            except OSError as e:
                return e.errno == errno.EFBIG and os.path.getsize("big") <= 2**20
        def t2():
            open({tmp_probe!r}, "w").write("litter")
            return True
    """, max_file_mb=1)
    assert out.score_bps == 10_000
    if sandbox_support().drop_user:  # the run's uid is swept from the shared temp dirs
        assert not os.path.exists(tmp_probe)
    else:
        os.unlink(tmp_probe)
    # the sandbox fixture asserts the scratch dir (with "big") is gone


def test_command__memory_limit(sandbox: Sandbox) -> None:
    out = sandbox.run("""
        def t1():
            try:
                bytearray(512 * 2**20)
            except MemoryError:
                return True
        def t2():
            return len(bytearray(8 * 2**20)) > 0
    """, memory_mb=128)
    assert out.score_bps == 10_000


def test_command__network__blocked(sandbox: Sandbox) -> None:
    if not sandbox_support().net_isolated:
        pytest.skip(f"no network namespace on this platform: {sandbox_support().notes}")
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(5)
    listener.setblocking(False)
    port = listener.getsockname()[1]
    try:
        out = sandbox.run(f"""
            import errno, socket
            def t1():
                try:
                    socket.create_connection(("127.0.0.1", {port}), timeout=2).close()
                except OSError as e:
                    return e.errno == errno.ENETUNREACH  # not even loopback is up
            def t2():
                try:  # TEST-NET-1 (RFC 5737): nobody is contacted even if isolation broke
                    socket.create_connection(("192.0.2.1", 80), timeout=2).close()
                except OSError as e:
                    return e.errno == errno.ENETUNREACH  # no route at all, not a timeout
        """)
        assert out.score_bps == 10_000
        assert out.outputs["network_isolated"] is True
        with pytest.raises(BlockingIOError):
            listener.accept()  # nothing ever connected
    finally:
        listener.close()


def test_command__huge_output__capped(sandbox: Sandbox) -> None:
    t0 = time.monotonic()
    out = sandbox.run("""
        import sys
        def t1():
            return True
        def t2():
            while True:
                sys.stdout.write("x" * 65536)
    """, max_output_bytes=4096, timeout_s=10)
    assert time.monotonic() - t0 < 5
    assert out.outputs["output_capped"] is True and not out.outputs["timed_out"]
    assert out.score_bps == 5000  # t1 was reported before the flood
    assert out.checks[0] == out.checks[0].model_copy(
        update={"passed": False, "detail": "killed: output over the limit"})
    assert len(out.outputs["log_tail"]) <= 2000


def test_command__suite_problems__evaluator_error(docs: Docs, sandbox: Sandbox) -> None:
    ev = CommandEvaluator()
    d = {"files": {"solution.py": ""}}
    with pytest.raises(EvaluatorError, match="cannot load the suite"):
        ev.evaluate(ctx(docs, {"suite": "0x" + "33" * 32}, d, scratch_root=sandbox.root))
    for bad, why in [({"argv": ["x"]}, "tests: Field required"),
                     ({"argv": [], "tests": ["a"]}, "argv"),
                     ({"argv": ["x"], "tests": ["a b"]}, "has whitespace"),
                     ({"argv": ["x"], "tests": ["a", "a"]}, "repeat"),
                     ({"argv": ["x"], "tests": ["a"], "files": {"../x": ""}}, "'..' part")]:
        with pytest.raises(EvaluatorError, match=why):
            ev.evaluate(ctx(docs, {"suite": docs.add(bad)}, d, scratch_root=sandbox.root))
    missing = docs.add({"argv": ["no-such-binary-xyz"], "tests": ["a"]})
    with pytest.raises(EvaluatorError, match="cannot start 'no-such-binary-xyz'"):
        ev.evaluate(ctx(docs, {"suite": missing}, d, scratch_root=sandbox.root))


@pytest.mark.parametrize(("params", "where"), [
    ({"suite": "0x" + "11" * 32, "timeout_s": 121}, "params.timeout_s"),
    ({"suite": "0x" + "11" * 32, "timeout_s": 1.5}, "params.timeout_s"),
    ({"suite": "0x" + "11" * 32, "memory_mb": 8}, "params.memory_mb"),
    ({"suite": "0x" + "11" * 32, "max_procs": 0}, "params.max_procs"),
    ({"suite": "0x" + "11" * 32, "network": True}, "params.network"),
    ({"suite": "nope"}, "params.suite"),
])
def test_command__check_params__bounds(params: dict[str, Any], where: str) -> None:
    with pytest.raises(SpecError, match=f"command: {where}"):
        CommandEvaluator().check_params(params)


# --- http-probe -------------------------------------------------------------------------------


class HttpServer:
    def __init__(self) -> None:
        self.hits: Counter[str] = Counter()
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                with server.lock:
                    server.hits[self.path] += 1
                if self.path == "/slow":
                    time.sleep(0.12)
                if self.path in ("/ok", "/slow"):
                    self._reply(200, b"fine")
                elif self.path == "/redirect":
                    self.send_response(302)
                    self.send_header("Location", "/ok")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                else:
                    self._reply(500 if self.path == "/fail" else 404, b"no")

            def _reply(self, code: int, body: bytes) -> None:
                self.send_response(code)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = _QuietServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


@pytest.fixture(scope="module")
def http_server() -> Iterator[HttpServer]:
    s = HttpServer()
    yield s
    s.stop()


def probe(docs: Docs, server: HttpServer, named: list[str], listed: list[str],
          **params: Any) -> Outcome:
    p = {"endpoints": [{"url": server.url + n} for n in named], "requests": 4, **params}
    HttpProbeEvaluator().check_params(p)
    return HttpProbeEvaluator().evaluate(ctx(docs, p, {"endpoints": [server.url + u
                                                                     for u in listed]}))


def test_probe__all_ok(docs: Docs, http_server: HttpServer) -> None:
    out = probe(docs, http_server, ["/ok"], ["/ok"])
    assert out.score_bps == 10_000 and out.checks[0].passed
    lat = out.outputs["latency_us"]
    assert all(isinstance(v, int) for v in lat.values())
    assert 0 < lat["p50"] <= lat["p95"] <= lat["p99"] <= lat["max"]
    assert out.outputs["endpoints"][http_server.url + "/ok"]["outcomes"] == {"200": 4}


def test_probe__failures_halve_the_score(docs: Docs, http_server: HttpServer) -> None:
    out = probe(docs, http_server, ["/ok", "/fail"], ["/ok", "/fail"])
    assert out.score_bps == 5000
    assert [c.passed for c in out.checks] == [True, False]
    assert "0/4 returned 200" in out.checks[1].detail and "500: 4" in out.checks[1].detail
    gated = probe(docs, http_server, ["/ok", "/fail"], ["/ok", "/fail"], min_success_bps=9000)
    assert gated.score_bps == 0
    assert gated.checks[-1].name == "success_rate" and not gated.checks[-1].passed


def test_probe__unnamed_url__never_fetched(docs: Docs, http_server: HttpServer) -> None:
    before = http_server.hits["/secret"]
    out = probe(docs, http_server, ["/ok"], ["/ok", "/secret", "/ok"])
    assert http_server.hits["/secret"] == before
    assert out.score_bps == 5000  # 4 of 8 counted requests: the refused URL's 4 fail
    assert out.checks[-1].detail == "not an endpoint the spec names; not fetched"
    assert out.outputs["requests_made"] == 4


def test_probe__unlisted_endpoint__counts_as_failed(docs: Docs, http_server: HttpServer) -> None:
    before = http_server.hits["/fail"]
    out = probe(docs, http_server, ["/ok", "/fail"], ["/ok"])
    assert out.score_bps == 5000 and http_server.hits["/fail"] == before
    assert out.checks[1].detail == "not listed by the deliverable; not fetched"


def test_probe__latency_bound(docs: Docs, http_server: HttpServer) -> None:
    slow = probe(docs, http_server, ["/slow"], ["/slow"], requests=2, max_latency_ms=50)
    assert slow.score_bps == 0
    assert slow.outputs["success_bps"] == 10_000 and slow.outputs["latency_us"]["p95"] > 50_000
    assert slow.checks[-1].name == "latency" and not slow.checks[-1].passed
    fast = probe(docs, http_server, ["/ok"], ["/ok"], max_latency_ms=2000)
    assert fast.score_bps == 10_000 and fast.checks[-1].passed


def test_probe__timeout__fails(docs: Docs, http_server: HttpServer) -> None:
    out = probe(docs, http_server, ["/slow"], ["/slow"], requests=2, timeout_s=0.03)
    assert out.score_bps == 0
    assert out.outputs["endpoints"][http_server.url + "/slow"]["outcomes"] == {"timeout": 2}


def test_probe__redirect__not_followed(docs: Docs, http_server: HttpServer) -> None:
    before = http_server.hits["/ok"]
    out = probe(docs, http_server, ["/redirect"], ["/redirect"], requests=2)
    assert out.score_bps == 0 and http_server.hits["/ok"] == before
    expected = probe(docs, http_server, ["/redirect"], ["/redirect"], requests=2)
    assert "302: 2" in expected.checks[0].detail


def test_probe__environment_proxy__ignored(docs: Docs, http_server: HttpServer,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    monkeypatch.setenv("http_proxy", "http://127.0.0.1:9")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    assert probe(docs, http_server, ["/ok"], ["/ok"]).score_bps == 10_000


def test_probe__connection_refused(docs: Docs) -> None:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    url = f"http://127.0.0.1:{port}/x"
    out = HttpProbeEvaluator().evaluate(ctx(docs, {"endpoints": [{"url": url}], "requests": 2},
                                            {"endpoints": [url]}))
    assert out.score_bps == 0
    assert out.outputs["endpoints"][url]["outcomes"] == {"connection error": 2}


@pytest.mark.parametrize("deliverable", [b"nope", b'{"endpoints": "http://x"}',
                                         b'{"endpoints": [1]}', b"{}"])
def test_probe__malformed_deliverable(docs: Docs, http_server: HttpServer,
                                      deliverable: bytes) -> None:
    p = {"endpoints": [{"url": http_server.url + "/ok"}]}
    out = HttpProbeEvaluator().evaluate(ctx(docs, p, deliverable))
    assert out.score_bps == 0 and out.error and out.checks[0].name == "deliverable"


@pytest.mark.parametrize(("params", "where"), [
    ({"endpoints": []}, "params.endpoints"),
    ({"endpoints": [{"url": "ftp://h/x"}]}, "params.endpoints.0.url"),
    ({"endpoints": [{"url": "http:///nohost"}]}, "params.endpoints.0.url"),
    ({"endpoints": [{"url": "http://h/a"}, {"url": "http://h/a"}]}, "repeat"),
    ({"endpoints": [{"url": "http://h/a", "method": "TRACE"}]}, "method"),
    ({"endpoints": [{"url": "http://h/a"}], "requests": 1001}, "params.requests"),
    ({"endpoints": [{"url": "http://h/a"}], "timeout_s": 0}, "params.timeout_s"),
    ({"endpoints": [{"url": "http://h/a"}], "min_success_bps": 10_001}, "min_success_bps"),
])
def test_probe__check_params__refuses(params: dict[str, Any], where: str) -> None:
    with pytest.raises(SpecError, match=f"http-probe: .*{where}"):
        HttpProbeEvaluator().check_params(params)


def test_percentile__nearest_rank() -> None:
    xs = list(range(1, 101))
    assert [percentile(xs, p) for p in (50, 95, 99, 100)] == [50, 95, 99, 100]
    assert percentile([7], 95) == 7 and percentile([], 95) == 0
    assert percentile([1, 2, 3], 50) == 2
