"""Input and public models of the platform API (cases, identity, accounts, login).

Input models bound every field's size; public models are allow-lists. The de-identified case
(:class:`CaseOut`) and its identifying details (:class:`IdentityOut`) are separate responses, so
no list or case view can carry a name by accident.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from cswb.cases.service import CaseRecord
from cswb.domain.cases import CaseStatus, InvolvementRole, Role, SubjectType
from cswb.storage.operational.models import Case, CaseEvent


class InputModel(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class CaseIn(InputModel):
    subject_type: SubjectType
    summary: str = Field("", max_length=2000, description="A short de-identified description.")


class StatusChangeIn(InputModel):
    version: int = Field(ge=1, description="The version you read; a newer one gives 409.")
    status: CaseStatus
    conclusion: str | None = Field(None, max_length=40)


class SummaryEditIn(InputModel):
    version: int = Field(ge=1, description="The version you read; a newer one gives 409.")
    summary: str = Field(max_length=2000, description="A short de-identified description.")


class InvolveIn(InputModel):
    version: int = Field(ge=1)
    agency: str = Field(min_length=1, max_length=40)
    involvement: InvolvementRole = InvolvementRole.ASSISTING


class NoteIn(InputModel):
    note: str = Field(min_length=1, max_length=4000, description="De-identified note.")


class IdentityIn(InputModel):
    name: str | None = Field(None, min_length=1, max_length=200)
    date_of_birth: date | None = None
    address: str | None = Field(None, min_length=1, max_length=300)


class NameSearchIn(InputModel):
    name: str = Field(min_length=1, max_length=200)


class LoginIn(InputModel):
    username: str = Field(min_length=1, max_length=120)
    password: str = Field(min_length=1, max_length=1000)


class UserIn(InputModel):
    username: str = Field(min_length=1, max_length=120, pattern=r"^[A-Za-z0-9._@-]+$")
    agency: str = Field(min_length=1, max_length=40)
    role: Role
    password: str | None = Field(None, min_length=12, max_length=1000)


class PublicModel(BaseModel):
    model_config = ConfigDict(from_attributes=True, frozen=True)


class CaseAgencyOut(PublicModel):
    agency: str
    involvement: InvolvementRole
    joined_at: datetime
    left_at: datetime | None


class CaseOut(PublicModel):
    id: str
    status: CaseStatus
    subject_type: SubjectType
    summary: str
    opened_at: datetime
    closed_at: datetime | None
    conclusion: str | None
    identity_purged: bool
    version: int
    agencies: list[CaseAgencyOut]

    @classmethod
    def of(cls, case: Case | CaseRecord) -> CaseOut:
        """The public view of an ORM case or a :class:`CaseRecord` read with Core SQL."""
        view = case if isinstance(case, CaseRecord) else CaseRecord.of_case(case)
        return cls(id=view.id, status=CaseStatus(view.status),
                   subject_type=SubjectType(view.subject_type), summary=view.summary,
                   opened_at=view.opened_at, closed_at=view.closed_at,
                   conclusion=view.conclusion, identity_purged=view.identity_purged_at is not None,
                   version=view.version,
                   agencies=[CaseAgencyOut(agency=a.agency_code,
                                           involvement=InvolvementRole(a.involvement),
                                           joined_at=a.joined_at, left_at=a.left_at)
                             for a in view.agencies])


class CaseListOut(PublicModel):
    cases: list[CaseOut]


class EventOut(PublicModel):
    id: int
    at: datetime
    kind: str
    detail: dict[str, Any]

    @classmethod
    def of(cls, event: CaseEvent) -> EventOut:
        return cls(id=event.id, at=event.at, kind=event.kind,
                   detail=json.loads(event.detail or "{}"))


class TimelineOut(PublicModel):
    events: list[EventOut]


class IdentityOut(PublicModel):
    name: str | None
    date_of_birth: date | None
    address: str | None


class CaseIdsOut(PublicModel):
    case_ids: list[str]


class TokenOut(PublicModel):
    token: str = Field(description="Send as `Authorization: Bearer <token>`.")
    token_type: str = "bearer"
    expires_in: int = Field(description="Seconds until the token expires.")


class MeOut(PublicModel):
    username: str
    agency: str | None
    role: Role


class UserOut(PublicModel):
    username: str
    agency: str
    role: Role
    disabled: bool
    login: str = Field(description="password or identity_provider")


class UserListOut(PublicModel):
    users: list[UserOut]
