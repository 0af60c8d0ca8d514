"""Public response models of the API.

Each model is an allow-list: only the fields declared here leave the server, whatever the
service objects they are built from hold. None of them carries a field of a call (location,
narrative, attributes...): the API publishes counts and provenance only.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class PublicModel(BaseModel):
    """Base of every response model: read from attributes, nothing else added."""

    model_config = ConfigDict(from_attributes=True, frozen=True)


class Health(PublicModel):
    status: Literal["ok"] = "ok"
    version: str = Field(description="Version of cswb serving the request.")


class Ready(PublicModel):
    status: Literal["ready"] = "ready"
    store_version: int = Field(description="Version of the store's committed manifest.")
    batches: int = Field(description="Batches the store holds.")


class BatchRowsOut(PublicModel):
    """Rows of a batch; read = inserted + updated + unchanged + duplicate + quarantined."""

    read: int = Field(description="Data rows read from the file.")
    inserted: int = Field(description="Rows stored as new calls.")
    updated: int = Field(description="Rows stored as a new version of a stored call.")
    unchanged: int = Field(description="Rows identical to a call already stored.")
    duplicate: int = Field(description="Rows repeated within the file.")
    quarantined: int = Field(description="Rows kept in the quarantine with a reason.")
    flagged: int = Field(description="Stored calls with at least one data-quality flag.")
    stored: int = Field(description="inserted + updated.")
    duplicates: int = Field(description="unchanged + duplicate.")


class BatchOut(PublicModel):
    batch_id: str
    source: str
    agency: str | None
    file_name: str
    file_format: str | None
    file_bytes: int | None
    file_sha256: str | None
    started_at: datetime | None
    finished_at: datetime | None
    cswb_version: str | None
    rows: BatchRowsOut
    reconciles: bool = Field(description="Every row read is counted exactly once.")


class BatchPageOut(PublicModel):
    total: int = Field(description="Number of batches in the store.")
    limit: int
    offset: int
    items: list[BatchOut] = Field(description="Batches, newest first.")


class SourceOut(PublicModel):
    source: str
    agency: str | None
    calls: int = Field(description="Calls stored.")
    first_date: date | None = Field(description="Earliest local date of a stored call.")
    last_date: date | None = Field(description="Latest local date of a stored call.")
    quarantined: int = Field(description="Rows in the quarantine.")
    flagged: int = Field(description="Stored calls with at least one data-quality flag.")
    batches: int
    last_loaded_at: datetime | None


class SourceListOut(PublicModel):
    items: list[SourceOut]


class CallFilterOut(PublicModel):
    source: str | None
    date_from: date | None = Field(serialization_alias="from")
    date_to: date | None = Field(serialization_alias="to")


class MonthCountOut(PublicModel):
    month: str = Field(description="YYYY-MM of the calls' local date.")
    calls: int


class CallTypeCountOut(PublicModel):
    call_type: str = Field(description="Call type as the source records it.")
    calls: int


class CallsSummaryOut(PublicModel):
    filter: CallFilterOut
    total: int
    months: list[MonthCountOut] = Field(description="Every month from first to last, in order.")
    call_types: list[CallTypeCountOut] = Field(description="Most frequent call types first.")
    other_call_types: int = Field(description="Calls of the types not listed.")


class ErrorDetail(BaseModel):
    location: str = Field(description="query, path, header or body.")
    parameter: str
    problem: str


class ErrorBody(BaseModel):
    code: str = Field(description="Machine-readable code, e.g. not_found or invalid_request.")
    message: str
    status: int
    details: list[ErrorDetail] | None = None


class ErrorResponse(BaseModel):
    """The one error shape of the API."""

    error: ErrorBody
