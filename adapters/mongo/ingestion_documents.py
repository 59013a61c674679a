"""Beanie documents of ingestion runs and their row errors (the stored shape, apart from the domain).

A run document carries a constant ``kind`` so that "the newest runs" leads with an equality on an
index (``{kind, created_at, _id}``), which SecantusDB's planner needs to avoid a collection scan;
likewise ``finished`` (derived from the status) lets "the unfinished runs" be one equality, and
``holder`` (``<status>:<owner>`` while unfinished, else null) lets every conditional write of a run's
lease be ``{_id, holder}``: SecantusDB's planner takes an index only when its leading fields are
exactly the filter's, so each write is an equality on the ``by_holder`` index.
Errors are one document per error, unique by ``{run_id, seq}``: storing a page twice keeps one,
and any page of them is an index range.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, ClassVar, Literal

from beanie import Document
from pydantic import BaseModel, ConfigDict, Field
from pymongo import ASCENDING, DESCENDING, IndexModel

Count = Annotated[int, Field(ge=0)]
RunState = Literal["queued", "running", "succeeded", "failed", "rejected", "rolled_back"]


class RunCountsFields(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rows: Count
    valid: Count
    invalid: Count
    created: Count
    updated: Count
    unchanged: Count
    products_created: Count
    products_updated: Count


class CheckFields(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, Field(min_length=1)]
    passed: bool
    detail: str


class UnknownFieldFields(BaseModel):
    """One ignored feed field; a list of these, not a map, since feed keys may hold ``.`` or ``$``."""

    model_config = ConfigDict(extra="forbid")

    name: str
    rows: Count


class IngestionRunFields(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    id: Annotated[str, Field(min_length=1)] = Field(alias="_id")
    kind: Literal["run"]
    status: RunState
    dry_run: bool
    error_policy: Literal["skip-invalid", "reject-all"]
    source: str
    actor: str
    created_at: datetime
    counts: RunCountsFields
    checks: list[CheckFields]
    started_at: datetime | None = None
    finished_at: datetime | None = None
    reason: str | None = None
    unknown_fields: list[UnknownFieldFields]
    rolled_back_at: datetime | None = None
    rolled_back_by: str | None = None
    finished: bool = False
    holder: str | None = None
    owner: str | None = None
    lease_until: datetime | None = None
    writer: str | None = None
    actor_roles: list[str] = Field(default_factory=list)
    actor_brands: list[str] = Field(default_factory=list)
    correlation_id: str | None = None
    portable: bool = False


class IngestionRunDocument(IngestionRunFields, Document):  # type: ignore[misc]
    class Settings:
        name = "ingestion_runs"
        use_revision = False
        validate_on_save = False
        keep_nulls = True
        indexes: ClassVar[list[IndexModel]] = [
            IndexModel([("kind", ASCENDING), ("created_at", DESCENDING), ("_id", DESCENDING)], name="newest_first"),
            IndexModel(
                [("kind", ASCENDING), ("finished", ASCENDING), ("created_at", ASCENDING), ("_id", ASCENDING)],
                name="unfinished_oldest_first",
            ),
            IndexModel([("_id", ASCENDING), ("holder", ASCENDING)], name="by_holder"),
        ]


class IngestionCheckpointFields(BaseModel):
    """A run's progress as of one committed batch (``domain.ingestion.Checkpoint``); its row errors
    are stored with it as ``ingestion_errors``, in the same transaction."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    id: Annotated[str, Field(min_length=1)] = Field(alias="_id")
    run_id: Annotated[str, Field(min_length=1)]
    number: Annotated[int, Field(ge=1)]
    pass_number: Annotated[int, Field(ge=1, le=2)]
    rows_read: Count
    batch_size: Annotated[int, Field(ge=1)]
    owner: Annotated[str, Field(min_length=1)]
    counts: RunCountsFields
    lease_until: datetime
    first_error: Count
    error_count: Count
    state: bytes


class IngestionCheckpointDocument(IngestionCheckpointFields, Document):  # type: ignore[misc]
    class Settings:
        name = "ingestion_checkpoints"
        use_revision = False
        validate_on_save = False
        keep_nulls = True
        indexes: ClassVar[list[IndexModel]] = [
            IndexModel([("run_id", ASCENDING), ("number", ASCENDING)], name="by_run_number", unique=True),
        ]


class IngestionErrorFields(BaseModel):
    model_config = ConfigDict(extra="forbid")

    run_id: Annotated[str, Field(min_length=1)]
    seq: Count
    line: Count
    sku: str | None = None
    field: str | None = None
    code: Annotated[str, Field(min_length=1)]
    message: str


class IngestionErrorDocument(IngestionErrorFields, Document):  # type: ignore[misc]
    class Settings:
        name = "ingestion_errors"
        use_revision = False
        validate_on_save = False
        keep_nulls = True
        indexes: ClassVar[list[IndexModel]] = [
            IndexModel([("run_id", ASCENDING), ("seq", ASCENDING)], name="by_run_seq", unique=True),
        ]
