"""Errors an operator can act on: the CLI prints them as one line, without a traceback."""

from __future__ import annotations


class LmsError(Exception):
    """A failure with a message that says what went wrong and what to do about it."""

    exit_code = 1


class UsageError(LmsError):
    """The operator asked for something invalid (bad option value, unknown name)."""

    exit_code = 2
