"""civic-ledger contracts package."""
