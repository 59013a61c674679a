"""A run whose process is killed (SIGKILL, real processes): recorded ``interrupted`` by the next process
that looks, what it wrote rollback-able, the same feed run again converging at once although the dead
process left a transaction open, and its spooled upload deleted.

The kill lands inside a transaction: the test server's ``failCommand`` failpoint holds the doomed
process's second commit for 70 s (longer than the server's 60 s transaction lifetime), and the test
kills the process once a probe transaction of its own meets the doomed one's write conflict.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import subprocess
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
from bson.decimal128 import Decimal128
from pymongo import MongoClient
from pymongo.errors import OperationFailure

from adapters.feeds.render import write_jsonl
from adapters.feeds.sample_feed import generate_rows
from domain.product import product_id_for
from tests.e2e.test_cli import EYEWEAR, run
from tests.e2e.test_cli_ingestion import env_for
from tests.support.served import serve, served_env

APP_NAME = "eyewear-catalog"  # every eyewear process's driver says so (adapters/mongo/client.py)
BATCH = 500  # the pipeline's batch size: the doomed run dies in its second batch


@contextlib.contextmanager
def commit_held(mongo_url: str, app_name: str) -> Iterator[None]:
    admin: MongoClient[dict[str, Any]] = MongoClient(mongo_url)
    fail_point = {
        "configureFailPoint": "failCommand",
        "mode": {"skip": 1, "times": 1},
        "data": {"failCommands": ["commitTransaction"], "appName": app_name, "blockConnection": True},
    }
    fail_point["data"]["blockTimeMS"] = 70_000
    admin.admin.command(fail_point)
    try:
        yield
    finally:
        admin.admin.command({"configureFailPoint": "failCommand", "mode": "off"})
        admin.close()


def conflicts(database: Any, product_id: str) -> bool:
    """Whether a transaction of ours meets a write conflict on ``product_id`` (then aborted: a probe)."""
    with database.client.start_session() as session:
        session.start_transaction()
        try:
            database.products.update_one({"_id": product_id}, {"$set": {"name": "probe"}}, session=session)
        except OperationFailure as error:
            return error.code == 112  # WriteConflict
        finally:
            if session.in_transaction:
                session.abort_transaction()
    return False


def test_a_run_killed_inside_a_transaction_is_interrupted_rollback_able_and_its_rerun_converges_at_once(
    mongo_url: str, tmp_path: Path
) -> None:
    rows = list(generate_rows(styles=400, seed=21))
    assert len(rows) > 3 * BATCH
    first, cheaper = tmp_path / "first.jsonl", tmp_path / "cheaper.jsonl"
    write_jsonl(rows, first)
    write_jsonl([{**row, "price": "1.50"} for row in rows], cheaper)
    env = env_for(mongo_url, tmp_path)
    mongo: MongoClient[dict[str, Any]] = MongoClient(mongo_url)
    database = mongo[env["EYEWEAR_MONGODB_DB"]]
    second_batch = sorted({product_id_for(str(r["brand"]), str(r["style_id"])) for r in rows[BATCH : 2 * BATCH]})
    try:
        assert run(["ingest", str(first)], env, timeout=300).returncode == 0
        # The doomed process waits for its held commit rather than give up on it (a slow, busy machine
        # must not make it fail before the test kills it); its log tells why if it ends on its own.
        doomed_env = {**env, "EYEWEAR_MONGODB_TIMEOUT_MS": "120000"}
        doomed_log = (tmp_path / "doomed.log").open("w")
        with commit_held(mongo_url, APP_NAME):  # only the doomed process runs while it is held
            doomed = subprocess.Popen([*EYEWEAR, "ingest", str(cheaper)], env=doomed_env, stderr=doomed_log)
            deadline = time.monotonic() + 120
            while not database.products.find_one({"price_min": Decimal128("1.50")}, {"_id": 1}):
                ended = doomed.poll() is not None
                assert not ended and time.monotonic() < deadline, (
                    f"the first batch never landed: {(tmp_path / 'doomed.log').read_text()[-2000:]}"
                )
                time.sleep(0.05)
            # The second batch is planned and written in well under a second, then its commit is held;
            # probing earlier would make its writes meet our probes' conflicts instead.
            held: list[str] = []
            while not held:
                time.sleep(2)
                assert doomed.poll() is None, "the doomed run ended before its second commit"
                assert time.monotonic() < deadline, "the doomed run never held its second batch open"
                held = [pid for pid in second_batch if conflicts(database, pid)]
            doomed.send_signal(signal.SIGKILL)
            doomed.wait(timeout=30)
            doomed_log.close()
        assert conflicts(database, held[0]), "the dead process's transaction is still open"
        (left,) = database.ingestion_runs.find({"status": "running"})
        assert left["owner"].split(":")[1] == str(doomed.pid) and left["writer"]

        started = time.monotonic()
        rerun = run(["ingest", str(cheaper), "--report", str(tmp_path / "rerun.json")], env, timeout=300)
        took = time.monotonic() - started
        assert rerun.returncode == 0, rerun.stderr
        report = json.loads((tmp_path / "rerun.json").read_text())
        counts = report["counts"]
        print(f"re-run after SIGKILL inside a transaction: {took:.1f} s, counts {counts}")
        assert took < 30, "the re-run waited for the dead transaction to expire (60 s)"
        assert counts["rows"] == counts["valid"] == len(rows)
        assert counts["unchanged"] == BATCH and counts["updated"] == len(rows) - BATCH  # the first batch had landed

        interrupted = database.ingestion_runs.find_one({"_id": left["_id"]})
        assert interrupted is not None
        assert (interrupted["status"], interrupted["reason"]) == ("failed", "interrupted")
        assert interrupted["counts"]["rows"] in (0, BATCH)  # what its last renewal recorded
        # Its written part (the first batch) can be undone; the re-run also changed a product that
        # spans both batches, so a rollback must be forced (it is refused otherwise, as for any run).
        refused = run(["rollback", left["_id"]], env)
        assert refused.returncode == 1 and "changed after run" in refused.stderr
        undone = run(["rollback", left["_id"], "--force"], env)
        assert undone.returncode == 0, undone.stderr
        restored = database.products.find_one({"_id": product_id_for(str(rows[0]["brand"]), str(rows[0]["style_id"]))})
        assert restored is not None
        original = {Decimal(str(row["price"])) for row in rows if row["style_id"] == rows[0]["style_id"]}
        assert {v["price"].to_decimal() for v in restored["variants"]} == original
    finally:
        mongo.drop_database(env["EYEWEAR_MONGODB_DB"])
        mongo.close()


async def test_a_killed_server_leaves_its_run_and_upload_to_the_next_server(mongo_url: str, tmp_path: Path) -> None:
    """SIGKILL of ``eyewear serve`` while it ingests: the next server on the data dir records the run
    interrupted and deletes the spooled upload at start."""
    rows = list(generate_rows(styles=2000, seed=22))
    body = "".join(json.dumps(row, default=str) + "\n" for row in rows).encode()
    env = served_env(mongo_url, tmp_path / "data")
    spool = tmp_path / "data" / "spool"
    async with serve(env) as first:
        headers = {"Authorization": f"Bearer {first.token('ingestor', subject='killed')}"}
        async with httpx.AsyncClient(base_url=first.url, headers=headers, timeout=30) as http:
            started = await http.post(
                "/api/v1/ingestions", content=body, headers={"Content-Type": "application/x-ndjson"}
            )
            assert started.status_code == 202, started.text
            run_id = started.json()["run_id"]
            for _ in range(600):
                if (await http.get(f"/api/v1/ingestions/{run_id}")).json()["status"] == "running":
                    break
                await asyncio.sleep(0.02)
        assert [path.name.split("--")[0] for path in spool.iterdir()] == [run_id]
        first.process.kill()
        await first.process.wait()
    async with serve(env) as second:
        assert list(spool.iterdir()) == []  # swept at start: its writer is gone
        headers = {"Authorization": f"Bearer {second.token('viewer', subject='looker')}"}
        async with httpx.AsyncClient(base_url=second.url, headers=headers, timeout=30) as http:
            report = (await http.get(f"/api/v1/ingestions/{run_id}")).json()
    assert (report["status"], report["reason"]) == ("failed", "interrupted")
