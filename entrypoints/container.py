"""The composition root: one flat dependency-injector container, one provider per line.

Nothing connects at import time: resources start in ``init_resources()`` (the app's lifespan or
a CLI command) and stop in ``shutdown_resources()``. Tests override providers (the catalog with
the memory twin, the URL with a test server) instead of patching modules.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from dependency_injector import containers, providers
from pymongo.asynchronous.database import AsyncDatabase

from adapters.auth.access_tokens import AccessTokenIssuer, AccessTokenVerifier
from adapters.auth.hashing import ScryptHasher
from adapters.auth.key_registry import LONGEST_TOKEN_TTL_SECONDS, retention
from adapters.auth.key_ring import KeyRing
from adapters.auth.keys import SigningKeys
from adapters.auth.oauth_audit import OAuthAudit
from adapters.auth.oauth_server import OAuthServer
from adapters.auth.oauth_throttle import ClientAuthThrottle
from adapters.cache.backend import CacheStore
from adapters.cache.cached_repository import CachedCatalog
from adapters.cache.invalidation import ChangeFeedInvalidator
from adapters.embedded import EmbeddedMongo
from adapters.files.audit_journal import JournaledAuditLog
from adapters.files.feed_spool import FeedSpool, SpooledFeeds
from adapters.host.executors import LocalExecutors
from adapters.html.nh3_sanitizer import Nh3Sanitizer
from adapters.memory.abuse import MemoryAbuseTracker
from adapters.memory.run_queue import InProcessRunQueue
from adapters.metrics.prometheus import PrometheusMetrics
from adapters.mongo.audit_log import MongoAuditLog
from adapters.mongo.brands import MongoBrandNames
from adapters.mongo.client import MongoOptions, create_client
from adapters.mongo.clients import MongoClientStore, MongoRefreshTokenStore
from adapters.mongo.documents import ProductDocument
from adapters.mongo.gridfs_feeds import GridFsFeeds
from adapters.mongo.group_commit_audit import GroupCommitAuditLog
from adapters.mongo.ingestion_runs import MongoIngestionRuns
from adapters.mongo.migrations import bind_documents
from adapters.mongo.monitoring import DriverMonitor
from adapters.mongo.product_repository import MongoCatalog
from adapters.mongo.revocation_mirror import RevocationMirror
from adapters.mongo.revocations import MongoRevocationList
from adapters.mongo.signing_keys import MongoKeyRegistry
from adapters.mongo.stores import MongoStoreCatalog, MongoStoreProfiles
from adapters.queue.saq_queue import SaqRunQueue
from adapters.redis.abuse import RedisAbuseTracker
from adapters.redis.client import create_redis
from adapters.redis.revocations import RedisRevocationList
from application.audit_queries import ReadAudit
from application.authorization import Authorizer
from application.catalog_commands import ArchiveProduct, CreateProduct, PatchVariant, ReplaceProduct
from application.catalog_queries import GetFacets, GetHistory, GetProduct, GetProductBySku, SearchProducts
from application.client_registration import RegisterClient
from application.ingestion import IngestFeed
from application.ingestion_queries import GetRun, ListRuns, RunErrors
from application.ingestion_rollback import RollbackRun
from application.metrics import CacheMetrics
from application.run_execution import ExecuteQueuedRun, FeedStore
from application.run_leases import RunLeases
from application.run_queue import RunQueue
from application.stores import ExportStore, GetStoreProfile, PutStoreProfile, StoreCatalog
from domain.abuse import DEFAULT_CLIENT_AUTH_POLICY, AbusePolicy, AbuseTracker, ClientAuthPolicy
from domain.audit import AuditLog, RevocationList
from domain.ports import Clock, SystemClock
from entrypoints.http.threat_screen import ThreatScreen
from entrypoints.ingestion_log import StructlogIngestionLog
from entrypoints.settings import Settings


def mongo_url(settings: Settings) -> Iterator[str]:
    """The configured URL, or the embedded server shared by every process of the data dir."""
    if settings.mongodb_url:
        yield settings.mongodb_url
        return
    server = EmbeddedMongo(settings.data_dir)
    url = server.start()
    try:
        yield url
    finally:
        server.stop()


def mongo_options(settings: Settings) -> MongoOptions:
    return MongoOptions(
        max_pool_size=settings.mongodb_max_pool_size,
        min_pool_size=settings.mongodb_min_pool_size,
        max_idle_ms=settings.mongodb_max_idle_ms,
        wait_queue_timeout_ms=settings.mongodb_wait_queue_timeout_ms,
        timeout_ms=settings.mongodb_timeout_ms,
    )


async def mongo_database(
    url: str, settings: Settings, options: MongoOptions, monitor: DriverMonitor
) -> AsyncIterator[AsyncDatabase[Any]]:
    """A database with the Beanie documents bound to it; the client closes with the resource."""
    client: Any = create_client(url, options, monitor)
    try:
        database = client[settings.mongodb_db]
        await bind_documents(database)
        yield database
    finally:
        await client.close()


async def redis_client(settings: Settings) -> AsyncIterator[Any]:
    """The shared Redis when configured; None means each process keeps its own state."""
    if not settings.redis_url:
        yield None
        return
    client = create_redis(settings.redis_url)
    try:
        yield client
    finally:
        await client.aclose()


async def cache_store(settings: Settings, metrics: CacheMetrics) -> AsyncIterator[CacheStore]:
    """The catalog cache: shared in Redis when configured, else this process's memory."""
    store = CacheStore.open(settings.redis_url, metrics)
    await store.init()
    try:
        yield store
    finally:
        await store.close()


@asynccontextmanager
async def stream_database(
    settings: Settings, database_provider: Any, url_provider: Any, options: MongoOptions
) -> AsyncIterator[Any]:
    """The database on a client of its own, for a change stream: the stream long-polls and holds
    its connection all the time, which in the app's pool would take a slot from requests and
    never let the ``in_use`` gauge reach 0. It opens once the database answered, and takes
    providers, not values: a Resource injected into a Resource trips dependency-injector when the
    first one fails (an unreachable database), and that failure must stay the one clear line a
    command prints."""
    await resolve(database_provider)
    client: Any = create_client(await resolve(url_provider), options)
    try:
        yield client[settings.mongodb_db]
    finally:
        await client.close()


async def cache_invalidation(
    settings: Settings, database_provider: Any, url_provider: Any, options: MongoOptions, store: CacheStore
) -> AsyncIterator[ChangeFeedInvalidator | None]:
    """A memory cache follows other processes' writes through the change stream; Redis needs not."""
    if settings.redis_url:
        yield None
        return
    async with stream_database(settings, database_provider, url_provider, options) as database:
        watcher = ChangeFeedInvalidator(database[ProductDocument.Settings.name], store)
        await watcher.start()
        try:
            yield watcher
        finally:
            await watcher.stop()


async def audit_log(settings: Settings, database_provider: Any, metrics: PrometheusMetrics) -> AsyncIterator[AuditLog]:
    """``EYEWEAR_AUDIT_SINK``. ``journal``: decisions go to this process's journal in the data dir,
    then to MongoDB in batches (ADR 0009). ``database``: each decision waits for the insert that
    carries it, shared with the concurrent ones, and nothing is written to the local disk (ADR
    0019); segments a journal left in the data dir are still shipped at start.

    Takes the database's provider, not its value, for the reason ``stream_database`` gives.
    """
    durable = MongoAuditLog(await resolve(database_provider))
    journal_dir = settings.data_dir / "audit-journal"
    sink: JournaledAuditLog | GroupCommitAuditLog
    if settings.audit_sink == "database":
        if journal_dir.is_dir():  # switched from the journal: what a dead process left goes in too
            await JournaledAuditLog(durable, journal_dir).recover_orphans()
        sink = GroupCommitAuditLog(durable)
    else:
        sink = JournaledAuditLog(durable, journal_dir, backlog=metrics.audit_backlog)
    await sink.start()
    try:
        yield sink
    finally:
        await sink.close()


async def revocation_mirror(
    settings: Settings, database_provider: Any, url_provider: Any, options: MongoOptions
) -> AsyncIterator[RevocationMirror]:
    """This process's copy of the revocations, kept by their change stream (ADR 0010). With Redis
    too: it answers a Redis miss without a MongoDB round trip (Redis may have lost its data)."""
    async with stream_database(settings, database_provider, url_provider, options) as database:
        mirror = RevocationMirror.on(database)
        await mirror.start()
        try:
            yield mirror
        finally:
            await mirror.stop()


def revocation_list(database: AsyncDatabase[Any], redis: Any, mirror: RevocationMirror) -> RevocationList:
    """MongoDB holds every revocation, answered from this process's mirror while its change stream
    is open. Redis, when configured, is read first (every process sees a revocation there at once:
    strict), and a Redis miss still asks the mirror, so a Redis that lost its data forgets nothing."""
    durable = MongoRevocationList(database, mirror=mirror)
    if redis is not None:
        return RedisRevocationList(redis, fallback=durable)
    return durable


def feed_spool(settings: Settings, executors: LocalExecutors) -> FeedSpool:
    """Uploaded feeds wait for their run in the data dir (a local disk), named for their process."""
    return FeedSpool(settings.data_dir / "spool", executors)


def sweep_seconds(settings: Settings) -> float:
    """How often unfinished runs are looked at: twice a lease, at least every 10 s (CONTRACT.md 6:
    no run stays running without an executor for more than the lease plus 30 s)."""
    return min(settings.run_lease_seconds / 2, 10.0)


async def run_queue(settings: Settings) -> AsyncIterator[RunQueue]:
    """The job engine's queue when ``EYEWEAR_BROKER_URL`` is set (ADR 0020), else this process."""
    if not settings.broker_url:
        yield InProcessRunQueue()
        return
    queue = SaqRunQueue(
        settings.broker_url, heartbeat_seconds=settings.run_lease_seconds, sweep_seconds=sweep_seconds(settings)
    )
    await queue.open()
    try:
        yield queue
    finally:
        await queue.close()


def feed_store(settings: Settings, database: AsyncDatabase[Any], spool: FeedSpool) -> FeedStore:
    """Feed bodies where every executor reaches them: MongoDB with a job engine, else this host's disk."""
    return GridFsFeeds(database, spool) if settings.broker_url else SpooledFeeds(spool)


def queued_elsewhere(settings: Settings) -> bool:
    """With a job engine, runs are executed by whichever worker takes them (and taken over, if it dies)."""
    return bool(settings.broker_url)


@dataclass(frozen=True)
class Runs:
    """What accepts, queues and executes ingestion runs, resolved once at start-up."""

    queue: RunQueue
    feeds: FeedStore
    execute: ExecuteQueuedRun
    leases: RunLeases
    spool: FeedSpool
    elsewhere: bool


def abuse_tracker(redis: Any) -> AbuseTracker:
    return RedisAbuseTracker(redis) if redis is not None else MemoryAbuseTracker()


def client_auth_throttle(
    redis: Any, clock: Clock, policy: ClientAuthPolicy = DEFAULT_CLIENT_AUTH_POLICY
) -> ClientAuthThrottle:
    """The token endpoint's counts (ADR 0014): in Redis when configured, so that every process sees
    them, with this process's memory taking over while Redis fails (throttled per process, never not
    at all); else in this process's memory."""

    def tracker(counts: AbusePolicy) -> AbuseTracker:
        memory = MemoryAbuseTracker(counts)
        return RedisAbuseTracker(redis, counts, fallback=memory) if redis is not None else memory

    return ClientAuthThrottle(
        tracker(policy.pair), tracker(policy.peer), tracker(policy.client), tracker(policy.suspect), clock
    )


def signing_keys(settings: Settings) -> SigningKeys:
    """The configured private JWK set, or the one generated (0600) in the data dir."""
    if settings.signing_keys_file is not None:
        return SigningKeys.load(settings.signing_keys_file)
    return SigningKeys.load_or_generate(settings.data_dir)


async def started_key_rings() -> AsyncIterator[list[KeyRing]]:
    """Stops the key rings started in this container (no I/O of its own: a command that never
    verifies a token, ``eyewear ingest`` say, registers no key)."""
    started: list[KeyRing] = []
    try:
        yield started
    finally:
        for ring in started:
            await ring.stop()


async def key_ring(
    settings: Settings, keys: SigningKeys, database: AsyncDatabase[Any], started: list[KeyRing]
) -> KeyRing:
    """This process's keys registered in MongoDB, every replica's accepted and published (ADR 0018);
    started when the verifier is first needed, so by ``eyewear serve`` after its migrations."""
    longest = max(settings.access_token_ttl_seconds, LONGEST_TOKEN_TTL_SECONDS)
    ring = KeyRing(keys, MongoKeyRegistry(database), kept=retention(longest))
    await ring.start()
    started.append(ring)
    return ring


@dataclass(frozen=True)
class Security:
    """What the HTTP guard and the token commands need, resolved once at start-up."""

    keys: SigningKeys
    issuer: AccessTokenIssuer
    verifier: AccessTokenVerifier
    authorizer: Authorizer
    screen: ThreatScreen


@dataclass(frozen=True)
class UseCases:
    """Every use case the entrypoints call, resolved once at start-up."""

    create_product: CreateProduct
    replace_product: ReplaceProduct
    patch_variant: PatchVariant
    archive_product: ArchiveProduct
    get_product: GetProduct
    get_by_sku: GetProductBySku
    get_history: GetHistory
    search: SearchProducts
    facets: GetFacets
    read_audit: ReadAudit
    ingest: IngestFeed
    rollback: RollbackRun
    get_run: GetRun
    list_runs: ListRuns
    run_errors: RunErrors
    put_store: PutStoreProfile
    get_store: GetStoreProfile
    store_catalog: StoreCatalog


class Container(containers.DeclarativeContainer):
    settings = providers.Dependency(instance_of=Settings)

    clock = providers.Singleton(SystemClock)
    sanitizer = providers.Singleton(Nh3Sanitizer)
    metrics = providers.Singleton(PrometheusMetrics)
    monitor = providers.Singleton(DriverMonitor, providers.List(metrics))
    mongo_options = providers.Singleton(mongo_options, settings)
    mongo_url = providers.Resource(mongo_url, settings)
    database = providers.Resource(mongo_database, mongo_url, settings, mongo_options, monitor)
    mongo_catalog = providers.Singleton(MongoCatalog, database)
    cache_store = providers.Resource(cache_store, settings, metrics)
    cache_invalidation = providers.Resource(
        cache_invalidation, settings, database.provider, mongo_url.provider, mongo_options, cache_store
    )
    catalog = providers.Singleton(CachedCatalog, mongo_catalog, cache_store)
    brand_names = providers.Singleton(MongoBrandNames, database)
    audit_log = providers.Resource(audit_log, settings, database.provider, metrics)
    ingestion_runs = providers.Singleton(MongoIngestionRuns, database)
    ingestion_log = providers.Singleton(StructlogIngestionLog)
    executors = providers.Singleton(LocalExecutors)
    run_queue = providers.Resource(run_queue, settings)
    run_leases = providers.Singleton(
        RunLeases,
        ingestion_runs,
        catalog,
        clock,
        executors,
        lease_seconds=settings.provided.run_lease_seconds,
        metrics=metrics,
        log=ingestion_log,
        requeue=providers.Callable(queued_elsewhere, settings),
        queue=run_queue,
    )
    feed_spool = providers.Singleton(feed_spool, settings, executors)
    redis = providers.Resource(redis_client, settings)
    revocation_mirror = providers.Resource(
        revocation_mirror, settings, database.provider, mongo_url.provider, mongo_options
    )
    revocations = providers.Singleton(revocation_list, database, redis, revocation_mirror)
    authorizer = providers.Singleton(Authorizer, audit_log, clock, metrics)
    feed_store = providers.Singleton(feed_store, settings, database, feed_spool)
    ingest = providers.Factory(
        IngestFeed,
        catalog,
        ingestion_runs,
        clock,
        sanitizer,
        authorizer,
        metrics=metrics,
        log=ingestion_log,
        leases=run_leases,
        brands=brand_names,
    )
    execute_run = providers.Factory(
        ExecuteQueuedRun,
        ingest,
        ingestion_runs,
        feed_store,
        hand_back=providers.Callable(queued_elsewhere, settings),
        log=ingestion_log,
    )
    runs = providers.Singleton(
        Runs, run_queue, feed_store, execute_run, run_leases, feed_spool, providers.Callable(queued_elsewhere, settings)
    )

    keys = providers.Singleton(signing_keys, settings)
    token_issuer = providers.Singleton(
        AccessTokenIssuer, keys, settings.provided.jwt_issuer, settings.provided.jwt_audience
    )
    key_rings = providers.Resource(started_key_rings)
    key_ring = providers.Singleton(key_ring, settings, keys, database, key_rings)
    token_verifier = providers.Singleton(
        AccessTokenVerifier, key_ring, settings.provided.jwt_issuer, settings.provided.jwt_audience, revocations
    )
    abuse = providers.Singleton(abuse_tracker, redis)
    threat_screen = providers.Singleton(ThreatScreen, authorizer, abuse, clock)
    security = providers.Singleton(Security, keys, token_issuer, token_verifier, authorizer, threat_screen)

    hasher = providers.Singleton(ScryptHasher)
    oauth_clients = providers.Singleton(MongoClientStore, database)
    refresh_tokens = providers.Singleton(MongoRefreshTokenStore, database)
    oauth_audit = providers.Singleton(OAuthAudit, authorizer, metrics)
    oauth_throttle = providers.Singleton(client_auth_throttle, redis, clock)
    oauth_server = providers.Singleton(
        OAuthServer,
        oauth_clients,
        refresh_tokens,
        hasher,
        token_issuer,
        token_verifier,
        oauth_audit,
        clock,
        oauth_throttle,
        access_ttl_seconds=settings.provided.access_token_ttl_seconds,
    )
    register_client = providers.Factory(RegisterClient, oauth_clients, hasher, clock, authorizer)

    store_profiles = providers.Singleton(MongoStoreProfiles, database)
    store_source = providers.Singleton(MongoStoreCatalog, database)
    store_catalog = providers.Factory(StoreCatalog, store_profiles, store_source, clock, authorizer)
    export_store = providers.Factory(ExportStore, store_catalog)

    use_cases = providers.Singleton(
        UseCases,
        create_product=providers.Factory(CreateProduct, catalog, clock, sanitizer, authorizer, brand_names),
        replace_product=providers.Factory(ReplaceProduct, catalog, clock, sanitizer, authorizer, brand_names),
        patch_variant=providers.Factory(PatchVariant, catalog, clock, authorizer),
        archive_product=providers.Factory(ArchiveProduct, catalog, clock, authorizer),
        get_product=providers.Factory(GetProduct, catalog, authorizer),
        get_by_sku=providers.Factory(GetProductBySku, catalog, authorizer),
        get_history=providers.Factory(GetHistory, catalog, catalog, authorizer),
        search=providers.Factory(SearchProducts, catalog, authorizer),
        facets=providers.Factory(GetFacets, catalog, authorizer),
        read_audit=providers.Factory(ReadAudit, audit_log, authorizer),
        ingest=ingest,
        rollback=providers.Factory(
            RollbackRun,
            catalog,
            ingestion_runs,
            clock,
            authorizer,
            metrics=metrics,
            log=ingestion_log,
            leases=run_leases,
        ),
        get_run=providers.Factory(GetRun, ingestion_runs, authorizer, run_leases),
        list_runs=providers.Factory(ListRuns, ingestion_runs, authorizer, run_leases),
        run_errors=providers.Factory(RunErrors, ingestion_runs, authorizer),
        put_store=providers.Factory(PutStoreProfile, store_profiles, authorizer),
        get_store=providers.Factory(GetStoreProfile, store_profiles, authorizer),
        store_catalog=store_catalog,
    )


async def resolve(provider: Any) -> Any:
    """Providers that depend on async resources answer with an awaitable; others with the value."""
    value = provider()
    if hasattr(value, "__await__"):
        return await value
    return value
