"""preview_settlement and preview_appeal against the chain: random pact terms, values and
scores, settled through the client (vote batches, finalize, challenge, appeal, resolve)."""

from __future__ import annotations

import random
from collections import defaultdict

import pytest
from eth_hash.auto import keccak

from pactbond import JobState, money
from pactbond.client import AgentStake
from tests.client.conftest import E18, HOUR, World, make_world

PACTS, JOBS_PER_PACT = 20, 11  # 220 (terms, value, score) cases


@pytest.fixture(scope="module")
def world(devnet, manifest) -> World:
    # every case is open at once: each evaluator reserves a 5 ETH penalty per job
    return make_world(devnet, manifest, stake=1500 * E18, agent_stake=1000 * E18)


def random_terms(world: World, rng: random.Random, shadow: bool) -> dict:
    fail = rng.choice([0, 10_000, rng.randrange(10_001), rng.randrange(10_001)])
    pass_ = rng.choice([fail, 10_000, rng.randrange(fail, 10_001)])
    ins = rng.randrange(10_001)
    burn = rng.randrange(10_001 - ins)
    return dict(
        fail_below_bps=fail, pass_at_bps=pass_,
        bond_bps=0 if shadow else rng.choice([0, 10_000, rng.randrange(10_001)]),
        bond_cap=rng.choice([0, rng.randrange(1, 2 * E18), 2**127]),
        slash_bps=0 if shadow else rng.choice([0, 10_000, rng.randrange(10_001)]),
        slash_buyer_bps=10_000 - ins - burn, slash_insurance_bps=ins, slash_burn_bps=burn,
        shadow=shadow, evaluator_fee=rng.choice([0, 1, 2, rng.randrange(10**16)]),
        cap_initial=10**24, cap_max=10**24, cap_step=rng.randrange(E18),
        spec_hash=keccak(rng.randbytes(8)), eval_window=HOUR,
    )


def random_score(rng: random.Random, t) -> int:
    near = [0, 10_000, t.fail_below_bps, t.pass_at_bps, t.fail_below_bps - 1, t.pass_at_bps - 1,
            t.fail_below_bps + 1, t.pass_at_bps + 1, rng.randrange(10_001)]
    return min(max(rng.choice(near), 0), 10_000)


def test_preview_settlement__220_random_cases__equals_chain(world):
    rng = random.Random(20261126)
    buyer, agent, keeper = world.buyer, world.agent, world.keeper
    start = keeper.w3.eth.block_number + 1
    free0 = agent.agent_stake(agent.address).free
    cases: dict[int, tuple[int, list[int], money.Settlement]] = {}  # jid -> pact, scores, preview
    for p in range(PACTS):
        pid = world.pact(**random_terms(world, rng, shadow=p % 7 == 3))
        t = world.pacts[pid]
        for _ in range(JOBS_PER_PACT):
            value = rng.choice([1, 3, 10_001, rng.randrange(1, 3 * E18), rng.randrange(E18)])
            jid = world.job(pid, value)
            scores = [random_score(rng, t) for _ in range(rng.choice([2, 3, 3, 3]))]
            # before any vote the preview counts every reserved member; name 2 voters explicitly
            preview = buyer.preview_settlement(jid, money.median(scores),
                                               voters=2 if len(scores) == 2 else None)
            cases[jid] = (pid, scores, preview)
    # each member signs one VoteBatch per pact; a keeper posts each pact's batches in one call
    by_pact: dict[int, list[int]] = defaultdict(list)
    for jid, (pid, _, _) in cases.items():
        by_pact[pid].append(jid)
    for pid, jids in by_pact.items():
        signed = []
        for k, member in enumerate(world.evals):
            votes = [(jid, cases[jid][1][k], keccak(b"ev%d" % jid)) for jid in jids
                     if k < len(cases[jid][1])]
            signed.append(member.sign_batch(member.vote_batch(votes)))
        keeper.settle_batch(pid, 0, signed)
    world.warp(HOUR + 1)  # two-vote jobs have a verdict; finalize after the evaluation window
    for jid, (_, scores, _) in cases.items():
        if len(scores) == 2:
            assert keeper.job(jid).state == JobState.VERDICT
            keeper.finalize(jid)
    got: dict[int, dict] = defaultdict(lambda: defaultdict(int))
    for ev in keeper.events(start, names=["JobSettled", "Credited", "Burned"]):
        g = got[ev.job_id]
        if ev.name == "JobSettled":
            g.update(score=ev.score_bps, to_agent=ev.to_agent, slashed=ev.slashed, settled=1)
        elif ev.name == "Burned":
            g["burned"] += ev.amount
        else:
            g[ev.account] += ev.amount
    total_to_agent = total_slashed = 0
    for jid, (pid, scores, p) in cases.items():
        t, g = world.pacts[pid], got[jid]
        want = {
            "score": money.median(scores), "to_agent": p.to_agent, "slashed": p.slashed,
            "settled": 1, "burned": p.burned, buyer.address: p.to_buyer,
            world.insurance: p.to_insurance,
            **{world.evals[k].address: p.fee_each for k in range(len(scores))},
        }
        assert {k: g[k] for k in want} == want, (jid, t, scores)
        assert keeper.job(jid).state == JobState.SETTLED
        total_to_agent += p.to_agent
        total_slashed += p.slashed
    assert len(cases) >= 200
    assert agent.agent_stake(agent.address) == AgentStake(
        free=free0 + total_to_agent - total_slashed, locked=0)


@pytest.mark.parametrize("challenger, r1", [("buyer", [1000, 2000, 1500]),
                                            ("agent", [8500, 9000, 9500]),
                                            ("buyer", [6900, 7000, 7100])])
def test_preview_appeal__challenge_and_resolve__equals_chain(world, challenger, r1):
    pid = world.pact(challenge_window=HOUR, appeal_window=HOUR, challenge_bond=E18 // 10 + 7,
                     appeal_fee=E18 // 100 + 1, min_appeal_delta_bps=500)
    jid = world.job(pid, E18 + 13)
    world.keeper.settle(jid, world.votes(jid, [7000, 7200, 6800]))  # closes round 0: s0 = 7000
    party = world.buyer if challenger == "buyer" else world.agent
    other = world.agent if challenger == "buyer" else world.buyer
    before = party.preview_appeal(jid, r1, challenger=party.address)
    world.warp(1)
    party.challenge(jid)
    preview = world.keeper.preview_appeal(jid, r1)  # the challenger now read from the job
    assert preview == before
    start = world.keeper.w3.eth.block_number + 1
    world.keeper.appeal(jid, world.votes(jid, r1, round_=1))
    world.keeper.resolve(jid)  # every appeal member voted: resolve before the appeal deadline
    evs = list(world.keeper.events(start, job_id=jid))
    resolved = next(e for e in evs if e.name == "AppealResolved")
    a = preview.appeal
    assert (resolved.overturned, resolved.challenger_won, resolved.score_bps) == (
        a.overturned, a.challenger_won, a.final_score)
    credited: dict[str, int] = defaultdict(int)
    for e in evs:
        if e.name == "Credited":
            credited[e.account] += e.amount
    penalized = {e.member for e in evs if e.name == "EvaluatorPenalized"}
    assert penalized == set(preview.penalized_members)
    s = preview.settlement
    favoured = world.buyer.address if a.favoured == "buyer" else world.agent.address
    penalties = preview.penalty * len(penalized)
    assert credited[party.address] == a.to_challenger + (
        s.to_buyer if party is world.buyer else 0) + (penalties if favoured == party.address else 0)
    assert credited[other.address] == a.to_other + (
        s.to_buyer if other is world.buyer else 0) + (penalties if favoured == other.address else 0)
    settled = next(e for e in evs if e.name == "JobSettled")
    assert (settled.to_agent, settled.slashed) == (s.to_agent, s.slashed)
    for m in world.appeal:
        assert credited[m.address] == a.fee_each
