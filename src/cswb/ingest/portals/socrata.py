"""Socrata (SODA) datasets: ``GET https://{domain}/resource/{dataset_id}.json``.

Paging uses ``$limit`` and ``$offset`` under a stable ``$order`` (the row id ``:id`` by default),
and a page shorter than ``$limit`` is the last. A date range becomes a ``$where`` on the
dataset's date field; Socrata's floating timestamps (``2019-01-01T00:00:00.000``) are local
times, so the range is in the agency's local time. Every value arrives as a string.

Socrata leaves a record's null fields out of its JSON. So that every line of a download has the
same keys (a mapping may name a column that happens to be empty in one month), the adapter reads
the dataset's columns once (``/api/views/{dataset_id}.json``) and writes every record with all of
them, null where absent; point columns also get ``<column>.longitude`` and ``<column>.latitude``
keys a mapping can use. When the portal does not describe its columns, records are written as
they come.

Errors come as JSON with a 4xx status: ``{"error": true, "message": ...}`` or
``{"code": ..., "message": ...}``.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any, ClassVar

from cswb.errors import PortalError
from cswb.ingest.portals.base import (
    Failure,
    Page,
    Plan,
    PortalAdapter,
    PortalClient,
    Record,
    date_clauses,
    equality_clauses,
)
from cswb.logging import get_logger

log = get_logger("ingest.portals.socrata")

DATASET_ID = re.compile(r"^[a-z0-9]{4}-[a-z0-9]{4}$")
"""A Socrata dataset id ("four-by-four")."""
POINT_TYPES = frozenset({"point", "location"})
MAX_LIMIT = 50_000
"""The largest ``$limit`` every SODA version honours; a larger page could come back capped and
be mistaken for the last one."""


def read_error(payload: Any) -> Failure | None:
    """Socrata's error object, if ``payload`` is one."""
    if not isinstance(payload, dict):
        return None
    if payload.get("error") or ("code" in payload and "message" in payload):
        message = payload.get("message") or payload.get("code") or "unspecified error"
        code = payload.get("code")
        text = f"{message} ({code})" if code and code != message else str(message)
        return Failure(text[:500])
    return None


def normalise_domain(domain: str) -> str:
    """``data.mesaaz.gov`` from ``https://data.mesaaz.gov/`` and the like."""
    text = re.sub(r"^https?://", "", domain.strip(), flags=re.IGNORECASE).strip("/")
    if not text or "/" in text or " " in text:
        raise PortalError(f"{domain!r} is not a Socrata domain (like data.mesaaz.gov)")
    return text.lower()


class SocrataAdapter(PortalAdapter):
    """Pages of a Socrata dataset through the SODA API."""

    name: ClassVar[str] = "socrata"
    identity_keys: ClassVar[tuple[str, ...]] = ("$where", "$order")
    max_page_size: ClassVar[int] = MAX_LIMIT

    def __init__(self, http: PortalClient, domain: str, dataset_id: str, *,
                 date_field: str | None = None, since: date | None = None,
                 until: date | None = None, filters: dict[str, str] | None = None,
                 order: str = ":id") -> None:
        super().__init__(http)
        self.domain = normalise_domain(domain)
        self.dataset_id = dataset_id.strip().lower()
        if not DATASET_ID.match(self.dataset_id):
            raise PortalError(f"{dataset_id!r} is not a Socrata dataset id (like ex94-c5ad)")
        self.where = " AND ".join(
            date_clauses(date_field, since, until, "'{}T00:00:00'")
            + equality_clauses(filters or {}))
        self.order = order

    @property
    def url(self) -> str:
        return f"https://{self.domain}/resource/{self.dataset_id}.json"

    @property
    def metadata_url(self) -> str:
        return f"https://{self.domain}/api/views/{self.dataset_id}.json"

    def query_params(self) -> dict[str, str]:
        params = {"$order": self.order}
        if self.where:
            params["$where"] = self.where
        return params

    def prepare(self) -> Plan:
        return Plan(self.query_params(), self._schema())

    def _schema(self) -> dict[str, str] | None:
        """The dataset's public columns and their types, or None if the portal will not say."""
        try:
            payload = self.http.get_json(self.metadata_url, {}, read_error)
        except PortalError as exc:
            log.warning("%s: cannot read the dataset's columns (%s); records are written as "
                        "they come", self.dataset_id, exc)
            return None
        columns = payload.get("columns") if isinstance(payload, dict) else None
        if not isinstance(columns, list):
            return None
        schema = {str(c["fieldName"]): str(c.get("dataTypeName", "text")) for c in columns
                  if isinstance(c, dict) and c.get("fieldName")
                  and not str(c["fieldName"]).startswith(":")}
        return schema or None

    def fetch_page(self, plan: Plan, offset: int, limit: int) -> Page:
        params = {**plan.params, "$limit": str(limit), "$offset": str(offset)}
        payload = self.http.get_json(self.url, params, read_error)
        if not isinstance(payload, list) or not all(isinstance(r, dict) for r in payload):
            raise PortalError(f"{self.domain} answered {type(payload).__name__} where a list "
                              "of records was expected")
        records = [shape(record, plan.schema) for record in payload]
        return Page(records, last=len(records) < limit)

    def count(self, plan: Plan) -> int | None:
        params = {"$select": "count(*) AS count"}
        if "$where" in plan.params:
            params["$where"] = plan.params["$where"]
        try:
            payload = self.http.get_json(self.url, params, read_error)
            return int(payload[0]["count"])
        except (PortalError, LookupError, TypeError, ValueError):
            return None


def shape(record: Record, schema: dict[str, str] | None) -> Record:
    """A record with every column of ``schema`` (null when absent) and point coordinates."""
    if schema is None:
        return record
    out: Record = {}
    for name, kind in schema.items():
        value = record.get(name)
        out[name] = value
        if kind.lower() in POINT_TYPES:
            lon, lat = point_coordinates(value)
            out[f"{name}.longitude"], out[f"{name}.latitude"] = lon, lat
    for name, value in record.items():
        out.setdefault(name, value)
    return out


def point_coordinates(value: Any) -> tuple[Any, Any]:
    """(longitude, latitude) of a GeoJSON point or a legacy Socrata location, else Nones."""
    if not isinstance(value, dict):
        return None, None
    coords = value.get("coordinates")
    if isinstance(coords, list) and len(coords) >= 2:
        return coords[0], coords[1]
    return value.get("longitude"), value.get("latitude")
