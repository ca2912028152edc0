"""EIP-712 parity (RELIABILITY C6): the contract, pactbond.eip712 and eth-account agree.

Fixed vectors are frozen as literal digests (chain id 1, a fixed verifying contract); random
votes compare the three implementations on >= 1,000 inputs.
"""

from __future__ import annotations

import random

import boa
import pytest
from eth_account import Account
from eth_account.messages import SignableMessage, encode_typed_data
from eth_hash.auto import keccak

from pactbond import eip712
from pactbond.models import Vote

CHAIN_ID = 1  # boa's default chain
FIXED = "0xc0Ffee000000000000000000000000000000C0DE"
FIXED_DOMAIN = "31f08f145c5c7dac617f5c875bfadbd0a1faf481ae65354a5fa9857218e3c6dd"

VECTORS = [
    (Vote(job_id=1, deliverable_hash=keccak(b"deliverable:1"), spec_hash=keccak(b"spec:v1"),
          score_bps=0, evidence_hash=keccak(b"evidence:1"), round=0, deadline=1_700_000_000),
     "ca3f2878f85e003a2d86e54cbb6ae918fcabacfc3b60796a533ce48fe97984cf"),
    (Vote(job_id=2**256 - 1, deliverable_hash=b"\xff" * 32, spec_hash=b"\x00" * 31 + b"\x01",
          score_bps=10_000, evidence_hash=b"\x00" * 32, round=1, deadline=2**64 - 1),
     "f8362dc55652fe108a5a3fac154e00392d08e608f04b8b519637e0ec038ca197"),
    (Vote(job_id=123_456_789, deliverable_hash=keccak(b"deliverable:3"), spec_hash=keccak(b"spec:v2"),
          score_bps=7_500, evidence_hash=keccak(b"evidence:3"), round=0, deadline=1_800_000_000),
     "e09d3b90f079f4ed42844a4b1aa732141b1421cc170522a814231a90ce5571d7"),
]
BATCH_VECTOR = ((keccak(b"root"), 0, 1_700_000_000),
                "657912c007f73c8f18512644041ff4b04e87d1921bd58b771df447442efa1c7a")

VOTE_BATCH_TYPES = {
    "EIP712Domain": [
        {"name": "name", "type": "string"},
        {"name": "version", "type": "string"},
        {"name": "chainId", "type": "uint256"},
        {"name": "verifyingContract", "type": "address"},
    ],
    "VoteBatch": [
        {"name": "votesRoot", "type": "bytes32"},
        {"name": "round", "type": "uint8"},
        {"name": "deadline", "type": "uint64"},
    ],
}


def eip191_hash(m: SignableMessage) -> bytes:
    return keccak(b"\x19" + m.version + m.header + m.body)


def eth_account_vote_digest(v: Vote, chain_id: int, verifying: str) -> bytes:
    return eip191_hash(encode_typed_data(full_message=eip712.typed_data(v, chain_id, verifying)))


def eth_account_batch_digest(root: bytes, round_: int, deadline: int, chain_id: int, verifying: str) -> bytes:
    return eip191_hash(encode_typed_data(full_message={
        "types": VOTE_BATCH_TYPES, "primaryType": "VoteBatch",
        "domain": {"name": "pactbond", "version": "1", "chainId": chain_id, "verifyingContract": verifying},
        "message": {"votesRoot": root, "round": round_, "deadline": deadline},
    }))


def contract_digest(escrow, v: Vote) -> bytes:
    return escrow.vote_digest(v.job_id, v.deliverable_hash, v.spec_hash, v.score_bps, v.evidence_hash,
                              v.round, v.deadline)


def random_vote(rng: random.Random) -> Vote:
    big = rng.random() < 0.5
    return Vote(
        job_id=rng.randrange(2**256) if big else rng.randrange(1, 10**6),
        deliverable_hash=rng.randbytes(32), spec_hash=rng.randbytes(32),
        score_bps=rng.choice((0, 1, 9_999, 10_000, rng.randrange(10_001))),
        evidence_hash=rng.randbytes(32), round=rng.randrange(2),
        deadline=rng.randrange(2**64) if big else rng.randrange(1_600_000_000, 2_000_000_000),
    )


@pytest.fixture
def fixed_escrow(world):
    """The escrow's runtime code at the fixed verifying address (immutables travel with it)."""
    boa.env.set_code(FIXED, boa.env.get_code(world.escrow.address))
    return world.escrow.deployer.at(FIXED)


def test_chain_id__boa_env__is_the_frozen_one(world):
    assert boa.env.evm.patch.chain_id == CHAIN_ID


def test_domain_separator__fixed_address__equals_frozen_literal(fixed_escrow):
    assert eip712.domain_separator(CHAIN_ID, FIXED).hex() == FIXED_DOMAIN
    assert fixed_escrow.domain_separator().hex() == FIXED_DOMAIN


def test_domain_separator__deployed_escrow__equals_python(world):
    expected = eip712.domain_separator(boa.env.evm.patch.chain_id, world.escrow.address)
    assert world.escrow.domain_separator() == expected
    assert world.domain() == expected


@pytest.mark.parametrize(("vote", "expected"), VECTORS, ids=["v1-zero-score", "v2-max-fields", "v3-typical"])
def test_vote_digest__fixed_vector__contract_python_eth_account_equal_literal(fixed_escrow, vote, expected):
    py = eip712.digest(eip712.domain_separator(CHAIN_ID, FIXED), eip712.vote_struct_hash(vote))
    ea = eth_account_vote_digest(vote, CHAIN_ID, FIXED)
    onchain = contract_digest(fixed_escrow, vote)
    assert py.hex() == expected
    assert ea.hex() == expected
    assert onchain.hex() == expected


def test_batch_digest__fixed_vector__contract_python_eth_account_equal_literal(fixed_escrow):
    (root, round_, deadline), expected = BATCH_VECTOR
    py = eip712.digest(eip712.domain_separator(CHAIN_ID, FIXED), eip712.batch_struct_hash(root, round_, deadline))
    assert py.hex() == expected
    assert eth_account_batch_digest(root, round_, deadline, CHAIN_ID, FIXED).hex() == expected
    assert fixed_escrow.batch_digest(root, round_, deadline).hex() == expected


def test_vote_digest__1000_random_votes__contract_python_eth_account_equal(world):
    rng = random.Random(712)
    chain_id, escrow = boa.env.evm.patch.chain_id, world.escrow
    domain = eip712.domain_separator(chain_id, escrow.address)
    mismatches = []
    for i in range(1_000):
        v = random_vote(rng)
        py = eip712.digest(domain, eip712.vote_struct_hash(v))
        if contract_digest(escrow, v) != py or eth_account_vote_digest(v, chain_id, escrow.address) != py:
            mismatches.append((i, v))
    assert mismatches == []


def test_batch_digest__300_random_batches__contract_python_eth_account_equal(world):
    rng = random.Random(1271)
    chain_id, escrow = boa.env.evm.patch.chain_id, world.escrow
    domain = eip712.domain_separator(chain_id, escrow.address)
    mismatches = []
    for i in range(300):
        root, round_, deadline = rng.randbytes(32), rng.randrange(2), rng.randrange(2**64)
        py = eip712.digest(domain, eip712.batch_struct_hash(root, round_, deadline))
        if (escrow.batch_digest(root, round_, deadline) != py
                or eth_account_batch_digest(root, round_, deadline, chain_id, escrow.address) != py):
            mismatches.append(i)
    assert mismatches == []


def test_vote_digest__changing_any_field__changes_the_contract_digest(world):
    base = VECTORS[2][0]
    d0 = contract_digest(world.escrow, base)
    changes = dict(job_id=base.job_id + 1, deliverable_hash=keccak(b"x"), spec_hash=keccak(b"y"),
                   score_bps=base.score_bps + 1, evidence_hash=keccak(b"z"), round=1, deadline=base.deadline + 1)
    for name, value in changes.items():
        assert contract_digest(world.escrow, base.model_copy(update={name: value})) != d0, name


def test_sign_digest__200_random_votes__equals_eth_account_signature(world):
    rng = random.Random(2600)
    chain_id, escrow = boa.env.evm.patch.chain_id, world.escrow.address
    domain = eip712.domain_separator(chain_id, escrow)
    for _ in range(200):
        key = rng.randbytes(32)
        v = random_vote(rng)
        ours = eip712.sign_digest(key, eip712.digest(domain, eip712.vote_struct_hash(v)))
        theirs = Account.sign_message(encode_typed_data(full_message=eip712.typed_data(v, chain_id, escrow)), key)
        assert ours == bytes(theirs.signature)
        assert eip712.recover(eip712.digest(domain, eip712.vote_struct_hash(v)), ours) == Account.from_key(key).address
