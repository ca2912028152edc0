"""Shared helpers for the vote and signature tests: raw vote hashing, job set-up, the corpus.

The bad-signature corpus (RELIABILITY.md) is built here so the contract tests and the client
verifier tests judge the very same bytes.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace
from typing import Any

import boa
import pytest
from eth_account import Account
from eth_account.messages import encode_defunct
from eth_hash.auto import keccak

from pactbond import eip712
from tests.conftest import Actor, actor
from tests.contracts.conftest import E18

N = eip712.SECP256K1_N
OPEN, ACCEPTED, SUBMITTED, VERDICT, CHALLENGED, SETTLED = 1, 2, 3, 4, 5, 6
EXPIRED_NO_VERDICT = 9


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "slow: long randomized runs (deselect with -m 'not slow')")


@pytest.fixture(scope="package")
def wallet_deployer(wallet1271_deployer):
    return wallet1271_deployer


# ---------------------------------------------------------------------------------------------
# hashing without the pydantic range checks (out-of-range fields must be signable too)


def u256(x: int) -> bytes:
    return x.to_bytes(32, "big")


def vote_hash_raw(job_id: int, deliverable: bytes, spec: bytes, score: int, evidence: bytes,
                  round_: int, deadline: int, typehash: bytes = eip712.VOTE_TYPEHASH) -> bytes:
    return keccak(typehash + u256(job_id) + deliverable + spec + u256(score) + evidence
                  + u256(round_) + u256(deadline))


def domain_raw(chain_id: int, verifying: str, name: str = eip712.NAME,
               version: str = eip712.VERSION) -> bytes:
    return keccak(eip712.DOMAIN_TYPEHASH + keccak(name.encode()) + keccak(version.encode())
                  + u256(chain_id) + bytes(12) + bytes.fromhex(verifying[2:]))


def split(sig: bytes) -> tuple[int, int, int]:
    return int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:64], "big"), sig[64]


def pack(r: int, s: int, v: int) -> bytes:
    return (r % 2**256).to_bytes(32, "big") + (s % 2**256).to_bytes(32, "big") + bytes([v])


# ---------------------------------------------------------------------------------------------
# world helpers


def submitted_job(world: Any, value: int = E18, **over: Any) -> tuple[int, Any]:
    """A job opened, accepted and submitted on a fresh pact: (job id, terms)."""
    pid, t = world.create_pact(**over)
    world.stake_agent()
    jid = world.open(pid, value=value)
    world.accept(jid)
    world.submit(jid)
    return jid, t


def raw_vote(world: Any, key: bytes, member: str, jid: int, score: int, *, deadline: int | None = None,
             evidence: bytes = b"\x11" * 32, round_: int = 0) -> tuple[Any, ...]:
    """A SignedVote tuple signed with `key` for `member`, with no range checks on the fields."""
    j = world.job(jid)
    t = world.pacts[j["pact_id"]]
    dl = j["deadline"] if deadline is None else deadline
    sh = vote_hash_raw(jid, j["deliverable"], t.spec_hash, score, evidence, round_, dl)
    return (member, score, evidence, dl, eip712.sign_digest(key, eip712.digest(world.domain(), sh)))


def events(logs: list[Any], name: str) -> list[Any]:
    """The decoded logs named `name` (take `logs` right after the call: any later call, a view
    included, replaces what get_logs() returns)."""
    return [e for e in logs if type(e).__name__ == name]


def settle(world: Any, jid: int, votes: list[tuple[Any, ...]], sender: Any = None) -> list[Any]:
    """world.settle, returning the call's decoded logs."""
    world.settle(jid, votes, sender=sender)
    return world.escrow.get_logs()


def finalize(world: Any, jid: int) -> list[Any]:
    with boa.env.prank(world.attacker.address):
        world.escrow.finalize(jid, world.terms_of(jid))
        return world.escrow.get_logs()


def new_actor(world: Any, name: str, stake: int = 20 * E18) -> Actor:
    """A funded account with evaluator stake in ETH."""
    a = actor(name)
    world.fund(a)
    if stake:
        with boa.env.prank(a.address):
            world.escrow.stake(world.terms().asset, stake, True, value=stake)
    return a


# ---------------------------------------------------------------------------------------------
# the bad-signature corpus


@dataclass(frozen=True)
class VoteCtx:
    """The vote a corpus signature pretends to sign, and who should have signed it."""

    chain_id: int
    verifying: str
    key: bytes
    member: str
    job_id: int
    deliverable: bytes
    spec: bytes
    score: int
    evidence: bytes
    deadline: int
    round: int = 0

    def struct_hash(self) -> bytes:
        return vote_hash_raw(self.job_id, self.deliverable, self.spec, self.score, self.evidence,
                             self.round, self.deadline)

    def digest(self) -> bytes:
        return eip712.digest(domain_raw(self.chain_id, self.verifying), self.struct_hash())

    def sign(self) -> bytes:
        return eip712.sign_digest(self.key, self.digest())

    def signed_vote(self) -> tuple[Any, ...]:
        return (self.member, self.score, self.evidence, self.deadline, self.sign())


CORPUS = [
    "empty", "64 bytes", "66 bytes", "trailing garbage", "130 bytes (two signatures)",
    "v=0", "v=1", "v=26", "v=29", "v=35", "v=255", "v flipped",
    "high-s twin", "r=0", "s=0", "r=n", "s=n", "s=n+1", "s=2**256-1", "r=2**256-1",
    "random 65 bytes", "random r s with v=27", "random 97 bytes",
    "wrong job id", "wrong score", "wrong deliverable hash", "wrong spec hash", "wrong evidence hash",
    "wrong round", "wrong deadline",
    "wrong chain id", "wrong verifying contract", "wrong domain name", "wrong version",
    "typehash field order swapped", "typehash uint256 score",
    "personal_sign of the digest", "struct hash without prefix",
    "domain and struct hash without prefix", "another member's key", "non-member key",
]


def build_corpus(c: VoteCtx, other_key: bytes, outsider_key: bytes) -> dict[str, bytes]:
    """Every corpus item as signature bytes for the vote `c` posted as `c.member`."""
    d = c.digest()
    sig = eip712.sign_digest(c.key, d)
    r, s, v = split(sig)
    rng = random.Random(b"pactbond-corpus")

    def field(**over: Any) -> bytes:
        return replace(c, **over).sign()

    def typed(typehash_str: str, swap: bool = False) -> bytes:
        th = keccak(typehash_str.encode())
        if swap:  # the encoding follows the swapped type string
            sh = keccak(th + u256(c.job_id) + c.spec + c.deliverable + u256(c.score) + c.evidence
                        + u256(c.round) + u256(c.deadline))
        else:
            sh = vote_hash_raw(c.job_id, c.deliverable, c.spec, c.score, c.evidence, c.round,
                               c.deadline, typehash=th)
        return eip712.sign_digest(c.key, eip712.digest(domain_raw(c.chain_id, c.verifying), sh))

    def domain(**kw: Any) -> bytes:
        dom = domain_raw(kw.get("chain_id", c.chain_id), kw.get("verifying", c.verifying),
                         kw.get("name", eip712.NAME), kw.get("version", eip712.VERSION))
        return eip712.sign_digest(c.key, eip712.digest(dom, c.struct_hash()))

    out = {
        "empty": b"",
        "64 bytes": sig[:64],
        "66 bytes": sig + b"\x00",
        "trailing garbage": sig + bytes(range(1, 32)),
        "130 bytes (two signatures)": sig + sig,
        **{f"v={x}": sig[:64] + bytes([x]) for x in (0, 1, 26, 29, 35, 255)},
        "v flipped": pack(r, s, 55 - v),
        "high-s twin": pack(r, N - s, 55 - v),
        "r=0": pack(0, s, v),
        "s=0": pack(r, 0, v),
        "r=n": pack(N, s, v),
        "s=n": pack(r, N, v),
        "s=n+1": pack(r, N + 1, v),
        "s=2**256-1": pack(r, 2**256 - 1, v),
        "r=2**256-1": pack(2**256 - 1, s, v),
        "random 65 bytes": rng.randbytes(65),
        "random r s with v=27": pack(rng.randrange(1, N), rng.randrange(1, N // 2), 27),
        "random 97 bytes": rng.randbytes(97),
        "wrong job id": field(job_id=c.job_id + 1),
        "wrong score": field(score=(c.score + 1) % 10_001),
        "wrong deliverable hash": field(deliverable=keccak(c.deliverable)),
        "wrong spec hash": field(spec=keccak(c.spec)),
        "wrong evidence hash": field(evidence=keccak(c.evidence)),
        "wrong round": field(round=1 - c.round),
        "wrong deadline": field(deadline=c.deadline + 1),
        "wrong chain id": domain(chain_id=c.chain_id + 1),
        "wrong verifying contract": domain(verifying="0x" + keccak(c.verifying.encode()).hex()[-40:]),
        "wrong domain name": domain(name="pactbond2"),
        "wrong version": domain(version="2"),
        "typehash field order swapped": typed(
            "Vote(uint256 jobId,bytes32 specHash,bytes32 deliverableHash,uint16 scoreBps,"
            "bytes32 evidenceHash,uint8 round,uint64 deadline)", swap=True),
        "typehash uint256 score": typed(
            "Vote(uint256 jobId,bytes32 deliverableHash,bytes32 specHash,uint256 scoreBps,"
            "bytes32 evidenceHash,uint8 round,uint64 deadline)"),
        "personal_sign of the digest": bytes(Account.sign_message(encode_defunct(primitive=d), c.key).signature),
        "struct hash without prefix": eip712.sign_digest(c.key, c.struct_hash()),
        "domain and struct hash without prefix": eip712.sign_digest(
            c.key, keccak(domain_raw(c.chain_id, c.verifying) + c.struct_hash())),
        "another member's key": eip712.sign_digest(other_key, d),
        "non-member key": eip712.sign_digest(outsider_key, d),
    }
    assert list(out) == CORPUS
    return out


def corpus_ctx(world: Any, jid: int, member: Actor, score: int = 7000) -> VoteCtx:
    j = world.job(jid)
    return VoteCtx(
        chain_id=boa.env.evm.patch.chain_id, verifying=world.escrow.address, key=member.key,
        member=member.address, job_id=jid, deliverable=j["deliverable"],
        spec=world.pacts[j["pact_id"]].spec_hash, score=score, evidence=keccak(b"evidence"),
        deadline=j["deadline"],
    )


# random signature shapes for the bulk runs


def random_signature(rng: random.Random) -> bytes:
    """Random bytes in the shapes that matter: 65 bytes with a plausible v, or any length."""
    kind = rng.randrange(4)
    if kind == 0:  # well-formed: v in {27, 28}, low s, r and s in range
        return pack(rng.randrange(1, N), rng.randrange(1, N // 2 + 1), rng.choice((27, 28)))
    if kind == 1:  # 65 bytes, anything
        return rng.randbytes(65)
    if kind == 2:  # 65 bytes with a valid v but r, s anywhere in 256 bits
        return rng.randbytes(64) + bytes([rng.choice((27, 28))])
    return rng.randbytes(rng.choice((0, 1, 32, 64, 66, 96, 130, 200)))


WRONG_FIELDS = ("job_id", "deliverable", "spec", "score", "evidence", "round", "deadline",
                "chain_id", "verifying")


def wrong_field(c: VoteCtx, rng: random.Random) -> tuple[str, VoteCtx]:
    """`c` with one field changed to another random value."""
    name = rng.choice(WRONG_FIELDS)
    old = getattr(c, name)
    while True:
        if name in ("deliverable", "spec", "evidence"):
            new: Any = rng.randbytes(32)
        elif name == "verifying":
            new = "0x" + rng.randbytes(20).hex()
        elif name == "score":
            new = rng.randrange(10_001)
        elif name == "round":
            new = rng.randrange(2)
        elif name in ("deadline",):
            new = rng.randrange(2**64)
        else:
            new = rng.randrange(2**256)
        if (new.lower() if isinstance(new, str) else new) != (old.lower() if isinstance(old, str) else old):
            return name, replace(c, **{name: new})
