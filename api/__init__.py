"""civic-ledger api package."""
