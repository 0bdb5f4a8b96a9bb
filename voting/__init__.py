"""civic-ledger voting package."""
