"""The HTTP API keeps its published contract: requests generated from `/openapi.json`, valid
and invalid, against a real server over the real index. Every response must match the schema,
no request may crash the server, a valid request may not be refused (beyond what the schema
states) and an invalid one may not be accepted."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.config import SchemathesisConfig
from schemathesis.config._checks import (
    NEGATIVE_DATA_REJECTION_EXPECTED_STATUSES,
    POSITIVE_DATA_ACCEPTANCE_EXPECTED_STATUSES,
)

from tests.web_fixtures import running

# The routes that take input: the others have no invalid request to send.
INPUTS = {("POST", "/api/ask"), ("POST", "/api/batch"), ("GET", "/api/transcript")}
ROUTES = [("POST", "/api/ask"), ("POST", "/api/batch"), ("GET", "/api/health"),
          ("GET", "/api/transcripts"), ("GET", "/api/transcript")]
# A body over the documented 64 KiB limit is refused with 413 before it is read, whatever it
# holds: a batch of 32 long questions, valid or not, can reach it, and the schema cannot say so.
CONFIG = SchemathesisConfig.from_dict({"checks": {
    "negative_data_rejection": {
        "expected-statuses": [*NEGATIVE_DATA_REJECTION_EXPECTED_STATUSES, "413"]},
    "positive_data_acceptance": {
        "expected-statuses": [*POSITIVE_DATA_ACCEPTANCE_EXPECTED_STATUSES, "413"]}}})
MODES = {"valid": GenerationMode.POSITIVE, "invalid": GenerationMode.NEGATIVE}
CASES = [pytest.param(route, mode, id=f"{route[0]} {route[1]} {label}")
         for route in ROUTES for label, mode in MODES.items()
         if mode == GenerationMode.POSITIVE or route in INPUTS]


@pytest.fixture(scope="module")
def api(engine):
    from rag.server import create_app

    with running(create_app(engine, ui=False)) as url:
        yield url


@pytest.fixture(scope="module")
def operations(api):
    schema = schemathesis.openapi.from_url(f"{api}/openapi.json", config=CONFIG)
    return {(op.method.upper(), op.path): op
            for op in (result.ok() for result in schema.get_all_operations())}


def test_the_schema_lists_every_route(operations):
    assert set(operations) == set(ROUTES)


@pytest.mark.parametrize("route, mode", CASES)
def test_generated_requests_keep_the_contract(api, operations, route, mode):
    @given(case=operations[route].as_strategy(generation_mode=mode))
    @settings(max_examples=60, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    def check(case):
        case.call_and_validate(base_url=api)

    check()


@pytest.mark.parametrize("path", ["/api/ask", "/api/batch"])
@pytest.mark.parametrize("mode", MODES.values(), ids=MODES.keys())
def test_asking_of_some_transcripts_keeps_the_contract(two_engine, mode, path):
    """With two transcripts the schema lists both for `sources`: generated selections, valid
    and invalid, keep the contract too."""
    from rag.server import create_app

    with running(create_app(two_engine, ui=False)) as url:
        schema = schemathesis.openapi.from_url(f"{url}/openapi.json", config=CONFIG)
        ask = next(op for op in (r.ok() for r in schema.get_all_operations())
                   if op.path == path)

        @given(case=ask.as_strategy(generation_mode=mode))
        @settings(max_examples=60, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        def check(case):
            case.call_and_validate(base_url=url)

        check()
