"""af-accounting: quota policy, usage ledger, reservations (built by its own issue)."""
