"""The client verifier (pactbond.eip712.verify / recover) gives the contract's verdict on every
corpus item (RELIABILITY C6: identical accept/reject), and on random and valid signatures."""

from __future__ import annotations

import random

import boa
import pytest
from eth_account import Account
from eth_hash.auto import keccak

from pactbond import eip712
from pactbond.errors import InvalidSignatureError
from tests.conftest import actor
from tests.contracts.unit.votes.conftest import (
    CORPUS,
    VoteCtx,
    build_corpus,
    random_signature,
    wrong_field,
)

# malformed bytes: recover itself refuses them (length, v, r/s range, high s)
STRUCTURAL = [
    "empty", "64 bytes", "66 bytes", "trailing garbage", "130 bytes (two signatures)",
    "v=0", "v=1", "v=26", "v=29", "v=35", "v=255", "high-s twin",
    "r=0", "s=0", "r=n", "s=n", "s=n+1", "s=2**256-1", "r=2**256-1", "random 97 bytes",
]
# well-formed signatures of something else, or by someone else: recover names another signer
OTHER_SIGNER = [n for n in CORPUS if n not in STRUCTURAL and not n.startswith("random")]


def client_accepts(digest: bytes, sig: bytes, member: str) -> bool:
    try:
        eip712.verify(digest, sig, member)
    except InvalidSignatureError:
        return False
    return True


@pytest.fixture
def ctx(world) -> VoteCtx:
    e0 = world.evaluators[0]
    return VoteCtx(
        chain_id=boa.env.evm.patch.chain_id, verifying=world.escrow.address, key=e0.key, member=e0.address,
        job_id=42, deliverable=keccak(b"deliverable"), spec=keccak(b"spec:v1"), score=7000,
        evidence=keccak(b"evidence"), deadline=1_900_000_000,
    )


@pytest.fixture
def corpus(world, ctx) -> dict[str, bytes]:
    return build_corpus(ctx, world.evaluators[1].key, world.attacker.key)


@pytest.fixture(scope="module")
def offline() -> tuple[VoteCtx, dict[str, bytes]]:
    """The corpus for a fixed (chain, contract): recover needs no chain."""
    e0, e1, outsider = (actor(f"evaluator-{i}") for i in (0, 1, "x"))
    c = VoteCtx(
        chain_id=1, verifying="0x" + "c0ffee" * 6 + "c0de", key=e0.key, member=e0.address,
        job_id=42, deliverable=keccak(b"deliverable"), spec=keccak(b"spec:v1"), score=7000,
        evidence=keccak(b"evidence"), deadline=1_900_000_000,
    )
    return c, build_corpus(c, e1.key, outsider.key)


@pytest.mark.parametrize("name", CORPUS)
def test_verify__corpus_item__same_verdict_as_contract_refused(world, ctx, corpus, name):
    sig = corpus[name]
    onchain = world.escrow.is_valid_signature(ctx.member, ctx.digest(), sig)
    assert client_accepts(ctx.digest(), sig, ctx.member) == onchain
    assert onchain is False
    with pytest.raises(InvalidSignatureError):
        eip712.verify(ctx.digest(), sig, ctx.member)


@pytest.mark.parametrize("name", STRUCTURAL)
def test_recover__malformed_corpus_item__raises(offline, name):
    c, corpus = offline
    with pytest.raises(InvalidSignatureError):
        eip712.recover(c.digest(), corpus[name])


@pytest.mark.parametrize("name", OTHER_SIGNER)
def test_recover__well_formed_corpus_item__names_another_signer(offline, name):
    c, corpus = offline
    assert eip712.recover(c.digest(), corpus[name]) != c.member


@pytest.mark.parametrize("signer", [0, 1, 2])
def test_verify__valid_member_signature__accepted_like_contract(world, ctx, signer):
    m = world.evaluators[signer]
    c = VoteCtx(**{**ctx.__dict__, "key": m.key, "member": m.address})
    sig = c.sign()
    assert world.escrow.is_valid_signature(c.member, c.digest(), sig) is True
    eip712.verify(c.digest(), sig, c.member)
    assert eip712.recover(c.digest(), sig) == m.address


def test_verify__200_random_valid_votes__accepted_like_contract(world):
    rng = random.Random(2026)
    disagreements = []
    for _ in range(200):
        key = rng.randbytes(32)
        addr = Account.from_key(key).address
        c = VoteCtx(chain_id=boa.env.evm.patch.chain_id, verifying=world.escrow.address, key=key, member=addr,
                    job_id=rng.randrange(2**64), deliverable=rng.randbytes(32), spec=rng.randbytes(32),
                    score=rng.randrange(10_001), evidence=rng.randbytes(32), deadline=rng.randrange(2**40))
        sig = c.sign()
        if not (client_accepts(c.digest(), sig, addr) and world.escrow.is_valid_signature(addr, c.digest(), sig)):
            disagreements.append(c)
    assert disagreements == []


def test_verify__1000_random_and_wrong_field_signatures__same_verdict_as_contract(world, ctx):
    rng = random.Random(19)
    disagreements, accepted = [], 0
    for i in range(1_000):
        sig = random_signature(rng) if i % 2 else wrong_field(ctx, rng)[1].sign()
        onchain = world.escrow.is_valid_signature(ctx.member, ctx.digest(), sig)
        if client_accepts(ctx.digest(), sig, ctx.member) != onchain:
            disagreements.append(sig)
        accepted += onchain
    assert disagreements == []
    assert accepted == 0
