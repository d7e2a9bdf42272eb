"""S3: an S3-compatible object store (s3proxy over the local filesystem) for the lake.

s3proxy 2.x comes from Maven Central (``tools/maven/s3proxy/pom.xml``); objects live under
``<state>/data/s3/blobs`` (jclouds ``filesystem-nio2``). Auth is AWS v2 or v4 with
``settings.s3_access_key`` / ``settings.s3_secret_key``. After it is healthy, ``up`` makes sure
the lake bucket (``settings.lake_bucket``) exists.

:func:`s3_client` is the one place the platform builds an S3 client: import it rather than
calling ``boto3.client("s3")`` directly.
"""

from __future__ import annotations

import os
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from lms.services.base import (
    TOOLS_DIR,
    PortSpec,
    Reporter,
    RunAs,
    Service,
    cache_root,
    java_home_and_bin,
    make_dir,
    maven_copy_dependencies,
)
from lms.settings import Settings

S3PROXY_VERSION = "2.9.0"
HEAP = ["-Xms64m", "-Xmx256m"]


def s3_client(settings: Settings, **overrides: Any) -> Any:
    """A boto3 S3 client for the configured endpoint (the local s3proxy by default).

    Path-style addressing, SigV4, and checksums only when required: boto3 >= 1.36 otherwise sends
    CRC checksums that non-AWS stores reject.
    """
    import boto3
    from botocore.config import Config

    config = Config(
        signature_version="s3v4",
        s3={"addressing_style": "path"},
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
        retries={"max_attempts": 3, "mode": "standard"},
        connect_timeout=5,
        read_timeout=60,
    )
    kwargs: dict[str, Any] = {
        "endpoint_url": settings.s3_endpoint_url,
        "aws_access_key_id": settings.s3_access_key,
        "aws_secret_access_key": settings.s3_secret_key,
        "region_name": settings.s3_region,
        "config": config,
    }
    kwargs.update(overrides)
    return boto3.client("s3", **kwargs)


def s3_env(settings: Settings) -> dict[str, str]:
    """Environment variables for tools that read AWS_* (Spark, the AWS CLI, other clients)."""
    return {
        "AWS_ACCESS_KEY_ID": settings.s3_access_key,
        "AWS_SECRET_ACCESS_KEY": settings.s3_secret_key,
        "AWS_DEFAULT_REGION": settings.s3_region,
        "AWS_ENDPOINT_URL_S3": settings.s3_endpoint_url,
        "AWS_REQUEST_CHECKSUM_CALCULATION": "when_required",
        "AWS_RESPONSE_CHECKSUM_VALIDATION": "when_required",
    }


def dist_dir() -> Path:
    return cache_root() / "dist" / f"s3proxy-{S3PROXY_VERSION}"


def render_s3proxy_conf(*, port: int, identity: str, credential: str, basedir: Path) -> str:
    return f"""# Written by lms services on every start; edit lms/services/s3.py instead.
s3proxy.endpoint=http://127.0.0.1:{port}
s3proxy.authorization=aws-v2-or-v4
s3proxy.identity={identity}
s3proxy.credential={credential}
s3proxy.ignore-unknown-headers=true
jclouds.provider=filesystem-nio2
jclouds.filesystem.basedir={basedir}
"""


# s3proxy ships logback without a configuration, and logback's default is DEBUG on the console:
# every request and every Jetty thread-pool tick, several MB/s into the service log, which filled
# the disk of a busy test machine. Warnings and s3proxy's own start-up lines are what an operator
# needs.
S3PROXY_LOGBACK = """<configuration>
  <appender name="out" class="ch.qos.logback.core.ConsoleAppender">
    <encoder><pattern>%d{HH:mm:ss.SSS} %-5level %logger{36} - %msg%n</pattern></encoder>
  </appender>
  <logger name="org.gaul.s3proxy" level="INFO"/>
  <root level="WARN"><appender-ref ref="out"/></root>
</configuration>
"""


class S3(Service):
    name = "s3"
    start_timeout = 60.0
    stop_timeout = 20.0

    def ports(self) -> list[PortSpec]:
        return [PortSpec(self.settings.s3_port, "LMS_S3_PORT")]

    def address(self) -> str:
        return f"http://127.0.0.1:{self.settings.s3_port}"

    def install(self, report: Reporter) -> None:
        java_home_and_bin(17)
        maven_copy_dependencies(
            TOOLS_DIR / "maven" / "s3proxy" / "pom.xml",
            dist_dir() / "lib",
            report,
            f"s3proxy {S3PROXY_VERSION}",
            {"s3proxy.version": S3PROXY_VERSION},
        )

    def prepare(self, data: Path, run_as: RunAs, report: Reporter) -> None:
        real = data.resolve()
        make_dir(real / "conf")
        make_dir(real / "blobs")
        (real / "conf" / "logback.xml").write_text(S3PROXY_LOGBACK)
        conf = real / "conf" / "s3proxy.conf"
        conf.write_text(
            render_s3proxy_conf(
                port=self.settings.s3_port,
                identity=self.settings.s3_access_key,
                credential=self.settings.s3_secret_key,
                basedir=real / "blobs",
            )
        )
        os.chmod(conf, 0o600)

    def command(self, data: Path, run_as: RunAs) -> tuple[list[str], dict[str, str], Path]:
        real = data.resolve()
        _, java = java_home_and_bin(17)
        argv = [
            str(java),
            *HEAP,
            "-XX:+UseSerialGC",
            "-XX:+ExitOnOutOfMemoryError",
            f"-Dlms.service.data={real}",
            f"-Dlogback.configurationFile={real / 'conf' / 'logback.xml'}",
            "-cp",
            str(dist_dir() / "lib" / "*"),
            "org.gaul.s3proxy.Main",
            "--properties",
            str(real / "conf" / "s3proxy.conf"),
        ]
        return argv, {}, real

    def probe(self) -> tuple[bool, str]:
        # Any HTTP answer from the S3 API (anonymous requests get 403) means it serves.
        url = f"http://127.0.0.1:{self.settings.s3_port}/"
        try:
            with urllib.request.urlopen(url, timeout=3) as resp:
                code = resp.status
        except urllib.error.HTTPError as exc:
            code = exc.code
        except OSError as exc:
            return False, str(exc)
        if code in (200, 403):
            return True, f"s3proxy {S3PROXY_VERSION}"
        return False, f"unexpected HTTP {code} from {url}"

    def ensure(self, report: Reporter) -> None:
        from botocore.exceptions import ClientError

        client = s3_client(self.settings)
        bucket = self.settings.lake_bucket
        try:
            client.head_bucket(Bucket=bucket)
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code not in ("404", "NoSuchBucket", "NotFound"):
                raise
            report(f"creating bucket {bucket}")
            client.create_bucket(Bucket=bucket)
