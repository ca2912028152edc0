"""The client library over a real anvil: a full job lifecycle and its typed refusals."""

from __future__ import annotations

import pytest
from eth_hash.auto import keccak

from pactbond import KeyWallet, Pactbond, PactTerms
from pactbond.client import JobState
from pactbond.errors import (
    ConnectionMismatchError,
    InsufficientFundsError,
    InvalidInputError,
    NotAuthorizedError,
    TermsError,
    TimingError,
    WrongStateError,
)

E18 = 10**18


def wallet(devnet, i: int) -> KeyWallet:
    return KeyWallet(devnet.account(i))


@pytest.fixture(scope="module")
def roles(devnet, manifest):
    """owner 0, committee admin 1, buyer 2, agent 3, evaluators 4-6, appeal evaluators 7-9."""
    c = {name: Pactbond.connect(devnet.url, manifest, wallet(devnet, i))
         for name, i in [("owner", 0), ("admin", 1), ("buyer", 2), ("agent", 3)]}
    evals = [Pactbond.connect(devnet.url, manifest, wallet(devnet, i)) for i in (4, 5, 6)]
    appeal = [Pactbond.connect(devnet.url, manifest, wallet(devnet, i)) for i in (7, 8, 9)]
    cid = c["admin"].create_committee([e.wallet.address for e in evals], 2, 10 * E18, 5 * E18)
    aid = c["admin"].create_committee([e.wallet.address for e in appeal], 2, 10 * E18, 5 * E18)
    for e, committee in [*[(x, cid) for x in evals], *[(x, aid) for x in appeal]]:
        e.accept_version(e.current_version(committee))
        e.stake(20 * E18, evaluator=True)
    terms = PactTerms(committee_id=cid, appeal_committee_id=aid, spec_hash=keccak(b"spec"),
                      fail_below_bps=5000, pass_at_bps=8000, bond_bps=2000, bond_cap=10 * E18,
                      slash_bps=5000, evaluator_fee=E18 // 100, challenge_bond=E18 // 10,
                      appeal_fee=E18 // 100, min_appeal_delta_bps=1000, accept_window=3600,
                      work_window=3600, eval_window=3600, challenge_window=0, appeal_window=0,
                      cap_initial=3 * E18, cap_step=E18, cap_max=5 * E18)
    pid = c["owner"].create_pact(terms)
    c["admin"].approve_pact(cid, pid)
    c["admin"].approve_pact(aid, pid)
    c["agent"].stake(5 * E18)
    return c, evals, appeal, pid


def test_client__eth_lifecycle__agent_paid_evaluators_credited(roles):
    c, evals, _appeal, pid = roles
    buyer, agent = c["buyer"], c["agent"]
    free0 = agent.agent_stake(agent.wallet.address).free
    jid = buyer.open_job(pid, agent.wallet.address, E18)
    assert buyer.job(jid).state == JobState.OPEN
    agent.accept(jid)
    agent.submit(jid, keccak(b"deliverable"))
    votes = [e.sign_vote(e.vote_for(jid, 9000, keccak(b"evidence"))) for e in evals]
    preview = buyer.preview_settlement(jid, 9000, voters=3)
    c["owner"].settle(jid, votes)  # a relayer posts all three: round 0 closes, window 0 settles
    assert buyer.job(jid).state == JobState.SETTLED
    assert agent.agent_stake(agent.wallet.address).free == free0 + preview.to_agent
    for e in evals:
        assert e.credit(e.wallet.address) == preview.fee_each
    assert evals[0].withdraw() == preview.fee_each
    rep = agent.agent_reputation(agent.wallet.address)
    assert (rep.settled, rep.passed, rep.released) >= (1, 1, E18)


def test_client__refusals__typed_errors_before_sending(roles):
    c, _evals, _appeal, pid = roles
    buyer, agent = c["buyer"], c["agent"]
    with pytest.raises(InvalidInputError):
        buyer.open_job(pid, buyer.wallet.address, E18)
    with pytest.raises(InvalidInputError):
        buyer.open_job(pid, agent.wallet.address, 0)
    jid = buyer.open_job(pid, agent.wallet.address, E18)
    with pytest.raises(NotAuthorizedError):
        buyer.accept(jid)
    with pytest.raises(WrongStateError):
        agent.submit(jid, keccak(b"x"))
    with pytest.raises(InsufficientFundsError):
        agent.withdraw_stake(10**30)


def test_client__contract_revert__mapped_to_typed_error(roles):
    c, _evals, _appeal, pid = roles
    t = c["owner"].pact(pid)
    with pytest.raises(TermsError, match="pact: fail_below_bps above pass_at_bps"):
        c["owner"].create_pact(t.model_copy(update={"fail_below_bps": 9000}))
    jid = c["buyer"].open_job(pid, c["agent"].wallet.address, E18)
    with pytest.raises(TimingError, match="escrow: accept window open"):
        c["agent"].cancel(jid)  # a stranger to the job before the accept deadline


def test_connect__wrong_chain__refused(devnet, manifest):
    bad = manifest.model_copy(update={"chain_id": manifest.chain_id + 1})
    with pytest.raises(ConnectionMismatchError, match="chain"):
        Pactbond.connect(devnet.url, bad)
