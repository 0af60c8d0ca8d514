"""Schemathesis against the OpenAPI document: no 500s, responses match the document."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from schemathesis.specs.openapi import checks as openapi_checks

from cswb.domain.cases import CaseStatus, Role
from cswb.settings import Settings
from tests.platform.factories import World, bearer, open_case_as, token_for

PLATFORM_PATHS = r"^/api/v1/(cases|identity-search|users|auth)"


@pytest.fixture
def new_token(world: World, platform_settings: Settings) -> Callable[[], str]:
    """Fresh table-chair tokens (the logout operation revokes the one it is called with)."""
    open_case_as(world, "police", status=CaseStatus.AER, also=("housing",))
    return lambda: token_for(world, "police", Role.TABLE_CHAIR, platform_settings)


CHECKS = [schemathesis.checks.not_a_server_error, openapi_checks.response_schema_conformance,
          openapi_checks.status_code_conformance, openapi_checks.content_type_conformance]


def test_platform_api_never_fails_and_matches_its_document(client: TestClient,
                                                           new_token: Callable[[], str]
                                                           ) -> None:
    """Every platform operation, with generated inputs (schemathesis' pytest plugin does not
    support this pytest yet, so the operations are driven with Hypothesis here)."""
    schema = schemathesis.openapi.from_asgi("/api/v1/openapi.json", client.app)
    operations = [result.ok() for result in
                  schema.include(path_regex=PLATFORM_PATHS).get_all_operations()]
    assert len(operations) >= 14
    statuses = [_fuzz(operation, bearer(new_token(), "fuzzing")) for operation in operations]
    answered = set().union(*statuses)
    assert {200, 201, 204, 404, 422} <= answered, answered  # not everything refused


def _fuzz(operation: Any, headers: dict[str, str]) -> set[int]:
    statuses: set[int] = set()

    @given(case=operation.as_strategy())
    @settings(max_examples=25, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    def run(case: schemathesis.Case) -> None:
        response = case.call(headers=headers)
        statuses.add(response.status_code)
        case.validate_response(response, checks=CHECKS)

    run()
    return statuses
