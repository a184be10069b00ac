"""What a finished (or running) run left in its directory, as numbers and as one PNG."""
