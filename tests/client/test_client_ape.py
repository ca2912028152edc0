"""The ape wallet (the `ape` extra): an ape account signs pactbond transactions, votes and raw
digests; without ape installed, loading one says what to install.

Smoke level: ape's test accounts derive from the same mnemonic as the devnet's, so ape's test
account i is devnet account i; a keyfile or hardware account goes through the same calls."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from eth_hash.auto import keccak

from pactbond import ApeWallet, KeyWallet, Pactbond, eip712
from pactbond.errors import WalletError
from tests.client.conftest import E18


def test_ape_wallet__test_account__sends_and_signs_like_a_key_wallet(devnet, manifest):
    import ape

    account = ape.accounts.test_accounts[9]
    wallet, key = ApeWallet(account), KeyWallet(devnet.account(9))
    assert wallet.address == key.address and repr(wallet) == f"ApeWallet({key.address})"
    pb = Pactbond.connect(devnet.url, manifest, wallet)
    pb.stake(E18 + 7)  # a transaction signed by ape
    assert pb.agent_stake(pb.address).free == E18 + 7
    pb.withdraw_stake(7)
    assert pb.agent_stake(pb.address).free == E18
    vote = eip712.Vote(job_id=1, deliverable_hash=keccak(b"d"), spec_hash=keccak(b"s"),
                       score_bps=4321, evidence_hash=keccak(b"e"), round=0, deadline=2**40)
    doc = eip712.typed_data(vote, pb.chain_id, pb.escrow.address)
    assert wallet.sign_typed_data(doc) == key.sign_typed_data(doc)
    digest = eip712.digest(pb.domain(), eip712.vote_struct_hash(vote))
    assert wallet.sign_digest(digest) == key.sign_digest(digest)
    eip712.verify(digest, wallet.sign_typed_data(doc), wallet.address)


def test_ape_wallet__unknown_alias__WalletError():
    with pytest.raises(WalletError, match="no ape account named"):
        ApeWallet.load("pactbond-no-such-alias")


def test_ape_wallet__ape_not_installed__WalletError_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "ape", None)  # import ape now raises ImportError
    with pytest.raises(WalletError, match=r"install pactbond\[ape\]"):
        ApeWallet.load("anything")



KEYFILE_SCRIPT = """
import os, sys
from ape_accounts import import_account_from_private_key
from eth_hash.auto import keccak
from pactbond import ApeWallet, KeyWallet, Pactbond, eip712
from pactbond.deploy import Manifest

url, manifest, key = sys.argv[1], Manifest.model_validate_json(sys.argv[2]), sys.argv[3]
import_account_from_private_key("pactbond-test", os.environ["PACTBOND_TEST_APE_PASSWORD"], key)
wallet = ApeWallet.load("pactbond-test", password_env="PACTBOND_TEST_APE_PASSWORD")
assert wallet.address == KeyWallet.from_key(key).address
pb = Pactbond.connect(url, manifest, wallet)
pb.stake(10**18)
assert pb.agent_stake(wallet.address).free == 10**18
doc = eip712.typed_data(
    eip712.Vote(job_id=2, deliverable_hash=keccak(b"d"), spec_hash=keccak(b"s"), score_bps=1,
                evidence_hash=keccak(b"e"), round=1, deadline=9), pb.chain_id, pb.escrow.address)
assert wallet.sign_typed_data(doc) == KeyWallet.from_key(key).sign_typed_data(doc)
print("ok", wallet.address)
"""


def test_ape_wallet__keyfile_account_by_alias__unlocked_from_env(devnet, manifest, tmp_path):
    """A keyfile account ape manages, loaded by alias with its passphrase from the environment
    (in a subprocess whose ape data folder is a temporary one: ~/.ape is untouched)."""
    key = "0x" + "5a" * 32
    address = KeyWallet.from_key(key).address
    devnet.rpc("anvil_setBalance", [address, hex(10 * E18)])
    env = {**os.environ, "APE_DATA_FOLDER": str(tmp_path / "ape"),
           "PACTBOND_TEST_APE_PASSWORD": "a long keyfile passphrase"}
    done = subprocess.run([sys.executable, "-c", KEYFILE_SCRIPT, devnet.url,
                           manifest.model_dump_json(), key], env=env, capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.splitlines()[-1].split() == ["ok", address]
    assert (tmp_path / "ape" / "accounts" / "pactbond-test.json").exists()
