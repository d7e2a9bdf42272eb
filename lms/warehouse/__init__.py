"""The warehouse: running the dbt project (`run_dbt`) and rendering its marts (`lms report`)."""

from lms.warehouse.dbt import SCHEDULED_BUILD, DbtFailed, dbt_env, dbt_target_path, run_dbt

__all__ = ["SCHEDULED_BUILD", "DbtFailed", "dbt_env", "dbt_target_path", "run_dbt"]
