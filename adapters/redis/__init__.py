"""Redis adapters: state that every service process must share (revocations, abuse strikes)."""
