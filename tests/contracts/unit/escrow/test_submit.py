"""submit: the deliverable hash, the evaluation deadline, and every refusal."""

import boa

from tests.contracts.conftest import E18, keccak_str
from tests.contracts.unit.escrow.conftest import SUBMITTED, accepted_job, pause, the_event

DELIVERABLE = keccak_str("deliverable")


def _submit(world, jid, deliverable=DELIVERABLE, agent=None, terms=None, uri=""):
    with boa.env.prank((agent or world.agent).address):
        world.escrow.submit(jid, terms or world.terms_of(jid), deliverable, uri)


def test_submit__accepted_job__records_deliverable_and_eval_deadline(world):
    pid, t = world.create_pact()
    world.stake_agent()
    jid = accepted_job(world, pid)
    _submit(world, jid, uri="ipfs://deliverable")
    ev = the_event(world, "JobSubmitted")
    j = world.job(jid)
    assert j["state"] == SUBMITTED
    assert j["deliverable"] == DELIVERABLE
    assert j["deadline"] == world.now() + t.eval_window
    assert j["close_at"] == j["deadline"]
    assert (ev.job_id, ev.deliverable_hash, ev.uri, ev.eval_deadline) == (jid, DELIVERABLE, "ipfs://deliverable", j["deadline"])


def test_submit__open_job__reverts(world):
    pid, _ = world.create_pact()
    jid = world.open(pid, E18)
    with boa.reverts("escrow: not accepted"):
        _submit(world, jid)


def test_submit__already_submitted__reverts(world):
    pid, _ = world.create_pact()
    world.stake_agent()
    jid = accepted_job(world, pid)
    _submit(world, jid)
    with boa.reverts("escrow: not accepted"):
        _submit(world, jid, deliverable=keccak_str("other"))
    assert world.job(jid)["deliverable"] == DELIVERABLE


def test_submit__not_the_agent__reverts(world):
    pid, _ = world.create_pact()
    world.stake_agent()
    jid = accepted_job(world, pid)
    with boa.reverts("escrow: not agent"):
        _submit(world, jid, agent=world.buyer)


def test_submit__at_work_deadline__submits(world):
    pid, _ = world.create_pact()
    world.stake_agent()
    jid = accepted_job(world, pid)
    world.warp(world.job(jid)["deadline"] - world.now())
    _submit(world, jid)
    assert world.job(jid)["state"] == SUBMITTED


def test_submit__one_second_after_work_deadline__reverts(world):
    pid, _ = world.create_pact()
    world.stake_agent()
    jid = accepted_job(world, pid)
    world.warp(world.job(jid)["deadline"] + 1 - world.now())
    with boa.reverts("escrow: work deadline passed"):
        _submit(world, jid)


def test_submit__empty_deliverable__reverts(world):
    pid, _ = world.create_pact()
    world.stake_agent()
    jid = accepted_job(world, pid)
    with boa.reverts("escrow: empty deliverable"):
        _submit(world, jid, deliverable=b"\x00" * 32)


def test_submit__altered_terms__reverts(world):
    pid, t = world.create_pact()
    world.stake_agent()
    jid = accepted_job(world, pid)
    with boa.reverts("escrow: wrong pact terms"):
        _submit(world, jid, terms=t.model_copy(update={"eval_window": 2 * t.eval_window}).as_tuple())


def test_submit__paused__submits(world):
    pid, _ = world.create_pact()
    world.stake_agent()
    jid = accepted_job(world, pid)
    pause(world)
    _submit(world, jid)
    assert world.job(jid)["state"] == SUBMITTED
