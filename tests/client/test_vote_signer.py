"""The fast vote signer gives eth-account's exact signature bytes, and they verify."""

from __future__ import annotations

import secrets

from eth_account import Account
from eth_account.messages import encode_typed_data

from pactbond import eip712
from pactbond.models import Vote

KEY = bytes.fromhex("59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d")  # anvil 1
ESCROW = "0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512"


def test_vote_signer_is_byte_identical_to_eth_account() -> None:
    signer = eip712.VoteSigner(KEY, 1_234_567, ESCROW)
    acct = Account.from_key(KEY)
    domain = eip712.domain_separator(1_234_567, ESCROW)
    for _ in range(50):
        v = Vote(job_id=secrets.randbelow(2**256), deliverable_hash=secrets.token_bytes(32),
                 spec_hash=secrets.token_bytes(32), score_bps=secrets.randbelow(10_001),
                 evidence_hash=secrets.token_bytes(32), round=secrets.randbelow(2),
                 deadline=secrets.randbelow(2**64))
        sig = signer.sign(v)
        ref = acct.sign_message(encode_typed_data(
            full_message=eip712.typed_data(v, 1_234_567, ESCROW))).signature
        assert sig == bytes(ref)
        eip712.verify(eip712.digest(domain, eip712.vote_struct_hash(v)), sig, acct.address)
