"""Errors of the ML library: each says what is wrong with the data or the registry and what to do."""

from __future__ import annotations

from lms.errors import LmsError


class MlError(LmsError):
    """A model could not be trained, evaluated, registered or used."""


class FeatureMartMissing(MlError):
    """A feature mart the models need does not exist (dbt has not built it yet)."""


class NotEnoughData(MlError):
    """Too few labelled rows, dates or classes to train or evaluate honestly."""


class RegistryError(MlError):
    """The model registry has no such model/version, or its objects are unreadable."""
