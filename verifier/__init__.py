"""civic-ledger verifier package."""
