"""Errors of the voting domain's I/O (key files, Pabulib files), under the engine's root
``core.voting.errors.VotingError``."""

from __future__ import annotations

from core.voting.errors import VotingError


class KeyFileError(VotingError):
    """A private-key file cannot be written or loaded safely (exists, readable by others, bad PEM)."""


class PabulibError(VotingError):
    """A Pabulib ``.pb`` file is malformed; ``line`` is the 1-based line number when known."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(f"line {line}: {message}" if line is not None else message)
        self.line = line
