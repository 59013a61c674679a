"""Entrypoints: the composition root, the HTTP API and the CLI."""
