"""Kafka: Apache Kafka 4.x in KRaft mode, one combined broker+controller node.

The jars come from Maven Central (``tools/maven/kafka/pom.xml``: kafka_2.13 + a log4j2 slf4j
backend) into ``~/.m2`` and then ``<cache>/dist/kafka-<version>/lib``. Storage is formatted once
(``kafka.tools.StorageTool format``) with a cluster id kept in the data directory.
"""

from __future__ import annotations

import base64
import subprocess
import uuid
from pathlib import Path

from lms.errors import LmsError
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
    port_is_listening,
)

KAFKA_VERSION = "4.3.1"
LOG4J_VERSION = "2.25.3"
HEAP = ["-Xms128m", "-Xmx512m"]


def dist_dir() -> Path:
    return cache_root() / "dist" / f"kafka-{KAFKA_VERSION}"


def render_server_properties(
    *, port: int, controller_port: int, log_dir: Path, node_id: int = 1
) -> str:
    return f"""# Written by lms services on every start; edit lms/services/kafka.py instead.
process.roles=broker,controller
node.id={node_id}
controller.quorum.voters={node_id}@127.0.0.1:{controller_port}
listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}
advertised.listeners=PLAINTEXT://127.0.0.1:{port}
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs={log_dir}
num.partitions=1
auto.create.topics.enable=true
offsets.topic.replication.factor=1
offsets.topic.num.partitions=10
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
log.retention.hours=168
log.segment.bytes=268435456
num.network.threads=2
num.io.threads=4
"""


LOG4J2_PROPERTIES = """# Written by lms services: the broker logs to stdout (the service log file).
status = warn
appender.console.type = Console
appender.console.name = STDOUT
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.stdout.ref = STDOUT
logger.kafka.name = kafka
logger.kafka.level = INFO
logger.state.name = state.change.logger
logger.state.level = WARN
logger.request.name = kafka.request.logger
logger.request.level = WARN
logger.controller.name = org.apache.kafka.controller
logger.controller.level = INFO
"""


def new_cluster_id() -> str:
    """A Kafka Uuid: 16 random bytes, URL-safe base64 without padding, not starting with '-'."""
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        if not text.startswith("-"):
            return text


class Kafka(Service):
    name = "kafka"
    start_timeout = 90.0
    stop_timeout = 30.0

    def ports(self) -> list[PortSpec]:
        return [
            PortSpec(self.settings.kafka_port, "LMS_KAFKA_PORT", "broker port"),
            PortSpec(
                self.settings.kafka_controller_port,
                "LMS_KAFKA_CONTROLLER_PORT",
                "controller port",
            ),
        ]

    def address(self) -> str:
        return f"127.0.0.1:{self.settings.kafka_port}"

    def install(self, report: Reporter) -> None:
        java_home_and_bin(17)
        maven_copy_dependencies(
            TOOLS_DIR / "maven" / "kafka" / "pom.xml",
            dist_dir() / "lib",
            report,
            f"Kafka {KAFKA_VERSION}",
            {"kafka.version": KAFKA_VERSION, "log4j.version": LOG4J_VERSION},
        )

    def _conf(self, data: Path) -> Path:
        return data / "conf"

    def prepare(self, data: Path, run_as: RunAs, report: Reporter) -> None:
        real = data.resolve()
        conf = self._conf(real)
        make_dir(conf)
        log_dir = real / "kraft-logs"
        (conf / "server.properties").write_text(
            render_server_properties(
                port=self.settings.kafka_port,
                controller_port=self.settings.kafka_controller_port,
                log_dir=log_dir,
            )
        )
        (conf / "log4j2.properties").write_text(LOG4J2_PROPERTIES)
        if (log_dir / "meta.properties").exists():
            return
        id_file = real / "cluster.id"
        if not id_file.exists():
            id_file.write_text(new_cluster_id() + "\n")
        cluster_id = id_file.read_text().strip()
        report(f"formatting KRaft storage (cluster id {cluster_id})")
        _, java = java_home_and_bin(17)
        result = subprocess.run(
            [
                str(java),
                "-Xmx256m",
                f"-Dlog4j2.configurationFile={conf / 'log4j2.properties'}",
                "-cp",
                str(dist_dir() / "lib" / "*"),
                "kafka.tools.StorageTool",
                "format",
                "-t",
                cluster_id,
                "-c",
                str(conf / "server.properties"),
                "--ignore-formatted",
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            with open(self.log_path, "a") as log:
                log.write(result.stdout + result.stderr)
            lines = (result.stderr or result.stdout).strip().splitlines()
            raise LmsError(
                f"kafka: formatting storage failed ({lines[-1] if lines else result.returncode}); "
                f"see {self.log_path}"
            )

    def command(self, data: Path, run_as: RunAs) -> tuple[list[str], dict[str, str], Path]:
        real = data.resolve()
        conf = self._conf(real)
        _, java = java_home_and_bin(17)
        argv = [
            str(java),
            *HEAP,
            "-XX:+UseG1GC",
            "-XX:MaxGCPauseMillis=20",
            "-XX:+ExitOnOutOfMemoryError",
            "-Djava.awt.headless=true",
            f"-Dlms.service.data={real}",
            f"-Dlog4j2.configurationFile={conf / 'log4j2.properties'}",
            "-cp",
            str(dist_dir() / "lib" / "*"),
            "kafka.Kafka",
            str(conf / "server.properties"),
        ]
        return argv, {}, real

    def probe(self) -> tuple[bool, str]:
        if not port_is_listening(self.settings.kafka_port):
            return False, f"nothing listens on 127.0.0.1:{self.settings.kafka_port}"
        try:
            from kafka import KafkaAdminClient

            admin = KafkaAdminClient(
                bootstrap_servers=self.settings.kafka_bootstrap_servers,
                client_id="lms-services-probe",
                request_timeout_ms=5000,
            )
            try:
                cluster = admin.describe_cluster()
            finally:
                admin.close()
        except Exception as exc:
            return False, f"{type(exc).__name__}: {exc}"
        brokers = cluster.get("brokers", [])
        if not brokers or cluster.get("controller_id") in (None, -1):
            return False, "no broker registered with the controller yet"
        return True, f"Kafka {KAFKA_VERSION}, {len(brokers)} broker"
