"""Committees of real oracle processes settle jobs end to end over a private anvil."""

from __future__ import annotations

from pactbond import JobState
from pactbond.devnet import dev_account
from tests.client.conftest import BOND, E18, PENALTY
from tests.oracle.conftest import deliver, schema_spec, wait_for


def settled_events(world, jid):
    return list(world.keeper.events(names="JobSettled", job_id=jid))


def test_two_of_three_committee_settles_a_job(world, cluster, docs):
    spec = schema_spec(docs)
    pid = world.pact(spec_hash=spec, challenge_window=0)
    procs = cluster.oracles([4, 5, 6], [world.cid])
    agent_free = world.agent.agent_stake(world.agent.address).free
    # the agent uploads to one member only; the others fetch it from their peer
    jid = deliver(world, pid, procs[0].api, {"answer": "42"})

    j = wait_for(lambda: (j := world.keeper.job(jid)).state == JobState.SETTLED and j,
                 timeout=60, what="job settled")
    assert sorted(j.round0.values()) == [10_000, 10_000, 10_000]
    assert len(settled_events(world, jid)) == 1
    # a pass: the whole value to the agent's free stake, and the fee to the three voters
    assert world.agent.agent_stake(world.agent.address).free == agent_free + E18
    counted = {e.member: e for e in world.keeper.events(names="VoteCounted", job_id=jid)}
    for p in procs:
        v = p.get(f"/votes/{jid}").json()
        assert v["member"] == p.member
        assert counted[p.member].evidence_hash.hex() == v["evidence_hash"].removeprefix("0x")
        packet = p.get(f"/evidence/{v['evidence_hash']}").json()
        assert packet["job_id"] == jid and packet["score_bps"] == 10_000
        assert packet["evaluator"] == {"name": "json-schema", "version": "1",
                                       "deterministic": True}


def test_three_of_five_with_one_oracle_down_still_settles(world, cluster, docs):
    members = [4, 5, 6, 13, 14]
    admin = world.admin
    cid = admin.create_committee([dev_account(i).address for i in members], 3, BOND, PENALTY)
    from tests.client.conftest import client

    for i in (13, 14):
        c = client(world.devnet, world.manifest, i)
        c.accept_version(c.current_version(cid))
        c.stake(100 * E18, evaluator=True)
    for e in world.evals:
        e.accept_version(e.current_version(cid))
    # an appeal committee's threshold is at least the committee's: a 3-of-3 of accounts 7-9
    aid = admin.create_committee([a.address for a in world.appeal], 3, BOND, PENALTY)
    for a in world.appeal:
        a.accept_version(a.current_version(aid))
    spec = schema_spec(docs)
    pid = world.pact(committee_id=cid, appeal_committee_id=aid, spec_hash=spec,
                     challenge_window=60, appeal_window=60)
    procs = cluster.oracles([4, 5, 6, 13], [cid], peers_of=[14])  # 14 is down
    jid = deliver(world, pid, procs[1].api, {"answer": ""})  # fails the schema: score 0

    j = wait_for(lambda: len((j := world.keeper.job(jid)).round0) == 4 and j, timeout=60,
                 what="four votes counted")
    assert j.state == JobState.VERDICT
    # round 0 stays open for the silent member until E; then the challenge window; the
    # oracles' keeper duty finalizes once both have passed on the chain's clock
    world.warp(j.deadline - world.keeper.now() + 61)
    j = wait_for(lambda: (j := world.keeper.job(jid)).state == JobState.SETTLED and j,
                 timeout=60, what="finalized by a keeper")
    assert sorted(j.round0.values()) == [0, 0, 0, 0]
    assert len(settled_events(world, jid)) == 1
