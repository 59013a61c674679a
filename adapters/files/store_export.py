"""The export of a store as files in a directory, each written beside and renamed into place.

A reader never sees half a file: each one is written as ``.<name>.partial`` and renamed when
complete. Products are written in batches as they arrive, off the event loop.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import IO, Any

from domain.store_ports import StoreExportSink

#: Lines handed to the writer thread at once.
BATCH = 500


def _json(document: Any) -> str:
    return json.dumps(document, ensure_ascii=False, separators=(",", ":"))


class DirectoryExportSink(StoreExportSink):
    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def _open(self, name: str) -> tuple[IO[str], Path, Path]:
        self.directory.mkdir(parents=True, exist_ok=True)
        final = self.directory / name
        partial = self.directory / f".{name}.partial"
        return partial.open("w", encoding="utf-8", newline="\n"), partial, final

    @staticmethod
    def _finish(handle: IO[str], partial: Path, final: Path) -> None:
        handle.flush()
        os.fsync(handle.fileno())
        handle.close()
        os.replace(partial, final)

    @staticmethod
    def _discard(handle: IO[str], partial: Path) -> None:
        handle.close()
        partial.unlink(missing_ok=True)

    def _write_json(self, name: str, document: Any) -> str:
        handle, partial, final = self._open(name)
        try:
            handle.write(json.dumps(document, ensure_ascii=False, indent=2) + "\n")
            self._finish(handle, partial, final)
        except BaseException:
            self._discard(handle, partial)
            raise
        return str(final)

    async def write_json(self, name: str, document: Any) -> str:
        return await asyncio.to_thread(self._write_json, name, document)

    async def write_lines(self, name: str, documents: AsyncIterator[Any]) -> tuple[str, int]:
        handle, partial, final = await asyncio.to_thread(self._open, name)
        count = 0
        try:
            batch: list[str] = []
            async for document in documents:
                batch.append(_json(document) + "\n")
                count += 1
                if len(batch) == BATCH:
                    await asyncio.to_thread(handle.write, "".join(batch))
                    batch = []
            await asyncio.to_thread(handle.write, "".join(batch))
            await asyncio.to_thread(self._finish, handle, partial, final)
        except BaseException:
            self._discard(handle, partial)
            raise
        return str(final), count
