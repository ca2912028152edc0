"""A private anvil (loopback, free port, unique chain id) with pactbond deployed, per module."""

from __future__ import annotations

import pytest
from web3 import Web3

from pactbond.deploy import deploy
from pactbond.devnet import Devnet


@pytest.fixture(scope="module")
def devnet():
    with Devnet(accounts=12) as d:
        yield d


@pytest.fixture(scope="module")
def manifest(devnet, tmp_path_factory):
    w3 = Web3(Web3.HTTPProvider(devnet.url))
    return deploy(w3, devnet.account(0), out_dir=tmp_path_factory.mktemp("deployments"),
                  expected_chain_id=devnet.chain_id)
