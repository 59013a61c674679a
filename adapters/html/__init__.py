"""HTML handling: the sanitiser that enforces the domain's description policy."""
