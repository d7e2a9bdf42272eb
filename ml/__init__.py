"""Models for the LMS platform: dropout risk, final score, topic mastery (weak topics), next
chapter and quiz difficulty, trained on the dbt feature marts and kept in a registry on S3.

Plain library code: `flows/` orchestrates it, `serving/` loads its models through `ml.registry`.
"""

import os

# XGBoost's OpenMP threads otherwise spin while they wait for each other. On a shared machine
# with more runnable threads than cores (the 2-core development VM, a busy Spark worker) that
# spinning tripled the CPU time of training (60 boosting rounds on 315,000 rows: 9.0 → 2.9 CPU
# seconds, 39 → 11 s wall at load 12-14). The OpenMP runtime reads this once, when XGBoost first
# loads it, so it is set here, before any ml module imports xgboost; an explicit setting wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
