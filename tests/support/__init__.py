"""Test support: real servers for the fixtures."""
