"""MongoDB persistence: Beanie 2 documents on PyMongo's native async client."""
