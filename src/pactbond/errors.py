"""One root exception; leaves also subclass the matching builtin."""

from __future__ import annotations


class PactbondError(Exception):
    """Root of every pactbond error."""


class InvalidInputError(PactbondError, ValueError):
    """Input refused before anything is sent."""


class InvalidSignatureError(InvalidInputError):
    """A vote signature that the contract would refuse."""
