"""One step of a stage split into tasks, in a process of its own, as a mapped task on a
worker runs it: ``python -m tests.fanout_step STEP '{"batch": ..., "as_of": ..., "out": ...,
"warehouse": ..., "counties": [...]}'``. Prints the step's result as JSON on its last line."""

from __future__ import annotations

import json
import sys
from typing import Any

from lookback import pipeline
from lookback.run import Run, open_warehouse

STEPS = (
    "county_groups",
    "link_prepare",
    "link_county",
    "link_merge",
    "reconcile_prepare",
    "reconcile_county",
    "reconcile_finish",
)


def run_step(step: str, params: dict[str, Any]) -> Any:
    if step not in STEPS:
        raise SystemExit(f"unknown step {step!r} (one of {', '.join(STEPS)})")
    run = Run.create(
        batch=params["batch"],
        run_id=params.get("run_id"),
        as_of=params.get("as_of"),
        out=params["out"],
        warehouse=params["warehouse"],
    )
    with open_warehouse(run.warehouse_url) as warehouse:
        function = getattr(pipeline, step)
        if "counties" in params:
            result = function(run, warehouse, params["counties"])
        elif "max_tasks" in params:
            result = function(run, warehouse, max_tasks=params["max_tasks"])
        else:
            result = function(run, warehouse)
    return result.as_dict() if hasattr(result, "as_dict") else result


if __name__ == "__main__":
    print(json.dumps(run_step(sys.argv[1], json.loads(sys.argv[2])), ensure_ascii=False, default=str))
