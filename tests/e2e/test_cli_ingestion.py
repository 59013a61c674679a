"""``eyewear ingest`` and ``eyewear rollback`` as users run them (CONTRACT.md 3): exit codes, report, output."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import uuid
from pathlib import Path

from adapters.feeds.render import write_csv, write_jsonl
from adapters.feeds.sample_feed import generate_rows
from tests.e2e.test_cli import EYEWEAR, environment, run

ROWS = list(generate_rows(styles=5, seed=5))


def env_for(mongo_url: str, tmp_path: Path) -> dict[str, str]:
    return environment(
        EYEWEAR_MONGODB_URL=mongo_url,
        EYEWEAR_MONGODB_DB=f"cli_ingest_{uuid.uuid4().hex[:8]}",
        EYEWEAR_DATA_DIR=str(tmp_path / "data"),
    )


def test_ingest_prints_a_summary_writes_the_report_and_rolls_back(mongo_url: str, tmp_path: Path) -> None:
    env = env_for(mongo_url, tmp_path)
    rows = [dict(r) for r in ROWS]
    rows[2]["gtin"] = "12345"
    feed = tmp_path / "feed.csv.gz"
    write_csv(rows, feed)
    done = run(["ingest", str(feed), "--report", str(tmp_path / "report.json")], env)
    assert done.returncode == 0, done.stderr
    assert f"rows {len(rows)}: valid {len(rows) - 1}, invalid 1" in done.stdout
    assert "\x1b[" not in done.stderr, "no progress bar when stderr is not a terminal"
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["status"] == "succeeded" and report["counts"]["created"] == len(rows) - 1
    assert report["errors"] == [
        {
            "line": 4,
            "sku": rows[2]["sku"],
            "field": "gtin",
            "code": "invalid_gtin",
            "message": report["errors"][0]["message"],
        }
    ]
    again = run(["ingest", str(feed)], env)
    assert f"unchanged {len(rows) - 1}" in again.stdout
    run_id = report["run_id"]
    undone = run(["rollback", run_id], env)
    assert undone.returncode == 0, undone.stderr
    assert "rolled_back" in undone.stdout
    twice = run(["rollback", run_id], env)
    assert twice.returncode == 1 and twice.stderr.startswith("eyewear: the rollback was refused:")
    assert "Traceback" not in twice.stderr


def test_reject_all_exits_1_and_usage_errors_exit_2(mongo_url: str, tmp_path: Path) -> None:
    env = env_for(mongo_url, tmp_path)
    rows = [dict(r) for r in ROWS]
    rows[0]["price"] = "free"
    feed = tmp_path / "feed.jsonl"
    write_jsonl(rows, feed)
    rejected = run(["ingest", str(feed), "--error-policy", "reject-all"], env)
    assert rejected.returncode == 1
    assert "rejected" in rejected.stdout
    (tmp_path / "feed.xml").write_text("<feed/>")
    for args in (
        ["ingest", str(tmp_path / "missing.jsonl")],
        ["ingest", str(tmp_path / "feed.xml")],
        ["ingest", str(feed), "--error-policy", "maybe"],
        ["ingest", str(feed), "--report", str(tmp_path / "no" / "such" / "dir.json")],
    ):
        refused = run(args, env)
        assert refused.returncode == 2, (args, refused.stderr)
        assert refused.stderr.startswith("eyewear: ") and "Traceback" not in refused.stderr
    assert run(["rollback", "no-such-run"], env).returncode == 1


def test_a_terminal_gets_a_progress_bar(mongo_url: str, tmp_path: Path) -> None:
    env = env_for(mongo_url, tmp_path)
    feed = tmp_path / "feed.jsonl"
    write_jsonl(ROWS, feed)
    leader, follower = pty.openpty()
    process = subprocess.Popen(
        [*EYEWEAR, "ingest", str(feed)], env={**env, "COLUMNS": "120"}, stdout=subprocess.PIPE, stderr=follower
    )
    os.close(follower)
    seen = b""
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:
            break
        if not chunk:
            break
        seen += chunk
    assert process.wait(timeout=120) == 0
    os.close(leader)
    text = seen.decode(errors="replace")
    assert "rows/s" in text and f"{len(ROWS)} rows" in text
    assert process.stdout is not None and b"succeeded" in process.stdout.read()


def test_a_killed_ingest_run_again_converges_to_the_uninterrupted_catalog(mongo_url: str, tmp_path: Path) -> None:
    """SIGKILL half-way (whole batches are left), then the same file again: the same catalog as one clean run."""
    import signal
    import time

    from pymongo import MongoClient

    rows = list(generate_rows(styles=500, seed=8))
    feed = tmp_path / "feed.jsonl"
    write_jsonl(rows, feed)
    killed, clean = env_for(mongo_url, tmp_path), env_for(mongo_url, tmp_path)
    mongo: MongoClient[dict[str, object]] = MongoClient(mongo_url)
    database = mongo[killed["EYEWEAR_MONGODB_DB"]]
    try:
        process = subprocess.Popen([*EYEWEAR, "ingest", str(feed)], env=killed, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 120
        while database.products.estimated_document_count() == 0 and process.poll() is None:
            assert time.monotonic() < deadline, "no batch was ever written"
            time.sleep(0.02)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
        partial = database.products.count_documents({})
        assert 0 < partial < 500, "killed half-way"
        assert run(["ingest", str(feed)], killed, timeout=300).returncode == 0
        assert run(["ingest", str(feed)], clean, timeout=300).returncode == 0

        def catalog(name: str) -> dict[str, object]:
            found = mongo[name].products.find({}, {"created_at": 0, "updated_at": 0, "version": 0})
            return {doc["_id"]: doc for doc in found}

        assert catalog(killed["EYEWEAR_MONGODB_DB"]) == catalog(clean["EYEWEAR_MONGODB_DB"])
    finally:
        for env in (killed, clean):
            mongo.drop_database(env["EYEWEAR_MONGODB_DB"])
        mongo.close()
