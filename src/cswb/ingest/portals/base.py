"""What every portal adapter shares: HTTP with retries, the resumable download, checkpoints.

An adapter (:class:`PortalAdapter`) knows one portal technology's wire format: how to ask for
one page of records at an offset, and how the portal says it failed. :func:`download` does the
rest, the same for every portal:

* it appends each page to a JSON-lines file (one JSON object per record, UTF-8, ``\\n`` ends);
* after every page it atomically replaces a checkpoint next to the output
  (``<out>.checkpoint.json``) with the query, the next offset, the rows and pages written, the
  output's size in bytes and whether the dataset is finished;
* run again, it resumes from the checkpoint: the output is first cut back to the size the
  checkpoint recorded, so a page that was being written when the process died (a torn line, or
  records the checkpoint does not count yet) is removed and fetched again, never duplicated;
* a finished download is not fetched again unless asked (``restart=True``).

HTTP requests are retried with exponential backoff on timeouts, connection failures, HTTP 429 and
5xx (honouring ``Retry-After``), a bounded number of times; anything else the portal says wrong
is a :class:`~cswb.errors.PortalError` carrying the portal's own message. The ``httpx.Client``
and the ``sleep`` function are injectable, so tests run against recorded responses.
"""

from __future__ import annotations

import json
import math
import os
import re
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar, Protocol
from urllib.parse import urlsplit

import httpx

from cswb import __version__
from cswb.errors import PortalError, SourceFileError
from cswb.files import atomic_write
from cswb.logging import get_logger

log = get_logger("ingest.portals")

USER_AGENT = f"cswb/{__version__} (community safety and well-being; open-data ingest)"
DEFAULT_TIMEOUT = httpx.Timeout(60.0, connect=15.0)
DEFAULT_PAGE_SIZE = 1000
CHECKPOINT_SUFFIX = ".checkpoint.json"
CHECKPOINT_FORMAT = "cswb-portal-checkpoint/1"
RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
"""HTTP statuses worth asking again (plus any other 5xx)."""

Record = dict[str, Any]


def make_client(transport: httpx.BaseTransport | None = None) -> httpx.Client:
    """An HTTP client for portals: JSON wanted, redirects followed, generous timeouts."""
    return httpx.Client(
        timeout=DEFAULT_TIMEOUT, follow_redirects=True, transport=transport,
        headers={"User-Agent": USER_AGENT, "Accept": "application/json"},
    )


# -- HTTP with retries ------------------------------------------------------------------------


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently a failing request is asked again."""

    attempts: int = 5
    base_delay: float = 1.0
    max_delay: float = 60.0

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        backoff = min(self.max_delay, self.base_delay * 2 ** (attempt - 1))
        if retry_after is None:
            return backoff
        return min(self.max_delay, max(backoff, retry_after))


@dataclass(frozen=True)
class Failure:
    """An error the portal reported in its answer."""

    message: str
    retryable: bool = False


ErrorReader = Callable[[Any], Failure | None]
"""Finds a portal's error in a parsed JSON answer (None when the answer is not an error)."""


class _RetryableError(Exception):
    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason, self.retry_after = reason, retry_after


class PortalClient:
    """GET requests answered with JSON, retried with exponential backoff when worth it."""

    def __init__(self, client: httpx.Client, retry: RetryPolicy | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.client = client
        self.retry = retry or RetryPolicy()
        self.sleep = sleep
        self.requests = 0

    def get_json(self, url: str, params: Mapping[str, str], read_error: ErrorReader) -> Any:
        """The parsed JSON answer to ``GET url?params``, or a :class:`PortalError`."""
        last = ""
        for attempt in range(1, self.retry.attempts + 1):
            try:
                return self._attempt(url, params, read_error)
            except _RetryableError as exc:
                last = exc.reason
                if attempt < self.retry.attempts:
                    wait = self.retry.delay(attempt, exc.retry_after)
                    log.warning("%s: %s; retrying in %.1f s (attempt %d of %d)", _where(url),
                                exc.reason, wait, attempt + 1, self.retry.attempts)
                    self.sleep(wait)
        raise PortalError(f"{_where(url)} failed {self.retry.attempts} times; last: {last}")

    def _attempt(self, url: str, params: Mapping[str, str], read_error: ErrorReader) -> Any:
        self.requests += 1
        try:
            response = self.client.get(url, params=dict(params))
        except httpx.TimeoutException:
            raise _RetryableError("the request timed out") from None
        except httpx.TransportError as exc:
            raise _RetryableError(f"the connection failed ({type(exc).__name__})") from None
        status = response.status_code
        payload = _json_of(response)
        failure = read_error(payload) if payload is not None else None
        retry = status in RETRY_STATUSES or status >= 500
        if failure is not None:
            if retry or failure.retryable:
                raise _RetryableError(f"HTTP {status}: {failure.message}", _retry_after(response))
            raise PortalError(f"{_where(url)} answered HTTP {status}: {failure.message}")
        if retry:
            raise _RetryableError(f"HTTP {status}", _retry_after(response))
        if status >= 400:
            raise PortalError(f"{_where(url)} answered HTTP {status} ({_content_type(response)})")
        if payload is None:
            raise PortalError(f"{_where(url)} answered HTTP {status} with "
                              f"{_content_type(response)}, not JSON")
        return payload


def _json_of(response: httpx.Response) -> Any:
    try:
        return json.loads(response.content)
    except (ValueError, UnicodeDecodeError):
        return None


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After", "").strip()
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None  # an HTTP date: fall back to the backoff


def _content_type(response: httpx.Response) -> str:
    kind = response.headers.get("Content-Type", "").split(";")[0].strip()
    return kind or "no content type"


def _where(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.netloc}{parts.path}"


# -- query building -----------------------------------------------------------------------

FIELD_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def sql_literal(value: str) -> str:
    """A string literal in SoQL and in ArcGIS's SQL (quotes doubled)."""
    return "'" + value.replace("'", "''") + "'"


def checked_field(name: str) -> str:
    """``name`` if it is a plain column name (so it can go into a query), else an error."""
    if not FIELD_NAME.match(name):
        raise PortalError(f"{name!r} is not a column name cswb can put into a query")
    return name


def date_clauses(date_field: str | None, since: date | None, until: date | None,
                 timestamp: str) -> list[str]:
    """``field >= since AND field < until + 1 day`` as clauses (both dates inclusive).

    ``timestamp`` formats a date as the portal's literal, e.g. ``'{}T00:00:00'``.
    """
    if since is None and until is None:
        return []
    if not date_field:
        raise PortalError("this source has no date field in the catalogue, so --since and "
                          "--until cannot be applied")
    if since and until and since > until:
        raise PortalError(f"--since {since} is after --until {until}")
    column = checked_field(date_field)
    clauses = []
    if since:
        clauses.append(f"{column} >= {timestamp.format(since.isoformat())}")
    if until:
        clauses.append(f"{column} < {timestamp.format((until + timedelta(days=1)).isoformat())}")
    return clauses


def equality_clauses(filters: dict[str, str]) -> list[str]:
    """Equality filters (the catalogue's ``query``) as clauses."""
    return [f"{checked_field(k)} = {sql_literal(v)}" for k, v in sorted(filters.items())]


# -- adapters ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    """What a download asks for, fixed when it starts and kept in its checkpoint."""

    params: dict[str, str]
    """The query parameters sent with every page, besides the paging ones."""
    schema: dict[str, str] | None = None
    """The dataset's columns and their types, when the portal describes them."""


@dataclass(frozen=True)
class Page:
    """One page of records and whether it is the dataset's last."""

    records: list[Record]
    last: bool


class PortalAdapter(ABC):
    """One portal technology's wire format."""

    name: ClassVar[str]
    identity_keys: ClassVar[tuple[str, ...]]
    """Parameters that define which records a download holds; a checkpoint resumes only when
    they are the same."""
    max_page_size: ClassVar[int] = 50_000

    def __init__(self, http: PortalClient) -> None:
        self.http = http

    @property
    @abstractmethod
    def url(self) -> str:
        """The dataset's endpoint, as recorded in the checkpoint."""

    @abstractmethod
    def query_params(self) -> dict[str, str]:
        """The query's parameters known without asking the portal."""

    def prepare(self) -> Plan:
        """Ask the portal what a fresh download needs (columns, the order field...)."""
        return Plan(self.query_params())

    @abstractmethod
    def fetch_page(self, plan: Plan, offset: int, limit: int) -> Page:
        """The records from ``offset`` on, at most ``limit`` of them."""

    def count(self, plan: Plan) -> int | None:
        """How many records the query matches, when the portal can tell cheaply."""
        return None

    def identity(self, params: Mapping[str, str]) -> dict[str, str | None]:
        return {key: params.get(key) for key in self.identity_keys}


# -- checkpoints ------------------------------------------------------------------------------


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass(frozen=True)
class Checkpoint:
    """Where a download stands; written atomically after every page."""

    adapter: str
    url: str
    params: dict[str, str]
    schema: dict[str, str] | None = None
    next_offset: int = 0
    rows_written: int = 0
    pages: int = 0
    finished: bool = False
    bytes_written: int = 0
    started_at: str = field(default_factory=_now)
    updated_at: str = field(default_factory=_now)
    format: str = CHECKPOINT_FORMAT

    @property
    def plan(self) -> Plan:
        return Plan(dict(self.params), dict(self.schema) if self.schema is not None else None)

    def advanced(self, rows: int, size: int, last: bool) -> Checkpoint:
        """The checkpoint after one more page of ``rows`` records and ``size`` bytes."""
        return replace(self, next_offset=self.next_offset + rows,
                       rows_written=self.rows_written + rows, pages=self.pages + 1,
                       finished=last, bytes_written=self.bytes_written + size,
                       updated_at=_now())

    @classmethod
    def load(cls, path: Path) -> Checkpoint | None:
        """The checkpoint at ``path``; None when there is none."""
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if data.get("format") != CHECKPOINT_FORMAT:
                raise ValueError(f"format {data.get('format')!r}")
            return cls(**data)
        except FileNotFoundError:
            return None
        except (ValueError, TypeError, AttributeError, UnicodeDecodeError) as exc:
            raise SourceFileError(
                f"checkpoint {path} is unreadable ({exc}); rerun with --restart to start the "
                "download again"
            ) from None

    def save(self, path: Path) -> None:
        """Replace the checkpoint file atomically (write, fsync, rename, fsync the folder)."""
        atomic_write(path, json.dumps(asdict(self), indent=2) + "\n")


def checkpoint_path(out: Path) -> Path:
    """Where the checkpoint of the download into ``out`` is kept."""
    return out.with_name(out.name + CHECKPOINT_SUFFIX)


# -- the download -----------------------------------------------------------------------------


class DownloadProgress(Protocol):
    """Receives the state of a download: once at the start, then after every page."""

    def start(self, total: int | None, checkpoint: Checkpoint) -> None: ...

    def page(self, checkpoint: Checkpoint) -> None: ...


class SilentDownloadProgress:
    """Shows nothing."""

    def start(self, total: int | None, checkpoint: Checkpoint) -> None:
        return None

    def page(self, checkpoint: Checkpoint) -> None:
        return None


@dataclass(frozen=True)
class DownloadResult:
    """What one run of :func:`download` did."""

    path: Path
    checkpoint: Checkpoint
    rows_this_run: int
    pages_this_run: int
    resumed_from: int | None
    """The offset this run resumed from (None for a fresh start)."""
    truncated_bytes: int = 0
    """Bytes cut from the output's end on resume (a torn or uncounted page)."""
    already_complete: bool = False

    @property
    def finished(self) -> bool:
        return self.checkpoint.finished

    @property
    def rows_written(self) -> int:
        return self.checkpoint.rows_written


def download(adapter: PortalAdapter, out: Path, *, page_size: int = DEFAULT_PAGE_SIZE,
             max_pages: int | None = None, restart: bool = False, count_total: bool = False,
             progress: DownloadProgress | None = None) -> DownloadResult:
    """Fetch the adapter's dataset into the JSON-lines file ``out``, resumably.

    ``max_pages`` bounds the pages fetched by this run (the checkpoint then says where the next
    run starts); ``restart`` discards the output and its checkpoint first; ``count_total`` asks
    the portal for the number of records (shown by ``progress``).
    """
    if page_size < 1:
        raise PortalError("the page size must be at least 1")
    run = _Download(adapter, Path(out), progress or SilentDownloadProgress())
    if restart:
        run.discard()
    checkpoint = Checkpoint.load(run.state_path)
    truncated, resumed_from = 0, None
    if checkpoint is None:
        checkpoint = run.begin()
    elif not run.same_query(checkpoint) and checkpoint.pages == 0:
        checkpoint = run.begin(replacing=True)  # a start that fetched nothing: start afresh
    else:
        run.check_same_query(checkpoint)
        if checkpoint.finished:
            return DownloadResult(run.out, checkpoint, 0, 0, None, already_complete=True)
        truncated = run.repair(checkpoint)
        resumed_from = checkpoint.next_offset
    total = adapter.count(checkpoint.plan) if count_total else None
    run.progress.start(total, checkpoint)
    checkpoint, pages = run.fetch_pages(checkpoint, min(page_size, adapter.max_page_size),
                                        max_pages)
    rows = checkpoint.rows_written - (resumed_from or 0)
    return DownloadResult(run.out, checkpoint, rows, pages, resumed_from, truncated)


class _Download:
    """The steps of one download run into one output file."""

    def __init__(self, adapter: PortalAdapter, out: Path, progress: DownloadProgress) -> None:
        self.adapter, self.out, self.progress = adapter, out, progress
        self.state_path = checkpoint_path(out)

    def discard(self) -> None:
        for path in (self.out, self.state_path):
            path.unlink(missing_ok=True)

    def begin(self, replacing: bool = False) -> Checkpoint:
        """Start afresh: plan the download, create an empty output and the first checkpoint."""
        out = self.out
        if not replacing and out.exists() and out.stat().st_size > 0:
            raise SourceFileError(
                f"{out} already exists and has no checkpoint ({self.state_path.name}): it was "
                "not written by an unfinished download. Choose another file, or rerun with "
                "--restart to overwrite it."
            )
        plan = self.adapter.prepare()
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(b"")
        checkpoint = Checkpoint(self.adapter.name, self.adapter.url, plan.params, plan.schema)
        checkpoint.save(self.state_path)
        return checkpoint

    def same_query(self, checkpoint: Checkpoint) -> bool:
        """Whether ``checkpoint`` was written for this adapter's dataset and query."""
        adapter = self.adapter
        return (checkpoint.adapter == adapter.name and checkpoint.url == adapter.url
                and adapter.identity(checkpoint.params) == adapter.identity(adapter.query_params()))

    def check_same_query(self, checkpoint: Checkpoint) -> None:
        """Refuse to resume a checkpoint written for another dataset or query."""
        adapter = self.adapter
        wanted = adapter.identity(adapter.query_params())
        found = adapter.identity(checkpoint.params)
        if not self.same_query(checkpoint):
            raise SourceFileError(
                f"{self.state_path.name} belongs to another download ({checkpoint.adapter} "
                f"{checkpoint.url} {found}), not this one ({adapter.name} {adapter.url} "
                f"{wanted}); rerun with --restart to replace it"
            )

    def repair(self, checkpoint: Checkpoint) -> int:
        """Cut the output back to the size the checkpoint counted; return the bytes removed."""
        out, expected = self.out, checkpoint.bytes_written
        if not out.exists():
            raise SourceFileError(f"{out} is missing but its checkpoint is not; rerun with "
                                  "--restart")
        size = out.stat().st_size
        if size < expected:
            raise SourceFileError(
                f"{out} holds {size} bytes but its checkpoint counted {expected}: the file was "
                "changed outside cswb; rerun with --restart"
            )
        with open(out, "r+b") as handle:
            if expected:
                handle.seek(expected - 1)
                if handle.read(1) != b"\n":
                    raise SourceFileError(f"{out} does not end a record where its checkpoint "
                                          "says; rerun with --restart")
            handle.truncate(expected)
            handle.flush()
            os.fsync(handle.fileno())
        if size > expected:
            log.warning("%s: removed %d bytes written after the last checkpoint", out.name,
                        size - expected)
        return size - expected

    def fetch_pages(self, checkpoint: Checkpoint, page_size: int,
                    max_pages: int | None) -> tuple[Checkpoint, int]:
        """Fetch, append and checkpoint pages until the end (or ``max_pages`` of them)."""
        plan = checkpoint.plan
        pages = 0
        with open(self.out, "ab") as handle:
            while not checkpoint.finished and (max_pages is None or pages < max_pages):
                page = self.adapter.fetch_page(plan, checkpoint.next_offset, page_size)
                data = encode_records(page.records)
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
                checkpoint = checkpoint.advanced(len(page.records), len(data), page.last)
                checkpoint.save(self.state_path)
                pages += 1
                self.progress.page(checkpoint)
        return checkpoint, pages


def encode_records(records: list[Record]) -> bytes:
    """Records as JSON lines (UTF-8, one object per line, non-finite numbers as null)."""
    lines = [json.dumps(_finite(r), ensure_ascii=False, separators=(",", ":"), allow_nan=False)
             for r in records]
    return "".join(line + "\n" for line in lines).encode("utf-8")


def _finite(value: Any) -> Any:
    """``value`` with NaN and infinities (which portals sometimes send) replaced by None."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value
