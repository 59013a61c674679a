"""Adapters that ask this machine itself (its processes)."""
