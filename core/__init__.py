"""The pure protocol of civic-ledger (PROTOCOL.md): canonical bytes, hashes, Merkle trees
and proofs, records and their types, the suggestion state machine, verdicts, and the voting
engine (``core.voting``).

No I/O and nothing else of the project: ``ledger``, ``voting``, ``verifier`` and ``api`` build
on it, never the other way round (import-linter contracts in pyproject.toml). Clocks and
randomness are parameters."""
