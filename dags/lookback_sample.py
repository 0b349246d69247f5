"""The spot-check DAG (抽样核查): draws the province's sample of a run's visit roster and
publishes its print-ready lists.

Started by hand with the look-back run to sample, and either a fixed number of households
per county or the confidence and margin the estimate must reach (95 % and ±5 points by
default). Households are drawn per county, stratified by visit category and by whether
open findings remain, from the seed given: the same seed gives the same households, and
the seed is recorded. The lists go to ``samples/<sample id>/``; the inspectors' filled-in
lists come back through the returns zone (the ``rectification`` DAG reads them), and
``lookback sample-results`` prints the estimate per county with its Wilson interval.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import DAG, Param, task

from lookback_dags import task_defaults, warehouse_param

DRAW_DOC = """\
### sample_draw

Draws the sample (recorded with its seed, sizes and strata) and publishes one list per
county, a sheet per township, into `samples/<sample id>/`, all at once.

**When it fails**

- *The run has no visit roster* (not looked back) or *a size that cannot be* (the message
  says which): **not retried**; trigger again with the right run or size.
- *The warehouse or the disk*: retried three times with growing delays.
"""


def _params() -> dict[str, Param]:
    return {
        "run_id": Param(type="string", minLength=1, description="The look-back run whose visit roster is sampled."),
        "per_county": Param(
            None, type=["null", "integer"], minimum=1, description="Households per county; default: from confidence."
        ),
        "confidence": Param(0.95, type="number", exclusiveMinimum=0, exclusiveMaximum=1),
        "margin": Param(0.05, type="number", exclusiveMinimum=0, exclusiveMaximum=1),
        "seed": Param(1, type="integer", description="The same seed draws the same households."),
        "sample_id": Param(None, type=["null", "string"], description="Default: <run>-s<seed>."),
        "out": Param(None, type=["null", "string"], description="Default: $LOOKBACK_DATA_DIR/samples/<sample id>."),
        "warehouse": warehouse_param(),
    }


def _draw(params: dict[str, Any]) -> dict[str, Any]:

    from airflow.sdk.exceptions import AirflowFailException

    from lookback.errors import LookbackError
    from lookback.paths import data_dir, inside_data_dir
    from lookback.publish.replace import SAMPLE_MARKER, check_replaceable
    from lookback.publish.sample_lists import publish_sample
    from lookback.reconcile.sample import draw_sample
    from lookback.run import check_no_password, open_warehouse

    try:
        check_no_password(params.get("warehouse"), "the DAG run's param 'warehouse'")
        # Whoever may trigger the DAG names the folder: one inside the data folder, empty or
        # an earlier sample's, checked before anything is drawn.
        chosen = inside_data_dir(params["out"], "sample folder (out)") if params.get("out") else None
        if chosen is not None:
            check_replaceable(chosen, SAMPLE_MARKER)
        with open_warehouse(params.get("warehouse")) as warehouse:
            drawn = draw_sample(
                warehouse,
                params["run_id"],
                seed=int(params["seed"]),
                per_county=params.get("per_county"),
                confidence=float(params["confidence"]),
                margin=float(params["margin"]),
                sample_id=params.get("sample_id"),
            )
            out = chosen or data_dir() / "samples" / drawn.sample_id
            publish_sample(warehouse, drawn.sample_id, out)
    except LookbackError as error:
        raise AirflowFailException(str(error)) from error
    return {
        "sample_id": drawn.sample_id,
        "seed": drawn.seed,
        "out": str(out),
        "per_county": {
            county: {"drawn": taken, "households": total} for county, (taken, total) in drawn.per_county.items()
        },
    }


with DAG(
    dag_id="sample",
    schedule=None,
    catchup=False,
    params=_params(),
    tags=["lookback", "sample"],
    default_args=task_defaults(),
    doc_md=__doc__,
    description="Draw the province's spot check of a run's visit roster and publish its lists",
) as dag:

    @task(task_id="sample_draw", doc_md=DRAW_DOC)
    def sample_draw(**context: Any) -> dict[str, Any]:
        return _draw(dict(context["params"]))

    sample_draw()
