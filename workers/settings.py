"""One typed Settings object, read from `PANTAU_*` environment variables at an entry point."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

WORKER_KINDS = ("ingest", "extract", "alert")


class Settings(BaseSettings):
    """Every knob of Pantau. Build it once (CLI, worker start, API factory) and pass parts down."""

    model_config = SettingsConfigDict(env_prefix="PANTAU_", extra="ignore")

    # Broker and storage
    redis_url: str | None = Field(
        default=None, description="Redis to use; unset = start a private embedded redis-server."
    )
    data_dir: Path = Field(default=Path("var"), description="Embedded Redis data, metrics files.")
    namespace: str = Field(
        default="pantau",
        pattern=r"^[A-Za-z0-9_.-]{1,64}$",
        description="Prefix of every Redis key, Celery's queues included: one Redis, many deployments.",
    )
    visibility_timeout_s: int = Field(default=3600, ge=60)
    reconcile_after_s: int = Field(
        default=4500, ge=60, description="In flight this long without completing: re-send it."
    )
    max_deliveries: int = Field(
        default=5, ge=1, description="Deliveries of one message before it is dead-lettered."
    )
    article_ttl_s: int = Field(default=7 * 24 * 3600, ge=60, description="How long articles stay.")
    dedup_ttl_s: int = Field(default=7 * 24 * 3600, ge=60, description="Exact-dup memory.")
    story_window_s: int = Field(
        default=3 * 24 * 3600,
        ge=60,
        description="Near-duplicates within this window share a story.",
    )

    # Inputs
    max_input_bytes: int = Field(default=20 * 1024 * 1024, ge=1024)
    max_feed_bytes: int = Field(default=10 * 1024 * 1024, ge=1024, description="Feeds and pages.")
    feeds: Path | None = Field(default=None, description="Feeds YAML; default config/feeds.yaml.")
    feed_tick_s: float = Field(default=15.0, gt=0, description="How often beat checks feeds.")
    max_article_chars: int = Field(default=1_000_000, ge=1000)
    extract_batch_size: int = Field(
        default=64,
        ge=1,
        le=512,
        description="Articles per extract message (fewer messages: less Celery work per article).",
    )

    outbound_allowlist: str = Field(
        default="",
        description="Hosts, addresses or CIDRs that feeds and webhooks may reach "
        "although private/loopback (comma-separated).",
    )

    # Extraction and alerts
    watchlist: Path | None = Field(default=None, description="Watchlist YAML; default config/.")
    webhook_timeout_s: float = Field(default=10.0, gt=0, le=60)
    alert_stream_maxlen: int = Field(default=100_000, ge=100)

    # HTTP API and metrics
    outbox_max_bytes: int = Field(
        default=200 * 1024 * 1024, ge=1024, description="Local spool while Redis is unreachable."
    )
    max_request_bytes: int = Field(default=10 * 1024 * 1024, ge=1024, description="Push API body.")
    max_request_items: int = Field(default=10_000, ge=1, description="Articles per push request.")
    extract_high_water: int = Field(
        default=1000, ge=1, description="Extract batches queued above which the push API says 503."
    )
    api_host: str = "127.0.0.1"
    api_port: int = Field(default=8000, ge=0, le=65535)
    metrics_host: str = Field(default="127.0.0.1", description="0.0.0.0 in containers.")
    metrics_port_ingest: int = Field(default=9101, ge=0, le=65535)
    metrics_port_extract: int = Field(default=9102, ge=0, le=65535)
    metrics_port_alert: int = Field(default=9103, ge=0, le=65535)

    def metrics_port(self, kind: str) -> int:
        """The /metrics port of one worker kind (0 = not served)."""
        return int(getattr(self, f"metrics_port_{kind}"))

    @property
    def metrics_dir(self) -> Path:
        """Where prometheus-client's multiprocess files live."""
        return self.data_dir / "metrics"
