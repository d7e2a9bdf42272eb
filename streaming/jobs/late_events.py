"""Late events: events whose event time is already behind the watermark (more than the allowed
out-of-orderness late) are counted per event type and hour of occurrence, never dropped silently.

The windowed jobs cannot place such an event in a window that has already been published; this
counter says how many there were, so a dashboard can show how complete a past window is (the
warehouse, fed by the batch landing, still holds every one of them). Document id
``<event type>|<hour>``, versioned by the count.
"""

from __future__ import annotations

from streaming.config import StreamConfig
from streaming.sql import SOURCE, quote


def queries(cfg: StreamConfig) -> list[str]:
    hour = "DATE_FORMAT(occurred_at, 'yyyy-MM-dd''T''HH'':00:00.000Z''')"
    return [
        f"""
    SELECT {quote(cfg.index("late-events"))} AS idx,
        CONCAT(event_type, '|', occurred_hour) AS doc_id,
        n AS version,
        JSON_OBJECT(
            'event_type' VALUE event_type,
            'occurred_hour' VALUE occurred_hour,
            'late_events' VALUE n,
            'last_received_at' VALUE last_received_at,
            'allowed_lateness_s' VALUE {cfg.out_of_orderness_s}
        ) AS doc
    FROM (
        SELECT event_type, {hour} AS occurred_hour,
            COUNT(DISTINCT event_id) AS n,
            MAX(received_at) AS last_received_at
        FROM {SOURCE}
        WHERE occurred_at < CURRENT_WATERMARK(occurred_at)
        GROUP BY event_type, {hour}
    )
    """
    ]
