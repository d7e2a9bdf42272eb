"""The LMS event contract v1: models, validator and the exported JSON Schema.

The pydantic models in :mod:`lms.contract.models` are the source of truth; the JSON Schema in
`contract/v1/` is exported from them and a unit test keeps the two identical.
"""

from lms.contract.bench import bench_validate
from lms.contract.examples import load_example, load_examples
from lms.contract.models import (
    EVENT_ADAPTER,
    EVENT_MODELS,
    EVENT_TYPES,
    PAYLOAD_MODELS,
    SCHEMA_VERSION,
    EventModel,
    LmsEvent,
)
from lms.contract.schema import export_json_schema, load_schema, schema_path
from lms.contract.validate import (
    REASON_CODES,
    ContractViolation,
    Result,
    check_event,
    validate_batch,
    validate_event,
    validate_event_json,
)

__all__ = [
    "EVENT_ADAPTER",
    "EVENT_MODELS",
    "EVENT_TYPES",
    "PAYLOAD_MODELS",
    "REASON_CODES",
    "SCHEMA_VERSION",
    "ContractViolation",
    "EventModel",
    "LmsEvent",
    "Result",
    "bench_validate",
    "check_event",
    "export_json_schema",
    "load_example",
    "load_examples",
    "load_schema",
    "schema_path",
    "validate_batch",
    "validate_event",
    "validate_event_json",
]
