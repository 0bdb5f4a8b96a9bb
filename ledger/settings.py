"""The one settings class. Every value comes from the environment with the CIVIC_ prefix.

Defaults run the whole service on one machine: SQLite and a local ganache chain, both kept
under ``./data``. ``CIVIC_ENV=production`` refuses the development conveniences.
"""

from __future__ import annotations

import ipaddress
from functools import cached_property
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from contracts.secretfile import read_secret_file
from ledger.witnesses import Witness, parse_witnesses

MAX_BATCH = 2**32 - 1  # the contract stores a batch's size as uint32
_WILDCARD_HOSTS = frozenset({"", "0.0.0.0", "::", "[::]"})  # noqa: S104 - recognised, not bound


def _comma_list(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


def _url_host(host: str) -> str:
    """A host as it goes in a URL: an IPv6 literal in brackets."""
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CIVIC_", extra="ignore", frozen=True)

    env: Literal["development", "test", "production"] = "development"
    data_dir: Path = Path("./data")
    database_url: str | None = None
    api_host: str = "127.0.0.1"
    api_port: int = Field(8000, ge=1, le=65535)
    api_workers: int | None = Field(
        None, ge=1, le=64, description="API processes; default: one per core, at most 4"
    )
    chain_port: int = Field(8545, ge=1, le=65535)
    verifier_port: int = Field(8001, ge=1, le=65535)
    chain_id: int = Field(1337, ge=1, description="chain id of the local development chain")
    chain_rpc: str | None = None
    contract: str | None = Field(None, pattern=r"^0x[0-9a-fA-F]{40}$")
    anchor_interval: float = Field(2.0, gt=0, le=3600)
    batch_max: int = Field(1000, ge=1, le=MAX_BATCH)
    key_file: Path | None = None
    key_password_file: Path | None = None
    tx_type: Literal["auto", "legacy", "eip1559"] = "auto"
    gas_price_wei: int | None = Field(None, ge=0)
    receipt_timeout: float = Field(30.0, gt=0)
    max_body_bytes: int = Field(64 * 1024, ge=1024)
    max_attachment_bytes: int = Field(10 * 1024 * 1024, ge=1024)
    anonymous_attachment_bytes: int = Field(
        2 * 1024 * 1024, ge=1024, description="an anonymous upload's size at most"
    )
    upload_rate: int = Field(
        20, ge=0, description="anonymous uploads an hour per address (0: no own limit)"
    )
    attachment_grace_hours: float = Field(
        24.0, gt=0, description="hours an upload no record cites is kept before it is removed"
    )
    token_days: int = Field(180, ge=1, description="lifetime of account bearer tokens")
    submit_rate: int = Field(
        30, ge=0, description="anonymous submissions a minute per address, for the whole service"
    )
    trusted_proxies: str = Field(
        "",
        description="addresses or networks (comma-separated) of the reverse proxies whose "
        "X-Forwarded-For and X-Forwarded-Proto are believed; none by default",
    )
    public_url: str | None = Field(
        None,
        pattern=r"^https?://[^/?#@\s]+/?$",
        description="the API and portal as the public reaches them (an origin); absolute URLs "
        "are built from it, never from the Host header. Default http://<api host>:<api port>",
    )
    allowed_hosts: str = Field(
        "",
        description="production: host names (comma-separated) answered besides the public "
        "URL's and the API's own address, e.g. a monitor's",
    )
    reply_due_months: int = Field(3, ge=1, description="reply due after assignment")
    rehandling_due_months: int = Field(
        1, ge=1, description="reply due after an unsatisfied evaluation"
    )
    evaluation_days: int = Field(30, ge=0, description="days a citizen has to evaluate a reply")
    pii_key_file: Path | None = None
    log_name: str = Field(
        "civic-ledger.localhost",
        min_length=1,
        max_length=200,
        pattern=r"^[!-*,-~]+$",  # printable ASCII without '+' or spaces: a signed-note key name
        description="the deployment's name: each log's checkpoint origin is <name>/<log> "
        "(PROTOCOL §9)",
    )
    log_key_dir: Path | None = Field(
        None,
        description="the logs' checkpoint signing keys, <log>.key each (C2SP signer key text, "
        "mode 0600); development: generated under the data directory at first use",
    )
    witnesses: str | None = Field(
        None,
        description="the witnesses the worker pushes every checkpoint to (C2SP tlog-witness), "
        "each <url>=<cosignature/v1 verifier key>, separated by commas or spaces; "
        "`civic-ledger run` in development sets the local witness it starts; empty: none",
    )
    witness_quorum: int | None = Field(
        None,
        ge=1,
        description="how many witnesses' cosignatures make a checkpoint cosigned for "
        "/healthz/detail; default 1 when witnesses are named",
    )
    witness_port: int = Field(
        8002, ge=1, le=65535, description="the local development witness's port"
    )
    writer_socket: Path | None = Field(
        None,
        description="the writer process's Unix socket; `civic-ledger run` sets it. "
        "Unset, each API process writes through a writer thread of its own",
    )
    portal_secret_file: Path | None = Field(
        None, description="the portal's HMAC secret (CSRF tokens); default data/portal.secret"
    )
    verifier_public_url: str | None = Field(
        None,
        pattern=r"^https?://[^?#\s]+$",
        description="the verifier service as browsers reach it; default: the public URL's scheme "
        "and host on the verifier port",
    )

    @model_validator(mode="after")
    def _proxies_are_addresses(self) -> Settings:
        for entry in _comma_list(self.trusted_proxies):
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                raise ValueError(
                    f"CIVIC_TRUSTED_PROXIES: {entry!r} is not an IP address or network (a "
                    "wildcard would let every client name its own address)"
                ) from None
        return self

    @model_validator(mode="after")
    def _witnesses_are_url_and_key(self) -> Settings:
        count = len(parse_witnesses(self.witnesses or ""))  # ValueError names the entry
        if self.witness_quorum is not None and self.witness_quorum > count:
            raise ValueError(
                f"CIVIC_WITNESS_QUORUM={self.witness_quorum} but CIVIC_WITNESSES names "
                f"{count} witness(es)"
            )
        return self

    @model_validator(mode="after")
    def _production_refuses_development_defaults(self) -> Settings:
        if self.env != "production":
            return self
        problems = []
        if not self.chain_rpc:
            problems.append("CIVIC_CHAIN_RPC must name the production chain (no local ganache)")
        if not self.contract:
            problems.append("CIVIC_CONTRACT must name the deployed AnchorRegistry")
        if not self.database_url or self.database_url.startswith("sqlite"):
            problems.append("CIVIC_DATABASE_URL must point at PostgreSQL")
        if not self.key_file or not self.key_password_file:
            problems.append(
                "CIVIC_KEY_FILE and CIVIC_KEY_PASSWORD_FILE must name an encrypted keystore "
                "(the plain development key is refused)"
            )
        if not self.portal_secret_file:
            problems.append(
                "CIVIC_PORTAL_SECRET_FILE must name the portal's secret (mode 0600, made beforehand)"
            )
        if not self.log_key_dir:
            problems.append(
                "CIVIC_LOG_KEY_DIR must name the logs' checkpoint keys (<log>.key, mode 0600, "
                "made with `civic-ledger log-keys` and published beforehand: a key generated on "
                "the spot would not be the one witnesses and citizens were given)"
            )
        if self.log_name == "civic-ledger.localhost":
            problems.append("CIVIC_LOG_NAME must be the deployment's own name (a host name)")
        if not self.pii_key_file:
            problems.append(
                "CIVIC_PII_KEY_FILE must name the personal-data key (mode 0600, made and backed "
                "up beforehand: a key generated on the spot would make earlier data unreadable)"
            )
        if self.verifier_public_url and not self.verifier_public_url.startswith("https://"):
            problems.append(
                "CIVIC_VERIFIER_PUBLIC_URL must be https:// (the portal is served over TLS)"
            )
        if self.submit_rate == 0:
            problems.append(
                "CIVIC_SUBMIT_RATE=0 (no limit on anonymous submissions) is for development"
            )
        if self.upload_rate == 0:
            problems.append(
                "CIVIC_UPLOAD_RATE=0 (no limit on anonymous uploads) is for development"
            )
        if not self.public_url or not self.public_url.startswith("https://"):
            problems.append(
                "CIVIC_PUBLIC_URL must be the https:// origin the public reaches (receipt links "
                "and the allowed Host are built from it)"
            )
        if problems:
            raise ValueError("production settings refused: " + "; ".join(problems))
        return self

    @cached_property
    def witness_list(self) -> list[Witness]:
        """CIVIC_WITNESSES, parsed (empty: checkpoints are signed by the log only)."""
        return parse_witnesses(self.witnesses or "")

    @cached_property
    def resolved_witness_quorum(self) -> int:
        """CIVIC_WITNESS_QUORUM, else 1 (0 without witnesses)."""
        if self.witness_quorum is not None:
            return self.witness_quorum
        return min(1, len(self.witness_list))

    @cached_property
    def trusted_proxy_list(self) -> list[str]:
        """CIVIC_TRUSTED_PROXIES as a list (empty: X-Forwarded-* are never believed)."""
        return _comma_list(self.trusted_proxies)

    @cached_property
    def resolved_public_url(self) -> str:
        """The public origin, without a trailing slash: CIVIC_PUBLIC_URL, else
        ``http://<api host>:<api port>`` (127.0.0.1 when the API listens on every address)."""
        if self.public_url:
            return self.public_url.rstrip("/")
        host = "127.0.0.1" if self.api_host in _WILDCARD_HOSTS else self.api_host
        return f"http://{_url_host(host)}:{self.api_port}"

    @cached_property
    def resolved_verifier_public_url(self) -> str:
        """The verifier service as browsers reach it, without a trailing slash:
        CIVIC_VERIFIER_PUBLIC_URL, else the public URL's scheme and host on the verifier port."""
        if self.verifier_public_url:
            return self.verifier_public_url.rstrip("/")
        public = urlsplit(self.resolved_public_url)
        return f"{public.scheme}://{_url_host(public.hostname or '127.0.0.1')}:{self.verifier_port}"

    @cached_property
    def allowed_host_names(self) -> list[str]:
        """The Host header values (names, without the port) the API answers in production:
        the public URL's host, the API's own listening address, and CIVIC_ALLOWED_HOSTS."""
        names = [urlsplit(self.resolved_public_url).hostname or ""]
        if self.api_host not in _WILDCARD_HOSTS:
            names.append(self.api_host.strip("[]"))
        names += [name.lower() for name in _comma_list(self.allowed_hosts)]
        return list(dict.fromkeys(name.lower() for name in names if name))

    @cached_property
    def resolved_data_dir(self) -> Path:
        return self.data_dir.expanduser().resolve()

    @cached_property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.resolved_data_dir / 'civic-ledger.db'}"

    @cached_property
    def resolved_key_file(self) -> Path:
        return (self.key_file or self.resolved_data_dir / "anchor.key").expanduser()

    @cached_property
    def resolved_pii_key_file(self) -> Path:
        return (self.pii_key_file or self.resolved_data_dir / "pii.key").expanduser()

    @cached_property
    def resolved_log_key_dir(self) -> Path:
        return (self.log_key_dir or self.resolved_data_dir / "log-keys").expanduser()

    @cached_property
    def resolved_portal_secret_file(self) -> Path:
        return (self.portal_secret_file or self.resolved_data_dir / "portal.secret").expanduser()

    @cached_property
    def attachments_dir(self) -> Path:
        return self.resolved_data_dir / "attachments"

    @property
    def key_password(self) -> str | None:
        """The keystore password, from a file only its owner may read (else SecretFileError)."""
        if self.key_password_file is None:
            return None
        data = read_secret_file(self.key_password_file.expanduser(), "CIVIC_KEY_PASSWORD_FILE")
        return data.decode("utf-8").rstrip("\n")

    @cached_property
    def resolved_chain_rpc(self) -> str:
        return self.chain_rpc or f"http://127.0.0.1:{self.chain_port}"

    @property
    def runs_dev_chain(self) -> bool:
        return self.chain_rpc is None

    @property
    def deployment_file(self) -> Path:
        return self.resolved_data_dir / "contract.json"
