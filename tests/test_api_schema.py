"""The admin API keeps to its OpenAPI document: Schemathesis generates requests for
every operation from the document and checks each answer against it. No 5xx, no
status code, content type or body the document does not declare."""

import pytest
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.openapi import from_wsgi

from tests.helpers import add_subscribers

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
# Few examples an operation, the same each run: CI stays fast and repeatable.
EXAMPLES = settings(
    max_examples=25,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)


@pytest.mark.slow
def test_every_operation_answers_as_its_document_says(app, runner):
    add_subscribers(app, 3)
    key = runner.invoke(args=["create-api-key", "schemathesis"]).output.splitlines()[-1]
    schema = from_wsgi("/api/v1/openapi.json", app)
    failures = {}
    for result in schema.get_all_operations():
        operation = result.ok()

        @given(case=operation.as_strategy())
        @EXAMPLES
        def answers_as_documented(case):
            case.call_and_validate(headers={"Authorization": f"Bearer {key}"}, checks=CHECKS)

        try:
            answers_as_documented()
        except Exception as error:
            failures[f"{operation.method.upper()} {operation.path}"] = error
    assert not failures, "\n\n".join(f"{name}: {error}" for name, error in failures.items())
