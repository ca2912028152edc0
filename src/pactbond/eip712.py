"""EIP-712 votes exactly as PactEscrow hashes and checks them.

Signing uses coincurve on precomputed type and domain hashes (byte-identical to eth-account's
`sign_typed_data`, held by a test). Verification applies the contract's rules, which are
stricter than eth-account's: 65 bytes, v in {27, 28}, low s, non-zero signer.
"""

from __future__ import annotations

from collections.abc import Sequence

import coincurve
from eth_hash.auto import keccak
from eth_utils.address import to_checksum_address

from pactbond.errors import InvalidSignatureError
from pactbond.models import Vote

SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
HALF_N = SECP256K1_N // 2

DOMAIN_TYPE = "EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
VOTE_TYPE = (
    "Vote(uint256 jobId,bytes32 deliverableHash,bytes32 specHash,uint16 scoreBps,"
    "bytes32 evidenceHash,uint8 round,uint64 deadline)"
)
VOTE_BATCH_TYPE = "VoteBatch(bytes32 votesRoot,uint8 round,uint64 deadline)"
DOMAIN_TYPEHASH = keccak(DOMAIN_TYPE.encode())
VOTE_TYPEHASH = keccak(VOTE_TYPE.encode())
VOTE_BATCH_TYPEHASH = keccak(VOTE_BATCH_TYPE.encode())
NAME, VERSION = "pactbond", "1"
DOMAIN_FIELDS: list[dict[str, str]] = [
    {"name": "name", "type": "string"},
    {"name": "version", "type": "string"},
    {"name": "chainId", "type": "uint256"},
    {"name": "verifyingContract", "type": "address"},
]


def _u(x: int) -> bytes:
    return x.to_bytes(32, "big")


def domain_separator(chain_id: int, verifying_contract: str) -> bytes:
    return keccak(
        DOMAIN_TYPEHASH + keccak(NAME.encode()) + keccak(VERSION.encode()) + _u(chain_id)
        + bytes(12) + bytes.fromhex(verifying_contract[2:])
    )


def vote_struct_hash(v: Vote) -> bytes:
    return keccak(
        VOTE_TYPEHASH + _u(v.job_id) + v.deliverable_hash + v.spec_hash + _u(v.score_bps)
        + v.evidence_hash + _u(v.round) + _u(v.deadline)
    )


def batch_struct_hash(votes_root: bytes, round_: int, deadline: int) -> bytes:
    return keccak(VOTE_BATCH_TYPEHASH + votes_root + _u(round_) + _u(deadline))


def digest(domain: bytes, struct_hash: bytes) -> bytes:
    return keccak(b"\x19\x01" + domain + struct_hash)


def typed_data(v: Vote, chain_id: int, verifying_contract: str) -> dict[str, object]:
    """The vote as an EIP-712 typed-data document (for wallets and eth-account)."""
    return {
        "types": {
            "EIP712Domain": DOMAIN_FIELDS,
            "Vote": [
                {"name": "jobId", "type": "uint256"},
                {"name": "deliverableHash", "type": "bytes32"},
                {"name": "specHash", "type": "bytes32"},
                {"name": "scoreBps", "type": "uint16"},
                {"name": "evidenceHash", "type": "bytes32"},
                {"name": "round", "type": "uint8"},
                {"name": "deadline", "type": "uint64"},
            ],
        },
        "primaryType": "Vote",
        "domain": {
            "name": NAME, "version": VERSION, "chainId": chain_id,
            "verifyingContract": to_checksum_address(verifying_contract),
        },
        "message": {
            "jobId": v.job_id, "deliverableHash": v.deliverable_hash, "specHash": v.spec_hash,
            "scoreBps": v.score_bps, "evidenceHash": v.evidence_hash, "round": v.round,
            "deadline": v.deadline,
        },
    }


def sign_digest(private_key: bytes, msg_hash: bytes) -> bytes:
    """r || s || v with v in {27, 28}; coincurve produces low-s signatures (RFC 6979)."""
    sig = coincurve.PrivateKey(private_key).sign_recoverable(msg_hash, hasher=None)
    return sig[:64] + bytes([sig[64] + 27])


class VoteSigner:
    """One member's fast vote signer: the domain separator and the key are prepared once, and
    a vote is hashed from its fields (no typed-data document, no model). Byte-identical to
    eth-account's `sign_typed_data` of the same vote (held by a test and the benchmark)."""

    def __init__(self, private_key: bytes, chain_id: int, verifying_contract: str) -> None:
        self._key = coincurve.PrivateKey(private_key)
        self._prefix = b"\x19\x01" + domain_separator(chain_id, verifying_contract)

    def sign_fields(self, job_id: int, deliverable_hash: bytes, spec_hash: bytes,
                    score_bps: int, evidence_hash: bytes, round_: int, deadline: int) -> bytes:
        struct = keccak(VOTE_TYPEHASH + _u(job_id) + deliverable_hash + spec_hash
                        + _u(score_bps) + evidence_hash + _u(round_) + _u(deadline))
        sig = self._key.sign_recoverable(keccak(self._prefix + struct), hasher=None)
        return sig[:64] + bytes([sig[64] + 27])

    def sign(self, v: Vote) -> bytes:
        return self.sign_fields(v.job_id, v.deliverable_hash, v.spec_hash, v.score_bps,
                                v.evidence_hash, v.round, v.deadline)


def recover(msg_hash: bytes, signature: bytes) -> str:
    """The signer of a 65-byte signature under the contract's rules, else InvalidSignatureError."""
    if len(signature) != 65:
        raise InvalidSignatureError(f"signature must be 65 bytes, got {len(signature)}")
    r = int.from_bytes(signature[:32], "big")
    s = int.from_bytes(signature[32:64], "big")
    v = signature[64]
    if v not in (27, 28):
        raise InvalidSignatureError(f"signature v must be 27 or 28, got {v}")
    if s > HALF_N:
        raise InvalidSignatureError("signature s is in the upper half of the curve order (high s)")
    if not 0 < r < SECP256K1_N or s == 0:
        raise InvalidSignatureError("signature r or s out of range")
    try:
        pub = coincurve.PublicKey.from_signature_and_message(
            signature[:64] + bytes([v - 27]), msg_hash, hasher=None
        )
    except Exception:
        raise InvalidSignatureError("signature does not recover to a public key") from None
    return to_checksum_address(keccak(pub.format(compressed=False)[1:])[-20:])


def verify(msg_hash: bytes, signature: bytes, member: str) -> None:
    """Raise InvalidSignatureError unless EOA `member` signed `msg_hash` (contract rules)."""
    signer = recover(msg_hash, signature)
    if signer != to_checksum_address(member):
        raise InvalidSignatureError(f"signature is by {signer}, not {to_checksum_address(member)}")


def merkle_root(leaves: Sequence[bytes]) -> bytes:
    """Root of the sorted-pair Merkle tree the contract verifies (one leaf: the leaf)."""
    layer = list(leaves)
    if not layer:
        raise ValueError("no leaves")
    while len(layer) > 1:
        nxt = []
        for i in range(0, len(layer), 2):
            if i + 1 == len(layer):
                nxt.append(layer[i])
            else:
                a, b = sorted((layer[i], layer[i + 1]))
                nxt.append(keccak(a + b))
        layer = nxt
    return layer[0]


def merkle_proof(leaves: Sequence[bytes], index: int) -> list[bytes]:
    """The proof of leaves[index] under merkle_root(leaves)."""
    layer = list(leaves)
    proof: list[bytes] = []
    i = index
    while len(layer) > 1:
        sib = i ^ 1
        if sib < len(layer):
            proof.append(layer[sib])
        nxt = []
        for k in range(0, len(layer), 2):
            if k + 1 == len(layer):
                nxt.append(layer[k])
            else:
                a, b = sorted((layer[k], layer[k + 1]))
                nxt.append(keccak(a + b))
        layer = nxt
        i //= 2
    return proof
