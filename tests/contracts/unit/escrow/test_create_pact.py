"""create_pact: the stored terms hash, the owner, the event, and job calls bound to the terms."""

import boa
from eth_abi import encode
from eth_hash.auto import keccak

from tests.contracts.conftest import E18, keccak_str
from tests.contracts.unit.escrow.conftest import pause, the_event

TERMS_ABI = ("(address,uint256,uint256,bytes32,uint256,uint256,uint256,uint256,uint256,uint256,"
             "uint256,uint256,address,bool,uint256,uint256,uint256,uint256,uint256,uint256,"
             "uint256,uint256,uint256,uint256,bool,uint256,uint256,uint256)")


def terms_hash(t) -> bytes:
    return keccak(encode([TERMS_ABI], [t.as_tuple()]))


def test_create_pact__coherent_terms__stores_abi_encoded_hash_and_owner(world):
    pid, t = world.create_pact()
    assert pid == 1
    assert world.escrow.pact_count() == 1
    assert world.escrow.pact_hash(pid) == terms_hash(t)
    assert world.escrow.pact_owner(pid) == world.pact_owner.address


def test_pact_terms_hash__client_side__equals_the_stored_pact_hash(world):
    # the client's PactTerms.hash() is what every job word commits to (ADR 012)
    for over in ({}, {"shadow": True, "bond_bps": 0, "slash_bps": 0, "silence_release": True,
                      "challenge_window": 0}):
        pid, t = world.create_pact(**over)
        assert t.hash() == world.escrow.pact_hash(pid) == terms_hash(t)


def test_create_pact__coherent_terms__emits_pact_created(world):
    t = world.terms()
    with boa.env.prank(world.pact_owner.address):
        pid = world.escrow.create_pact(t.as_tuple())
    ev = the_event(world, "PactCreated")
    assert (ev.pact_id, ev.owner, ev.terms_hash) == (pid, world.pact_owner.address, terms_hash(t))
    assert tuple(ev.terms) == t.as_tuple()



def test_create_pact__incoherent_terms__reverts_with_the_term(world):
    with boa.env.prank(world.pact_owner.address), boa.reverts("pact: slash shares must sum to 10000"):
        world.escrow.create_pact(world.terms(slash_burn_bps=2001).as_tuple())
    assert world.escrow.pact_count() == 0


def test_create_pact__paused__reverts(world):
    pause(world)
    with boa.env.prank(world.pact_owner.address), boa.reverts("escrow: paused"):
        world.escrow.create_pact(world.terms().as_tuple())


def test_open__terms_of_another_pact__reverts_wrong_pact_terms(world):
    pid1, _ = world.create_pact()
    _, t2 = world.create_pact(spec_hash=keccak_str("spec:v2"))
    cv, av = world.versions(t2)
    with boa.env.prank(world.buyer.address), boa.reverts("escrow: wrong pact terms"):
        world.escrow.open(t2.as_tuple(), pid1, world.agent.address, E18, cv, av, value=E18 + t2.evaluator_fee)
