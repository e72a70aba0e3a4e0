"""Configuration from ``POSHUB_*`` environment variables and an optional TOML file.

Precedence, highest first: explicit keyword arguments, environment variables, the TOML
file named by ``POSHUB_CONFIG_FILE``, then the defaults below. The README's
configuration table lists every field.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import os
from enum import StrEnum
from functools import cache
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationInfo, field_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from poshub.core import limits


class Mode(StrEnum):
    """How strict the process is about secrets and test material."""

    PRODUCTION = "production"
    """Refuses known test keys and demands a key-encrypting key from outside the database."""
    DEMO = "demo"
    """Generates a key file under the data directory and accepts the documented test keys."""
    TEST = "test"
    """Used by the test suite."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="POSHUB_", extra="ignore")

    mode: Mode = Mode.PRODUCTION
    """production, demo or test."""
    data_dir: Path = Path("var")
    """Where the embedded database, the document store and generated files live."""
    database_url: str | None = None
    """SQLAlchemy URL; defaults to SQLite at ``<data_dir>/poshub.db``."""
    kek: str | None = Field(default=None, repr=False)
    """Key-encrypting key, 64 hex digits (AES-256). Never stored in the database."""
    kek_file: Path | None = None
    """File holding the key-encrypting key in hex, used when ``kek`` is not set."""
    audit_anchor_dir: Path | None = None
    """Where the audit chain's anchors are appended (outside the database); defaults to
    ``<data_dir>/audit-anchors``. Put it where database administrators cannot write."""
    audit_anchor_interval_minutes: int = Field(
        default=limits.AUDIT_ANCHOR_INTERVAL_MINUTES, ge=1, le=24 * 60
    )
    """How often the worker anchors the audit chain head."""
    web_host: str = "127.0.0.1"
    web_port: int = 8000
    public_base_url: str | None = None
    """URL applicants see in notifications; defaults to http://web_host:web_port."""
    acquirer_code: str = "898"
    """Three-digit acquirer institution code that starts every MID."""
    acquirer_name_zh: str = "PosHub 示范收单机构"
    """The acquirer's legal name as it appears on contracts and receipts."""
    acquirer_name_en: str = "PosHub Demonstration Acquirer"
    acquirer_address: str = "安徽省合肥市蜀山区示范路 1 号"
    acquirer_licence: str = "Z2000000000001"
    acquirer_licence_kind: Literal["financial", "payment"] = "payment"
    """``financial`` for a bank (金融许可证), ``payment`` for a payment institution (支付业务许可证)."""
    acquirer_hotline: str = "400-000-0000"
    """24-hour service number printed on contracts and receipts."""
    """Payment business licence number (支付业务许可证) printed on contracts."""
    gateway_public_host: str = "127.0.0.1"
    """Host terminals connect to for transactions (sent to them in TMS parameters)."""
    gateway_port: int = 8583
    gateway_host: str = "127.0.0.1"
    """Address ``poshub gateway`` listens on."""
    gateway_upstream_timeout_seconds: float = limits.GATEWAY_UPSTREAM_TIMEOUT_SECONDS
    """How long the gateway waits for the network before answering 98 and reversing."""
    gateway_risk: bool = True
    """Real-time risk control in the authorization pipeline (rules, limits, freezes);
    ``POSHUB_GATEWAY_RISK=off`` only to measure the gateway without it."""
    tms_refusal_flush_seconds: float = Field(
        default=limits.TMS_REFUSAL_FLUSH_SECONDS, ge=0, le=3600
    )
    """Refused TMS requests are counted in memory and written to the database at most this
    often (and whenever staff read the counts): no write per refused request."""
    network_host: str = "127.0.0.1"
    """Where the card network (or ``poshub network-sim``) listens."""
    network_port: int = 8584
    network_zpk: str | None = Field(default=None, repr=False)
    """Zone PIN key shared with the network, 32 hex digits (PIN blocks travel under it)."""
    network_zpk_file: Path | None = None
    """File holding the zone PIN key in hex; outside production ``<data_dir>/network-zpk.hex``
    is created when neither is set."""
    default_locale: str = "zh_CN"
    timezone: str = "Asia/Shanghai"
    business_day_cutoff: dt.time = dt.time(23, 0)
    """Local time (``timezone``) from which a transaction belongs to the next business day
    for clearing and settlement (``HH:MM``; docs/settlement.md)."""
    cookie_secure: bool = Field(default=None, validate_default=True)
    """Send cookies only over HTTPS. Default: true in production, false in demo and test."""
    api_docs: bool = Field(default=None, validate_default=True)
    """Serve the API documentation (``/api/v1/docs``, ``/api/v1/openapi.json``). Default:
    off in production, on in demo and test."""
    trusted_proxies: Annotated[list[str], NoDecode] = Field(default_factory=list)
    """Reverse proxies whose ``X-Forwarded-For`` is believed, comma-separated IP addresses
    or CIDR networks; none by default (the socket peer is then the client's address)."""
    verification_provider: str = "sandbox"
    """Real-name and four-element verification adapter (``sandbox`` ships)."""
    risk_list_provider: str = "sandbox"
    """External risk list adapter checked at onboarding and daily for live merchants
    (``sandbox`` ships; docs/risk.md)."""
    notifier: str = "log"
    """Notification adapter for applicants (``log`` writes to the process log)."""
    applications_per_mobile_per_day: int = Field(
        default=limits.APPLICATIONS_PER_MOBILE_PER_DAY, ge=1, le=1000
    )
    """Applications one mobile number may start in 24 hours (then 429)."""
    applications_per_address_per_day: int = Field(
        default=limits.APPLICATIONS_PER_ADDRESS_PER_DAY, ge=1, le=100_000
    )
    """Applications one source address may start in 24 hours (then 429)."""
    mobile_codes_per_number_per_day: int = Field(
        default=limits.MOBILE_CODES_PER_NUMBER_PER_DAY, ge=1, le=100
    )
    """One-time SMS codes sent to one mobile number in 24 hours (then 429)."""
    mobile_codes_per_address_per_day: int = Field(
        default=limits.MOBILE_CODES_PER_ADDRESS_PER_DAY, ge=1, le=100_000
    )
    """One-time SMS codes one source address may ask for in 24 hours (then 429)."""
    review_sla_target_working_days: int = limits.REVIEW_SLA_TARGET_WORKING_DAYS
    review_sla_breach_working_days: int = limits.REVIEW_SLA_BREACH_WORKING_DAYS
    terminals_per_applicant_max: dict[str, int] = Field(
        default_factory=lambda: dict(limits.TERMINALS_PER_APPLICANT_MAX)
    )
    session_idle_minutes: int = limits.SESSION_IDLE_MINUTES
    prohibited_mccs: Annotated[dict[str, str], NoDecode] = Field(
        default_factory=lambda: dict(limits.PROHIBITED_MCCS)
    )
    """Merchant categories never onboarded, code → reason; replaces the default list. From
    the environment a JSON object, or codes separated by commas (reasons then from the
    default list, else a generic one)."""
    retention_years: int = Field(
        default=limits.RETENTION_YEARS_AFTER_TERMINATION,
        ge=limits.RETENTION_YEARS_MIN,
        le=limits.RETENTION_YEARS_MAX,
    )
    """Years after a merchant's termination date before its personal data is purged."""
    log_level: str = "INFO"

    @field_validator("cookie_secure", mode="before")
    @classmethod
    def _cookie_secure_in_production(cls, value: Any, info: ValidationInfo) -> Any:
        return info.data.get("mode") == Mode.PRODUCTION if value is None else value

    @field_validator("api_docs", mode="before")
    @classmethod
    def _api_docs_outside_production(cls, value: Any, info: ValidationInfo) -> Any:
        return info.data.get("mode") != Mode.PRODUCTION if value is None else value

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _proxies_from_a_list(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _proxies_are_addresses(cls, value: list[str]) -> list[str]:
        for entry in value:
            ipaddress.ip_network(entry, strict=False)  # ValueError names the bad entry
        return value

    @field_validator("acquirer_code")
    @classmethod
    def _acquirer_code_is_three_digits(cls, value: str) -> str:
        if len(value) != 3 or not value.isdigit():
            raise ValueError("acquirer_code must be three digits")
        return value

    @field_validator("prohibited_mccs", mode="before")
    @classmethod
    def _parse_prohibited_mccs(cls, value: Any) -> Any:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("{"):
                return json.loads(text)
            value = [code.strip() for code in text.split(",") if code.strip()]
        if isinstance(value, list | tuple):
            return {
                str(code): limits.PROHIBITED_MCCS.get(
                    str(code), limits.PROHIBITED_MCC_REASON_POLICY
                )
                for code in value
            }
        return value

    @field_validator("prohibited_mccs")
    @classmethod
    def _mccs_are_four_digits(cls, value: dict[str, str]) -> dict[str, str]:
        for code in value:
            if len(code) != 4 or not code.isascii() or not code.isdigit():
                raise ValueError(f"prohibited_mccs: {code!r} is not a four-digit MCC")
        return {
            code: reason or limits.PROHIBITED_MCC_REASON_POLICY for code, reason in value.items()
        }

    @field_validator("review_sla_target_working_days", "review_sla_breach_working_days")
    @classmethod
    def _positive_days(cls, value: int) -> int:
        if not 1 <= value <= 60:
            raise ValueError("SLA working days must be between 1 and 60")
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        config_file = os.environ.get("POSHUB_CONFIG_FILE")
        if config_file:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=Path(config_file)))
        return tuple(sources)

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'poshub.db').resolve()}"

    @property
    def acquirer_institution_id(self) -> str:
        """Field 32: the acquirer's institution code (n..11)."""
        return f"{self.acquirer_code}0000"

    @property
    def effective_audit_anchor_dir(self) -> Path:
        return self.audit_anchor_dir or self.data_dir / "audit-anchors"

    @property
    def documents_dir(self) -> Path:
        return self.data_dir / "documents"

    @property
    def base_url(self) -> str:
        return self.public_base_url or f"http://{self.web_host}:{self.web_port}"


@cache
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()


def settings_with(**overrides: Any) -> Settings:
    """Settings built from the environment with explicit overrides (CLI flags, tests)."""
    return Settings(**overrides)
