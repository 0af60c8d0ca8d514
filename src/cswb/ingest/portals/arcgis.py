"""ArcGIS feature and map service layers: ``GET {layer_url}/query``.

A download first reads the layer's description (``GET {layer_url}?f=json``) for its object id
field, then asks for ``where=1=1`` (or a date and filter clause), ``outFields=*``, ``f=json``,
``returnGeometry=true``, ``outSR=4326``, ordered by the object id field, one page at a time with
``resultOffset`` and ``resultRecordCount``. The answer::

    {"objectIdFieldName": "OBJECTID", "fields": [...],
     "features": [{"attributes": {...}, "geometry": {"x": -111.78, "y": 33.35}}],
     "exceededTransferLimit": true}

continues while ``exceededTransferLimit`` is true and ends when it is false or absent. The next
offset advances by the features received, so a server that caps pages below the requested size
(its ``maxRecordCount``) loses nothing. Date fields (``esriFieldTypeDate``) are epoch
milliseconds and are written as they come (map them with the ``epoch_ms`` format).

Each feature is written as its attributes plus ``longitude`` and ``latitude`` taken from its
point geometry (null without one; ``geometry_longitude``/``geometry_latitude`` when the layer
already has attributes of those names).

Errors come as HTTP 200 with ``{"error": {"code": 400, "message": ..., "details": [...]}}``; those
with a 5xx or 429 code are transient and retried.
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

LAYER_URL = re.compile(r"^https?://[^/\s]+/\S*/(FeatureServer|MapServer)/\d+$", re.IGNORECASE)
OID_TYPE = "esriFieldTypeOID"


def read_error(payload: Any) -> Failure | None:
    """ArcGIS's error object, if ``payload`` is one."""
    if not isinstance(payload, dict) or not isinstance(payload.get("error"), dict):
        return None
    error = payload["error"]
    code = error.get("code")
    details = [str(d) for d in error.get("details") or [] if d]
    message = str(error.get("message") or "unspecified error")
    if details:
        message += " (" + "; ".join(details) + ")"
    if code is not None:
        message = f"error {code}: {message}"
    retryable = isinstance(code, int) and (code >= 500 or code == 429)
    return Failure(message[:500], retryable)


def normalise_layer_url(url: str) -> str:
    """A layer's URL without a trailing slash or ``/query``; an error if it names no layer."""
    text = url.strip().rstrip("/")
    text = re.sub(r"/query$", "", text, flags=re.IGNORECASE)
    if not LAYER_URL.match(text):
        raise PortalError(
            f"{url!r} is not an ArcGIS layer URL (…/FeatureServer/N or …/MapServer/N)"
        )
    return text


class ArcGISAdapter(PortalAdapter):
    """Pages of one layer of an ArcGIS feature or map service."""

    name: ClassVar[str] = "arcgis"
    identity_keys: ClassVar[tuple[str, ...]] = ("where", "outFields", "returnGeometry", "outSR")

    def __init__(self, http: PortalClient, layer_url: str, *, date_field: str | None = None,
                 since: date | None = None, until: date | None = None,
                 filters: dict[str, str] | None = None) -> None:
        super().__init__(http)
        self.layer_url = normalise_layer_url(layer_url)
        self.date_field = date_field
        self.dated = since is not None or until is not None
        clauses = (date_clauses(date_field, since, until, "TIMESTAMP '{} 00:00:00'")
                   + equality_clauses(filters or {}))
        self.where = " AND ".join(clauses) or "1=1"

    @property
    def url(self) -> str:
        return self.layer_url

    @property
    def query_url(self) -> str:
        return f"{self.layer_url}/query"

    def query_params(self) -> dict[str, str]:
        return {"where": self.where, "outFields": "*", "returnGeometry": "true",
                "outSR": "4326", "f": "json"}

    def prepare(self) -> Plan:
        layer = self.http.get_json(self.layer_url, {"f": "json"}, read_error)
        if not isinstance(layer, dict):
            raise PortalError(f"{self.layer_url} did not describe itself as a layer")
        _check_pagination(self.layer_url, layer)
        fields = {str(f.get("name")): str(f.get("type")) for f in layer.get("fields") or []
                  if isinstance(f, dict)}
        if self.dated and fields and self.date_field not in fields:
            raise PortalError(f"{self.layer_url} has no field {self.date_field!r}; its fields "
                              f"are {', '.join(fields) or 'not listed'}")
        params = {**self.query_params(), "orderByFields": object_id_field(self.layer_url,
                                                                          layer, fields)}
        return Plan(params, fields or None)

    def fetch_page(self, plan: Plan, offset: int, limit: int) -> Page:
        params = {**plan.params, "resultOffset": str(offset), "resultRecordCount": str(limit)}
        payload = self.http.get_json(self.query_url, params, read_error)
        features = payload.get("features") if isinstance(payload, dict) else None
        if not isinstance(features, list):
            raise PortalError(f"{self.query_url} answered without a list of features")
        more = payload.get("exceededTransferLimit") is True
        if more and not features:
            raise PortalError(f"{self.query_url} says more records remain but sent none at "
                              f"offset {offset}")
        return Page([feature_record(f) for f in features], last=not more)

    def count(self, plan: Plan) -> int | None:
        params = {"where": plan.params["where"], "returnCountOnly": "true", "f": "json"}
        try:
            payload = self.http.get_json(self.query_url, params, read_error)
            return int(payload["count"])
        except (PortalError, LookupError, TypeError, ValueError):
            return None


def _check_pagination(url: str, layer: dict[str, Any]) -> None:
    capabilities = layer.get("advancedQueryCapabilities")
    if isinstance(capabilities, dict) and capabilities.get("supportsPagination") is False:
        raise PortalError(f"{url} does not support paging (resultOffset); paging such old "
                          "layers by object id is not yet supported")


def object_id_field(url: str, layer: dict[str, Any], fields: dict[str, str]) -> str:
    """The layer's object id field: declared, else the field typed as an object id."""
    declared = layer.get("objectIdField")
    if isinstance(declared, str) and declared:
        return declared
    for name, kind in fields.items():
        if kind == OID_TYPE:
            return name
    raise PortalError(f"{url} has no object id field to order its records by")


def feature_record(feature: Any) -> Record:
    """A feature's attributes plus the longitude and latitude of its point geometry."""
    if not isinstance(feature, dict) or not isinstance(feature.get("attributes"), dict):
        raise PortalError("a feature without attributes came in the answer")
    record: Record = dict(feature["attributes"])
    lon, lat = _point(feature.get("geometry"))
    lon_key = "geometry_longitude" if "longitude" in record else "longitude"
    lat_key = "geometry_latitude" if "latitude" in record else "latitude"
    record[lon_key], record[lat_key] = lon, lat
    return record


def _point(geometry: Any) -> tuple[float | None, float | None]:
    if not isinstance(geometry, dict):
        return None, None
    x, y = geometry.get("x"), geometry.get("y")
    if isinstance(x, int | float) and isinstance(y, int | float):
        return float(x), float(y)
    return None, None
