"""Shared fixtures: role-named accounts and a deployed pactbond on titanoboa (in-process EVM)."""

from __future__ import annotations

from pathlib import Path

from eth_account import Account
from eth_hash.auto import keccak

ROOT = Path(__file__).resolve().parents[1]
CONTRACTS = ROOT / "contracts"


class Actor:
    """A named test account with its private key (the key never leaves tests)."""

    def __init__(self, name: str):
        self.name = name
        self.key = keccak(b"pactbond-test-" + name.encode())
        self.address = Account.from_key(self.key).address

    def __repr__(self) -> str:
        return f"<{self.name} {self.address[:10]}>"

    def __str__(self) -> str:
        return self.address


def actor(name: str) -> Actor:
    return Actor(name)
