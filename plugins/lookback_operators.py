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

    Reads the DAG run's params (``landing``, ``batch``, ``warehouse``, ``out``, ``as_of``,
    ``run_id``);
    returns counts and the Data Docs path only.
    """

    ui_color = "#e8defa"

    def __init__(self, *, stage: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.stage = stage

    def execute(self, context: Any) -> dict[str, Any]:
        from airflow.sdk.exceptions import AirflowFailException

        from lookback.errors import LookbackError
        from lookback.pipeline import Run, open_warehouse, validate

        try:
            run = Run.from_params(context["params"], context["logical_date"].date())
            with open_warehouse(run.warehouse_url) as warehouse:
                report = validate(run, warehouse, self.stage)
        except LookbackError as error:
            raise AirflowFailException(str(error)) from error
        return report.as_dict()
