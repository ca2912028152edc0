"""The main job, `pactbond demo`, run end to end; its outcome asserted job by job from the
chain before it stops, and nothing left running afterwards."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pactbond import JobState
from pactbond.cli.demo import AGENT, APPEAL, BUGGY, BUYER, COMMITTEE, SILENT, run_demo
from pactbond.devnet import dev_account

E18 = 10**18
FEE = E18 // 100


def _addr(i: int) -> str:
    return dev_account(i).address


def test_demo_outcome_job_by_job(tmp_path: Path, capsys: Any) -> None:
    seen: dict[str, Any] = {}

    def inspect(d: Any, res: dict[str, Any]) -> None:
        pb = d.client(BUYER)
        jobs = res["jobs"]
        seen["pids"] = [*d.pids, d.devnet.pid]
        state = {k: pb.job(j).state for k, j in jobs.items()}
        assert state == {
            "shadow_pass": JobState.SETTLED, "pass": JobState.SETTLED,
            "partial": JobState.SETTLED, "fail": JobState.SETTLED,
            "no_delivery": JobState.EXPIRED_NO_DELIVERY,
            "silence": JobState.EXPIRED_NO_VERDICT, "overturned": JobState.SETTLED,
        }
        settled = {e.job_id: e for e in pb.events(names="JobSettled")}
        # shadow pass: the value to the agent; bounded pass: all of it; 70 % with bands
        # 50 / 90 pays floor(10,000 x 2,000 / 4,000) = 50 %; a fail pays nothing and slashes the
        # 0.5 ETH bond (80 % to the buyer, 20 % burned)
        assert (settled[jobs["shadow_pass"]].score_bps, settled[jobs["shadow_pass"]].to_agent) \
            == (10_000, E18 // 2)
        assert (settled[jobs["pass"]].to_agent, settled[jobs["pass"]].slashed) == (E18, 0)
        assert (settled[jobs["partial"]].score_bps, settled[jobs["partial"]].to_agent) \
            == (7_000, E18 // 2)
        assert (settled[jobs["fail"]].to_agent, settled[jobs["fail"]].slashed) == (0, E18 // 2)
        # the buggy pair passed failing code 2-1; the appeal overturned it to 0
        o = settled[jobs["overturned"]]
        assert (o.score_bps, o.to_agent, o.slashed) == (0, 0, E18 // 2)
        votes = list(pb.events(names="VoteCounted", job_id=jobs["overturned"]))
        by_round = {r: sorted((e.member, e.score_bps) for e in votes if e.round == r)
                    for r in (0, 1)}
        assert by_round[0] == sorted([(_addr(COMMITTEE[0]), 0)]
                                     + [(_addr(i), 10_000) for i in BUGGY])
        assert by_round[1] == sorted((_addr(i), 0) for i in APPEAL)
        pen = {e.member: e for e in pb.events(names="EvaluatorPenalized")}
        assert {m for m, e in pen.items() if e.job_id == jobs["overturned"]} \
            == {_addr(i) for i in BUGGY}
        assert all(pen[_addr(i)].to == _addr(BUYER) for i in BUGGY)
        assert {m for m, e in pen.items() if e.job_id == jobs["silence"]} \
            == {_addr(i) for i in SILENT}
        # stakes: the buggy members and the silent committee lost one 1 ETH penalty each
        for i in COMMITTEE + APPEAL + SILENT:
            lost = E18 if i in BUGGY or i in SILENT else 0
            assert pb.evaluator_stake(_addr(i)).stake == 10 * E18 - lost, i
            assert pb.evaluator_stake(_addr(i)).reserved == 0, i
        # the agent staked 5 ETH, earned 0.5 + 1 + 0.5, lost bonds of 0.5 (fail),
        # 0.25 (no delivery) and 0.5 (overturned)
        st = pb.agent_stake(_addr(AGENT))
        assert (st.free, st.locked) == (5 * E18 + 2 * E18 - E18 - E18 // 4, 0)
        # the buyer's credits: partial 0.5; fail 1 + 0.4; no delivery 0.5 + fee + 0.2;
        # silence 0.5 + fee; overturned 1 + 0.4 + two penalties 2 + challenge bond 0.1 less
        # the 0.02 appeal fee; plus the fee remainders (1 wei each of five 3-way fee splits)
        # and the appeal fee's remainder (2 wei of a 3-way split)
        expected = (E18 // 2 + (E18 + 4 * E18 // 10) + (E18 // 2 + FEE + E18 // 5)
                    + (E18 // 2 + FEE) + (E18 + 4 * E18 // 10 + 2 * E18 + E18 // 10
                                          - E18 // 50) + 5 + 2)
        assert pb.credit(_addr(BUYER)) == expected
        assert pb.burned() == E18 // 10 + E18 // 20 + 3 * E18 + E18 // 10
        # exposure: 2 ETH, +1 after the pass, unchanged by the partial, reset by the fail
        assert [c for _, c in res["caps"]] == [2 * E18, 3 * E18, 3 * E18, 2 * E18]
        rep = {p: pb.pact_reputation(p) for p in res["pid"].values()}
        b = rep[res["pid"]["bounded"]]
        assert (b.passed, b.partial, b.failed, b.no_delivery) == (1, 1, 1, 1)
        c = rep[res["pid"]["code"]]
        assert (c.failed, c.challenges, c.lost_or_overturned) == (1, 1, 1)
        assert rep[res["pid"]["silent"]].no_verdict == 1
        assert rep[res["pid"]["shadow"]].passed == 1
        seen["ok"] = True

    assert run_demo(workdir=str(tmp_path), inspect=inspect) == 0
    assert seen.get("ok")
    out = capsys.readouterr().out
    for line in ("CHALLENGED by buyer", "verdict OVERTURNED", "EXPIRED (evaluator silence)",
                 "EXPIRED (no delivery)", "Rollout report", "expansion rule"):
        assert line in out
    assert (tmp_path / "rollout.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    for pid in seen["pids"]:  # every process it started is gone
        try:
            os.kill(pid, 0)
            alive = Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
        except ProcessLookupError:
            alive = False
        assert not alive, f"pid {pid} still running"
