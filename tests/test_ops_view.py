"""The ops view's figures and routes, in process: two look-back runs of one evolving
population (on SQLite and PostgreSQL), the figures checked against what each run published
on its own (``run_summary.json``, ``ingest_accounting.csv``, ``visit_roster.csv``,
``lookback_findings.csv``), and the plugin's FastAPI app called with and without a user.
The app inside a real API server, through a browser, is tested in ``tests/test_airflow_ui.py``.
"""

from __future__ import annotations

import csv
import json
import re
from collections import Counter
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from lookback.generate.batch import generate_batch
from lookback.ops import summary as ops
from lookback.ops.page import render_page, trend_chart
from lookback.run import open_warehouse
from lookback.standardise.identity import normalise_identity_number
from tests import steps
from tests.postgres import throwaway_database

pytestmark = pytest.mark.integration

AS_OF = date(2020, 6, 30)
# An 18-character run that could be an identity number; valid ones are what must never show.
_IDENTITY_LIKE = re.compile(r"(?<![0-9])[0-9]{17}[0-9Xx](?![0-9])")


def valid_identity_numbers(text: str) -> list[str]:
    """The valid identity numbers (check character and birth date right) anywhere in ``text``."""
    return [found for found in _IDENTITY_LIKE.findall(text) if normalise_identity_number(found).is_valid]


class History:
    def __init__(self, root: Path, url: str, as_of: dict[str, date]) -> None:
        self.root, self.url, self.as_of = root, url, as_of

    @property
    def runs_root(self) -> Path:
        return self.root / "data" / "runs"

    def published(self, run_id: str, name: str) -> Path:
        return self.runs_root / run_id / name


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def history(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[History]:
    """Two runs, ``q2`` then ``q3`` (the population moved on, half the findings fixed)."""
    root = tmp_path_factory.mktemp("ops-view")
    first, second = root / "landing" / "q2", root / "landing" / "q3"
    generate_batch(first, persons=300, seed=61, as_of=AS_OF, noise="typical")
    summary = generate_batch(second, seed=62, noise="typical", evolve_from=first, fix_fraction=0.5)
    second_as_of = date.fromisoformat(json.loads((summary.truth / "manifest.json").read_text("utf-8"))["as_of"])
    urls = (
        iter([f"sqlite:///{root / 'warehouse.sqlite'}"])
        if request.param == "sqlite"
        else throwaway_database("lookback_ops_view")
    )
    for url in urls:
        steps.run_all(first, root / "data" / "runs" / "q2", AS_OF, url)
        steps.run_all(second, root / "data" / "runs" / "q3", second_as_of, url)
        yield History(root, url, {"q2": AS_OF, "q3": second_as_of})


def _csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return list(csv.DictReader(handle))


def test_runs_are_listed_newest_first_and_the_trend_oldest_first(history: History) -> None:
    with open_warehouse(history.url) as warehouse:
        runs = ops.latest_runs(warehouse)
        trend = ops.finding_trend(warehouse)
    assert [run["run_id"] for run in runs] == ["q3", "q2"]
    assert [run["as_of"] for run in runs] == [history.as_of["q3"].isoformat(), AS_OF.isoformat()]
    assert [point["run_id"] for point in trend] == ["q2", "q3"]
    for point in trend:  # what each run holds open is what it counted when it ran
        counted = json.loads(history.published(point["run_id"], "run_summary.json").read_text("utf-8"))
        assert point["found"] == sum(counted["look_back"]["findings_per_rule"].values()) > 0
    first, second = trend
    assert first["opened"] == first["found"] and first["resolved"] == 0  # the first run opens all it finds
    assert second["resolved"] > 0 and second["opened"] > 0  # half fixed, new ones planted


def test_findings_by_county_and_rule_are_what_the_run_counted_and_published(history: History) -> None:
    with open_warehouse(history.url) as warehouse:
        rows = ops.findings_by_county_and_rule(warehouse, "q3")
    counted = json.loads(history.published("q3", "run_summary.json").read_text("utf-8"))["look_back"]
    shown = {(row["county_code"], row["rule_code"]): row["found"] for row in rows if row["found"]}
    expected = {
        (county, rule): count
        for county, rules in counted["findings_per_county"].items()
        for rule, count in rules.items()
    }
    assert shown == expected
    assert all(row["rule_zh"] and row["rule_en"] and row["county"].startswith(row["county_code"]) for row in rows)
    published = _csv(history.published("q3", "lookback_findings.csv"))
    resolved_now = [
        item
        for item in published
        if item["status"] == "resolved" and item["resolved_at"] == history.as_of["q3"].isoformat()
    ]
    assert sum(row["resolved"] for row in rows) == len(resolved_now) > 0
    opened_now = [item for item in published if item["first_seen_run"] == "q3"]
    assert sum(row["opened"] for row in rows) == len(opened_now)


def test_accounting_roster_and_review_are_what_the_run_published(history: History) -> None:
    with open_warehouse(history.url) as warehouse:
        overview = ops.run_overview(warehouse, "q3", history.runs_root)
        assert ops.run_overview(warehouse, "never-run", history.runs_root) is None
    assert overview is not None
    published = {row["source"]: row for row in _csv(history.published("q3", "ingest_accounting.csv"))}
    assert {row["source"]: row["delivered"] for row in overview["accounting"]} == {
        source: int(row["delivered"]) for source, row in published.items()
    }
    assert all(row["adds_up"] for row in overview["accounting"])
    roster = Counter(row["visit_category"] for row in _csv(history.published("q3", "visit_roster.csv")))
    assert {row["visit_category"]: row["households"] for row in overview["roster"]} == dict(roster)
    counted = json.loads(history.published("q3", "run_summary.json").read_text("utf-8"))
    assert overview["review"]["pairs"] == counted["review_pairs"]
    assert overview["quality"]["data_docs"] == "data_docs/index.html"
    assert overview["quality"]["critical_failed"] == 0 and set(overview["quality"]["stages"]) >= {"standardise", "link"}
    paths = [item["path"] for item in overview["files"]]
    assert "lookback_findings.csv" in paths and "visit_roster.csv" in paths
    assert not [path for path in paths if path.startswith("census_extract") or path == "quarantine.csv"]


def test_rectification_states_count_every_open_finding_per_county(history: History) -> None:
    with open_warehouse(history.url) as warehouse:
        rows = ops.rectification_by_county(warehouse)
    published = _csv(history.published("q3", "lookback_findings.csv"))
    open_per_county = Counter(item["county_code"] for item in published if item["status"] == "open")
    assert {row["county_code"]: row["no_answer"] for row in rows} == dict(open_per_county)
    assert sum(row["verified"] for row in rows) > 0  # q3 no longer finds what was fixed


def test_a_served_path_is_a_deliverable_for_ops_never_the_census_extract() -> None:
    assert ops.servable("lookback_findings.csv") and ops.servable("data_docs/index.html")
    assert ops.servable("counties/431224 溆浦县.xlsx")
    for refused in (
        "census_extract/census_extract_431224.csv",
        "quarantine.csv",
        "person_links.csv",
        "data_docs/../census_extract/x.csv",
        "../other/manifest.json",
        "/etc/passwd",
        "",
        "data_docs//index.html",
    ):
        assert not ops.servable(refused), refused


def test_the_chart_draws_a_point_and_two_bars_per_run() -> None:
    trend = [
        {"run_id": "q2", "as_of": "2020-06-30", "found": 40, "opened": 40, "resolved": 0, "reopened": 0},
        {"run_id": "q3", "as_of": "2020-09-30", "found": 25, "opened": 5, "resolved": 20, "reopened": 1},
    ]
    svg = trend_chart(trend)
    assert svg.count("<circle") == 2 and svg.count("<rect") == 4 and "<polyline" in svg
    assert "q3: 已销号 Resolved 20" in svg
    assert "No runs yet" in trend_chart([])


# The plugin's app ---------------------------------------------------------------------------


@pytest.fixture
def app_client(history: History, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[TestClient, Any]]:
    """The plugin's app on the history's warehouse and data folder, with Airflow's user check
    replaced by a signed-in user (the real check is exercised by the anonymous test and in
    the API server by tests/test_airflow_ui.py), and no Airflow database behind approvals."""
    import lookback_ops

    monkeypatch.setenv("LOOKBACK_WAREHOUSE_URL", history.url)
    monkeypatch.setenv("LOOKBACK_DATA_DIR", str(history.root / "data"))
    waiting = [
        {
            "dag_id": "reconcile",
            "dag_run_id": "asset_triggered__q3",
            "task_id": "approve_release",
            "subject": "q3 发布审批",
            "waiting_since": "2020-10-01T08:00:00+00:00",
            "assignees": "统计局 bureau",
        }
    ]
    monkeypatch.setattr(lookback_ops, "pending_approvals", lambda: waiting)
    lookback_ops._CACHE.clear()  # figures another test's requests left
    (history.root / "data" / "alerts").mkdir(parents=True, exist_ok=True)
    (history.root / "data" / "alerts" / "failures.jsonl").write_text(
        json.dumps(
            {
                "at": "2020-10-01T07:00:00+00:00",
                "batch": "q3",
                "dag_id": "ingest_registry",
                "task_id": "ingest_registry",
                "reason": "bad row: 11010519491231002X",
            }
        )
        + "\n",
        encoding="utf-8",
    )
    (check,) = lookback_ops.app.router.dependencies
    assert check.dependency is not None
    lookback_ops.app.dependency_overrides[check.dependency] = lambda: None
    try:
        yield TestClient(lookback_ops.app), lookback_ops
    finally:
        lookback_ops.app.dependency_overrides.clear()


def test_anonymous_requests_get_401_on_every_route() -> None:
    import lookback_ops

    client = TestClient(lookback_ops.app)
    for path in ("/", "/runs/q3", "/api/summary", "/dag-runs/reconcile/x", "/runs/q3/files/data_docs/index.html"):
        answer = client.get(path)
        assert answer.status_code == 401, path
        assert "q3" not in answer.text or path in answer.text


def test_the_page_shows_the_latest_run_and_what_waits_on_people(app_client: tuple[TestClient, Any]) -> None:
    client, _ = app_client
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    text = page.text
    assert "<b class=run-id>q3</b>" in text
    for words in (
        "数据交付与行数核对 Row accounting per source",
        "问题 按县市区和规则 Findings by county and rule",
        "整改状态 按县市区 Rectification per county",
        "走访名单 Visit roster",
        "待审批 Pending approval",
        "q3 发布审批",
        "<svg",
    ):
        assert words in text, words
    assert "/lookback/runs/q3/files/data_docs/index.html" in text
    assert "11010519491231002X" not in text and "110105********002X" in text  # the failure's reason, masked
    assert valid_identity_numbers(text) == []
    older = client.get("/runs/q2")
    assert older.status_code == 200 and "<b class=run-id>q2</b>" in older.text
    assert client.get("/runs/never-run").status_code == 404


def test_the_json_route_gives_the_page_s_figures(app_client: tuple[TestClient, Any], history: History) -> None:
    client, _ = app_client
    answer = client.get("/api/summary", params={"run_id": "q3"})
    assert answer.status_code == 200
    body = answer.json()
    with open_warehouse(history.url) as warehouse:
        assert body["overview"]["findings"] == ops.findings_by_county_and_rule(warehouse, "q3")
    assert body["approvals"][0]["task_id"] == "approve_release"
    assert valid_identity_numbers(answer.text) == []
    rendered = render_page(**body, base="/lookback")
    assert rendered == client.get("/runs/q3").text


def test_files_are_served_for_ops_and_the_census_extract_never(
    app_client: tuple[TestClient, Any], history: History
) -> None:
    client, _ = app_client
    docs = client.get("/runs/q3/files/data_docs/index.html")
    assert docs.status_code == 200 and "<html" in docs.text.lower()
    findings = client.get("/runs/q3/files/lookback_findings.csv")
    assert findings.status_code == 200
    assert findings.content == history.published("q3", "lookback_findings.csv").read_bytes()
    census = sorted(path.name for path in (history.runs_root / "q3" / "census_extract").glob("*.csv"))
    assert census  # there is an extract to refuse
    for path in (
        f"census_extract/{census[0]}",
        f"data_docs/%2E%2E/census_extract/{census[0]}",  # a client that does not normalise the path
        "quarantine.csv",
        "person_links.csv",
    ):
        assert client.get(f"/runs/q3/files/{path}").status_code == 404, path
    # A link planted inside a served folder that points outside the run's folder is refused.
    (history.runs_root / "q3" / "data_docs" / "leak.csv").symlink_to(
        history.runs_root / "q3" / "census_extract" / census[0]
    )
    try:
        assert client.get("/runs/q3/files/data_docs/leak.csv").status_code == 404
    finally:
        (history.runs_root / "q3" / "data_docs" / "leak.csv").unlink()
    assert client.get("/runs/never-run/files/lookback_findings.csv").status_code == 404
    for served in ("lookback_findings.csv", "visit_roster.csv", "match_review.csv", "quality_results.csv"):
        assert valid_identity_numbers(client.get(f"/runs/q3/files/{served}").text) == [], served


def test_many_requests_within_the_period_read_the_warehouse_once(
    app_client: tuple[TestClient, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    client, lookback_ops = app_client
    reads: list[str | None] = []
    read = lookback_ops._read_figures

    def counted(run_id: str | None) -> dict[str, Any]:
        reads.append(run_id)
        return read(run_id)  # type: ignore[no-any-return]

    monkeypatch.setattr(lookback_ops, "_read_figures", counted)
    monkeypatch.setattr(lookback_ops, "CACHE_SECONDS", 60.0)
    for _ in range(5):
        assert client.get("/api/summary").status_code == 200
        assert client.get("/").status_code == 200
    assert client.get("/runs/q3").status_code == 200
    assert reads == [None, "q3"]  # the latest run's figures once, then q3's
    monkeypatch.setattr(lookback_ops, "CACHE_SECONDS", 0.0)
    assert client.get("/api/summary").json()["approvals"][0]["dag_run_id"] == "asset_triggered__q3"
    assert reads == [None, "q3", None]  # past the period: read again
