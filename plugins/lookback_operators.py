"""Airflow operators over lookback's stages.

``ValidateOperator`` validates one stage of a batch with the project's Great
Expectations suites (``expectations/``). It calls the GX API through
``lookback.validate`` instead of using the GX Airflow provider: that provider (1.0.0) pins
structlog below 25.5, which Airflow 3.3 does not allow, and its DataFrame operator loads
data when the DAG is parsed. Great Expectations is imported only when the task runs.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import BaseOperator


class ValidateOperator(BaseOperator):
    """Validate ``stage`` of the run's batch; fail the task (without retrying) when a
    critical expectation fails, so that nothing downstream is published.

    Works on the run the DAG run describes (its params, completed by the batch of its
    partition: see ``lookback_dags.current_run``); returns counts and the Data Docs path only.
    """

    ui_color = "#e8defa"

    def __init__(self, *, stage: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.stage = stage

    def execute(self, context: Any) -> dict[str, Any]:
        from airflow.sdk.exceptions import AirflowFailException

        from lookback.errors import LookbackError
        from lookback.pipeline import open_warehouse, validate
        from lookback_dags import current_run, hold_batch

        try:
            run = current_run(context)
            with open_warehouse(run.warehouse_url) as warehouse:
                hold_batch(context, warehouse)
                report = validate(run, warehouse, self.stage)
        except LookbackError as error:
            raise AirflowFailException(str(error)) from error
        return report.as_dict()
