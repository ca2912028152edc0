import boa
from tests.contracts.conftest import E18, HOUR, DAY

def test_probe(world):
    pid, t = world.create_pact()
    print(world.escrow.get_logs())
    world.stake_agent()
    jid = world.open(pid, E18)
    print(world.escrow.get_logs())
    world.accept(jid)
    world.warp(DAY + 1)
    with boa.env.prank(world.attacker.address):
        world.facet.expire(jid, t.as_tuple())
    logs = world.facet.get_logs()
    print(logs)
    print([type(e).__name__ for e in logs])
    with boa.reverts("escrow: not expirable"):
        world.facet.expire(jid, t.as_tuple())
    with boa.reverts("escrow: unknown job"):
        world.escrow.accept(99, t.as_tuple())
    print(world.escrow.agent_counts(world.agent.address))
