"""File adapters: what the service writes to a local directory (store exports)."""
