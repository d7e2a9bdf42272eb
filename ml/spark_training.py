"""The large-data path: the dropout model trained on Spark with XGBoost's Spark estimator, with
the same features, time split, early stopping and refit, metrics and registry format as the
in-memory path.

Spark distributes the boosting (``num_workers`` XGBoost workers, one per Spark task); only the
validation and test windows' columns the metrics need are brought to the driver, as in-memory
metrics on a few hundred thousand rows are cheaper than a distributed ROC computation. The
result is an ordinary :class:`TrainingResult`, registered and promoted like any other.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from ml.bundle import ModelBundle
from ml.errors import NotEnoughData
from ml.features import FEATURE_PREFIX
from ml.models import dropout
from ml.splits import time_split
from ml.training import DEFAULT_PARAMS, TrainingResult, trim


def read_mart(spark: Any, settings: Any, name: str) -> Any:
    """A feature mart as a Spark DataFrame over JDBC (the warehouse's PostgreSQL)."""
    from ingestion.landing.warehouse import jdbc_url
    from ml.data import features_schema

    url, props = jdbc_url(settings.warehouse_dsn)
    return spark.read.jdbc(url, f"{features_schema(settings)}.{name}", properties=props)


def train_dropout(
    sdf: Any,
    *,
    num_workers: int = 1,
    params: dict[str, Any] | None = None,
    sample_rows: int = 200_000,
) -> TrainingResult:
    """Train the dropout model on a Spark DataFrame shaped like ``features.student_course_asof``."""
    from pyspark.sql import functions as F
    from xgboost.spark import SparkXGBClassifier

    label = dropout.LABEL
    features = [
        c
        for c, t in sdf.dtypes
        if c.startswith(FEATURE_PREFIX)
        and t in ("double", "float", "int", "bigint", "smallint", "decimal")
    ]
    if not features:
        raise NotEnoughData("the Spark frame has no numeric f_* columns")
    labelled = sdf.where(F.col(label).isNotNull()).withColumn(label, F.col(label).cast("int"))
    dates = labelled.groupBy(F.to_date("as_of_date").alias("as_of_date")).count().toPandas()
    split, *_ = time_split(dates)
    valid_start, test_start = str(split.valid_start), str(split.test_start)
    day = F.to_date("as_of_date")
    casted = labelled.select(
        "student_id",
        "course_id",
        "as_of_date",
        label,
        *[F.col(c).cast("double").alias(c) for c in features],
    )
    # One vector column rather than a list of columns: xgboost.spark (3.2) fails with
    # KeyError 'values' on a batch holding only validation rows when given a column list.
    from pyspark.ml.feature import VectorAssembler

    assembler = VectorAssembler(inputCols=features, outputCol="features", handleInvalid="keep")
    fit_rows = assembler.transform(
        casted.where(day < F.lit(test_start)).withColumn("is_validation", day >= F.lit(valid_start))
    ).select("features", label, "is_validation")
    cfg = {**DEFAULT_PARAMS, **(params or {})}
    common = {
        "features_col": "features",
        "label_col": label,
        "num_workers": num_workers,
        "max_depth": cfg["max_depth"],
        "learning_rate": cfg["eta"],
        "subsample": cfg["subsample"],
        "colsample_bytree": cfg["colsample_bytree"],
        "min_child_weight": cfg["min_child_weight"],
        "reg_lambda": cfg["lambda"],
        "tree_method": "hist",
        "random_state": cfg["seed"],
        "missing": float("nan"),
    }
    # As in memory: early stopping on the validation window, then a refit on training +
    # validation rows with the number of trees scaled to the larger data.
    stopped = SparkXGBClassifier(
        **common,
        validation_indicator_col="is_validation",
        n_estimators=600,
        early_stopping_rounds=40,
        eval_metric="logloss",
    ).fit(fit_rows)
    n_trees = trim(stopped.get_booster()).num_boosted_rounds()
    n_train = casted.where(day < F.lit(valid_start)).count()
    n_fit = casted.where(day < F.lit(test_start)).count()
    rounds = max(1, round(n_trees * n_fit / max(n_train, 1)))
    model = SparkXGBClassifier(**common, n_estimators=rounds).fit(fit_rows.drop("is_validation"))
    booster = model.get_booster()
    booster.feature_names = features
    bundle = ModelBundle(
        "dropout",
        "classifier",
        features,
        booster,
        {
            "risk_bands": dropout.RISK_BANDS,
            "label": label,
            "xgboost": cfg,
            "trees": booster.num_boosted_rounds(),
            "trees_early_stopping": n_trees,
            "refit_on_validation": True,
            "trained_on": f"spark ({num_workers} workers)",
        },
    )
    columns = ["student_id", "course_id", "as_of_date", label, *features]
    tr = _to_pandas(casted.where(day < F.lit(valid_start)), columns, sample_rows)
    va = _to_pandas(casted.where((day >= F.lit(valid_start)) & (day < F.lit(test_start))), columns)
    te = _to_pandas(casted.where(day >= F.lit(test_start)), columns)
    counts = dates.set_index("as_of_date")["count"]
    idx = pd.to_datetime(counts.index)
    data = {
        "rows": {
            "all": int(counts.sum()),
            "train": int(counts[idx < pd.Timestamp(valid_start)].sum()),
            "valid": len(va),
            "test": len(te),
        },
        "features": features,
        "as_of_dates": [str(split.train_start), str(split.test_end)],
        "engine": "spark",
    }
    return dropout.evaluated(bundle, split, tr, va, te, data)


def _to_pandas(sdf: Any, columns: list[str], limit: int | None = None) -> pd.DataFrame:
    part = sdf.select(*columns)
    if limit is not None:
        total = part.count()
        if total > limit:
            part = part.sample(fraction=limit / total, seed=0)
    frame = part.toPandas()
    frame["as_of_date"] = pd.to_datetime(frame["as_of_date"])
    return frame
