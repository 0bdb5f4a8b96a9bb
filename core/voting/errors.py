"""Errors of the voting engine: one small tree, independent of the service's ``CivicError``.

The service may later map these onto ``ledger.errors.CivicError`` subclasses (CONVENTIONS §5,
``BallotSignatureInvalid`` 422, ...); the pure engine keeps its own root so that it can be
used and tested without the store or the web layer.
"""

from __future__ import annotations


class VotingError(Exception):
    """Root of every error of the voting engine (``core.voting``) and of ``voting``'s key files and parsers."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BallotInvalid(VotingError):
    """A ballot breaks the rules of its simulation; the service refuses it at casting.

    ``reason`` is a short machine-readable code (``unknown_project``, ``too_many_yes``, ...).
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class BallotSignatureInvalid(VotingError):
    """A ballot's Ed25519 signature does not verify under the voter's registered key."""


class TallyError(VotingError):
    """The inputs of a tally rule are inconsistent (unknown project, bad budget, bad slots, ...)."""
