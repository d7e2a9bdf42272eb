"""Field types shared by every event: ids, UUIDs, UTC timestamps and JSON-faithful numbers.

Each type carries both its Python validation and the JSON Schema fragment it exports, so the
models and the committed schema file cannot describe a field differently. Shared fragments are
exported as ``$ref``s into ``$defs`` (see :data:`SHARED_DEFS`) to keep the schema readable.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Annotated, Any

from pydantic import BeforeValidator, StringConstraints, WithJsonSchema
from pydantic_core import PydanticCustomError

ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
UUID_PATTERN = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
SCHEMA_VERSION_PATTERN = r"^1\.[0-9]+$"
# RFC 3339 restricted to UTC. Written out in full (not just format: date-time) because JSON Schema
# validators only assert "format" when asked to and, in Python, only with an optional package;
# the pattern holds everywhere. Day-of-month overflow (Feb 30) is the one thing only a date
# parser catches; the models reject it.
UTC_TIMESTAMP_PATTERN = (
    r"^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"
    r"T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]{1,6})?(Z|\+00:00)$"
)

_UTC_RE = re.compile(UTC_TIMESTAMP_PATTERN)
# Only used on the slow path, to tell a client *why* its timestamp was refused.
_NON_UTC_OFFSET_RE = re.compile(
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9:.]+[+-](?!00:?00$)[0-9]{2}:?[0-9]{2}$"
)
_NO_OFFSET_RE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}([T ][0-9:.]+)?$")

SHARED_DEFS: dict[str, dict[str, Any]] = {
    "Id": {
        "type": "string",
        "pattern": ID_PATTERN,
        "description": "Pseudonymous identifier (letters, digits, '_' and '-'; 1 to 64 characters).",
    },
    "Uuid": {
        "type": "string",
        "pattern": UUID_PATTERN,
        "format": "uuid",
        "description": "UUID in canonical 8-4-4-4-12 hex form, any version; write it lowercase.",
    },
    "UtcTimestamp": {
        "type": "string",
        "pattern": UTC_TIMESTAMP_PATTERN,
        "format": "date-time",
        "description": "RFC 3339 timestamp in UTC, written with a 'Z' suffix ('+00:00' is accepted); "
        "at most microsecond precision.",
    },
}


# Pydantic resolves "$ref"s it emits against its own definitions, so a field first exports a
# marker that the schema exporter turns into a "$ref" to SHARED_DEFS.
REF_MARKER = "x-lms-ref"


def _ref(name: str) -> WithJsonSchema:
    return WithJsonSchema({REF_MARKER: name})


def _check_utc_timestamp(value: Any) -> datetime:
    if isinstance(value, datetime):
        offset = value.utcoffset()
        if offset is None:
            raise PydanticCustomError(
                "naive_timestamp", "timestamp has no UTC offset; send UTC with a 'Z' suffix"
            )
        if offset != timedelta(0):
            raise PydanticCustomError(
                "non_utc_timestamp", "timestamp is not in UTC; convert it and send it with 'Z'"
            )
        return value
    if not isinstance(value, str):
        raise PydanticCustomError("timestamp_type", "timestamp should be an RFC 3339 string")
    if _UTC_RE.match(value) is None or value.endswith("\n"):
        if _NO_OFFSET_RE.match(value):
            raise PydanticCustomError(
                "naive_timestamp", "timestamp has no UTC offset; send UTC with a 'Z' suffix"
            )
        if _NON_UTC_OFFSET_RE.match(value):
            raise PydanticCustomError(
                "non_utc_timestamp", "timestamp is not in UTC; convert it and send it with 'Z'"
            )
        raise PydanticCustomError(
            "bad_timestamp", "timestamp should look like 2026-03-01T09:30:00Z (RFC 3339, UTC)"
        )
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise PydanticCustomError(
            "bad_timestamp", "timestamp is not a real calendar date/time"
        ) from None


def _integral_float_to_int(value: Any) -> Any:
    # JSON has one number type: 3.0 is an integer to JSON Schema, so the models accept it too.
    if type(value) is float and value.is_integer():
        return int(value)
    return value


Id = Annotated[str, StringConstraints(pattern=ID_PATTERN), _ref("Id")]
Uuid = Annotated[str, StringConstraints(pattern=UUID_PATTERN), _ref("Uuid")]
UtcTimestamp = Annotated[datetime, BeforeValidator(_check_utc_timestamp), _ref("UtcTimestamp")]
INTEGRAL_FLOAT_AS_INT = BeforeValidator(_integral_float_to_int)
JsonInt = Annotated[int, INTEGRAL_FLOAT_AS_INT]
