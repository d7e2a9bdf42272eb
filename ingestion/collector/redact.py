"""Redaction of contact details in free text, applied before an event reaches Kafka.

Events are pseudonymous by design (ids only); the one field where a student can type anything is
``feedback.payload.text``. Emails and phone numbers in it are replaced by ``[email]`` and
``[phone]``: they are what students actually leave ("mail me at ..."), and removing them keeps
the text useful for sentiment and topic analysis. The phone pattern errs on the side of redacting
(any run of 7 to 15 digits with usual separators), since a lost number in a comment costs little.
"""

from __future__ import annotations

import re
from typing import Any

EMAIL = "[email]"
PHONE = "[phone]"

# Bounded repetitions and a start anchor (no local-part character before): a megabyte string in
# a rejected event must cost linear time, not quadratic backtracking.
_EMAIL_RE = re.compile(
    r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9-]{1,63}"
    r"(?:\.[A-Za-z0-9-]{1,63}){0,8}\.[A-Za-z]{2,24}(?![A-Za-z0-9-])"
)
# Optional +country code, then digits separated by at most two of space, dot, dash, slash or
# parentheses: 7 to 15 digits in all (E.164 allows 15). A run glued by a dash or slash to a word
# character on either side is part of a token, not a phone: the "4288-9650" inside the UUID
# "2d602183-41eb-4288-9650-38e97c36a170" stays as it is.
_PHONE_RE = re.compile(
    r"(?<![\w+])(?<!\w[-/])(?:\+|00)?\(?\d(?:[ .()/-]{0,2}\d){6,14}(?!\w)(?![-/]\w)"
)
_HAS_DIGITS_RE = re.compile(r"\d{2}")
# Dates are the common digit runs in comments ("due 2026-03-02", "12/03/2026"): not phones.
_DATE_RE = re.compile(r"\d{4}[-/.]\d{1,2}[-/.]\d{1,2}|\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4}")


def _phone(match: re.Match[str]) -> str:
    return match.group() if _DATE_RE.fullmatch(match.group()) else PHONE


FEEDBACK_TEXT_MAX = 2000


def redact_text(text: str) -> str:
    """Replace emails and phone numbers; the result never exceeds the input's length limit."""
    out = text
    if "@" in out:
        out = _EMAIL_RE.sub(EMAIL, out)
    # Cheap pre-check: most comments have no run of two digits at all.
    if _HAS_DIGITS_RE.search(out):
        out = _PHONE_RE.sub(_phone, out)
    if out is not text and len(out) > FEEDBACK_TEXT_MAX >= len(text):
        # "a@b.co" (6 characters) became "[email]" (7): stay within the contract's limit.
        out = out[:FEEDBACK_TEXT_MAX]
    return out


def redact_event(event: dict[str, Any]) -> None:
    """Redact a *valid* event in place (only feedback carries free text)."""
    if event.get("event_type") == "feedback":
        payload = event["payload"]
        payload["text"] = redact_text(payload["text"])


# orjson refuses to dump more than 254 levels, and Python recursion stops near 1000: deeper
# content of a rejected event is replaced, not recursed into.
MAX_DEPTH = 32
TOO_DEEP = "[nested too deep]"


def redact_unknown(value: Any, depth: int = 0) -> Any:
    """Redact every string inside an *invalid* event: its shape is not trusted, so free text
    may sit in any field (``{"comment": "call me on ..."}``)."""
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, dict | list) and depth >= MAX_DEPTH:
        return TOO_DEEP
    if isinstance(value, dict):
        return {key: redact_unknown(item, depth + 1) for key, item in value.items()}
    if isinstance(value, list):
        return [redact_unknown(item, depth + 1) for item in value]
    return value
