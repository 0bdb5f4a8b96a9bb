"""civic-ledger ledger package."""
