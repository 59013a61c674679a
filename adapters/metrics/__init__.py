"""Metrics adapters (prometheus-client)."""
