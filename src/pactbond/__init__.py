"""pactbond: skin in the game behind AI-agent evaluations."""

from pactbond.client import AppealPreview, Job, JobLogsError, JobState, Pactbond
from pactbond.errors import PactbondError
from pactbond.models import PactTerms, Vote
from pactbond.votes import SignedVote, SignedVoteBatch, VoteBatch
from pactbond.wallets import ApeWallet, KeyWallet, Wallet, write_keystore

__all__ = [
    "ApeWallet",
    "AppealPreview",
    "Job",
    "JobLogsError",
    "JobState",
    "KeyWallet",
    "PactTerms",
    "Pactbond",
    "PactbondError",
    "SignedVote",
    "SignedVoteBatch",
    "Vote",
    "VoteBatch",
    "Wallet",
    "write_keystore",
]
