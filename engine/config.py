"""Settings: defaults, then BITESIZE_* environment variables, then overrides.

Every process (web, worker, CLI) that starts with the same instance folder and
the same environment shares one database and one Redis, so settings are
derived from the environment the same way everywhere.
"""
from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

ENV_PREFIX = "BITESIZE_"


@dataclass(frozen=True)
class Settings:
    """What a bitesize process needs to know; see README's configuration table."""

    instance_path: Path = Path("instance")
    database_url: str = ""
    # A read replica of the PostgreSQL database, for exports and dashboards only
    # (Services.reader); empty: they read the primary like everything else.
    database_replica_url: str = ""
    redis_url: str = ""
    # Redis with failover: the Sentinels (host:port,host:port) and the name of the
    # master they watch; redis_url then gives only the password and db, if any.
    redis_sentinels: str = ""
    redis_sentinel_master: str = "mymaster"
    # Redis Cluster: redis_url names any one node; every project's dispatch keys
    # share one slot ({p:ID}). RQ cannot use a Cluster: queue_redis_url is then required.
    redis_cluster: int = 0
    # RQ's queues on a Redis of their own (standalone; empty: the dispatch Redis,
    # through the Sentinels too when they are set).
    queue_redis_url: str = ""
    # Stored images in an S3-compatible bucket that every node reaches:
    # s3://bucket[/prefix][?endpoint=URL&region=NAME]; empty: <instance>/media.
    media_url: str = ""
    # Uploads waiting for a worker (job files, CSVs waiting for their columns) in an
    # S3-compatible bucket, private: s3://bucket[/prefix][?endpoint=URL&region=NAME];
    # empty: <instance>/uploads.
    uploads_url: str = ""
    secret_key: str = ""
    sqlite_synchronous: str = "NORMAL"
    max_upload_mb: int = 200
    max_body_kb: int = 1024  # every request body but an upload's (web.body_limits)
    max_image_pixels: int = 50_000_000
    max_items_per_request: int = 10_000
    # Where people reach the site: links in invitations and password emails, and
    # those the command line prints (a request's own address is used when there is one).
    public_url: str = "http://127.0.0.1:5000"
    # smtp[s]://[user:password@]host[:port]?from=address[&starttls=1]; empty: no
    # email is sent and the console shows links to pass on by hand.
    smtp_url: str = ""
    # Outbound requests (IIIF, item images, webhooks) may reach these hosts,
    # host:port pairs or networks (CIDR) although they are private or on another
    # port: a deployment's own image server. Comma-separated; empty: public only.
    fetch_allow: str = ""
    # Rate limits (engine-independent strings, "N/second|minute|hour|day", several
    # joined by ";"). rate_limits=0 turns them all off (the test app's default).
    rate_limits: int = 1
    limit_volunteers: str = "100/minute;1000/day"  # sign-ups per client address
    limit_volunteers_network: str = "300/minute;5000/day"  # per /24 (IPv4) or /56 (IPv6)
    limit_answers: str = "60/minute"  # answers per volunteer
    limit_api: str = "600/minute"  # calls per user token
    limit_auth_failures: str = "20/minute"  # failed token checks per client address
    limit_uploads: str = "60/hour"  # job uploads per organisation
    # requests naming an e-mail address (a password reset, a volunteer's account)
    limit_emails: str = "5/hour;20/day"  # per address named: mail to any one inbox
    limit_emails_client: str = "30/hour"  # per client address: guessing who has an account
    # Proof of work for anonymous sign-up (engine.accounts.challenge): the leading
    # zero bits of SHA-256 asked for; 0, off.
    signup_work: int = 0
    # Fair hand-out: live leases a volunteer may hold at once in a project, and
    # how many times one lease may be extended.
    max_leases: int = 5
    max_extends: int = 4
    # Who may show the volunteer pages in a frame: space-separated origins
    # (https://charity.org); empty: nobody ('none').
    frame_ancestors: str = ""
    # Host names this site answers to (comma-separated); requests for any other
    # Host get 400 and absolute URLs never echo an untrusted Host. Empty: any
    # (development); the public URL's host is always trusted.
    trusted_hosts: str = ""
    # Reverse proxies in front of the app: the client's address and scheme are
    # taken from that many X-Forwarded-For/-Proto hops. 0: clients connect directly.
    behind_proxy: int = 0
    # /metrics (web.metrics): with a token, only requests bearing it; without,
    # only clients on loopback or a private network.
    metrics_token: str = ""
    # Log records as text, or as one JSON object per line (web.log_format).
    log_format: str = "text"

    @classmethod
    def from_env(cls, overrides: dict[str, Any] | None = None,
                 environ: dict[str, str] | None = None, create: bool = True) -> Settings:
        """Build settings: defaults < environment < explicit overrides. With
        create=False nothing is made on disk (no instance folder, no secret):
        enough to ask where the database would be."""
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = environ.get(ENV_PREFIX + f.name.upper())
            if raw is not None:
                values[f.name] = _coerce(f.type, raw)
        values.update(overrides or {})
        settings = cls(**values)
        return settings.resolved(create)

    def resolved(self, create: bool = True) -> Settings:
        """Fill the defaults that depend on the instance folder."""
        instance = Path(self.instance_path).absolute()
        if create and not instance.is_dir():
            _private_dir(instance)
        database_url = self.database_url or f"sqlite:///{instance / 'bitesize.db'}"
        secret = self.secret_key or (_instance_secret(instance) if create else "")
        return replace(self, instance_path=instance, database_url=database_url,
                       secret_key=secret)

    @property
    def sqlite_path(self) -> Path | None:
        """The database file, when the database is SQLite on disk."""
        url = make_url(self.database_url)
        if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
            return None
        return Path(url.database)

    @property
    def media_path(self) -> Path:
        return self.instance_path / "media"

    @property
    def uploads_path(self) -> Path:
        return self.instance_path / "uploads"


def _coerce(type_name: Any, raw: str) -> Any:
    """Environment values are strings; turn them into the field's type."""
    if type_name in ("int", int):
        return int(raw)
    if type_name in ("Path", Path):
        return Path(raw)
    return raw


def _private_dir(path: Path) -> None:
    """A new instance folder only its owner can enter (0700, whatever the
    umask): it holds the secret, the SQLite file, uploads and Redis's data.
    Media are served by the app itself, as the same user."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.chmod(0o700)


def _instance_secret(instance: Path) -> str:
    """A per-instance random secret, made once, so every process signs alike."""
    path = instance / "secret_key"
    if not path.exists():
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # never readable
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w") as stream:
            stream.write(secrets.token_hex(32))
        try:
            os.link(tmp, path)  # first writer wins; others read its secret
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    return path.read_text().strip()
