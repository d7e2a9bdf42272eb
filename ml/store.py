"""Reading feature marts from and writing predictions to the PostgreSQL warehouse.

Both directions go through ``COPY`` (CSV): tens of thousands of rows per second either way, and
the column types come from the database's own description, not from guessing on the CSV.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence

import pandas as pd
import psycopg
from psycopg import sql

from ml.errors import FeatureMartMissing

# PostgreSQL type OIDs, grouped by how pandas should read them.
_NUMERIC = {20, 21, 23, 26, 700, 701, 1700}
_BOOL = {16}
_DATE = {1082}
_TIMESTAMP = {1114, 1184}


def relation_exists(dsn: str, schema: str, name: str) -> bool:
    with psycopg.connect(dsn) as conn:
        row = conn.execute(
            "select 1 from information_schema.tables where table_schema = %s and table_name = %s",
            (schema, name),
        ).fetchone()
    return row is not None


def read_table(
    dsn: str,
    schema: str,
    name: str,
    *,
    where: sql.Composable | None = None,
    columns: Sequence[str] | None = None,
) -> pd.DataFrame:
    """One relation (optionally filtered) as a DataFrame with proper dtypes."""
    if not relation_exists(dsn, schema, name):
        raise FeatureMartMissing(
            f"{schema}.{name} does not exist; build the feature marts first "
            "(`lms warehouse build`, or `lms flow pipeline`)"
        )
    cols = sql.SQL("*") if not columns else sql.SQL(", ").join(map(sql.Identifier, columns))
    query = sql.SQL("select {} from {}.{}").format(
        cols, sql.Identifier(schema), sql.Identifier(name)
    )
    if where is not None:
        query = sql.SQL("{} where {}").format(query, where)
    return read_query(dsn, query)


def read_query(dsn: str, query: sql.Composable) -> pd.DataFrame:
    # UTC session: timestamps arrive as "+00" whatever the server's time zone.
    with psycopg.connect(dsn, options="-c TimeZone=UTC") as conn:
        cur = conn.execute(sql.SQL("select * from ({}) q limit 0").format(query))
        description = cur.description or []
        names = [d.name for d in description]
        types = {d.name: d.type_code for d in description}
        buffer = io.BytesIO()
        copy_sql = sql.SQL("copy ({}) to stdout with (format csv, header true)").format(query)
        with cur.copy(copy_sql) as copy:
            for chunk in copy:
                buffer.write(chunk)
    buffer.seek(0)
    if buffer.getbuffer().nbytes == 0:
        return pd.DataFrame({n: pd.Series(dtype=object) for n in names})
    frame = pd.read_csv(
        buffer,
        dtype={n: "string" for n in names if types[n] not in _NUMERIC | _BOOL},
        keep_default_na=True,
    )
    for name in names:
        oid = types[name]
        if oid in _NUMERIC:
            frame[name] = pd.to_numeric(frame[name], errors="coerce").astype("float64")
        elif oid in _BOOL:
            frame[name] = frame[name].map({"t": True, "f": False, True: True, False: False})
        elif oid in _DATE:
            frame[name] = pd.to_datetime(frame[name], format="ISO8601").astype("datetime64[ns]")
        elif oid in _TIMESTAMP:
            frame[name] = pd.to_datetime(frame[name], utc=True, format="ISO8601")
        else:
            frame[name] = frame[name].astype(object).where(frame[name].notna(), None)
    return frame


def ensure_table(
    conn: psycopg.Connection, schema: str, name: str, ddl: Mapping[str, str], key: Sequence[str]
) -> None:
    """Create the schema and table if missing; columns added to ``ddl`` later are added in place,
    so a newer ML release writes to an older table without a manual migration."""
    conn.execute(sql.SQL("create schema if not exists {}").format(sql.Identifier(schema)))
    columns = sql.SQL(", ").join(
        sql.SQL("{} {}").format(sql.Identifier(c), sql.SQL(t)) for c, t in ddl.items()
    )
    conn.execute(
        sql.SQL("create table if not exists {}.{} ({}, primary key ({}))").format(
            sql.Identifier(schema),
            sql.Identifier(name),
            columns,
            sql.SQL(", ").join(map(sql.Identifier, key)),
        )
    )
    for column, type_ in ddl.items():
        conn.execute(
            sql.SQL("alter table {}.{} add column if not exists {} {}").format(
                sql.Identifier(schema), sql.Identifier(name), sql.Identifier(column), sql.SQL(type_)
            )
        )


def upsert(
    dsn: str,
    schema: str,
    name: str,
    frame: pd.DataFrame,
    *,
    ddl: Mapping[str, str],
    key: Sequence[str],
    replace_where: sql.Composable | None = None,
) -> int:
    """Write ``frame`` into ``schema.name``: rows with the same key are updated, so re-running a
    scoring job never duplicates. ``replace_where`` first deletes the rows a new run supersedes
    (e.g. a student's previous recommendations), in the same transaction."""
    columns = list(ddl)
    with psycopg.connect(dsn) as conn:
        ensure_table(conn, schema, name, ddl, key)
        if replace_where is not None:
            conn.execute(
                sql.SQL("delete from {}.{} where {}").format(
                    sql.Identifier(schema), sql.Identifier(name), replace_where
                )
            )
        if frame.empty:
            return 0
        stage = sql.Identifier(f"_stage_{name}")
        conn.execute(
            sql.SQL("create temp table {} (like {}.{} including defaults) on commit drop").format(
                stage, sql.Identifier(schema), sql.Identifier(name)
            )
        )
        payload = frame[columns].to_csv(
            index=False, header=False, date_format="%Y-%m-%dT%H:%M:%S.%f%z"
        )
        collist = sql.SQL(", ").join(map(sql.Identifier, columns))
        with conn.cursor().copy(
            sql.SQL("copy {} ({}) from stdin with (format csv)").format(stage, collist)
        ) as copy:
            copy.write(payload)
        updates = sql.SQL(", ").join(
            sql.SQL("{} = excluded.{}").format(sql.Identifier(c), sql.Identifier(c))
            for c in columns
            if c not in key
        )
        conn.execute(
            sql.SQL(
                "insert into {}.{} ({}) select {} from {} on conflict ({}) do update set {}"
            ).format(
                sql.Identifier(schema),
                sql.Identifier(name),
                collist,
                collist,
                stage,
                sql.SQL(", ").join(map(sql.Identifier, key)),
                updates,
            )
        )
    return len(frame)
