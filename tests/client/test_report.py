"""The rollout report against a scenario with known outcomes on a private anvil: three stages
(a shadow pact, a bounded pact with challenges, a full pact with no jobs yet), every figure
checked exactly, against the pact's on-chain counters too; the table, JSON and PNG; and a
malformed rollout file refused with the field named."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

import matplotlib.image
import pytest
import yaml
from eth_hash.auto import keccak
from PIL import Image

from pactbond import money
from pactbond.errors import InvalidInputError, UnknownObjectError
from pactbond.models import BPS
from pactbond.report import (
    DAY,
    BlockTimes,
    Report,
    build_report,
    load_rollout,
    parse_rollout,
    plot,
    render_table,
)
from tests.client.conftest import E18, HOUR, ROOT, World

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
RULE = {"min_settled": 4, "min_pass_rate_bps": 7500, "max_overturned": 0, "within_days": 30,
        "max_no_delivery": 0}


@dataclass
class Scenario:
    pids: dict[str, int]
    created: dict[str, int]  # pact creation times
    first_opened: dict[str, int]
    at: dict[int, int] = field(default_factory=dict)  # job -> time of its terminal transition
    jobs: dict[str, int] = field(default_factory=dict)  # label -> job id
    last_evidence: dict[str, int] = field(default_factory=dict)

    def rollout_doc(self, **over: Any) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "name": "invoice-triage", "owner": "payments-team",
            "workflow": "triage supplier invoices", "proof_model": "reference answers v3",
            "stages": [{"name": "shadow-1", "pact_id": self.pids["shadow"], "kind": "shadow"},
                       {"name": "bounded-1", "pact_id": self.pids["bounded"], "kind": "bounded"},
                       {"name": "full-1", "pact_id": self.pids["full"], "kind": "full"}],
            "expansion": dict(RULE),
        }
        doc.update(over)
        return doc


def create_pact(world: World, **over: Any) -> tuple[int, int]:
    """A pact and its creation time (the latest block right after the create transaction)."""
    t = world.terms(**over)
    pid = world.owner.create_pact(t)
    created = world.keeper.now()
    world.admin.approve_pact(t.committee_id, pid)
    world.admin.approve_pact(t.appeal_committee_id, pid)
    world.pacts[pid] = t
    return pid, created


def submitted(world: World, pid: int, value: int) -> tuple[int, int]:
    """A job opened, accepted and submitted, and the time it was opened."""
    jid = world.buyer.open_job(pid, world.agent.address, value)
    opened = world.keeper.now()
    world.agent.accept(jid)
    world.agent.submit(jid, keccak(b"deliverable %d" % jid))
    return jid, opened


@pytest.fixture(scope="module")
def scenario(world: World) -> Scenario:
    k = world.keeper
    shadow, c_shadow = create_pact(world, shadow=True, bond_bps=0, slash_bps=0)
    bounded, c_bounded = create_pact(world, challenge_window=HOUR, appeal_window=HOUR)
    full, c_full = create_pact(world, cap_initial=5 * E18)
    sc = Scenario(pids={"shadow": shadow, "bounded": bounded, "full": full},
                  created={"shadow": c_shadow, "bounded": c_bounded, "full": c_full},
                  first_opened={})

    def settled(label: str, jid: int) -> None:
        sc.jobs[label] = jid
        sc.at[jid] = k.now()

    # shadow: pass, pass, partial, pass (the verdict moves no money), then a cancelled job;
    # time passes between the steps so that every time figure is distinct
    world.warp(600)
    for i, (label, value, scores) in enumerate([
        ("s_pass1", E18, [9000, 9000, 9000]), ("s_pass2", E18 // 2, [8000, 8500, 9000]),
        ("s_partial", E18 // 4, [6000, 6500, 7000]), ("s_pass3", E18 // 5, [9500] * 3),
    ]):
        jid, opened = submitted(world, shadow, value)
        if i == 0:
            sc.first_opened["shadow"] = opened
        world.warp(60)
        k.settle(jid, world.votes(jid, scores))  # zero challenge window: settles at once
        settled(label, jid)
    sc.last_evidence["shadow"] = sc.at[sc.jobs["s_pass3"]]
    # by another buyer: a cancelled job moves no money, so it adds no distinct buyer
    cancelled = world.owner.open_job(shadow, world.agent.address, E18)
    world.owner.cancel(cancelled)
    sc.jobs["s_cancelled"] = cancelled
    world.warp(300)

    # bounded: a pass and a fail finalized after the challenge window
    b_pass, opened = submitted(world, bounded, E18)
    sc.first_opened["bounded"] = opened
    k.settle(b_pass, world.votes(b_pass, [9000, 9000, 9000]))
    b_fail, _ = submitted(world, bounded, E18)
    k.settle(b_fail, world.votes(b_fail, [1000, 2000, 3000]))
    world.warp(HOUR + 2)
    k.finalize(b_pass)
    settled("b_pass", b_pass)
    k.finalize(b_fail)
    settled("b_fail", b_fail)
    # a partial the buyer challenges and the appeal overturns to a pass: overturned, and the
    # challenger lost (the two are different things)
    b_over, _ = submitted(world, bounded, E18)
    k.settle(b_over, world.votes(b_over, [6000, 6500, 7000]))
    world.warp(2)  # a challenge comes strictly after round-0 close
    world.buyer.challenge(b_over)
    k.appeal(b_over, world.votes(b_over, [9000, 9000, 9000], round_=1))
    k.resolve(b_over)
    settled("b_overturned", b_over)
    # a partial the agent challenges and loses (the appeal moves pay by less than the delta)
    b_partial, _ = submitted(world, bounded, E18)
    k.settle(b_partial, world.votes(b_partial, [6000, 6500, 7000]))
    world.warp(2)
    world.agent.challenge(b_partial)
    k.appeal(b_partial, world.votes(b_partial, [6600, 6600, 6600], round_=1))
    k.resolve(b_partial)
    settled("b_partial", b_partial)
    # no delivery, and evaluator silence (one vote: below the threshold)
    b_nodel = world.buyer.open_job(bounded, world.agent.address, E18)
    world.agent.accept(b_nodel)
    b_silent, _ = submitted(world, bounded, E18)
    k.settle(b_silent, world.votes(b_silent, [9000]))
    world.warp(HOUR + 2)
    k.expire(b_nodel)
    settled("b_no_delivery", b_nodel)
    sc.last_evidence["bounded"] = sc.at[b_nodel]  # its Feedback is the stage's latest evidence
    k.expire(b_silent)
    settled("b_no_verdict", b_silent)
    return sc


@pytest.fixture(scope="module")
def report(world: World, scenario: Scenario) -> Report:
    return build_report(world.keeper, parse_rollout(scenario.rollout_doc()))


def test_report__shadow_stage__exact_figures_and_rule_met_at_the_boundary(world, scenario,
                                                                          report):
    s = report.stages[0]
    j = scenario.jobs
    t = world.pacts[scenario.pids["shadow"]]
    values = {"s_pass1": E18, "s_pass2": E18 // 2, "s_partial": E18 // 4, "s_pass3": E18 // 5}
    assert (s.name, s.kind, s.pact_id, s.shadow) == ("shadow-1", "shadow",
                                                     scenario.pids["shadow"], True)
    assert (s.jobs_opened, s.jobs_open, s.jobs_settled, s.verdicts) == (5, 0, 4, 4)
    assert (s.passed, s.partial, s.failed, s.no_delivery, s.no_verdict, s.cancelled) == (
        3, 1, 0, 0, 0, 1)
    assert (s.pass_rate_bps, s.partial_rate_bps, s.fail_rate_bps) == (7500, 2500, 0)
    # a shadow verdict releases the whole value whatever the band; pay(6500) is half
    assert s.value_opened == sum(values.values()) + E18
    assert s.value_released == sum(values.values())
    assert money.pay(t, 6500) == 5000
    assert s.would_release == E18 + E18 // 2 + (E18 // 4) * 5000 // BPS + E18 // 5
    assert (s.value_slashed, s.challenges, s.overturned, s.rollback_rate_bps) == (0, 0, 0, 0)
    assert s.distinct_buyers == 1  # the cancelled job's buyer is not counted
    assert (s.created_at, s.first_opened_at) == (scenario.created["shadow"],
                                                 scenario.first_opened["shadow"])
    assert s.first_settled_at == scenario.at[j["s_pass1"]]
    assert s.first_settled_after_s == scenario.at[j["s_pass1"]] - scenario.created["shadow"]
    assert s.first_opened_at >= s.created_at + 600 and s.first_settled_after_s >= 660
    assert s.last_evidence_at == scenario.last_evidence["shadow"]
    assert s.evidence_age_s == report.now - scenario.last_evidence["shadow"]
    assert [(p.job_id, p.outcome, p.score_bps, p.at) for p in s.outcomes] == [
        (j["s_pass1"], "pass", 9000, scenario.at[j["s_pass1"]]),
        (j["s_pass2"], "pass", 8500, scenario.at[j["s_pass2"]]),
        (j["s_partial"], "partial", 6500, scenario.at[j["s_partial"]]),
        (j["s_pass3"], "pass", 9500, scenario.at[j["s_pass3"]]),
    ]
    e = s.expansion
    assert (e.met, e.next_stage, e.settled, e.verdicts, e.passed, e.pass_rate_bps) == (
        True, "bounded-1", 4, 4, 3, 7500)
    assert e.reasons == [
        "settled 4 >= 4 in the last 30 days",
        "pass rate 75.00 % (3/4) >= 75.00 % in the last 30 days",
        "overturned 0 <= 0 in the last 30 days",
        "no delivery 0 <= 0 in the last 30 days",
    ]


def test_report__bounded_stage__exact_figures_overturn_and_rule_not_met(world, scenario,
                                                                        report):
    s = report.stages[1]
    j = scenario.jobs
    t = world.pacts[scenario.pids["bounded"]]
    slash = money.slashed(t, E18)
    assert slash == 10**17  # bond = 20 % of 1 ETH; half of it slashed
    assert (s.kind, s.shadow, s.jobs_opened, s.jobs_open, s.jobs_settled, s.verdicts) == (
        "bounded", False, 6, 0, 6, 4)
    assert (s.passed, s.partial, s.failed, s.no_delivery, s.no_verdict, s.cancelled) == (
        2, 1, 1, 1, 1, 0)
    assert (s.pass_rate_bps, s.partial_rate_bps, s.fail_rate_bps) == (5000, 2500, 2500)
    # released: the pass and the overturned partial (now a pass) in full, the partial whose
    # challenge failed (6500 stands: pay 50 %) in half
    assert money.pay(t, 6500) == 5000
    assert s.value_released == s.would_release == 2 * E18 + E18 // 2
    # slashed: the fail and the no delivery
    assert s.value_slashed == 2 * slash
    assert (s.challenges, s.overturned, s.rollback_rate_bps) == (2, 1, 2500)
    assert s.value_opened == 6 * E18
    assert s.first_settled_after_s == scenario.at[j["b_pass"]] - scenario.created["bounded"]
    assert s.first_settled_after_s >= 600 + 4 * 60 + 300 + HOUR
    assert s.first_opened_at == scenario.first_opened["bounded"]
    assert s.evidence_age_s == report.now - scenario.last_evidence["bounded"]
    assert [(p.job_id, p.outcome, p.score_bps, p.challenged, p.overturned, p.at)
            for p in s.outcomes] == [
        (j["b_pass"], "pass", 9000, False, False, scenario.at[j["b_pass"]]),
        (j["b_fail"], "fail", 2000, False, False, scenario.at[j["b_fail"]]),
        (j["b_overturned"], "pass", 9000, True, True, scenario.at[j["b_overturned"]]),
        (j["b_partial"], "partial", 6500, True, False, scenario.at[j["b_partial"]]),
        (j["b_no_delivery"], "no_delivery", 0, False, False, scenario.at[j["b_no_delivery"]]),
        (j["b_no_verdict"], "no_verdict", None, False, False, scenario.at[j["b_no_verdict"]]),
    ]
    resolved = {e.job_id: (e.overturned, e.challenger_won)
                for e in world.keeper.events(names="AppealResolved")}
    assert resolved == {j["b_overturned"]: (True, False), j["b_partial"]: (False, False)}
    assert [(p.to_agent, p.slashed) for p in s.outcomes] == [
        (E18, 0), (0, slash), (E18, 0), (E18 // 2, 0), (0, slash), (0, 0)]
    e = s.expansion
    assert (e.met, e.next_stage) == (False, "full-1")
    assert [c.ok for c in e.checks] == [True, False, False, False]
    assert e.reasons == [
        "settled 6 >= 4 in the last 30 days",
        "pass rate 50.00 % (2/4) < 75.00 % in the last 30 days",
        "overturned 1 > 0 in the last 30 days",
        "no delivery 1 > 0 in the last 30 days",
    ]


def test_report__stage_without_jobs__zeros_and_no_rates(report):
    s = report.stages[2]
    assert (s.name, s.jobs_opened, s.jobs_settled, s.value_released, s.value_slashed) == (
        "full-1", 0, 0, 0, 0)
    assert (s.pass_rate_bps, s.rollback_rate_bps, s.first_settled_after_s, s.first_opened_at,
            s.evidence_age_s, s.outcomes) == (None, None, None, None, None, [])
    assert (s.expansion.met, s.expansion.next_stage) == (False, None)
    assert s.expansion.reasons[:2] == ["settled 0 < 4 in the last 30 days",
                                       "pass rate n/a (no verdicts) < 75.00 % in the last 30 days"]


def test_report__matches_the_pacts_on_chain_counters(world, scenario, report):
    """An independent source: the escrow's per-pact counters, written at terminal transitions."""
    for s in report.stages:
        c = world.keeper.pact_reputation(s.pact_id)
        assert (c.settled, c.passed, c.partial, c.failed, c.no_delivery, c.no_verdict) == (
            s.verdicts, s.passed, s.partial, s.failed, s.no_delivery, s.no_verdict)
        assert (c.challenges, c.lost_or_overturned, c.released, c.slashed) == (
            s.challenges, s.overturned, s.value_released, s.value_slashed)


def test_report__window__counts_only_jobs_ended_inside_it(world, scenario):
    """The rule counts jobs that ended in (now - 30 days, now]: with now 30 days after the
    overturned job, that job is out (the boundary is exclusive), the three after it in."""
    rollout = parse_rollout(scenario.rollout_doc())
    now = scenario.at[scenario.jobs["b_overturned"]] + 30 * DAY
    r = build_report(world.keeper, rollout, now=now)
    e = r.stages[1].expansion
    assert (e.window_from, e.window_to) == (now - 30 * DAY, now)
    assert (e.settled, e.verdicts, e.passed, e.pass_rate_bps, e.overturned, e.no_delivery) == (
        3, 1, 0, 0, 0, 1)
    assert e.reasons == [
        "settled 3 < 4 in the last 30 days",
        "pass rate 0.00 % (0/1) < 75.00 % in the last 30 days",
        "overturned 0 <= 0 in the last 30 days",
        "no delivery 1 > 0 in the last 30 days",
    ]
    # the whole-stage figures do not depend on the window; evidence age does on now
    assert r.stages[1].jobs_settled == 6
    assert r.stages[1].evidence_age_s == now - scenario.last_evidence["bounded"]
    # a year later nothing is inside the window; without a window everything still counts
    later = build_report(world.keeper, rollout, now=now + 365 * DAY)
    assert (later.stages[0].expansion.met, later.stages[0].expansion.settled) == (False, 0)
    no_window = parse_rollout(scenario.rollout_doc(
        expansion={**RULE, "within_days": None}))
    always = build_report(world.keeper, no_window, now=now + 365 * DAY).stages[0].expansion
    assert (always.met, always.settled, always.window_from) == (True, 4, None)
    assert always.reasons[0] == "settled 4 >= 4"


def test_report__one_event_scan_and_cached_block_times(world, scenario, monkeypatch):
    pb = world.keeper
    scans: list[Any] = []
    real = pb.events

    def counting(*a: Any, **kw: Any) -> Any:
        scans.append((a, kw))
        return real(*a, **kw)

    monkeypatch.setattr(pb, "events", counting)
    times = BlockTimes(pb.w3)
    r = build_report(pb, parse_rollout(scenario.rollout_doc()), times=times)
    assert len(scans) == 1
    points = sum(len(s.outcomes) for s in r.stages)
    # the blocks that matter: terminal ones, creation, first open, latest evidence, the head
    assert len(times.cache) <= points + 3 * len(r.stages) + 1
    for n in list(times.cache)[:5]:
        assert times.cache[n] == pb.w3.eth.get_block(n)["timestamp"]
    assert r.now == pb.now() and r.to_block == pb.w3.eth.block_number
    again = build_report(pb, parse_rollout(scenario.rollout_doc()), times=times)
    assert again == r


def test_report__rollout_disagrees_with_the_chain__refused(world, scenario):
    pb = world.keeper
    wrong_kind = scenario.rollout_doc()
    wrong_kind["stages"][0]["kind"] = "bounded"
    with pytest.raises(InvalidInputError, match="'shadow-1' is kind bounded but pact"):
        build_report(pb, parse_rollout(wrong_kind))
    unknown = scenario.rollout_doc()
    unknown["stages"][2]["pact_id"] = 999
    with pytest.raises(UnknownObjectError, match="stage 'full-1': no pact 999"):
        build_report(pb, parse_rollout(unknown))
    with pytest.raises(InvalidInputError, match="is owned by"):
        build_report(pb, parse_rollout(scenario.rollout_doc(owner=world.buyer.address)))
    owned = build_report(pb, parse_rollout(scenario.rollout_doc(owner=world.owner.address)))
    assert owned.owner == world.owner.address
    lower = parse_rollout(scenario.rollout_doc(owner=world.owner.address.lower()))
    assert build_report(pb, lower).owner == world.owner.address
    named = build_report(pb, parse_rollout(scenario.rollout_doc(owner="0x-team")))
    assert named.owner == "0x-team"  # a name, not an address: nothing to check
    with pytest.raises(InvalidInputError, match="precedes block"):
        build_report(pb, parse_rollout(scenario.rollout_doc()), now=pb.now() - 1)


def test_report__table_and_json__show_the_figures(report):
    text = render_table(report)
    for needle in ["shadow-1 -> bounded-1: expansion rule MET",
                   "bounded-1 -> full-1: expansion rule NOT MET",
                   "[no] overturned 1 > 0 in the last 30 days",
                   "[ok] settled 4 >= 4 in the last 30 days",
                   "expansion rule: settled >= 4, pass rate >= 75.00 %, overturned <= 0"]:
        assert needle in text, needle
    rows = {}
    for line in text.splitlines():
        label, *cells = re.split(r"\s{2,}", line.strip())
        rows[label] = cells
    assert rows["stage"] == ["shadow-1", "bounded-1", "full-1"]
    assert rows["pass / partial / fail"] == ["3 / 1 / 0", "2 / 1 / 1", "0 / 0 / 0"]
    assert rows["settled"] == ["4", "6", "0"] and rows["cancelled"] == ["1", "0", "0"]
    assert rows["pass rate"] == ["75.00 %", "50.00 %", "n/a"]
    assert rows["rollback rate"] == ["0.00 %", "25.00 %", "n/a"]
    assert rows["value released"] == ["1.95 ETH", "2.5 ETH", "0 ETH"]
    assert rows["by the verdicts"] == ["1.825 ETH", "2.5 ETH", "0 ETH"]
    assert rows["value slashed"] == ["0 ETH", "0.2 ETH", "0 ETH"]
    assert rows["challenges"] == ["0", "2", "0"] and rows["overturned"] == ["0", "1", "0"]
    assert rows["expansion rule"] == ["MET", "NOT MET", "NOT MET"]
    doc = json.loads(report.model_dump_json())
    assert [s["jobs_settled"] for s in doc["stages"]] == [4, 6, 0]
    assert doc["stages"][1]["value_slashed"] == 2 * 10**17
    assert doc["stages"][1]["expansion"]["met"] is False
    assert Report.model_validate_json(report.model_dump_json()) == report


def test_plot__png__valid_image_one_panel_per_stage(report, tmp_path):
    path = plot(report, tmp_path / "out" / "rollout.png")
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE
    with Image.open(path) as im:
        im.verify()
    with Image.open(path) as im:
        assert im.format == "PNG" and im.size == (1000, 3 * 280)
    pixels = matplotlib.image.imread(path)
    assert pixels.shape[:2] == (3 * 280, 1000) and pixels.std() > 0  # not a blank canvas


# -- the rollout file -------------------------------------------------------------------------
GOOD: dict[str, Any] = {
    "name": "r", "owner": "team", "workflow": "w", "proof_model": "p",
    "stages": [{"name": "a", "pact_id": 1, "kind": "shadow"},
               {"name": "b", "pact_id": 2, "kind": "bounded"}],
    "expansion": {"min_settled": 20, "min_pass_rate_bps": 9000, "max_overturned": 0,
                  "within_days": 30},
}


def _with(path: str, value: Any) -> dict[str, Any]:
    doc = json.loads(json.dumps(GOOD))
    *parents, last = path.split(".")
    node: Any = doc
    for p in parents:
        node = node[int(p)] if p.isdigit() else node[p]
    if value is _DROP:
        del node[last]
    else:
        node[int(last) if last.isdigit() else last] = value
    return doc


_DROP = object()


@pytest.mark.parametrize(("path", "value", "named"), [
    ("workflow", _DROP, "workflow: Field required"),
    ("stagez", [], "stagez: Extra inputs are not permitted"),
    ("name", 123, "name: Input should be a valid string"),
    ("proof_model", "", "proof_model: String should have at least 1 character"),
    ("owner", "0x" + "aB" * 20, "owner: Value error, bad checksum"),
    ("stages", [], "stages: List should have at least 1 item"),
    ("stages.0.kind", "canary", "stages[0].kind: Input should be 'shadow', 'bounded' or 'full'"),
    ("stages.1.pact_id", "2", "stages[1].pact_id: Input should be a valid integer"),
    ("stages.1.pact_id", 2.5, "stages[1].pact_id: Input should be a valid integer"),
    ("stages.1.pact_id", 0, "stages[1].pact_id: Input should be greater than or equal to 1"),
    ("stages.1.name", "a", "stages: Value error, two stages with the same name: a"),
    ("stages.1.pact_id", 1, "stages: Value error, two stages with the same pact_id: 1"),
    ("stages.0.kind", "full", "stages: Value error, stages go shadow -> bounded -> full"),
    ("stages.0.extra", 1, "stages[0].extra: Extra inputs are not permitted"),
    ("expansion.min_pass_rate_bps", 10_001,
     "expansion.min_pass_rate_bps: Input should be less than or equal to 10000"),
    ("expansion.min_pass_rate_bps", 90.5, "expansion.min_pass_rate_bps: Input should be a valid "
     "integer"),
    ("expansion.min_settled", -1, "expansion.min_settled: Input should be greater than or equal"),
    ("expansion.max_overturned", True, "expansion.max_overturned: Input should be a valid integer"),
    ("expansion.within_days", 0, "expansion.within_days: Input should be greater than or equal"),
    ("expansion.max_no_delivery", "none", "expansion.max_no_delivery: Input should be a valid"),
    ("expansion", _DROP, "expansion: Field required"),
])
def test_load_rollout__wrong_field__invalid_input_naming_it(tmp_path, path, value, named):
    f = tmp_path / "rollout.yaml"
    f.write_text(yaml.safe_dump(_with(path, value)))
    with pytest.raises(InvalidInputError) as info:
        load_rollout(f)
    assert named in str(info.value)
    assert str(f) in str(info.value)


def test_load_rollout__several_wrong_fields__each_named(tmp_path):
    doc = _with("stages.0.kind", "canary")
    doc["expansion"]["min_settled"] = "twenty"
    f = tmp_path / "rollout.json"
    f.write_text(json.dumps(doc))
    with pytest.raises(InvalidInputError) as info:
        load_rollout(f)
    assert "stages[0].kind" in str(info.value) and "expansion.min_settled" in str(info.value)


@pytest.mark.parametrize(("text", "named"), [
    ("stages: [", "is not valid YAML/JSON"),
    ("- a\n- b\n", "must hold a mapping of fields"),
])
def test_load_rollout__not_a_mapping__refused(tmp_path, text, named):
    f = tmp_path / "rollout.yaml"
    f.write_text(text)
    with pytest.raises(InvalidInputError, match=named):
        load_rollout(f)
    with pytest.raises(InvalidInputError, match="cannot read rollout file"):
        load_rollout(tmp_path / "missing.yaml")


def test_load_rollout__example_and_json__load(tmp_path):
    ex = load_rollout(ROOT / "examples" / "rollout.yaml")
    assert [(s.name, s.kind.value) for s in ex.stages] == [
        ("shadow", "shadow"), ("bounded", "bounded"), ("full", "full")]
    assert (ex.expansion.min_settled, ex.expansion.min_pass_rate_bps, ex.expansion.within_days) \
        == (20, 9000, 30)
    f = tmp_path / "r.json"
    f.write_text(json.dumps(GOOD))
    assert load_rollout(f) == parse_rollout(GOOD)
