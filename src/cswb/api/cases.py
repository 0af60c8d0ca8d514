"""``/api/v1/cases``: thin handlers over :mod:`cswb.cases.service` (policy and audit inside)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response, status
from pydantic import BaseModel

from cswb.api.case_models import (
    CaseIdsOut,
    CaseIn,
    CaseListOut,
    CaseOut,
    EventOut,
    IdentityIn,
    IdentityOut,
    InvolveIn,
    NameSearchIn,
    NoteIn,
    StatusChangeIn,
    SummaryEditIn,
    TimelineOut,
)
from cswb.api.models import ErrorResponse
from cswb.api.security import CurrentActor, PlatformDep
from cswb.cases import service
from cswb.domain.cases import CaseStatus

_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse, "description": text} for code, text in (
        (400, "Invalid input."), (401, "Not logged in, or the token expired."),
        (403, "Your role may not do this."),
        (404, "No such case visible to you (your agency is not involved)."),
        (409, "Conflict: the case changed since you read it, or the status change is not "
              "allowed."), (413, "Request too large."), (422, "Invalid parameters."))}

router = APIRouter(prefix="/api/v1", tags=["cases"], responses=_ERRORS)


@router.get("/cases")
def list_cases(actor: CurrentActor, platform: PlatformDep,
               status_filter: CaseStatus | None = None) -> CaseListOut:
    """Cases your agency is involved in (de-identified)."""
    with platform.store.session() as session:
        cases = service.list_cases(session, actor, status_filter)
        return CaseListOut(cases=[CaseOut.of(c) for c in cases])


@router.post("/cases", status_code=status.HTTP_201_CREATED)
def open_case(body: CaseIn, actor: CurrentActor, platform: PlatformDep) -> CaseOut:
    """Present a new case from your agency (status `presented`)."""
    with platform.store.session() as session:
        return CaseOut.of(service.open_case(session, actor, body.subject_type, body.summary))


def sent_as_is(model: BaseModel) -> Response:
    """``model`` as the JSON response, sent as it is.

    The most frequent routes build their public model themselves and return it this way:
    FastAPI would otherwise validate the returned model against ``response_model`` again, and
    for a plain-function route it does that in a second trip to the thread pool. The route
    still declares ``response_model`` for the OpenAPI document.
    """
    return Response(model.model_dump_json(), media_type="application/json")


@router.get("/cases/{case_id}", response_model=CaseOut)
def read_case(case_id: str, actor: CurrentActor, platform: PlatformDep) -> Response:
    with platform.store.session() as session:
        return sent_as_is(CaseOut.of(service.read_case(session, actor, case_id)))


@router.patch("/cases/{case_id}", response_model=CaseOut)
def edit_summary(case_id: str, body: SummaryEditIn, actor: CurrentActor,
                 platform: PlatformDep) -> Response:
    """Replace the de-identified summary (`version` must be the one you read)."""
    with platform.store.session() as session:
        return sent_as_is(CaseOut.of(service.edit_summary(session, actor, case_id,
                                                          expected_version=body.version,
                                                          summary=body.summary)))


@router.post("/cases/{case_id}/status")
def change_status(case_id: str, body: StatusChangeIn, actor: CurrentActor,
                  platform: PlatformDep) -> CaseOut:
    """Move the case along its transition table (`version` must be the one you read)."""
    with platform.store.session() as session:
        return CaseOut.of(service.change_status(
            session, actor, case_id, expected_version=body.version, target=body.status,
            conclusion=body.conclusion))


@router.post("/cases/{case_id}/agencies")
def involve_agency(case_id: str, body: InvolveIn, actor: CurrentActor,
                   platform: PlatformDep) -> CaseOut:
    with platform.store.session() as session:
        return CaseOut.of(service.involve_agency(
            session, actor, case_id, expected_version=body.version, agency_code=body.agency,
            involvement=body.involvement))


@router.get("/cases/{case_id}/events")
def timeline(case_id: str, actor: CurrentActor, platform: PlatformDep) -> TimelineOut:
    with platform.store.session() as session:
        return TimelineOut(events=[EventOut.of(e) for e in
                                   service.timeline(session, actor, case_id)])


@router.post("/cases/{case_id}/notes", status_code=status.HTTP_201_CREATED)
def add_note(case_id: str, body: NoteIn, actor: CurrentActor, platform: PlatformDep) -> EventOut:
    with platform.store.session() as session:
        return EventOut.of(service.add_note(session, actor, case_id, body.note))


@router.get("/cases/{case_id}/identity", response_model=IdentityOut)
def read_identity(case_id: str, actor: CurrentActor, platform: PlatformDep) -> Response:
    """Identifying details; send the reason in `X-Access-Basis` (recorded in the audit log)."""
    with platform.store.session() as session:
        details = service.read_identity(session, actor, platform.keyring, case_id)
    return sent_as_is(IdentityOut(name=details.name, date_of_birth=details.date_of_birth,
                                  address=details.address))


@router.put("/cases/{case_id}/identity", status_code=status.HTTP_204_NO_CONTENT)
def set_identity(case_id: str, body: IdentityIn, actor: CurrentActor,
                 platform: PlatformDep) -> None:
    """Record identifying details (only after the AER decision); stored encrypted."""
    with platform.store.session() as session:
        service.set_identity(session, actor, platform.keyring, case_id,
                             service.Identity(body.name, body.date_of_birth, body.address))


@router.post("/identity-search")
def search_by_name(body: NameSearchIn, actor: CurrentActor,
                   platform: PlatformDep) -> CaseIdsOut:
    """Cases of your agency whose subject has exactly this name (keyed-hash match)."""
    with platform.store.session() as session:
        return CaseIdsOut(case_ids=service.find_by_name(session, actor, platform.keyring,
                                                        body.name))
