"""The client on web3's in-process EthereumTesterProvider (py-evm, Prague): same calls, same
typed errors as on anvil."""

from __future__ import annotations

import pytest
from eth_account import Account
from eth_hash.auto import keccak
from eth_tester import EthereumTester, PyEVMBackend
from web3 import EthereumTesterProvider, Web3

from pactbond import KeyWallet, Pactbond, PactTerms
from pactbond.client import JobState
from pactbond.deploy import deploy
from pactbond.errors import NotAuthorizedError, TimingError

E18 = 10**18


@pytest.fixture(scope="module")
def chain():
    backend = PyEVMBackend()
    tester = EthereumTester(backend)
    w3 = Web3(EthereumTesterProvider(tester))
    keys = [k.to_bytes() for k in backend.account_keys[:9]]
    manifest = deploy(w3, Account.from_key(keys[0]), out_dir=None)
    return w3, manifest, [KeyWallet.from_key(k) for k in keys]


def test_in_process__lifecycle_and_typed_errors__same_as_anvil(chain):
    w3, manifest, wallets = chain
    pb = [Pactbond(w3, manifest, w) for w in wallets]
    owner, admin, buyer, agent, e1, e2, a1, a2, stranger = pb
    pb[0].verify()
    cid = admin.create_committee([e1.address, e2.address], 2, 10 * E18, 5 * E18)
    aid = admin.create_committee([a1.address, a2.address], 2, 10 * E18, 5 * E18)
    for e, c in [(e1, cid), (e2, cid), (a1, aid), (a2, aid)]:
        e.accept_version(e.current_version(c))
        e.stake_evaluator(20 * E18)
    terms = PactTerms(committee_id=cid, appeal_committee_id=aid, spec_hash=keccak(b"spec"),
                      fail_below_bps=5000, pass_at_bps=8000, evaluator_fee=E18 // 100,
                      min_appeal_delta_bps=1000, accept_window=3600, work_window=3600,
                      eval_window=3600, cap_initial=2 * E18, cap_max=2 * E18)
    pid = owner.create_pact(terms)
    admin.approve_pact(cid, pid)
    admin.approve_pact(aid, pid)
    agent.stake(E18)
    jid = buyer.open_job(pid, agent.address, E18)
    with pytest.raises(NotAuthorizedError, match="escrow: not agent"):
        stranger.accept(jid)
    with pytest.raises(TimingError, match="escrow: accept window open"):
        # the client checks nothing here: the contract's revert comes back typed
        stranger.transact(stranger.escrow.functions.cancel(
            jid, terms.as_tuple(), stranger.job(jid).fields.as_tuple()))
    agent.accept(jid)
    agent.submit(jid, keccak(b"deliverable"))
    votes = [e.sign_vote(e.vote_for(jid, 9000, keccak(b"evidence"))) for e in (e1, e2)]
    stranger.settle(jid, votes)  # both reserved members voted: round 0 closes, window 0 settles
    assert buyer.job(jid).state == JobState.SETTLED
    assert agent.agent_stake(agent.address).free == 2 * E18
    assert e1.credit(e1.address) == E18 // 200
