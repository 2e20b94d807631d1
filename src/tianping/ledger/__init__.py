"""Double-entry, append-only ledger in integer minor units."""
