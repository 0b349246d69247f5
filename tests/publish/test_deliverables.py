"""The run's deliverables as people open them: CSV for Excel, a workbook per county, the
census extract and its manifest, masked numbers, no formula from source data, and a
publish that either replaces the run's folder whole or leaves it as it was."""

from __future__ import annotations

import csv
import hashlib
import json
import re
import stat
from collections import Counter
from datetime import date
from pathlib import Path

import pytest

from lookback.generate.batch import generate_batch
from lookback.reconcile.catalogue import load_rules
from tests import steps

# Generates a batch and runs the whole pipeline once for the module.
pytestmark = pytest.mark.integration

AS_OF = date(2020, 6, 30)
PLANTED = "=cmd|'/c calc'!A1"
_FULL_NUMBER = re.compile(r"(?<!户编号 )(?<![0-9])[1-9][0-9]{16}[0-9Xx](?![0-9])")


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str]:
    root = tmp_path_factory.mktemp("deliverables")
    landing = root / "landing" / "b1"
    generate_batch(landing, persons=150, seed=8, as_of=AS_OF, noise="typical")
    # A clerk's village name that a spreadsheet would run as a formula.
    path = landing / "registry_members.csv"
    lines = path.read_text(encoding="gb18030").splitlines(keepends=True)
    header = lines[0].rstrip("\r\n").split(",")
    cells = lines[1].rstrip("\r\n").split(",")
    cells[header.index("行政村")] = PLANTED
    lines[1] = ",".join(cells) + "\r\n"
    path.write_text("".join(lines), encoding="gb18030")
    warehouse = f"sqlite:///{root / 'warehouse.sqlite'}"
    out = root / "runs" / "b1"
    steps.run_all(landing, out, AS_OF, warehouse)
    return landing, out, warehouse


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return list(csv.DictReader(handle))


def test_csv_files_open_in_excel_and_carry_the_contract(published: tuple[Path, Path, str]) -> None:
    _, out, _ = published
    for name in ("lookback_findings.csv", "visit_roster.csv", "person_links.csv", "quarantine.csv"):
        assert (out / name).read_bytes().startswith(b"\xef\xbb\xbf"), name
    findings = _rows(out / "lookback_findings.csv")
    assert findings
    for column in ("finding_id", "rule_code", "status", "first_seen_run", "last_seen_run", "resolved_at"):
        assert column in findings[0]
    for column in ("county_code", "township", "village", "person_id", "household_key", "subject_name"):
        assert column in findings[0]
    for column in ("subject_id_masked", "evidence", "source_rows", "responsible"):
        assert column in findings[0]
    assert {row["rule_code"] for row in findings} <= {rule.code for rule in load_rules()}
    assert all(row["finding_id"].startswith(row["rule_code"] + ":") for row in findings)
    assert all(re.fullmatch(r"[a-z]+:[0-9]+(;[a-z]+:[0-9]+)*", row["source_rows"]) for row in findings)
    roster = _rows(out / "visit_roster.csv")
    route = [(row["county_code"], row["township"], row["village"]) for row in roster]
    assert route == sorted(route)  # a cadre's route: county, township, village
    assert [int(row["route_order"]) for row in roster] == list(range(1, len(roster) + 1))
    assert {row["visit_category"] for row in roster} <= {
        "registry",
        "ill_or_disabled",
        "outside_registry_dibao",
        "outside_registry_tekun",
    }


def test_staff_files_mask_numbers_and_the_extract_carries_them(published: tuple[Path, Path, str]) -> None:
    _, out, _ = published
    for path in [*out.glob("*.csv"), *out.glob("*.xlsx"), *out.glob("*.html"), *out.glob("*/**/*.xlsx")]:
        if path.suffix == ".xlsx":
            from openpyxl import load_workbook

            workbook = load_workbook(path, read_only=True)
            text = "\n".join(
                str(value)
                for sheet in workbook.worksheets
                for row in sheet.iter_rows(values_only=True)
                for value in row
            )
            workbook.close()
        else:
            text = path.read_text(encoding="utf-8-sig")
        assert not _FULL_NUMBER.search(text), path.name
    extract = [row for path in sorted((out / "census_extract").glob("*.csv")) for row in _rows(path)]
    assert extract and sum(1 for row in extract if _FULL_NUMBER.fullmatch(row["identity_number"])) > 0.9 * len(extract)
    assert len({row["person_id"] for row in extract}) == len(extract)


def test_manifest_checks_every_file(published: tuple[Path, Path, str]) -> None:
    _, out, _ = published
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert (manifest["run_id"], manifest["batch_id"], manifest["as_of"]) == ("b1", "b1", "2020-06-30")
    assert manifest["data_quality"]["passed"] is True
    assert set(manifest["data_quality"]["stages"]) == {"standardise", "link", "publish"}
    listed = {entry["path"]: entry for entry in manifest["files"]}
    on_disk = {
        path.relative_to(out).as_posix()
        for path in out.rglob("*")
        if path.is_file() and path.name != "manifest.json" and "data_docs" not in path.parts
    }
    assert set(listed) == on_disk
    for name, entry in listed.items():
        data = (out / name).read_bytes()
        assert entry["sha256"] == hashlib.sha256(data).hexdigest() and entry["bytes"] == len(data), name
        if name.endswith(".csv"):
            assert entry["rows"] == len(_rows(out / name)), name
    census = manifest["census_extract"]
    assert census["persons"] == sum(entry["rows"] for entry in census["files"]) > 0
    # The extract is declared personal data, file by file, and no other file is.
    assert census["personal_data"] is True and "identity_number" in census["personal_data_kinds"]
    flagged = sorted(entry["path"] for entry in manifest["files"] if entry.get("personal_data"))
    assert flagged == sorted(entry["path"] for entry in census["files"]) and flagged


def _private(out: Path) -> dict[str, str]:
    """The modes of the census extract's folder and files, by path."""
    paths = [out / "census_extract", *sorted((out / "census_extract").iterdir())]
    return {path.relative_to(out).as_posix(): oct(stat.S_IMODE(path.stat().st_mode)) for path in paths}


def test_the_census_extract_is_its_owners_alone(published: tuple[Path, Path, str]) -> None:
    _, out, _ = published
    modes = _private(out)
    assert len(modes) > 1
    assert modes.pop("census_extract") == "0o700"
    assert set(modes.values()) == {"0o600"}, modes


def test_county_workbooks_for_staff(published: tuple[Path, Path, str]) -> None:
    from openpyxl import load_workbook

    _, out, _ = published
    workbooks = sorted((out / "counties").glob("*.xlsx"))
    findings = _rows(out / "lookback_findings.csv")
    assert len(workbooks) == len({row["county_code"] for row in _rows(out / "visit_roster.csv")})
    rules = load_rules()
    seen_planted = False
    total = 0
    for path in workbooks:
        county = path.stem.split(" ")[0]
        workbook = load_workbook(path)
        assert workbook.sheetnames == [*(rule.title_zh for rule in rules), "上门排查清单", "整改情况汇总"]
        states = Counter(row["rectification_state"] for row in findings if row["county_code"] == county)
        summary = {str(row[0]): row[1] for row in workbook["整改情况汇总"].iter_rows(min_row=3, values_only=True)}
        assert summary["未反馈"] == states["no_answer"] and summary["合计"] == sum(states.values())
        for rule, sheet in zip(rules, workbook.worksheets, strict=False):
            assert sheet.freeze_panes == "A3"
            assert str(sheet["A1"].value).startswith(f"{rule.title_zh}　") and "截至 2020-06-30" in sheet["A1"].value
            assert sheet["A2"].value == "问题编号" and sheet["A2"].font.bold
            expected = sum(1 for row in findings if row["rule_code"] == rule.code and row["county_code"] == county)
            if expected:
                assert sheet.column_dimensions["I"].width >= 20  # the evidence column fits its words
            assert sheet.max_row - 2 == expected, (path.name, rule.code)
            total += expected
        roster = workbook["上门排查清单"]
        captions = [cell.value for cell in roster[2]]
        assert captions[-4:] == ["走访日期", "走访核实情况", "户主（家属）签字", "走访人签字"]
        assert "问题类型代码" not in captions and "需核实事项" in captions  # words, not rule codes
        for sheet in workbook.worksheets:
            for row in sheet.iter_rows(min_row=3):
                for cell in row:
                    if isinstance(cell.value, str) and "cmd|" in cell.value:
                        assert cell.data_type == "s" and cell.value == "'" + PLANTED
                        seen_planted = True
    assert total == len(findings)
    assert seen_planted
    for path in [out / "visit_roster.csv", *(out / "census_extract").glob("*.csv")]:
        text = path.read_text(encoding="utf-8-sig")
        assert ",=cmd|" not in text, path.name
    extract = "".join(path.read_text(encoding="utf-8-sig") for path in (out / "census_extract").glob("*.csv"))
    assert ",'=cmd|" in extract


def _county_labels(out: Path) -> dict[str, str]:
    """County code → the name of its folder of visit lists (and of its workbook)."""
    return {path.stem.split(" ")[0]: path.stem for path in (out / "counties").glob("*.xlsx")}


def test_visit_lists_a_workbook_per_township_a_sheet_per_village(published: tuple[Path, Path, str]) -> None:
    """Each county's visit lists hold every household of its roster once, township by
    township and village by village in route order, numbered, with members and items to
    check in words and the visit's columns left empty."""
    from openpyxl import load_workbook

    from lookback.publish.deliver import VISIT_COLUMNS
    from lookback.publish.files import FORMULA_TRIGGERS, legal_sheet_titles

    _, out, _ = published
    roster = _rows(out / "visit_roster.csv")
    for row in roster:  # the values as delivered, without the apostrophe the CSV file adds
        for name, value in row.items():
            if value.startswith("'") and value[1:].startswith(FORMULA_TRIGGERS):
                row[name] = value[1:]
    titles = {rule.title_zh for rule in load_rules()}
    codes = {rule.code for rule in load_rules()}
    labels = _county_labels(out)
    listed = 0
    for county, label in labels.items():
        households = [row for row in roster if row["county_code"] == county]
        folder = out / "visit_lists" / label
        townships = list(dict.fromkeys(row["township"] for row in households))
        assert sorted(path.stem for path in folder.glob("*.xlsx")) == sorted(townships)
        for township in townships:
            in_township = [row for row in households if row["township"] == township]
            villages = list(dict.fromkeys(row["village"] for row in in_township))
            workbook = load_workbook(folder / f"{township}.xlsx")
            assert workbook.sheetnames == legal_sheet_titles(villages)
            for village, sheet in zip(villages, workbook.worksheets, strict=True):
                expected = [row for row in in_township if row["village"] == village]
                title = str(sheet["A1"].value)
                assert township in title and village in title and "截至 2020-06-30" in title
                assert label.split(" ")[1] in title  # the county's name
                header = [cell.value for cell in sheet[2]]
                assert header[0] == "序号" and header[-1] == "户编号（系统）"
                printed = [
                    dict(zip(header, (cell.value for cell in row), strict=True)) for row in sheet.iter_rows(min_row=3)
                ]
                assert [line["序号"] for line in printed] == list(range(1, len(expected) + 1))
                assert [line["户编号（系统）"] for line in printed] == [row["household_key"] for row in expected]
                assert [line["户主证件号码（脱敏）"] for line in printed] == [
                    row["head_id_masked"] or None for row in expected
                ]
                for line, visit in zip(printed, expected, strict=True):
                    assert line["家庭成员"] == visit["member_list"]
                    members = str(line["家庭成员"]).split("\n")
                    assert len(members) == int(visit["members"])
                    heads = [index for index, member in enumerate(members) if "（户主" in member]
                    assert heads in ([], [0]) or heads[0] == 0  # the head first
                    items = [text for text in str(line["需核实事项"] or "").split("\n") if text]
                    assert len(items) == int(visit["open_findings"])
                    for number, text in enumerate(items, start=1):
                        assert text.startswith(f"{number}. ")
                        assert any(text[len(f"{number}. ") :].startswith(title) for title in titles), text
                        assert not any(code in text for code in codes), text
                    assert all(line[column] is None for column in VISIT_COLUMNS)
                listed += len(printed)
    assert listed == len(roster)


def test_visit_lists_and_county_workbooks_print_one_page_across(
    published: tuple[Path, Path, str], tmp_path: Path
) -> None:
    """Printed by LibreOffice, every page is A4 landscape, numbered, and shows its sheet's
    first and last column: no column falls on a page of its own."""
    from openpyxl import load_workbook

    from tests.printing import printed_pages

    _, out, _ = published
    folders = [path for path in (out / "visit_lists").iterdir() if path.is_dir()]
    township = max(
        (path for folder in folders for path in folder.glob("*.xlsx")),
        key=lambda path: len(load_workbook(path, read_only=True).sheetnames),
    )
    sheets = load_workbook(township)
    # Every village holds a few households: each prints on one page of its own.
    assert all(sheet.max_row - 2 <= 3 for sheet in sheets.worksheets)
    pages = printed_pages(township, tmp_path)
    assert len(pages) == len(sheets.sheetnames) > 1
    county = sorted((out / "counties").glob("*.xlsx"))[0]
    county_pages = printed_pages(county, tmp_path)
    assert len(county_pages) >= len(load_rules()) + 2  # every sheet, the empty ones with their header
    for printed, edges in (
        (pages, [("序号", "户编号（系统）")]),
        (county_pages, [("问题编号", "情况说明"), ("走访顺序", "走访人签字"), ("整改状态", "问题数")]),
    ):
        for number, page in enumerate(printed, start=1):
            assert page.width > page.height and round(page.width) == 842 and round(page.height) == 595
            assert f"第 {number} 页，共 {len(printed)} 页" in page.text
            assert any(first in page.text and last in page.text for first, last in edges), page.text[:200]
            assert "校验码" not in page.text  # the hidden check codes are not printed
    for sheet, page in zip(sheets.worksheets, pages, strict=True):
        place = str(sheet["A1"].value).split("　")[0]  # county, township and village
        assert place.replace(" ", "") in page.text.replace(" ", "")


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_failed_publish_leaves_the_published_folder_as_it_was(
    published: tuple[Path, Path, str], monkeypatch: pytest.MonkeyPatch, workers: str
) -> None:
    import lookback.publish.deliver as deliver

    landing, out, warehouse = published
    before = {path: path.read_bytes() for path in out.rglob("*") if path.is_file()}

    def broken(*_args: object, **_kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setenv(deliver.PUBLISH_WORKERS_ENV, workers)
    monkeypatch.setattr(deliver, "write_findings_roster_and_workbooks", broken)  # one process
    monkeypatch.setattr(deliver.CountyFiles, "findings_and_roster", broken)  # worker processes
    with pytest.raises(OSError, match="disk full"):
        steps.publish(landing, out, AS_OF, warehouse, batch="b1", run_id="b1")
    assert {path: path.read_bytes() for path in out.rglob("*") if path.is_file()} == before
    assert not [path for path in out.parent.iterdir() if ".publishing-" in path.name]


def test_a_withheld_release_publishes_everything_but_the_census_extract(
    published: tuple[Path, Path, str], tmp_path: Path
) -> None:
    """A rejected approval: findings, roster and county workbooks go out; the extract does not,
    and the summary and manifest say why; the body the approver read names what is at stake."""
    from lookback import pipeline
    from lookback.run import Run, open_warehouse

    landing, released, warehouse = published
    out = tmp_path / "b1-withheld"
    run = Run.create(landing=landing, batch="b1", out=out, as_of=AS_OF, warehouse=warehouse)
    with open_warehouse(warehouse) as store:
        body = pipeline.release_summary(run, store)
        outputs = pipeline.publish(run, store, withheld="rejected in the release approval")
    assert "### Rows delivered and accounted for" in body and "| registry |" in body
    persons = json.loads((released / "manifest.json").read_text(encoding="utf-8"))["census_extract"]["persons"]
    assert persons > 0 and f"### Census extract: {persons:,} persons" in body
    assert "critical expectation(s) failed" in body
    assert not (out / "census_extract").exists()
    assert (released / "census_extract").is_dir()  # the same batch, released, has it
    for name in ("lookback_findings.csv", "visit_roster.csv"):
        assert (out / name).read_bytes() == (released / name).read_bytes(), name
    assert sorted(path.name for path in (out / "counties").iterdir()) == sorted(
        path.name for path in (released / "counties").iterdir()
    )
    assert outputs.summary["census_extract"] == {"released": False, "reason": "rejected in the release approval"}
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["census_extract"] == {
        "released": False,
        "withheld": "rejected in the release approval",
        "persons": 0,
        "files": [],
        "personal_data": False,
        "personal_data_kinds": [],
    }


def test_worker_processes_write_the_same_files_as_one_process(
    published: tuple[Path, Path, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The county workbooks and census files written by worker processes while the driver
    writes the rest are byte for byte those of the single pass in one process."""
    from lookback import pipeline
    from lookback.publish.deliver import PUBLISH_WORKERS_ENV
    from lookback.run import Run, open_warehouse

    landing, _, warehouse = published
    contents = {}
    for workers in ("1", "2"):
        monkeypatch.setenv(PUBLISH_WORKERS_ENV, workers)
        out = tmp_path / f"workers-{workers}"
        run = Run.create(landing=landing, batch="b1", out=out, as_of=AS_OF, warehouse=warehouse)
        with open_warehouse(warehouse) as store:
            pipeline.publish(run, store)
        contents[workers] = {path.relative_to(out): path.read_bytes() for path in out.rglob("*") if path.is_file()}
        modes = _private(out)
        assert modes.pop("census_extract") == "0o700" and set(modes.values()) == {"0o600"}, (workers, modes)
    assert len([path for path in contents["2"] if path.parts[0] == "counties"]) > 1
    assert contents["1"] == contents["2"]


@pytest.mark.parametrize(("configured", "expected"), [("", None), ("1", 1), (" 3 ", 3)])
def test_publish_workers_default_to_one_per_cpu(configured: str, expected: int | None) -> None:
    import os

    from lookback.publish.deliver import PUBLISH_WORKERS_ENV, publish_workers

    assert publish_workers({PUBLISH_WORKERS_ENV: configured}) == (expected or os.cpu_count() or 1)


def _publish_workers_to(answers) -> None:
    from lookback.publish.deliver import PUBLISH_WORKERS_ENV, publish_workers

    answers.put(publish_workers({PUBLISH_WORKERS_ENV: "3"}))


def test_a_daemonic_process_writes_the_files_itself() -> None:
    """A task run by a Celery worker runs in a daemonic process, which may not start any."""
    import multiprocessing

    context = multiprocessing.get_context("fork")
    answers = context.Queue()
    process = context.Process(target=_publish_workers_to, args=(answers,), daemon=True)
    process.start()
    try:
        assert answers.get(timeout=60) == 1
    finally:
        process.join(timeout=60)


@pytest.mark.parametrize("configured", ["0", "-1", "two"])
def test_publish_workers_refuse_what_is_not_a_count(configured: str) -> None:
    from lookback.errors import ConfigError
    from lookback.publish.deliver import PUBLISH_WORKERS_ENV, publish_workers

    with pytest.raises(ConfigError, match=PUBLISH_WORKERS_ENV):
        publish_workers({PUBLISH_WORKERS_ENV: configured})


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_roster_not_in_county_order_is_refused(
    published: tuple[Path, Path, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, workers: str
) -> None:
    """The roster's route order must go county by county, as the findings do: a roster the
    other way round is refused, by one process as by worker processes."""
    import sqlite3

    from lookback import pipeline
    from lookback.errors import LookbackError
    from lookback.publish.deliver import PUBLISH_WORKERS_ENV
    from lookback.run import Run, open_warehouse

    landing, _, warehouse = published
    copy = tmp_path / "warehouse.sqlite"
    with sqlite3.connect(warehouse.removeprefix("sqlite:///")) as source, sqlite3.connect(copy) as target:
        source.backup(target)
    with sqlite3.connect(copy) as connection:
        connection.execute("update visit_roster set route_order = -route_order")
    monkeypatch.setenv(PUBLISH_WORKERS_ENV, workers)
    url = f"sqlite:///{copy}"
    run = Run.create(landing=landing, batch="b1", out=tmp_path / "out", as_of=AS_OF, warehouse=url)
    with open_warehouse(url) as store, pytest.raises(LookbackError, match="not together"):
        pipeline.publish(run, store)
    assert not (tmp_path / "out").exists()
