"""The ``environment`` block of the report: what ran, on what, so that two reports can be compared."""

from __future__ import annotations

import os
import platform
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

PACKAGES = (
    "pymongo",
    "secantusdb",
    "beanie",
    "cashews",
    "redis",
    "joserfc",
    "fastapi",
    "starlette",
    "uvicorn",
    "httpx",
)


def _version(package: str) -> str | None:
    try:
        return version(package)
    except PackageNotFoundError:
        return None


def _proc_field(path: str, name: str) -> str | None:
    try:
        for line in Path(path).read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == name:
                return value.strip()
    except OSError:
        return None
    return None


def machine() -> dict[str, Any]:
    memory = _proc_field("/proc/meminfo", "MemTotal")
    return {
        "cpu_model": _proc_field("/proc/cpuinfo", "model name") or platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "memory": memory,
        "os": platform.platform(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None,
    }


async def server(database: Any, embedded: bool) -> dict[str, Any]:
    info = await database.command("buildInfo")
    secantus = info.get("secantusVersion")
    return {
        "kind": "SecantusDB" if secantus else "MongoDB",
        "version": info.get("version"),
        "secantus_version": secantus,
        "embedded": embedded,
    }


def versions() -> dict[str, str | None]:
    return {"python": platform.python_version(), **{name: _version(name) for name in PACKAGES}}


def describe(**facts: Any) -> dict[str, Any]:
    return {"started_at": datetime.now(UTC).isoformat(timespec="seconds"), "versions": versions(), **facts}
