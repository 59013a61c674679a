"""The eyewear catalog model: pure rules and ports, no I/O, no framework."""
