"""No token, secret or key ever reaches a log line."""

from __future__ import annotations

import io
import json
import logging

import structlog

from entrypoints.logging_setup import REDACTED, configure_logging

JWT = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl"


def test_sensitive_keys_and_token_shaped_strings_are_redacted(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    stream = io.StringIO()
    monkeypatch.setattr("sys.stderr", stream)
    configure_logging("INFO", "json")
    log = structlog.get_logger("test")
    log.info(
        "auth.denied",
        authorization=f"Bearer {JWT}",
        client_secret="s3cr3t",
        detail=f"token was {JWT}",
        nested={"refresh_token": "r-123", "ok": "fine"},
    )
    logging.getLogger("plain.stdlib").warning("header %s", JWT)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    text = stream.getvalue()
    assert JWT not in text and "s3cr3t" not in text and "r-123" not in text
    assert lines[0]["authorization"] == REDACTED and lines[0]["client_secret"] == REDACTED
    assert lines[0]["detail"] == f"token was {REDACTED}"
    assert lines[0]["nested"] == {"refresh_token": REDACTED, "ok": "fine"}
    assert lines[0]["event"] == "auth.denied"
    structlog.reset_defaults()
    logging.getLogger().handlers.clear()
