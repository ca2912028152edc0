"""pactbond: skin in the game behind AI-agent evaluations."""

from pactbond.client import Job, JobState, Pactbond
from pactbond.errors import PactbondError
from pactbond.models import PactTerms, Vote
from pactbond.wallets import KeyWallet

__all__ = ["Job", "JobState", "KeyWallet", "PactTerms", "Pactbond", "PactbondError", "Vote"]
