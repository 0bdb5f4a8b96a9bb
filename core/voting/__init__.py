"""The pure voting engine: tally rules, ballot checks and signatures, and their errors."""
