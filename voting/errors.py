"""Errors of the voting engine: one small tree, independent of the service's ``CivicError``.

The service may later map these onto ``ledger.errors.CivicError`` subclasses (CONVENTIONS §5,
``BallotSignatureInvalid`` 422, ...); the pure engine keeps its own root so that it can be
used and tested without the store or the web layer.
"""

from __future__ import annotations


class VotingError(Exception):
    """Root of every error raised by ``voting``."""

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


class KeyFileError(VotingError):
    """A private-key file cannot be written or loaded safely (exists, readable by others, bad PEM)."""


class PabulibError(VotingError):
    """A Pabulib ``.pb`` file is malformed; ``line`` is the 1-based line number when known."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(f"line {line}: {message}" if line is not None else message)
        self.line = line


class TallyError(VotingError):
    """The inputs of a tally rule are inconsistent (unknown project, bad budget, bad slots, ...)."""
