"""Bulk serialisation helpers: event ids and timestamps for a whole shard at once.

Per-event Python calls (uuid.uuid4(), datetime.isoformat()) would dominate the run time, so ids
and timestamps are produced with numpy in one pass and sliced out as strings.
"""

from __future__ import annotations

import numpy as np

EVENT_TYPES = (
    "login",
    "logout",
    "page_view",
    "scroll_event",
    "video_play",
    "video_pause",
    "video_seek",
    "video_complete",
    "quiz_start",
    "question_answer",
    "quiz_submit",
    "assignment_submit",
    "live_class_join",
    "live_class_leave",
    "tab_hidden",
    "tab_visible",
    "feedback",
)
SCHEMA_VERSION = "1.0"
# Every valid line starts with this head, so the timestamp sits at a fixed offset (live mode
# re-stamps it in place).
LINE_HEAD = '{"event_id":"%s","schema_version":"' + SCHEMA_VERSION + '","occurred_at":"%sZ",%s}'
OCCURRED_OFFSET = len('{"event_id":"') + 36 + len('","schema_version":"1.0","occurred_at":"')
TIMESTAMP_LEN = len("2026-01-05T08:00:00.000Z")


def uuid_bytes(rng: np.random.Generator, n: int) -> np.ndarray:
    """n random 16-byte ids with the uuid4 version and variant bits set, one row each."""
    raw = np.frombuffer(rng.bytes(16 * n), dtype=np.uint8).reshape(n, 16).copy()
    raw[:, 6] = (raw[:, 6] & 0x0F) | 0x40
    raw[:, 8] = (raw[:, 8] & 0x3F) | 0x80
    return raw


def uuid_text(raw: np.ndarray) -> np.ndarray:
    """Rows of :func:`uuid_bytes` as 36 ASCII characters each (lowercase, 8-4-4-4-12)."""
    n = len(raw)
    hexed = np.empty((n, 32), dtype=np.uint8)
    hexed[:, 0::2] = raw >> 4
    hexed[:, 1::2] = raw & 0x0F
    # 0-9 -> '0'-'9', 10-15 -> 'a'-'f', without a per-element table lookup.
    letters = hexed > 9
    hexed += ord("0")
    hexed += letters * np.uint8(ord("a") - ord("0") - 10)
    out = np.empty((n, 36), dtype=np.uint8)
    out[:, (8, 13, 18, 23)] = ord("-")
    for lo, hi, at in ((0, 8, 0), (8, 12, 9), (12, 16, 14), (16, 20, 19), (20, 32, 24)):
        out[:, at : at + hi - lo] = hexed[:, lo:hi]
    return out


def uuid_strings(raw: np.ndarray) -> list[str]:
    if len(raw) == 0:
        return []
    ids: list[str] = uuid_text(raw).view("S36").ravel().astype("U36").tolist()
    return ids


def _uuid_matrix(rng: np.random.Generator, n: int) -> np.ndarray:
    return uuid_text(uuid_bytes(rng, n))


def uuid4_strings(rng: np.random.Generator, n: int) -> list[str]:
    """n uuid4-shaped lowercase ids from the generator (deterministic for a given seed)."""
    if n == 0:
        return []
    return _uuid_matrix(rng, n).view("S36").ravel().astype("U36").tolist()


_HEAD_TEMPLATE = (
    '{"event_id":"'
    + "0" * 36
    + '","schema_version":"'
    + SCHEMA_VERSION
    + '","occurred_at":"'
    + "2026-01-05T08:00:00.000"
    + 'Z",'
).encode()
HEAD_LEN = len(_HEAD_TEMPLATE)
_ID_AT = len('{"event_id":"')
_TS_AT = OCCURRED_OFFSET


def timestamp_text(ms: np.ndarray) -> np.ndarray:
    """Epoch milliseconds as ``2026-01-05T08:00:00.000`` (UTC, no 'Z'), 23 ASCII bytes a row."""
    n = len(ms)
    out = np.empty((n, 23), dtype=np.uint8)
    if n == 0:
        return out
    day = ms // 86_400_000
    unique_days, inverse = np.unique(day, return_inverse=True)
    day_text = np.datetime_as_string(unique_days.astype("datetime64[D]"), unit="D").astype("S10")
    day_chars = np.frombuffer(day_text.tobytes(), dtype=np.uint8).reshape(len(unique_days), 10)
    out[:, :10] = day_chars[inverse]
    out[:, (10, 13, 16, 19)] = np.frombuffer(b"T::.", dtype=np.uint8)
    rem = ms - day * 86_400_000
    zero = ord("0")
    for offset, value in (
        (11, rem // 3_600_000),
        (14, rem // 60_000 % 60),
        (17, rem // 1_000 % 60),
    ):
        out[:, offset] = value // 10 + zero
        out[:, offset + 1] = value % 10 + zero
    milli = rem % 1_000
    out[:, 20] = milli // 100 + zero
    out[:, 21] = milli // 10 % 10 + zero
    out[:, 22] = milli % 10 + zero
    return out


def head_rows(ids: np.ndarray, occurred_ms: np.ndarray) -> np.ndarray:
    """The fixed-width start of each line, up to and including the comma after occurred_at:
    ``{"event_id":"<uuid4>","schema_version":"1.0","occurred_at":"<ts>Z",``, one row of
    ``HEAD_LEN`` ASCII bytes per event, from :func:`uuid_bytes` rows and epoch milliseconds.

    Built as one character matrix in numpy: formatting ids and timestamps per event in Python
    costs more than generating the event itself.
    """
    n = len(occurred_ms)
    out = np.empty((n, HEAD_LEN), dtype=np.uint8)
    if n == 0:
        return out
    out[:] = np.frombuffer(_HEAD_TEMPLATE, dtype=np.uint8)
    out[:, _ID_AT : _ID_AT + 36] = uuid_text(ids)
    out[:, _TS_AT : _TS_AT + 23] = timestamp_text(occurred_ms)
    return out


def head_matrix(rng: np.random.Generator, occurred_ms: np.ndarray) -> np.ndarray:
    """:func:`head_rows` with fresh ids from ``rng``."""
    return head_rows(uuid_bytes(rng, len(occurred_ms)), occurred_ms)


def ms_to_iso(ms: np.ndarray) -> list[str]:
    """Epoch milliseconds to '2026-01-05T08:00:00.000' (UTC, without the 'Z')."""
    stamps: list[str] = np.datetime_as_string(ms.astype("datetime64[ms]"), unit="ms").tolist()
    return stamps


def iso_z(ms: int) -> str:
    return ms_to_iso(np.asarray([ms], dtype=np.int64))[0] + "Z"
