"""The pipeline's events as structlog lines; a failed data-flow check is an alert (level error), a
failed or rejected run and a trouble the pipeline works around (``…_failed`` events) are warnings."""

from __future__ import annotations

from typing import Any

import structlog

log = structlog.get_logger("eyewear.ingestion")


class StructlogIngestionLog:
    def event(self, name: str, **fields: Any) -> None:
        if fields.pop("alert", False):
            log.error(name, alert=True, **fields)
        elif fields.get("status") in ("failed", "rejected") or name.endswith("_failed"):
            log.warning(name, **fields)
        else:
            log.info(name, **fields)
