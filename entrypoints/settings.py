"""Settings from ``EYEWEAR_*`` environment variables (CONTRACT.md section 2), each with a safe default."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="EYEWEAR_", extra="ignore", frozen=True)

    mongodb_url: str | None = None
    mongodb_db: str = Field(default="eyewear", pattern=r"^[A-Za-z0-9_-]{1,63}$")
    mongodb_max_pool_size: int = Field(default=100, ge=1, le=10_000)
    mongodb_min_pool_size: int = Field(default=0, ge=0, le=10_000)
    mongodb_max_idle_ms: int = Field(default=300_000, ge=0)
    mongodb_wait_queue_timeout_ms: int = Field(default=10_000, ge=1)
    mongodb_timeout_ms: int = Field(default=10_000, ge=1)
    redis_url: str | None = None
    data_dir: Path = Path(".eyewear")
    jwt_issuer: str = "eyewear-catalog"
    jwt_audience: str = "eyewear-catalog-api"
    signing_keys_file: Path | None = None
    access_token_ttl_seconds: int = Field(default=900, ge=1, le=86_400)
    #: CONTRACT.md section 6: ``redis://…`` makes ingestion runs jobs on the job engine.
    broker_url: str | None = Field(default=None, pattern=r"^rediss?://")
    run_lease_seconds: float = Field(default=30.0, gt=0, le=3600)
    audit_sink: Literal["journal", "database"] = "journal"
    #: Proxies whose X-Forwarded-For ``eyewear serve`` believes (uvicorn's ``forwarded_allow_ips``);
    #: empty: none, the socket peer is the client (anything on loopback could otherwise pick its address).
    forwarded_allow_ips: str = Field(default="", pattern=r"^[0-9A-Fa-f.:/,* ]*$")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    log_format: Literal["json", "console"] = "json"

    @field_validator("log_level", "log_format", "audit_sink", mode="before")
    @classmethod
    def _case_insensitive(cls, value: object, info: object) -> object:
        if not isinstance(value, str):
            return value
        return value.upper() if getattr(info, "field_name", "") == "log_level" else value.lower()


class SettingsError(Exception):
    """One clear line naming the variable, for start-up to print instead of a traceback."""


def load_settings() -> Settings:
    try:
        return Settings()
    except ValidationError as error:
        first = error.errors()[0]
        variable = "EYEWEAR_" + str(first["loc"][0]).upper() if first["loc"] else "EYEWEAR_*"
        raise SettingsError(f"{variable}: {first['msg']}") from None
