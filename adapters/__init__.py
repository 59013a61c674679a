"""Implementations of the domain ports: MongoDB, caches, auth, metrics, feeds, embedded server."""
