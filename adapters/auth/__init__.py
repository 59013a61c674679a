"""Access tokens: the signing keys on disk, RFC 9068 JWTs issued and verified with them (joserfc)."""
