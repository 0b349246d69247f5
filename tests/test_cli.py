"""The lookback command line: the same code as the DAG, errors on stderr with a non-zero exit."""

from __future__ import annotations

import csv
import json
from collections import Counter
from pathlib import Path

import pytest

from lookback.cli import main


@pytest.mark.integration
def test_generate_then_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    landing = tmp_path / "landing" / "2020-06"
    warehouse = f"sqlite:///{tmp_path / 'warehouse.sqlite'}"
    assert main(["-q", "generate", "--out", str(landing), "--persons", "40", "--seed", "4"]) == 0
    assert "registry persons" in capsys.readouterr().out

    out = tmp_path / "out"
    code = main(
        ["-q", "run", "--landing", str(landing), "--out", str(out), "--as-of", "2020-06-30", "--warehouse", warehouse]
    )
    printed = capsys.readouterr().out
    assert code == 0
    assert "batch 2020-06 in sqlite:///" in printed
    assert "every delivered row is accounted for" in printed
    summary = json.loads((out / "run_summary.json").read_text(encoding="utf-8"))
    assert summary["as_of"] == "2020-06-30"
    assert summary["balanced"] is True
    expected = {"ingest_accounting.csv", "quarantine.csv", "person_links.csv", "match_review.csv", "run_summary.json"}
    expected |= {"match_review.xlsx", "quality.html"}
    expected |= {"quality_results.csv", "data_docs", "lookback_findings.csv", "visit_roster.csv", "census_extract"}
    expected |= {"counties", "visit_lists", "manifest.json"}
    assert {path.name for path in out.iterdir()} == expected
    assert f"quality report (Data Docs): {out / 'data_docs' / 'index.html'}" in printed
    assert summary["quality"]["critical_failed"] == 0 and summary["quality"]["data_docs"] == "data_docs/index.html"
    assert set(summary["quality"]["stages"]) == {"standardise", "link", "publish"}
    # The findings per rule and county, and the row accounting, are printed.
    assert "findings per rule and county" in printed and "MED_NOT_INSURED" in printed
    look_back = summary["look_back"]
    assert look_back["run_id"] == "2020-06" and sum(look_back["findings_per_rule"].values()) > 0
    assert sum(look_back["visit_roster"].values()) > 0 and look_back["census_persons"] > 0

    assert main(["accounting", "--batch", "2020-06", "--warehouse", warehouse]) == 0
    printed = capsys.readouterr().out
    assert "registry" in printed
    # Which sheet of the workbook was read: the table's column, the file's column.
    assert "sheet_name" in printed.splitlines()[1]
    assert (
        next(line for line in printed.splitlines() if line.startswith("dibao")).split()[3] == "农村低保及特困供养花名册"
    )
    with (out / "ingest_accounting.csv").open(encoding="utf-8-sig", newline="") as handle:
        sheets = {row["source"]: row["sheet_name"] for row in csv.DictReader(handle)}
    assert sheets["dibao"] == "农村低保及特困供养花名册" and sheets["registry"] == ""

    assert main(["-q", "ingest", "--landing", str(landing), "--warehouse", warehouse, "--source", "hukou"]) == 0


@pytest.mark.integration
def test_quarantine_file_masks_identity_numbers(tmp_path: Path) -> None:
    landing = tmp_path / "landing" / "b"
    assert main(["-q", "generate", "--out", str(landing), "--persons", "40", "--seed", "4"]) == 0
    with (landing / "hukou_cancellations.csv").open("a", encoding="utf-8") as handle:
        handle.write("王伟,431224198001011238,男,死亡2020-01-01,431224\r\n")  # a delimiter lost
    out = tmp_path / "out"
    warehouse = f"sqlite:///{tmp_path / 'w.sqlite'}"
    run = ["-q", "run", "--landing", str(landing), "--out", str(out), "--as-of", "2020-06-30", "--warehouse", warehouse]
    assert main(run) == 0
    quarantine = (out / "quarantine.csv").read_text(encoding="utf-8-sig")
    assert "field_count" in quarantine
    assert "431224198001011238" not in quarantine
    assert "431224********1238" in quarantine


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["ingest", "--landing", "/nonexistent/batch"],
            "lookback: error: /nonexistent/batch: landing folder does not exist",
        ),
        (["accounting", "--batch", "never-loaded"], "lookback: error: batch never-loaded has not been ingested"),
        (["ingest", "--landing", "{tmp}", "--source", "nosuch"], "lookback: error: unknown source(s) nosuch"),
        (["ingest", "--landing", "{tmp}"], "mandatory source dibao (农村低保及特困供养花名册) not delivered"),
        (
            ["generate", "--out", "{tmp}/b", "--counties", "110101"],
            "--counties: not current Hunan county codes: 110101",
        ),
        (["generate", "--out", "{tmp}/b", "--noise", "messy"], "unknown noise profile 'messy'"),
        (["evaluate", "--truth", "{tmp}", "--out", "{tmp}"], "lookback: error:"),
        (
            ["run", "--landing", "{tmp}/b", "--out", "{tmp}", "--as-of", "2020-06-30"],
            "lies inside the run's folder",
        ),
    ],
)
def test_errors_go_to_stderr_with_a_non_zero_exit(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    warehouse = f"sqlite:///{tmp_path / 'warehouse.sqlite'}"
    argv = [arg.replace("{tmp}", str(tmp_path)) for arg in args]
    extra = ["--warehouse", warehouse] if argv[0] in {"ingest", "accounting", "run"} else []
    assert main(["-q", *argv, *extra]) == 1
    captured = capsys.readouterr()
    assert message in captured.err
    assert captured.out == ""


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as raised:
        main(["run", "--landing", "x", "--out", "y", "--as-of", "30/06/2020"])
    assert raised.value.code == 2
    assert "not a date in YYYY-MM-DD form" in capsys.readouterr().err


@pytest.mark.integration
def test_evaluate_scores_a_perfect_run_at_one(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The generator's truth and the evaluation fit together: a run that links every row to
    its true person and cites the right rows for every true finding scores 1 everywhere."""
    landing = tmp_path / "landing" / "b"
    assert main(["-q", "generate", "--out", str(landing), "--persons", "300", "--seed", "8", "--noise", "hard"]) == 0
    truth = tmp_path / "truth" / "b"
    with (truth / "rows.csv").open(encoding="utf-8") as handle:
        rows = [row for row in csv.DictReader(handle) if row["row_kind"] in {"data", "duplicate"}]
    with (truth / "findings.csv").open(encoding="utf-8") as handle:
        findings = list(csv.DictReader(handle))
    run = tmp_path / "run"
    run.mkdir()
    with (run / "person_links.csv").open("w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["person_id", "source", "source_row", "household_key", "match_method", "match_score"])
        writer.writerows([row["person_key"], row["source"], row["source_row"], "", "manual", "1"] for row in rows)

    def cited(finding: dict[str, str]) -> str:
        key = "person_key" if finding["subject_kind"] == "person" else "household_key"
        preferred = "dibao" if finding["subject_kind"] == "dibao_household" else "registry"
        matches = [row for row in rows if row[key] == finding["subject_key"]]
        row = next((row for row in matches if row["source"] == preferred), matches[0])
        return f"{row['source']}:{row['source_row']}"

    with (run / "lookback_findings.csv").open("w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["finding_id", "rule_code", "status", "source_rows"])
        writer.writerows([index, f["rule_code"], "open", cited(f)] for index, f in enumerate(findings))
    capsys.readouterr()

    assert main(["evaluate", "--truth", str(truth), "--out", str(run)]) == 0
    printed = capsys.readouterr().out
    assert printed.rstrip().endswith(f"scores written to {run / 'evaluation.json'}")
    scores = json.loads((run / "evaluation.json").read_text(encoding="utf-8"))

    # Linkage: every true pair of rows is linked and no other, on all rows and on the hard ones.
    for kind in ("linkage", "hard_linkage"):
        pairs = scores[kind]
        assert pairs["true_pairs"] > 0, kind
        assert pairs["predicted_pairs"] == pairs["correct_pairs"] == pairs["true_pairs"], kind
        assert (pairs["precision"], pairs["recall"], pairs["f1"]) == (1.0, 1.0, 1.0), kind
    assert scores["rows_linked"] == len(rows)
    assert scores["rows_in_review"] == 0
    # Findings: every rule finds exactly its true subjects, each rule on its own and all together.
    truth_per_rule = Counter(finding["rule_code"] for finding in findings)
    assert {score["rule_code"]: score["truth"] for score in scores["findings"] if score["truth"]} == truth_per_rule
    overall = scores["findings_overall"]
    assert overall["truth"] == len(findings)
    for score in [*scores["findings"], overall]:
        assert score["found"] == score["correct"] == score["truth"], score
        if score["truth"]:
            assert (score["precision"], score["recall"], score["f1"]) == (1.0, 1.0, 1.0), score

    # The printed report says the same: each score of each row reads 1.0000.
    linkage_part, _, findings_part = printed.partition("findings (open findings matched to true subjects)")
    findings_part = findings_part.partition("scores written to ")[0]
    pair_rows = {
        line.split()[0]: line.split() for line in linkage_part.splitlines() if line.startswith(("all", "hard"))
    }
    for label, kind in (("all", "linkage"), ("hard", "hard_linkage")):
        true_pairs = f"{scores[kind]['true_pairs']:,}"
        assert pair_rows[label][1:] == [true_pairs, true_pairs, true_pairs, "1.0000", "1.0000", "1.0000"], label
    assert f"rows linked: {len(rows):,}; rows in review: 0 (0.0%)" in linkage_part
    finding_rows = {line.split()[0]: line.split() for line in findings_part.splitlines()[3:] if line.strip()}
    assert set(finding_rows) == {score["rule_code"] for score in scores["findings"]} | {"all"}
    for rule, count in [*truth_per_rule.items(), ("all", len(findings))]:
        assert finding_rows[rule][-6:] == [f"{count:,}"] * 3 + ["1.0000"] * 3, finding_rows[rule]


@pytest.mark.integration
def test_a_critical_defect_stops_the_run_before_anything_is_published(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    landing = tmp_path / "landing" / "defective"
    warehouse = f"sqlite:///{tmp_path / 'warehouse.sqlite'}"
    assert main(["-q", "generate", "--out", str(landing), "--persons", "60", "--seed", "5"]) == 0
    # Half the registry's households lose their head: households cut apart, a critical defect.
    path = landing / "registry_members.csv"
    text = path.read_text(encoding="gb18030")
    lines = text.splitlines(keepends=True)
    heads = [i for i, line in enumerate(lines) if ",户主," in line]
    for i in heads[::2]:
        lines[i] = lines[i].replace(",户主,", ",其他,")
    path.write_text("".join(lines), encoding="gb18030")
    capsys.readouterr()

    out = tmp_path / "out"
    run = ["-q", "run", "--landing", str(landing), "--out", str(out), "--as-of", "2020-06-30", "--warehouse", warehouse]
    assert main(run) == 1
    error = capsys.readouterr().err
    assert "quality gate: 1 critical expectation(s) failed at stage standardise of batch defective" in error
    assert "standardise.registry: expect_column_values_to_be_between(heads_in_household) failed on" in error
    assert "e.g. row " in error
    assert not out.exists()  # nothing published
    assert (tmp_path / ".out.work" / "data_docs" / "index.html").is_file()  # the report says what failed

    # The same gate on its own, and publishing refuses the batch.
    validate = ["-q", "validate", "--batch", "defective", "--stage", "standardise", "--out", str(out)]
    assert main([*validate, "--as-of", "2020-06-30", "--warehouse", warehouse]) == 1
    assert "heads_in_household" in capsys.readouterr().err


@pytest.mark.integration
def test_validate_prints_the_stage_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    landing = tmp_path / "landing" / "b"
    warehouse = f"sqlite:///{tmp_path / 'warehouse.sqlite'}"
    assert main(["-q", "generate", "--out", str(landing), "--persons", "40", "--seed", "6", "--noise", "hard"]) == 0
    assert main(["-q", "ingest", "--landing", str(landing), "--warehouse", warehouse]) == 0
    capsys.readouterr()
    out = tmp_path / "out"
    args = ["-q", "validate", "--batch", "b", "--stage", "standardise", "--out", str(out), "--as-of", "2020-06-30"]
    assert main([*args, "--warehouse", warehouse]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("quality, stage standardise, batch b: ")
    assert " 0 critical failed" in printed
    assert f"Data Docs: {tmp_path / '.out.work' / 'data_docs' / 'index.html'}" in printed
