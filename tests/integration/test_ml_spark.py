"""The large-data path: the dropout model trained with XGBoost's Spark estimator (Spark local
mode, the integration session's shared Spark) reports the same metrics as the in-memory path
and produces a model the registry stores and serving loads like any other."""

from __future__ import annotations

import os
import sys
from typing import Any

import numpy as np
import pytest

from ml.bundle import ModelBundle
from ml.models import dropout
from ml.synthetic import student_course_frame

# A Spark session and XGBoost's barrier-mode training: minutes on a loaded 2-core machine.
# XGBoost's Spark estimator runs Python workers (mapInPandas): they must be this environment's
# interpreter, not the system's python3. Set at collection, before the shared session starts.
os.environ.setdefault("PYSPARK_PYTHON", sys.executable)

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(1800)]


def test_spark_training_matches_the_in_memory_path(spark: Any) -> None:
    from ml.spark_training import train_dropout

    frame = student_course_frame(3000, weeks=8, seed=21)
    local = dropout.train(frame)
    sdf = spark.createDataFrame(
        frame.assign(label_observed_on=frame["label_observed_on"].astype(str))
    )
    distributed = train_dropout(sdf, num_workers=1)

    assert distributed.split == local.split
    assert distributed.bundle.features == local.bundle.features
    assert distributed.data["rows"]["test"] == local.data["rows"]["test"]
    assert distributed.baselines["last_week_activity"] == pytest.approx(
        local.baselines["last_week_activity"]
    )
    assert distributed.beats_baseline
    assert abs(distributed.metrics["roc_auc"] - local.metrics["roc_auc"]) < 0.03
    again = ModelBundle.from_files(distributed.bundle.to_files())
    sample = frame.sample(300, random_state=0)
    assert np.allclose(again.predict(sample), distributed.bundle.predict(sample))
