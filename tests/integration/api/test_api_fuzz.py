"""Schemathesis over /api/v1's own OpenAPI document: generated requests for every operation (valid
and invalid bodies, paths and query strings), as board staff with a real admin-API token. Never a
server error; every answer a documented status with a documented body."""

from __future__ import annotations

import itertools

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from tests.support import ADMIN_API_SCOPE, code_flow, make_account, make_admin_client, make_centre

#: input handling, not storage: fuzzed on one backend (PostgreSQL + Redis in CI)
pytestmark = pytest.mark.one_backend


@pytest.fixture
def board_token(app):
    with app.app_context():
        make_centre("12345", "Home School")
        make_account("board@board.example", role="board", centre=None)
        make_account("eo@centre.example", role="eo", centre="12345")
        rp = make_admin_client()
    return code_flow(app.test_client(), rp, scope=ADMIN_API_SCOPE, email="board@board.example")["access_token"]


def test_no_server_error_and_every_answer_as_documented(app, board_token):
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    headers = {"Authorization": f"Bearer {board_token}"}
    checks = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 15
    for operation, mode in itertools.product(operations, (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)):
        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck),
                  phases=[Phase.explicit, Phase.generate])
        def call(case):
            case.call_and_validate(headers=headers, checks=checks)

        try:
            call()
        except Unsatisfiable:
            assert mode is GenerationMode.NEGATIVE  # nothing in this operation can be made invalid
