"""``examples/embed.py`` as a user runs it, on the embedded default (no settings at all): the use cases
from plain Python, without HTTP, and nothing left running afterwards (docs/embedding.md)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "embed.py"


def test_the_embedding_example_ingests_searches_and_shuts_down(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EYEWEAR_")}
    env["PYTHONPATH"] = str(EXAMPLE.parents[1])
    done = subprocess.run(
        [sys.executable, str(EXAMPLE)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    assert lines[0].endswith("succeeded, 382 rows, 382 created"), done.stdout
    assert sum(1 for line in lines if ", from " in line) == 3
    assert any(" sizes: " in line and "□" in line for line in lines)
    assert lines[-1].startswith("brands: ")
    assert (tmp_path / ".eyewear" / "mongo").is_dir(), "it ran on the embedded default in its working dir"
    assert not (tmp_path / ".eyewear" / "mongo-server.json").exists(), "the embedded server was stopped"
    leftover = subprocess.run(["pgrep", "-f", f"secantusd-py.*{tmp_path}"], capture_output=True, text=True)
    assert leftover.stdout.strip() == "", "a secantusd-py of the example is still running"
