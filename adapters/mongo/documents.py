"""Beanie documents: the stored shape of the catalog, kept apart from the domain entities.

Besides the product's own fields a document carries denormalised query keys (``brand_key``,
``name_key``, ``keywords``, ``skus``, ``gtins``, ``price_min``, ``size_classes``), so that every
query shape is answered by an index.
"""

from __future__ import annotations

import functools
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, ClassVar, Literal

from beanie import Document
from bson import Decimal128
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field
from pymongo import ASCENDING, DESCENDING, IndexModel

from adapters.mongo.ingestion_documents import (
    IngestionCheckpointDocument,
    IngestionErrorDocument,
    IngestionRunDocument,
)

Text = Annotated[str, Field(min_length=1)]


@functools.lru_cache(maxsize=4096)
def _decimal_of(bid: bytes) -> Decimal:
    return Decimal128.from_bid(bid).to_decimal()


def _stored_decimal(value: Any) -> Any:
    """Decimal128 -> Decimal, as beanie's ``DecimalAnnotation`` does, remembered by the value's 16
    bytes: ``to_decimal`` is pure Python (~6 µs), prices repeat, and a Decimal is immutable."""
    return _decimal_of(value.bid) if isinstance(value, Decimal128) else value


StoredDecimal = Annotated[Decimal, BeforeValidator(_stored_decimal)]


class VariantDocument(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sku: Annotated[str, Field(min_length=3, max_length=40)]
    gtin: Annotated[str, Field(min_length=14, max_length=14)] | None = None
    color_name: Text
    color_hex: str | None = None
    lens_width_mm: Annotated[int, Field(ge=40, le=62)]
    bridge_width_mm: Annotated[int, Field(ge=14, le=24)]
    temple_length_mm: Annotated[int, Field(ge=120, le=155)]
    lens_height_mm: Annotated[int, Field(ge=20, le=60)] | None = None
    size_class: str
    price: StoredDecimal
    currency: Annotated[str, Field(min_length=3, max_length=3)]
    stock_quantity: Annotated[int, Field(ge=0)]
    in_stock: bool
    rx_compatible: bool
    polarized: bool
    lens_category: Annotated[int, Field(ge=0, le=4)] | None = None
    uv_protection: str | None = None
    image_urls: list[str]
    # Change detection's key (``domain.feed_rows.variant_hash``), derived on every write; absent
    # from documents written before it existed.
    content_hash: str | None = None
    # ``domain.feed_rows.raw_digest`` of the feed record that produced this variant (ADR 0011).
    # Only an ingestion write stores it; every other write leaves it out, which drops it.
    raw_hash: str | None = None


class ProductRecord(BaseModel):
    """The stored fields of a product; pure pydantic, so mapping needs no bound database."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    id: str = Field(alias="_id")
    style_id: Text
    brand: Text
    name: Text
    category: str
    frame_shape: str
    frame_material: str
    rim_type: str
    gender: str
    description_html: str | None = None
    tags: list[str]
    face_shapes: list[str]
    status: str
    version: Annotated[int, Field(ge=1)]
    created_at: datetime
    updated_at: datetime
    completeness: float
    variants: Annotated[list[VariantDocument], Field(min_length=1)]
    # Query keys, derived from the fields above on every write.
    brand_key: str
    name_key: str
    price_min: StoredDecimal
    size_classes: list[str]
    skus: list[str]
    gtins: list[str] | None = None
    keywords: list[str]
    # Change detection's key (``domain.feed_rows.fields_hash``), like ``variants[].content_hash``.
    fields_hash: str | None = None


class ProductDocument(ProductRecord, Document):  # type: ignore[misc]
    """The Beanie document: the ``products`` collection, its indexes and its validator."""

    class Settings:
        name = "products"
        use_revision = False
        validate_on_save = False
        keep_nulls = True
        indexes: ClassVar[list[IndexModel]] = [
            IndexModel([("skus", ASCENDING)], name="sku_unique", unique=True),
            # The conditional replace's filter: {_id, version}.
            IndexModel([("_id", ASCENDING), ("version", ASCENDING)], name="by_id_version"),
            # Sparse, with the field left out when a product has no GTIN: products without GTINs
            # never collide, and point lookups by GTIN stay on the index.
            IndexModel([("gtins", ASCENDING)], name="gtin_unique", unique=True, sparse=True),
            IndexModel([("status", ASCENDING), ("name_key", ASCENDING), ("_id", ASCENDING)], name="by_name"),
            IndexModel([("status", ASCENDING), ("price_min", ASCENDING), ("_id", ASCENDING)], name="by_price"),
            IndexModel([("status", ASCENDING), ("updated_at", DESCENDING), ("_id", DESCENDING)], name="by_updated"),
            IndexModel(
                [("status", ASCENDING), ("brand_key", ASCENDING), ("name_key", ASCENDING), ("_id", ASCENDING)],
                name="by_brand",
            ),
            IndexModel([("keywords", ASCENDING)], name="by_keyword"),
            *(
                IndexModel([("status", ASCENDING), (field, ASCENDING)], name=f"by_{field}")
                for field in ("category", "frame_shape", "frame_material", "rim_type", "gender", "face_shapes")
            ),
        ]


class HistoryRecord(BaseModel):
    model_config = ConfigDict(extra="forbid")

    product_id: str
    version: Annotated[int, Field(ge=1)]
    at: datetime
    actor: str
    source: str
    changes: dict[str, Any]
    #: The product before the change, as stored (kept by ingestion, so that a run can be undone).
    previous: ProductRecord | None = None
    reverts: bool = False


class HistoryDocument(HistoryRecord, Document):  # type: ignore[misc]
    """The Beanie document of ``product_history``: one entry per product version."""

    class Settings:
        name = "product_history"
        use_revision = False
        validate_on_save = False
        indexes: ClassVar[list[IndexModel]] = [
            IndexModel([("product_id", ASCENDING), ("version", ASCENDING)], name="by_product", unique=True),
            # ``entries_from``: the entries of one ingestion run, by product, then version.
            IndexModel([("source", ASCENDING), ("product_id", ASCENDING), ("version", ASCENDING)], name="by_source"),
        ]


class AuditRecordFields(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    id: str = Field(alias="_id")
    at: datetime
    actor: str
    roles: list[str]
    action: str
    resource: str
    decision: Literal["allow", "deny"]
    reason: str
    correlation_id: str
    client_ip: str | None = None


class AuditDocument(AuditRecordFields, Document):  # type: ignore[misc]
    """Append-only audit trail; one index per filter, each ending in the newest-first order."""

    class Settings:
        name = "audit_log"
        use_revision = False
        validate_on_save = False
        indexes: ClassVar[list[IndexModel]] = [
            IndexModel([("at", DESCENDING), ("_id", DESCENDING)], name="newest_first"),
            *(
                IndexModel([(field, ASCENDING), ("at", DESCENDING), ("_id", DESCENDING)], name=f"by_{field}")
                for field in ("actor", "action", "decision")
            ),
        ]


class RevokedTokenFields(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    id: str = Field(alias="_id")
    expires_at: datetime


class RevokedTokenDocument(RevokedTokenFields, Document):  # type: ignore[misc]
    """Revoked access-token ids; the TTL index drops each once its token has expired anyway."""

    class Settings:
        name = "revoked_tokens"
        use_revision = False
        validate_on_save = False
        indexes: ClassVar[list[IndexModel]] = [
            IndexModel([("expires_at", ASCENDING)], name="expire", expireAfterSeconds=0),
        ]


class OAuthClientFields(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    id: Text = Field(alias="_id")
    name: Text
    secret_hash: Annotated[str, Field(min_length=16)]
    roles: list[str]
    brands: list[str]
    created_at: datetime
    disabled: bool


class OAuthClientDocument(OAuthClientFields, Document):  # type: ignore[misc]
    """Registered OAuth clients, by client id; the secret only as its scrypt hash."""

    class Settings:
        name = "oauth_clients"
        use_revision = False
        validate_on_save = False
        indexes: ClassVar[list[IndexModel]] = []


class RefreshTokenFields(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    id: Annotated[str, Field(min_length=64, max_length=64)] = Field(alias="_id")  # SHA-256 hex of the token
    family_id: Text
    client_id: Text
    subject: Text
    roles: list[str]
    brands: list[str]
    issued_at: datetime
    expires_at: datetime
    access_token_id: Text
    access_expires_at: datetime
    used: bool
    revoked: bool


class RefreshTokenDocument(RefreshTokenFields, Document):  # type: ignore[misc]
    """Refresh tokens by hash. Each index matches one filter the adapter sends, field for field."""

    class Settings:
        name = "refresh_tokens"
        use_revision = False
        validate_on_save = False
        indexes: ClassVar[list[IndexModel]] = [
            # ``use``: the atomic {_id, used: false} -> used: true.
            IndexModel([("_id", ASCENDING), ("used", ASCENDING)], name="by_id_used"),
            # ``revoke_family`` and ``family_revoked``: {family_id, revoked}.
            IndexModel([("family_id", ASCENDING), ("revoked", ASCENDING)], name="by_family"),
            # Every member of a family shares its absolute expiry; the TTL monitor then drops them.
            IndexModel([("expires_at", ASCENDING)], name="expire", expireAfterSeconds=0),
        ]


class StoreProfileFields(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    id: Annotated[str, Field(min_length=1, max_length=60)] = Field(alias="_id")
    name: Annotated[str, Field(min_length=1, max_length=120)]
    currency: Annotated[str, Field(min_length=3, max_length=3)]
    categories: list[str]
    brands: list[str]
    include_out_of_stock: bool


class StoreDocument(StoreProfileFields, Document):  # type: ignore[misc]
    """Store profiles by store id; read and replaced by ``_id`` only."""

    class Settings:
        name = "stores"
        use_revision = False
        validate_on_save = False
        indexes: ClassVar[list[IndexModel]] = []


class BrandFields(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    id: Text = Field(alias="_id")
    name: Text


class BrandDocument(BrandFields, Document):  # type: ignore[misc]
    """A brand's canonical spelling by its slug (``BrandNames``)."""

    class Settings:
        name = "brands"
        use_revision = False
        validate_on_save = False
        indexes: ClassVar[list[IndexModel]] = []


class SigningKeyFields(BaseModel):
    """A replica's public signing key (ADR 0018): public members only, and the validator, which
    allows no other field, refuses a private ``d`` from any writer."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    id: Annotated[str, Field(min_length=1, max_length=1024)] = Field(alias="_id")  # the kid
    alg: Literal["ES256", "EdDSA", "Ed25519"]
    kty: Literal["EC", "OKP"]
    crv: Literal["P-256", "Ed25519"]
    x: Annotated[str, Field(min_length=1, max_length=128)]
    y: Annotated[str, Field(min_length=1, max_length=128)] | None = None
    last_seen: datetime
    retire_at: datetime


class SigningKeyDocument(SigningKeyFields, Document):  # type: ignore[misc]
    """Every replica's public keys by kid; published while ``retire_at`` is in the future."""

    class Settings:
        name = "signing_keys"
        use_revision = False
        validate_on_save = False
        indexes: ClassVar[list[IndexModel]] = [
            # ``active``: {retire_at: {$gt: now}}; the TTL monitor drops a key once it has retired.
            IndexModel([("retire_at", ASCENDING)], name="expire", expireAfterSeconds=0),
            # The compare-and-set of a renewal: {_id, retire_at} as read.
            IndexModel([("_id", ASCENDING), ("retire_at", ASCENDING)], name="by_id_retire_at"),
        ]


DOCUMENT_MODELS: list[type[Document]] = [
    ProductDocument,
    HistoryDocument,
    AuditDocument,
    RevokedTokenDocument,
    OAuthClientDocument,
    RefreshTokenDocument,
    StoreDocument,
    IngestionRunDocument,
    IngestionErrorDocument,
    IngestionCheckpointDocument,
    BrandDocument,
    SigningKeyDocument,
]
