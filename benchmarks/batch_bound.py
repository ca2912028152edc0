"""The heaviest full `settle_batch` calls the escrow's bounds allow, against EIP-7825's 2**24
per-transaction gas cap (issue 7: "the batch bound chosen so a full batch stays well under").

Run: `.venv/bin/python benchmarks/batch_bound.py` (a few minutes). Writes
benchmarks/results/batch_bound.json and prints a line per scenario.

A call carries at most MAX_BATCH (256) items and settles at most MAX_BATCH_SETTLES (32) jobs
(ADR 013). A job settles in the call when the pact's challenge window is zero and the call's
votes close round 0 with a verdict; every other job records its votes (and its verdict) only.
The heaviest call fills both bounds: 32 settlements, each of a job whose agent and buyer are new
to the escrow (so its reputation words and the buyer's credit are new slots, 22,100 gas each),
with a failing score (the slash splits to buyer, insurance and burn), and the rest of the 256
items as verdict-only votes on jobs with new agents and buyers too. Scenarios, on a fresh
anvil (prague), a committee of c members with threshold 1, zero challenge window:
  c = 2: 32 jobs settle (64 items) + 192 jobs reach a verdict (one vote each)
  c = 3: 32 settle (96 items) + 160 verdicts
  c = 16: 16 settle (256 items: every member on every job, so each settlement pays 16 fee
          credits and ends 16 reservations)
A member that is a contract wallet adds its ERC-1271 check (at most 250,000 gas, one per
member and call) on top: see `erc1271_allowance` in the output.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import gas as bench
from pactbond import JobState
from pactbond.votes import MAX_BATCH, MAX_BATCH_SETTLES

RESULTS = Path(__file__).resolve().parent / "results" / "batch_bound.json"
CAP = 2**24
ERC1271_GAS = 250_000  # the escrow's gas cap on one isValidSignature call
FAIL = 1000  # below fail_below_bps (5,000): the bond is slashed


def scenario(c: int) -> dict[str, Any]:
    settle = min(MAX_BATCH_SETTLES, MAX_BATCH // c)
    verdict = (MAX_BATCH - settle * c)  # one vote each
    jobs = settle + verdict
    base = 26
    with bench.Devnet(accounts=base + c + 2 * jobs, balance_eth=10**7,
                  gas_limit=bench.BLOCK_GAS_LIMIT) as net:
        b = bench.Bench(net)
        b.setup()
        ch = b.ch
        extra = [net.account(i) for i in range(base, net.accounts)]
        members, agents, buyers = extra[:c], extra[c:c + jobs], extra[c + jobs:]
        cid = ch.call(b.registry, "committee_count") + 1
        ch.tx(b.admin, b.registry, "create_committee", bench.ETH, bench.HOUR,
              [m.address for m in members], 1, bench.BOND, bench.PENALTY)
        vid = ch.call(b.registry, "current_version", cid)
        for m in members:
            ch.tx(m, b.registry, "accept_version", vid)
            ch.tx(m, b.escrow, "stake", bench.ETH, bench.MEMBER_STAKE, True,
                  value=bench.MEMBER_STAKE)
        t = b.pacts[b.pact_b].model_copy(update={"committee_id": cid})
        pid = ch.call(b.escrow, "pact_count") + 1
        ch.tx(b.pact_owner, b.escrow, "create_pact", t.as_tuple())
        for x in (cid, t.appeal_committee_id):
            ch.tx(b.admin, b.registry, "approve_pact", x, pid, t.as_tuple())
        b.pacts[pid] = t
        cv, av = b.versions(t)
        jids = []
        for a, buyer in zip(agents, buyers, strict=True):
            ch.tx(a, b.escrow, "stake", bench.ETH, bench.E18 // 10, False, value=bench.E18 // 10)
            jid = ch.call(b.escrow, "job_count") + 1
            b.track(ch.tx(buyer, b.escrow, "open", t.as_tuple(), pid, a.address, bench.VALUE, cv,
                          av, value=bench.VALUE + bench.FEE))
            b.track(ch.tx(a, b.escrow, "accept", jid, t.as_tuple(), b.job(jid).as_tuple()))
            b.track(ch.tx(a, b.escrow, "submit", jid, t.as_tuple(), b.job(jid).as_tuple(),
                          bench.keccak(f"d:{jid}".encode()), ""))
            jids.append(jid)
        deadline = min(b.job(j).deadline for j in jids)
        # who votes on what: every member on the settling jobs, member 0 alone on the rest
        voters = {j: members if k < settle else members[:1] for k, j in enumerate(jids)}
        dom = bench.eip712.domain_separator(ch.chain_id, b.escrow.address)
        by_member, sigs = [], []
        for m in members:
            mine = [j for j in jids if m in voters[j]]
            batch = bench.VoteBatch(round=0, deadline=deadline, votes=[bench.Vote(
                job_id=j, deliverable_hash=b.job(j).deliverable, spec_hash=t.spec_hash,
                score_bps=FAIL, evidence_hash=bench.keccak(f"e:{j}:{m.address}".encode()), round=0,
                deadline=deadline) for j in mine])
            sig = bench.eip712.sign_digest(m.key, bench.eip712.digest(dom, batch.struct_hash()))
            sb = bench.SignedVoteBatch(batch=batch, member=m.address, signature=sig)
            by_member.append(sb.items())
            sigs.append(sb.signature_tuple())
        items = [bm[j] for j in jids for bm in by_member if j in bm]
        assert len(items) == MAX_BATCH
        esc = ch.w3.eth.contract(address=b.escrow.address, abi=bench.merged_escrow_abi())
        r = b.track(ch.tx(b.keeper, esc, "settle_batch", pid, t.as_tuple(), 0,
                          [b.job(j).as_tuple() for j in jids], items, sigs,
                          gas=bench.BLOCK_GAS_LIMIT // 2))
        states = [b.state(j) for j in jids]
        settled = sum(s == JobState.SETTLED for s in states)
        assert settled == settle, f"{settled} settled, expected {settle}"
        gas = int(r["gasUsed"], 16)
        with_1271 = gas + c * ERC1271_GAS
        return {"members": c, "threshold": 1, "items": len(items), "jobs": jobs,
                "settled": settled, "verdict_only": jobs - settled, "gas": gas,
                "share_of_cap": round(gas / CAP, 3),
                "erc1271_allowance": with_1271, "share_with_erc1271": round(with_1271 / CAP, 3)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--members", type=int, nargs="*", default=[2, 3, 16])
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args()
    t0 = time.perf_counter()
    rows = []
    for c in args.members:
        row = scenario(c)
        rows.append(row)
        print(f"c = {c:>2}: {row['items']} items, {row['settled']} settle + "
              f"{row['verdict_only']} verdict-only: {row['gas']:,} gas = "
              f"{row['share_of_cap']:.0%} of 2**24; with every member an ERC-1271 wallet at "
              f"its 250k cap: {row['erc1271_allowance']:,} ({row['share_with_erc1271']:.0%})",
              flush=True)
    out = {"cap": CAP, "max_batch": MAX_BATCH, "max_batch_settles": MAX_BATCH_SETTLES,
           "scenarios": rows, "seconds": round(time.perf_counter() - t0, 1)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
