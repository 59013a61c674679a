"""Use cases: they orchestrate the domain through its ports and know no adapter."""
