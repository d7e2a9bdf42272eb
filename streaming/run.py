"""Run streaming jobs on a Flink mini-cluster (or a configured cluster): ``python -m
streaming.run JOB [JOB ...]``. What ``lms stream run`` launches in ``streaming/.venv``.

All chosen jobs run in one Flink job (one JVM, one Kafka reader, one sink), which keeps a
2-core machine usable; their queries are unioned into the single Elasticsearch sink.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from urllib.parse import urlparse

from streaming import elastic
from streaming.config import ConfigError, StreamConfig
from streaming.jobs import JOBS
from streaming.reference import Reference
from streaming.sql import OUTPUT_COLUMNS, source_ddl

log = logging.getLogger("streaming.run")


def latest_checkpoint(checkpoint_uri: str) -> str | None:
    """The newest completed checkpoint under the directory (``<job id>/chk-N/_metadata``)."""
    root = Path(urlparse(checkpoint_uri).path)
    if not root.is_dir():
        return None
    done = [p.parent for p in root.glob("*/chk-*/_metadata")]
    if not done:
        return None
    return max(done, key=lambda p: p.stat().st_mtime).as_uri()


def use_own_log_dir(cfg: StreamConfig) -> Path | None:
    """Point Flink's log (the JVM's, and the Python workers' through its ``PythonWorker`` logger,
    e.g. the sink's ``es_write`` statistics) next to the job's checkpoints when they are local.
    PyFlink's default is one file inside its package, which every job on the machine overwrites."""
    parsed = urlparse(cfg.checkpoint_dir)
    if parsed.scheme not in ("", "file") or "FLINK_LOG_DIR" in os.environ:
        return None
    log_dir = Path(parsed.path).parent / "flink-log"
    log_dir.mkdir(parents=True, exist_ok=True)
    os.environ["FLINK_LOG_DIR"] = str(log_dir)
    return log_dir


def flink_config(cfg: StreamConfig, restore_from: str | None) -> dict[str, str]:
    settings = {
        "parallelism.default": str(cfg.parallelism),
        "table.local-time-zone": "UTC",
        "execution.checkpointing.interval": f"{cfg.checkpoint_interval_s} s",
        "execution.checkpointing.dir": cfg.checkpoint_dir,
        "execution.checkpointing.externalized-checkpoint-retention": "RETAIN_ON_CANCELLATION",
        "execution.checkpointing.num-retained": "2",
        "state.backend.type": "hashmap",
        "restart-strategy.type": "fixed-delay",
        "restart-strategy.fixed-delay.attempts": "1000",
        "restart-strategy.fixed-delay.delay": "5 s",
        # Network buffers between operators flush after 20 ms at most (default 100 ms): at these
        # rates a full buffer takes far longer, so the timeout is the latency.
        "execution.buffer-timeout.interval": "20 ms",
        # Small Python bundles: results reach Elasticsearch within ~a second.
        "python.fn-execution.bundle.time": "200",
        "python.fn-execution.bundle.size": "2000",
        "python.fn-execution.arrow.batch.size": "2000",
        "python.executable": sys.executable,
        "table.exec.state.ttl": f"{cfg.state_ttl_h} h",
        "table.exec.source.idle-timeout": f"{cfg.idle_partition_s} s",
        "pipeline.name": "lms-stream",
    }
    if cfg.jars:
        settings["pipeline.jars"] = ";".join(Path(j).resolve().as_uri() for j in cfg.jars)
    if restore_from:
        settings["execution.state-recovery.path"] = restore_from
        settings["execution.state-recovery.ignore-unclaimed-state"] = "true"
    return settings


def build(cfg: StreamConfig, names: list[str], restore_from: str | None):  # type: ignore[no-untyped-def]
    from pyflink.common import Configuration
    from pyflink.table import EnvironmentSettings, TableEnvironment

    from streaming import udfs

    conf = Configuration()
    for key, value in flink_config(cfg, restore_from).items():
        conf.set_string(key, value)
    t_env = TableEnvironment.create(
        EnvironmentSettings.new_instance().in_streaming_mode().with_configuration(conf).build()
    )
    t_env.execute_sql(source_ddl(cfg))
    udfs.register(t_env, cfg)
    selects: list[str] = []
    for name in names:
        module = JOBS[name]
        for view_name, view_sql in getattr(module, "views", lambda _c: [])(cfg):
            t_env.create_temporary_view(view_name, t_env.sql_query(view_sql))
        selects.extend(module.queries(cfg))
    t_env.execute_sql("CREATE TABLE discard (n BIGINT) WITH ('connector' = 'blackhole')")
    union = "\nUNION ALL\n".join(f"SELECT {OUTPUT_COLUMNS} FROM ({q})" for q in selects)
    insert = f"INSERT INTO discard SELECT es_write(idx, doc_id, version, doc) FROM ({union})"
    return t_env, insert


def write_reference_indices(cfg: StreamConfig) -> None:
    """Courses and live classes into their indices, for the read API's scoping."""
    ref = Reference.load(cfg.reference_path)
    actions = [
        elastic.Action(cfg.index("courses"), course_id, None, {"course_id": course_id, **course})
        for course_id, course in ref.courses.items()
    ]
    actions += [
        elastic.Action(
            cfg.index("live-classes"),
            lid,
            None,
            {"live_class_id": lid, **lc, "teacher_ids": ref.teacher_ids(lc.get("course_id"))},
        )
        for lid, lc in ref.live_classes.items()
    ]
    es = elastic.client(cfg.es_url)
    try:
        for start in range(0, len(actions), 500):
            elastic.write(es, actions[start : start + 500])
    finally:
        es.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m streaming.run")
    parser.add_argument("jobs", nargs="+", help=f"job names or 'all' ({', '.join(JOBS)})")
    parser.add_argument("--fresh", action="store_true", help="ignore earlier checkpoints")
    parser.add_argument("--explain", action="store_true", help="print the plan and exit")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    logging.getLogger("elastic_transport").setLevel(logging.WARNING)
    names = list(JOBS) if "all" in args.jobs else args.jobs
    unknown = [n for n in names if n not in JOBS]
    if unknown:
        print(f"error: unknown job {unknown[0]!r}; known: {', '.join(JOBS)}", file=sys.stderr)
        return 2
    try:
        cfg = StreamConfig.from_env()
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    es = elastic.client(cfg.es_url)
    created = elastic.ensure_indices(es, cfg.index_prefix)
    es.close()
    log.info("indices ready (created: %s)", ", ".join(created) or "none")
    write_reference_indices(cfg)
    restore = None if args.fresh else latest_checkpoint(cfg.checkpoint_dir)
    log_dir = use_own_log_dir(cfg)
    if log_dir:
        log.info("Flink logs in %s", log_dir)
    log.info("jobs %s from %s", ", ".join(names), restore or "committed Kafka offsets")
    t_env, insert = build(cfg, names, restore)
    if args.explain:
        print(t_env.explain_sql(insert))
        return 0
    result = t_env.execute_sql(insert)
    client = result.get_job_client()
    if client is not None:
        log.info("job %s running", client.get_job_id())
    result.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
