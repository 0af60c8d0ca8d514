"""Settings: one typed object, read from the environment and an optional TOML file.

Build it with :func:`load_settings` (never at import time). Precedence, highest first:
explicit overrides passed to the factory, ``CSWB_*`` environment variables, the TOML file named
by ``config_file`` or ``CSWB_CONFIG``, then the defaults below. ``docs/settings.md`` is
generated from this class (``python -m cswb.docs``), so every setting carries its help text here.
"""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from cswb.errors import ConfigError

Environment = Literal["development", "test", "production"]


class Settings(BaseSettings):
    """Every setting of cswb, with its default and what it is for."""

    model_config = SettingsConfigDict(env_prefix="CSWB_", extra="forbid", frozen=True)

    environment: Environment = Field(
        "development", description="Deployment kind: development, test or production."
    )
    data_dir: Path = Field(
        Path("var"), description="Folder for the analytic store, downloads and demo data."
    )
    store_url: str | None = Field(
        None,
        description="Analytic store URL, e.g. duckdb:///var/store (a folder of Parquet files "
        "read with DuckDB). Default: duckdb:///<data_dir>/store.",
    )
    log_level: str = Field("WARNING", description="Level of cswb's log (DEBUG, INFO, WARNING...).")
    duckdb_memory_limit: str = Field(
        "3GB", description="Memory DuckDB may use before it spills to the store's temp folder."
    )
    duckdb_threads: int | None = Field(
        None, ge=1, description="Threads DuckDB may use (default: all cores)."
    )
    ingest_max_line_bytes: int = Field(
        64 * 1024 * 1024,
        ge=1024,
        description="Longest CSV record accepted; a longer one is quarantined "
        "(reason line_too_long).",
    )
    ingest_min_date: date = Field(
        date(1970, 1, 1), description="Timestamps before this date are treated as impossible."
    )
    ingest_future_days: int = Field(
        2, ge=0, description="Timestamps more than this many days after the ingest are impossible."
    )
    store_retire_seconds: int = Field(
        3600, ge=0, description="How long files replaced by a commit are kept for readers still "
        "scanning the previous version of the store."
    )
    classify_at_ingest: bool = Field(
        True, description="Classify each batch's new call types as it is ingested (off: leave "
        "them for `cswb classify apply`)."
    )
    catalogue_path: Path | None = Field(
        None, description="The OpenPoliceData source catalogue CSV read by `cswb sources`."
    )
    # analytics: disclosure control and forecasting
    disclosure_threshold: int = Field(
        10, ge=1, description="Smallest count of calls a public table may show; smaller cells "
        "and the cells that would reveal them are suppressed."
    )
    populations_path: Path | None = Field(
        None, description="CSV of area populations (columns area or name, and population) "
        "for rates per 1,000 residents."
    )
    # --- call classifier (cswb.classify) ---
    classify_overrides_path: Path | None = Field(
        None, description="Analysts' overrides of the call classifier (labelled-file CSV). "
        "Default: <data_dir>/overrides.csv.")
    classify_model_path: Path | None = Field(
        None, description="Model file of the call classifier (.npz written by `cswb classify "
        "train`). Default: the model shipped with cswb.")
    classify_labels_path: Path | None = Field(
        None, description="Labelled call types used by `cswb classify train` and "
        "`cswb classify evaluate --cross-city` (CSV: city,call_type,count,category).")
    classify_review_below: float = Field(
        0.6, ge=0, le=1, description="Classifications with a lower confidence are listed for "
        "an analyst's review.")
    classify_model_min_confidence: float = Field(
        0.3, ge=0, le=1, description="Below this probability the model's best guess is not "
        "used and the call type stays `unknown` (with the reason).")
    api_rollups: bool = Field(
        True, description="Answer counting metrics from roll-up tables the server builds in "
        "memory for each store version (first request of a version, or at start-up); off: "
        "every request scans the calls view."
    )
    api_rollup_warm_level: Literal["neighbourhood", "district", "sector", "beat"] | None = Field(
        "neighbourhood", description="Area level whose roll-ups the server builds as soon as "
        "it starts (or none: build each on its first request)."
    )
    api_rollup_cache: bool = Field(
        True, description="Keep built roll-ups as Parquet under <data_dir>/rollups, one folder "
        "per store version, so a restarted server loads them instead of rebuilding."
    )
    host: str = Field("127.0.0.1", description="Address the web server listens on.")
    port: int = Field(8000, ge=1, le=65535, description="Port the web server listens on.")
    # dashboard and report
    area_boundaries: Path | None = Field(
        None, description="GeoJSON of the area boundaries the dashboard's map draws (features "
        "named by a `name` property matching the calls' neighbourhood)."
    )
    # respond: response policy, scenarios and staffing
    respond_policy: Path | None = Field(
        None, description="Response policy YAML used by `cswb respond` when --policy is not "
        "given (default: the policy shipped with cswb)."
    )
    respond_service_times: Path | None = Field(
        None, description="Fitted travel and on-scene times (JSON from `cswb respond fit-times`) "
        "used by `cswb respond staffing` (default: those shipped, fitted on Lane County's "
        "crisis-team dispatches)."
    )

    # --- linkage zone: identifiers only, apart from the analytic store (docs/linkage.md) ---
    linkage_url: str | None = Field(
        None, description="Linkage store URL (identifying values of ingested calls, encrypted, "
        "with keyed hashes), e.g. postgresql+psycopg://cswb_linkage@db/linkage. Default: "
        "sqlite:///<data_dir>/linkage/linkage.db.")
    linkage_chunk_rows: int = Field(
        20_000, ge=100, description="Identifying values encrypted and written per chunk when "
        "an ingest sends columns to the linkage zone.")

    # --- operational platform: store, keys, accounts, retention (docs/platform.md) ---
    operational_url: str | None = Field(
        None, description="Operational store URL (cases, accounts, audit), e.g. "
        "postgresql+psycopg://cswb@db/cswb. Default: sqlite:///<data_dir>/operational.db.")
    field_keys: dict[str, SecretStr] = Field(
        default_factory=dict, description="Keyring for identifying fields: key id -> base64 of "
        "32 random bytes (AES-256-GCM). Never stored in the database. Required outside "
        "development; `cswb keys generate` prints a new key.")
    field_key_current: str | None = Field(
        None, description="Id of the keyring key new ciphertexts use (default: the only key, "
        "or the last one listed).")
    search_key: SecretStr | None = Field(
        None, description="Base64 secret (32 bytes) for the keyed hashes (HMAC-SHA256) that "
        "make encrypted fields searchable. Required outside development.")
    search_keys: dict[str, SecretStr] = Field(
        default_factory=dict, description="More search keys (key id -> base64 of 32 bytes), "
        "for rotating the keyed hashes: search_key has the id `s0`; searches compute the hash "
        "under every key listed, and `cswb keys rehash` recomputes stored hashes under "
        "search_key_current, after which the old key can be removed.")
    search_key_current: str | None = Field(
        None, description="Id of the search key new keyed hashes use (default: the last of "
        "search_keys, or `s0`, the id of search_key).")
    secret_key: SecretStr | None = Field(
        None, description="Base64 secret (32 bytes) that signs CSRF tokens of the web forms. "
        "Required outside development.")
    login_max_failures: int = Field(
        5, ge=1, description="Failed logins in a row that lock an account.")
    login_lockout_seconds: int = Field(
        900, ge=1, description="How long a locked account stays locked.")
    login_rate_per_minute: int = Field(
        20, ge=1, description="Login attempts accepted per client address per minute.")
    session_hours: float = Field(
        8, gt=0, description="Lifetime of a web session or API bearer token.")
    token_cache_seconds: float = Field(
        30, ge=0, description="How long a verified token is trusted without a database look-up "
        "(a revocation is seen sooner: see token_revocation_check_seconds).")
    token_revocation_check_seconds: float = Field(
        1.0, ge=0, description="How often each server process checks the store's revocation "
        "counter (one tiny query); a logout, revoked token or disabled account empties every "
        "process's token cache at most this late.")
    retention_case_identity_days: int = Field(
        90, ge=0, description="Days after a case closes before its identifying details "
        "(name, date of birth, address) are purged by `cswb retention run`.")
    retention_linkage_days: int = Field(
        365, ge=1, description="Days after an identifying value was linked (its ingest batch) "
        "before `cswb retention run` deletes it from the linkage zone: sealed value and keyed "
        "hash alike.")
    audit_seal_seconds: float = Field(
        1.0, gt=0, description="How often the server chains new audit entries (the sealer).")
    max_request_bytes: int = Field(
        64 * 1024, ge=1024, description="Largest request body the API accepts.")
    oidc_issuer: str | None = Field(
        None, description="OpenID Connect issuer URL of an agency's identity provider "
        "(enables /auth/oidc/login).")
    oidc_client_id: str | None = Field(None, description="Client id registered with the issuer.")
    oidc_client_secret: SecretStr | None = Field(
        None, description="Client secret registered with the issuer.")
    oidc_redirect_url: str | None = Field(
        None, description="This server's callback URL registered with the issuer.")
    oidc_agency: str | None = Field(
        None, description="Code of the agency whose users log in through the issuer.")

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        level = value.upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError(f"unknown log level {value!r}")
        return level

    @model_validator(mode="after")
    def _real_secrets_outside_development(self) -> Settings:
        if self.environment == "development":
            return self
        problems = [f"{name} is missing or a placeholder"
                    for name, value in (("search_key", self.search_key),
                                        ("secret_key", self.secret_key))
                    if (value is None and not (name == "search_key" and self.search_keys))
                    or (value is not None and is_placeholder_secret(value.get_secret_value()))]
        problems += [f"search_keys[{key_id}] is a placeholder"
                     for key_id, value in self.search_keys.items()
                     if is_placeholder_secret(value.get_secret_value())]
        if not self.field_keys:
            problems.append("field_keys is empty")
        problems += [f"field_keys[{key_id}] is a placeholder"
                     for key_id, value in self.field_keys.items()
                     if is_placeholder_secret(value.get_secret_value())]
        if problems:
            raise ValueError(f"{self.environment} needs real secrets: " + "; ".join(problems))
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        config_file = os.environ.get("CSWB_CONFIG")
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if config_file:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=config_file))
        return tuple(sources)

    @property
    def resolved_store_url(self) -> str:
        """The store URL, defaulting to a Parquet folder under ``data_dir``."""
        return self.store_url or f"duckdb:///{(self.data_dir / 'store').as_posix()}"

    @property
    def resolved_overrides_path(self) -> Path:
        """The classifier's overrides file, defaulting to ``<data_dir>/overrides.csv``."""
        return self.classify_overrides_path or self.data_dir / "overrides.csv"

    @property
    def resolved_operational_url(self) -> str:
        """The operational store URL, defaulting to a SQLite file under ``data_dir``."""
        return self.operational_url or \
            f"sqlite:///{(self.data_dir / 'operational.db').as_posix()}"

    @property
    def resolved_linkage_url(self) -> str:
        """The linkage store URL, defaulting to a SQLite file under ``data_dir/linkage``."""
        return self.linkage_url or \
            f"sqlite:///{(self.data_dir / 'linkage' / 'linkage.db').as_posix()}"

    @property
    def downloads_dir(self) -> Path:
        """Where portal downloads and their resume checkpoints are kept."""
        return self.data_dir / "downloads"


PLACEHOLDER_PREFIXES = ("change", "placeholder", "example", "your", "xxx", "todo", "secret",
                        "insecure")
"""A secret starting with one of these words is refused outside development."""


def is_placeholder_secret(value: str) -> bool:
    """True for a secret that is short, repetitive, or reads like a placeholder.

    A real secret here is base64 of 32 random bytes: 44 characters, about 30 of them distinct.
    """
    lowered = value.strip().lower()
    return len(lowered) < 32 or len(set(lowered)) < 12 or lowered.startswith(PLACEHOLDER_PREFIXES)


def load_settings(config_file: str | Path | None = None, **overrides: Any) -> Settings:
    """Build the settings; raise :class:`ConfigError` with every problem listed."""
    previous = os.environ.get("CSWB_CONFIG")
    try:
        if config_file is not None:
            path = Path(config_file)
            if not path.is_file():
                raise ConfigError(f"configuration file {path} does not exist")
            os.environ["CSWB_CONFIG"] = str(path)
        elif previous and not Path(previous).is_file():
            raise ConfigError(f"CSWB_CONFIG names {previous}, which does not exist")
        return Settings(**overrides)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'settings'}: {err['msg']}"
            for err in exc.errors()
        )
        raise ConfigError(f"invalid settings: {problems}") from None
    finally:
        if config_file is not None:
            if previous is None:
                os.environ.pop("CSWB_CONFIG", None)
            else:
                os.environ["CSWB_CONFIG"] = previous
