"""The model registry on the lake's object store (S3; s3proxy locally).

Layout under ``s3://<bucket>/<prefix>/<model name>/``::

    versions/<version>/model.json      metadata: kind, features, calibration, parameters
    versions/<version>/booster.json    the XGBoost model (XGBoost's JSON format)
    versions/<version>/tables.json     lookup tables (ranker candidates, difficulty bands)
    versions/<version>/card.json       metrics vs baselines, data window, code version
    versions/<version>/card.md         the human-readable model card, and its plots (*.png)
    promoted.json                      which version serving uses, when and why it was promoted

Versions are UTC timestamps plus a random suffix: they sort by time and never collide between
concurrent training runs. Objects of a version are written before anything points at it, and
``promoted.json`` is a single small object, so a reader never sees half a model.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from lms.services.s3 import s3_client
from lms.settings import Settings
from ml.bundle import ModelBundle
from ml.errors import RegistryError

CONTENT_TYPES = {".json": "application/json", ".md": "text/markdown", ".png": "image/png"}


def new_version() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ") + "-" + secrets.token_hex(3)


@dataclass(frozen=True)
class Promotion:
    version: str
    promoted_at: str
    reason: str


class Registry:
    def __init__(self, settings: Settings, *, client: Any | None = None) -> None:
        self.bucket = settings.model_bucket or settings.lake_bucket
        self.prefix = settings.model_prefix.strip("/")
        self.s3 = client or s3_client(settings)

    # -- paths ------------------------------------------------------------------------------
    def _key(self, name: str, *parts: str) -> str:
        return "/".join([self.prefix, name, *parts])

    def ensure_bucket(self) -> None:
        from botocore.exceptions import ClientError

        try:
            self.s3.head_bucket(Bucket=self.bucket)
        except ClientError:
            self.s3.create_bucket(Bucket=self.bucket)

    # -- writing ----------------------------------------------------------------------------
    def register(
        self,
        bundle: ModelBundle,
        card: dict[str, Any],
        attachments: dict[str, bytes] | None = None,
        *,
        version: str | None = None,
    ) -> str:
        """Store a new version (model files, card, plots); returns the version. Not promoted."""
        self.ensure_bucket()
        version = version or new_version()
        files = bundle.to_files()
        files["card.json"] = json.dumps(card | {"version": version}, indent=2, default=str).encode()
        files.update(attachments or {})
        for filename, body in files.items():
            suffix = filename[filename.rfind(".") :]
            self.s3.put_object(
                Bucket=self.bucket,
                Key=self._key(bundle.name, "versions", version, filename),
                Body=body,
                ContentType=CONTENT_TYPES.get(suffix, "application/octet-stream"),
            )
        return version

    def promote(self, name: str, version: str, reason: str) -> Promotion:
        if version not in self.versions(name):
            raise RegistryError(f"model {name} has no version {version}")
        promotion = Promotion(version, datetime.now(UTC).isoformat(), reason)
        history = [*self._history(name), promotion.__dict__]
        self.s3.put_object(
            Bucket=self.bucket,
            Key=self._key(name, "promoted.json"),
            Body=json.dumps(promotion.__dict__ | {"history": history[-50:]}, indent=2).encode(),
            ContentType="application/json",
        )
        return promotion

    # -- reading ----------------------------------------------------------------------------
    def models(self) -> list[str]:
        out = self.s3.list_objects_v2(Bucket=self.bucket, Prefix=self.prefix + "/", Delimiter="/")
        return sorted(p["Prefix"][len(self.prefix) + 1 : -1] for p in out.get("CommonPrefixes", []))

    def versions(self, name: str) -> list[str]:
        """All versions of a model, oldest first."""
        prefix = self._key(name, "versions") + "/"
        found: list[str] = []
        paginator = self.s3.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix, Delimiter="/"):
            found += [p["Prefix"][len(prefix) : -1] for p in page.get("CommonPrefixes", [])]
        return sorted(found)

    def promoted(self, name: str) -> Promotion | None:
        data = self._get_json(self._key(name, "promoted.json"))
        if data is None:
            return None
        return Promotion(data["version"], data["promoted_at"], data.get("reason", ""))

    def _history(self, name: str) -> list[dict[str, Any]]:
        data = self._get_json(self._key(name, "promoted.json"))
        return list(data.get("history", [])) if data else []

    def card(self, name: str, version: str) -> dict[str, Any]:
        data = self._get_json(self._key(name, "versions", version, "card.json"))
        if data is None:
            raise RegistryError(f"model {name} has no version {version}")
        return data

    def load(self, name: str, version: str | None = None) -> tuple[ModelBundle, str]:
        """The promoted version of a model (or the given one) and its version string."""
        if version is None:
            promotion = self.promoted(name)
            if promotion is None:
                raise RegistryError(
                    f"model {name} has no promoted version in s3://{self.bucket}/{self.prefix}; "
                    "run `lms flow train` first"
                )
            version = promotion.version
        files = {}
        for filename in ("model.json", "tables.json", "booster.json"):
            body = self._get(self._key(name, "versions", version, filename))
            if body is not None:
                files[filename] = body
        if "model.json" not in files:
            raise RegistryError(f"model {name} has no version {version}")
        return ModelBundle.from_files(files), version

    def _get(self, key: str) -> bytes | None:
        from botocore.exceptions import ClientError

        try:
            return bytes(self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read())
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404", "NoSuchBucket"):
                return None
            raise

    def _get_json(self, key: str) -> dict[str, Any] | None:
        body = self._get(key)
        return None if body is None else json.loads(body)
