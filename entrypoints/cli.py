"""The ``eyewear`` command. Results on stdout, logs and progress on stderr, one clear line per error."""

from __future__ import annotations

import asyncio
import signal
import sys
from types import FrameType
from typing import Annotated, Any

import typer

from adapters.embedded import EmbeddedServerError
from entrypoints.settings import Settings, SettingsError, load_settings

DEMO_TOKEN_TTL_SECONDS = 12 * 3600
#: 128 + SIGTERM: a command stopped by SIGTERM before it finished (``serve`` exits 0 instead).
TERMINATED_EXIT_CODE = 143
app = typer.Typer(no_args_is_help=True, add_completion=False, help="The eyewear catalog service.")


class Terminated(SystemExit):
    """SIGTERM as an exit that unwinds: ``finally`` blocks and atexit hooks run, and they stop the
    embedded server this process started. The default action would kill the interpreter at once
    and leave ``secantusd-py`` running (uvicorn, after its graceful shutdown, re-raises the signal
    with the handler it found, so it reaches this one too)."""


_terminating = False


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    global _terminating
    if _terminating:
        return  # the first one is unwinding: a second must not cut its clean-up short
    _terminating = True
    raise Terminated(TERMINATED_EXIT_CODE)


def _fail(message: str, code: int = 1) -> typer.Exit:
    typer.echo(f"eyewear: {message}", err=True)
    return typer.Exit(code)


def _settings() -> Settings:
    from entrypoints.logging_setup import configure_logging

    try:
        settings = load_settings()
    except SettingsError as error:
        raise _fail(str(error), 2) from None
    configure_logging(settings.log_level, settings.log_format)
    return settings


def _container(settings: Settings) -> Any:
    from entrypoints.container import Container

    return Container(settings=settings)


def _port_free(host: str, port: int) -> bool:
    import socket

    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def _reachable(url: str, timeout_ms: int) -> str | None:
    """None when MongoDB answers a ping, else why not (one line)."""
    from pymongo import MongoClient
    from pymongo.errors import PyMongoError

    client: Any = MongoClient(url, serverSelectionTimeoutMS=min(timeout_ms, 5000), connect=False)
    try:
        client.admin.command("ping")
    except PyMongoError as error:
        return str(error).splitlines()[0][:300]
    finally:
        client.close()
    return None


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="interface to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535)] = 8000,
    demo: Annotated[bool, typer.Option("--demo", help="load the sample catalog when empty")] = False,
) -> None:
    """Serve the HTTP API."""
    import uvicorn

    from adapters.embedded import EmbeddedMongo
    from entrypoints.container import resolve
    from entrypoints.demo import load_demo_catalog
    from entrypoints.http.app import create_app

    settings = _settings()
    if not _port_free(host, port):
        raise _fail(f"{host}:{port} is already in use; choose another --port")
    base = f"http://{host}:{port}"
    embedded = None
    if not settings.mongodb_url:
        # Started here, before uvicorn, so a failure is one clear line instead of a lifespan traceback.
        embedded = EmbeddedMongo(settings.data_dir)
        try:
            settings = settings.model_copy(update={"mongodb_url": embedded.start()})
        except EmbeddedServerError as error:
            raise _fail(f"the embedded database did not start: {error}") from None
    try:
        problem = _reachable(str(settings.mongodb_url), settings.mongodb_timeout_ms)
        if problem is not None:
            raise _fail(f"MongoDB cannot be reached: {problem}")

        announcement = [f"Eyewear catalog at {base}", f"API docs at {base}/docs"]

        async def prepare(container: Any) -> None:
            if demo:
                await load_demo_catalog(container)
                issued = (await resolve(container.token_issuer)).issue(
                    subject="demo-admin", roles=["admin"], ttl_seconds=DEMO_TOKEN_TTL_SECONDS
                )
                announcement.append(f"Demo admin token (valid {DEMO_TOKEN_TTL_SECONDS // 3600} h):")
                announcement.append(issued.token)
                announcement.append(f'Try: curl -H "Authorization: Bearer <token>" "{base}/api/v1/products?limit=2"')

        class AnnouncingServer(uvicorn.Server):
            """Prints the URLs (and the demo token) once the socket listens, not before."""

            async def startup(self, sockets: Any = None) -> None:
                await super().startup(sockets=sockets)
                if self.started:
                    typer.echo("\n".join(announcement))

        application = create_app(_container(settings), on_startup=prepare)
        trusted = settings.forwarded_allow_ips.strip()
        config = uvicorn.Config(
            application,
            host=host,
            port=port,
            log_config=None,
            access_log=False,
            proxy_headers=bool(trusted),
            forwarded_allow_ips=trusted or None,
        )
        AnnouncingServer(config).run()
    except Terminated:
        raise typer.Exit(0) from None  # asked to stop, stopped gracefully: success (docker stop, systemd, k8s)
    finally:
        if embedded is not None:
            embedded.stop()


#: Seconds a stopping worker lets its runs finish before it hands them back (it exits within 30 s).
WORKER_GRACE_SECONDS = 15


@app.command()
def worker(
    concurrency: Annotated[int, typer.Option(min=1, max=64, help="runs executed at once")] = 1,
    metrics_port: Annotated[
        int | None, typer.Option(min=1, max=65535, help="serve /metrics on this port (on --metrics-host)")
    ] = None,
    metrics_host: Annotated[str, typer.Option(help="interface of the /metrics port")] = "127.0.0.1",
) -> None:
    """Execute queued ingestion runs (with EYEWEAR_BROKER_URL) until SIGTERM or SIGINT."""
    settings = _settings()
    if not settings.broker_url:
        raise _fail("eyewear worker executes runs queued on the job engine: set EYEWEAR_BROKER_URL (redis://…)", 2)
    container = _container(settings)

    async def work() -> None:
        import signal as signals

        import structlog

        from adapters.mongo.migrations import migrate as run_migrations
        from entrypoints.container import resolve
        from entrypoints.run_reaper import consuming, run_reaper

        log = structlog.get_logger("eyewear.worker")
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signals.SIGTERM, signals.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        await container.init_resources()
        try:
            await run_migrations(await resolve(container.database))
            runs = await resolve(container.runs)
            if metrics_port is not None:  # the worker's runs in Prometheus (a replica's /metrics has none of them)
                from prometheus_client import start_http_server

                metrics = await resolve(container.metrics)
                start_http_server(metrics_port, metrics_host, registry=metrics.registry)
                log.info("worker.metrics", url=f"http://{metrics_host}:{metrics_port}/metrics")
            async with run_reaper(runs), consuming(runs, concurrency, grace=WORKER_GRACE_SECONDS):
                log.info("worker.started", concurrency=concurrency, owner=runs.leases.owner)
                await stop.wait()
                log.info("worker.stopping", grace_seconds=WORKER_GRACE_SECONDS)
        finally:
            for signum in (signals.SIGTERM, signals.SIGINT):
                loop.remove_signal_handler(signum)
            await container.shutdown_resources()
        log.info("worker.stopped")

    try:
        asyncio.run(work())
    except EmbeddedServerError as error:
        raise _fail(f"the embedded database did not start: {error}") from None
    except Exception as error:  # one line, never a traceback
        raise _fail(f"the worker stopped: {type(error).__name__}: {error}") from None


@app.command()
def migrate(
    check: Annotated[
        bool, typer.Option("--check", help="change nothing; fail when a query the code sends would scan a collection")
    ] = False,
) -> None:
    """Create collections, $jsonSchema validators and indexes (idempotent); print what changed."""
    from adapters.mongo.migrations import migrate as run_migrations

    settings = _settings()
    container = _container(settings)
    if check:
        _check_query_plans(settings, container)
        return

    async def run() -> list[str]:
        await container.init_resources()
        try:
            from entrypoints.container import resolve

            database = await resolve(container.database)
            return await run_migrations(database)
        finally:
            await container.shutdown_resources()

    try:
        changes = asyncio.run(run())
    except EmbeddedServerError as error:
        raise _fail(f"the embedded database did not start: {error}") from None
    except Exception as error:  # one line, never a traceback
        raise _fail(f"migration failed: {type(error).__name__}: {error}") from None
    typer.echo("\n".join(changes) if changes else "nothing to change: the database is up to date")


def _check_query_plans(settings: Settings, container: Any) -> None:
    """``migrate --check``: explains every query shape against the configured database's indexes."""
    from adapters.mongo.plan_check import check_query_plans, scratch_name
    from entrypoints.container import resolve

    async def run() -> Any:
        try:  # only the server's URL (the embedded one may start): no cache, no change stream, no Redis
            url, options = await resolve(container.mongo_url), await resolve(container.mongo_options)
            return await check_query_plans(url, options, settings.mongodb_db)
        finally:
            stopping = container.shutdown_resources()  # None when only synchronous resources ran
            if stopping is not None:
                await stopping

    try:
        report = asyncio.run(run())
    except EmbeddedServerError as error:
        raise _fail(f"the embedded database did not start: {error}") from None
    except Exception as error:  # one line, never a traceback
        raise _fail(f"the query-plan check failed: {type(error).__name__}: {error}") from None
    for entry in report.offending:
        typer.echo(f"COLLSCAN {entry.describe()}")
    summary = (
        f"{len(report.entries)} query shapes on {len(report.collections)} collections"
        f" (from {report.recorded} commands, run in the scratch database {scratch_name(settings.mongodb_db)})"
    )
    if report.offending:
        raise _fail(f"{len(report.offending)} of {summary} would scan a collection; run `eyewear migrate`")
    typer.echo(f"every one of {summary} uses an index")


@app.command()
def token(
    subject: Annotated[str, typer.Option(help="the token's sub")],
    role: Annotated[list[str], typer.Option(help="a role (repeat for several)")],
    brand: Annotated[list[str] | None, typer.Option(help="limit writes to these brands (repeatable)")] = None,
    ttl: Annotated[int | None, typer.Option(min=1, max=86_400, help="seconds; default from settings")] = None,
) -> None:
    """Print one signed access token (only the token, on stdout)."""
    from domain.rbac import Role

    settings = _settings()
    known = {r.value for r in Role}
    unknown = [r for r in role if r not in known]
    if unknown:
        raise _fail(f"unknown role {unknown[0]!r}; roles are: {', '.join(sorted(known))}", 2)
    if not subject.strip():
        raise _fail("--subject must not be empty", 2)
    from adapters.auth.access_tokens import AccessTokenIssuer
    from entrypoints.container import signing_keys

    try:
        keys = signing_keys(settings)
    except Exception as error:  # one line, never a traceback
        raise _fail(f"cannot load the signing keys: {error}") from None
    issuer = AccessTokenIssuer(keys, settings.jwt_issuer, settings.jwt_audience)
    issued = issuer.issue(
        subject=subject.strip(),
        roles=role,
        brands=brand or [],
        ttl_seconds=ttl or settings.access_token_ttl_seconds,
    )
    typer.echo(issued.token)


def _with_container(settings: Settings, work: Any, failure: str) -> Any:
    """Runs ``work(container)`` with the container's resources (and the migrations) up.

    Every failure becomes one line on stderr: ``eyewear: <failure>: <why>``, exit 1.
    """
    container = _container(settings)

    async def run() -> Any:
        from adapters.mongo.migrations import migrate as run_migrations
        from entrypoints.container import resolve

        await container.init_resources()
        try:
            await run_migrations(await resolve(container.database))  # validators and indexes first
            return await work(container)
        finally:
            await container.shutdown_resources()

    try:
        return asyncio.run(run())
    except typer.Exit:
        raise
    except EmbeddedServerError as error:
        raise _fail(f"the embedded database did not start: {error}") from None
    except Exception as error:  # one line, never a traceback
        from domain.errors import DomainError

        reason = error.message if isinstance(error, DomainError) else f"{type(error).__name__}: {error}"
        raise _fail(f"{failure}: {reason}") from None


@app.command()
def ingest(
    path: Annotated[str, typer.Argument(help="a .jsonl, .ndjson or .csv feed, optionally .gz")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="compute and report everything, write nothing")] = False,
    error_policy: Annotated[
        str, typer.Option("--error-policy", help="skip-invalid (default) or reject-all")
    ] = "skip-invalid",
    report: Annotated[str | None, typer.Option("--report", help="write the full JSON report here")] = None,
) -> None:
    """Run the ingestion pipeline on a SKU Genie feed file; print the run summary."""
    from pathlib import Path

    from adapters.feeds.readers import FeedFile, UnsupportedFeed
    from domain.ingestion import ErrorPolicy

    try:
        policy = ErrorPolicy(error_policy)
    except ValueError:
        raise _fail(f"--error-policy must be one of: {', '.join(p.value for p in ErrorPolicy)}", 2) from None
    feed_path = Path(path)
    if not feed_path.is_file():
        raise _fail(f"no feed file at {path}", 2)
    try:
        feed = FeedFile(feed_path)
    except UnsupportedFeed as error:
        raise _fail(str(error), 2) from None
    report_path = Path(report) if report else None
    if report_path is not None and not report_path.parent.exists():
        raise _fail(f"the report's folder {report_path.parent} does not exist", 2)
    settings = _settings()

    async def work(container: Any) -> Any:
        from application.authorization import system_caller
        from entrypoints.container import resolve
        from entrypoints.ingestion_cli import progress_display, write_report

        cases = await resolve(container.use_cases)
        caller = system_caller("eyewear-cli")
        run = await cases.ingest.start(feed.name, caller, dry_run, policy)
        import structlog

        with structlog.contextvars.bound_contextvars(run_id=run.run_id), progress_display(run.run_id) as progress:
            run = await cases.ingest.execute(run, feed, caller, progress)
        if report_path is not None:
            await write_report(report_path, run, await resolve(container.ingestion_runs))
        return run

    from entrypoints.ingestion_cli import summary_lines

    run = _with_container(settings, work, "the ingestion did not run")
    typer.echo("\n".join(summary_lines(run)))
    if run.status.value != "succeeded":
        raise typer.Exit(1)


@app.command()
def rollback(
    run_id: Annotated[str, typer.Argument(help="the run to undo")],
    force: Annotated[bool, typer.Option("--force", help="roll back even products changed after the run")] = False,
) -> None:
    """Undo an ingestion run: products it changed get their content back, products it created go."""
    settings = _settings()

    async def work(container: Any) -> Any:
        from application.authorization import system_caller
        from entrypoints.container import resolve

        cases = await resolve(container.use_cases)
        return await cases.rollback(run_id, system_caller("eyewear-cli"), force)

    from entrypoints.ingestion_cli import summary_lines

    run = _with_container(settings, work, "the rollback was refused")
    typer.echo("\n".join(summary_lines(run)))


clients_app = typer.Typer(no_args_is_help=True, help="Manage OAuth clients.")
app.add_typer(clients_app, name="clients")


@clients_app.command("create")
def create_client(
    name: Annotated[str, typer.Option(help="a name for people; the client id starts with it")],
    role: Annotated[list[str], typer.Option(help="a role (repeat for several)")],
    brand: Annotated[list[str] | None, typer.Option(help="limit writes to these brands (repeatable)")] = None,
) -> None:
    """Register an OAuth client; print {"client_id", "client_secret"} (the secret is shown only now)."""
    import json

    from domain.rbac import Role

    settings = _settings()
    known = {r.value for r in Role}
    unknown = [r for r in role if r not in known]
    if unknown:
        raise _fail(f"unknown role {unknown[0]!r}; roles are: {', '.join(sorted(known))}", 2)
    if not name.strip():
        raise _fail("--name must not be empty", 2)

    async def work(container: Any) -> Any:  # after the migrations: the validator guards the new record
        from application.authorization import system_caller
        from entrypoints.container import resolve

        register = await resolve(container.register_client)
        return await register(name, [Role(r) for r in role], brand or [], system_caller("eyewear-cli"))

    registered = _with_container(settings, work, "the client was not registered")
    typer.echo(json.dumps({"client_id": registered.client.client_id, "client_secret": registered.secret}))


@app.command("export-store")
def export_store(
    store_id: Annotated[str, typer.Argument(help="the store profile to export")],
    out: Annotated[str, typer.Option("--out", help="the directory to write to (created when missing)")],
) -> None:
    """Write a store's generation data: store.json, products.ndjson, collections.json, facets.json."""
    import json
    from pathlib import Path

    from adapters.files.store_export import DirectoryExportSink
    from domain.stores import StoreNotFound

    settings = _settings()
    container = _container(settings)
    directory = Path(out)
    if directory.exists() and not directory.is_dir():
        raise _fail(f"--out {out} exists and is not a directory", 2)

    async def run() -> Any:
        from application.authorization import system_caller
        from entrypoints.container import resolve

        try:  # only what a read needs: no cache, no change stream, no Redis
            export = await resolve(container.export_store)
            return await export(store_id, DirectoryExportSink(directory), system_caller("eyewear-cli"))
        finally:
            stopping = container.shutdown_resources()
            if stopping is not None:
                await stopping

    try:
        result = asyncio.run(run())
    except StoreNotFound:
        raise _fail(f"no store {store_id!r}; create it with PUT /api/v1/stores/{store_id}") from None
    except EmbeddedServerError as error:
        raise _fail(f"the embedded database did not start: {error}") from None
    except Exception as error:  # one line, never a traceback
        raise _fail(f"the store was not exported: {type(error).__name__}: {error}") from None
    typer.echo(
        f"exported store {result.store_id}: {result.products} products, {result.variants} variants,"
        f" {result.collections} collections into {directory}",
        err=True,
    )
    typer.echo(json.dumps({"store_id": result.store_id, "files": list(result.files)}))


@app.command()
def bench(
    quick: Annotated[bool, typer.Option("--quick", help="3 000 rows and fewer samples: under two minutes")] = False,
    json_file: Annotated[str | None, typer.Option("--json", help="write the results and environment here")] = None,
    plot_file: Annotated[str | None, typer.Option("--plot", help="draw the ingestion cost curve here (PNG)")] = None,
    rows: Annotated[int | None, typer.Option("--rows", min=20, hidden=True)] = None,
    samples: Annotated[int | None, typer.Option("--samples", min=10, hidden=True)] = None,
) -> None:
    """Measure the service against the bare drivers on the same server (docs/performance.md)."""
    from pathlib import Path

    for option, value in (("--json", json_file), ("--plot", plot_file)):
        if value is not None and not Path(value).resolve().parent.is_dir():
            raise _fail(f"the folder of {option} {value} does not exist", 2)
    try:
        import httpx  # noqa: F401
    except ImportError:
        raise _fail("the bench needs httpx: pip install 'eyewear-catalog[bench]'", 2) from None
    if plot_file is not None:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            raise _fail("--plot needs matplotlib: pip install 'eyewear-catalog[bench]'", 2) from None
    settings = _settings()
    from entrypoints.bench.runner import BenchFailed, run_bench

    try:
        run_bench(
            settings,
            quick=quick,
            rows=rows,
            samples=samples,
            json_path=Path(json_file) if json_file else None,
            plot_path=Path(plot_file) if plot_file else None,
        )
    except EmbeddedServerError as error:
        raise _fail(f"the embedded database did not start: {error}") from None
    except BenchFailed as error:
        raise _fail(f"the bench failed: {error}") from None
    except Exception as error:  # one line, never a traceback
        raise _fail(f"the bench failed: {type(error).__name__}: {error}") from None


def main() -> None:
    signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
