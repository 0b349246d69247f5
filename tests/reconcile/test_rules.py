"""Every look-back rule on hand-made tables, on SQLite and PostgreSQL: for each rule, the
cases it must find and the near-misses it must not (docs/rules.md).

Each test builds a small batch (rule_tables.Batch: staging rows, links, crosswalk), runs the
look-back as of 2020-06-30 and asserts the exact set of subjects the rule found. People and
households are named for what they test; ages are full years at the as-of date.
"""

from __future__ import annotations

import re
from datetime import date

from lookback.reconcile.catalogue import load_rules
from lookback.standardise.identity import normalise_identity_number
from tests.reconcile.rule_tables import AS_OF, Batch, Household, Person, number, query

TESTED_RULES = {
    "ID_INVALID",
    "ID_CONFLICT",
    "DUPLICATE_PERSON",
    "DECEASED_LISTED",
    "MED_NOT_INSURED",
    "MED_CLAIM_MISMATCH",
    "MED_NOT_SUBSIDISED",
    "HOUSING_UNSAFE",
    "HOUSING_NOT_APPRAISED",
    "HOUSING_CLAIM_MISMATCH",
    "DIBAO_OUTSIDE_REGISTRY",
    "DIBAO_CATEGORY_MISMATCH",
    "NO_SAFETY_NET",
    "EDU_OUT_OF_SCHOOL",
    "RELAPSE_RISK",
}
EMPLOYEES = "职工基本医疗保险"
DIED = date(2019, 12, 1)  # before the as-of date


def wrong_check(valid: str) -> str:
    """The number with its check character mistyped."""
    return valid[:17] + ("1" if valid[17] != "1" else "2")


def test_every_rule_of_the_catalogue_is_tested_here() -> None:
    assert {rule.code for rule in load_rules()} == TESTED_RULES


# --- data quality ------------------------------------------------------------------------


def test_id_invalid_registry_numbers_only(warehouse_url: str) -> None:
    b = Batch()
    home = b.household()
    good = number(born="19700101", sequence="901")
    bad_check = b.member(home, "校验错", identity=wrong_check(good))
    blank = b.member(home, "未填写", relation="配偶", identity="")
    excel = b.member(home, "科学计数", relation="之子", identity="4.31224E+17")
    impossible_date = b.member(home, "日期错", relation="之女", identity=number(born="19700101")[:10] + "0230001X")
    last_digits_zeroed = b.member(home, "末三位零", relation="之孙子", identity=number(born="19881212")[:15] + "000")
    valid = b.member(home, "号码对", relation="之父")
    certificate = b.member(home, "残疾证号", relation="之孙女", identity=number(born="19660606") + "42")
    old_15_digits = b.member(home, "老号码", relation="之母", identity="433001500101123")  # 4330xx: old Huaihua code
    # Invalid in the registry, valid in insurance: still the registry's number to fix.
    linked_valid = b.person("医保有号", "19800808", home=home)
    b.registry(linked_valid, home, "其他", identity=wrong_check(linked_valid.number))
    b.insurance(linked_valid)
    # Outside the registry an invalid number is not this rule's business.
    insurance_only = b.person("只在医保", identity=wrong_check(number(born="19750505", sequence="905")))
    b.insurance(insurance_only)

    found = b.run(warehouse_url)

    assert found.subjects("ID_INVALID") == {
        bad_check.person_id,
        blank.person_id,
        excel.person_id,
        impossible_date.person_id,
        last_digits_zeroed.person_id,
        linked_valid.person_id,
    }
    assert valid.person_id not in found.subjects("ID_INVALID")
    assert certificate.person_id not in found.subjects("ID_INVALID")
    assert old_15_digits.person_id not in found.subjects("ID_INVALID")
    assert found.of("ID_INVALID", blank.person_id)["evidence"] == "建档立卡: 证件号码 = （空白），未填写"
    linked = found.of("ID_INVALID", linked_valid.person_id)
    assert "其他部门登记的号码: 431224********" in linked["evidence"]
    assert linked["subject_id_masked"] == linked_valid.number[:6] + "********" + linked_valid.number[-4:]


def test_id_conflict_one_number_two_people(warehouse_url: str) -> None:
    b = Batch()
    home = b.household()
    other_home = b.household()
    # A registry person and an insurance person the linkage kept apart, one number.
    shared = number(born="19650303", sequence="311")
    in_registry = b.member(home, "登记人", identity=shared)
    elsewhere = b.person("医保人", identity=shared)
    b.insurance(elsewhere)
    # Two registry persons, two households, one number.
    twice = number(born="19900909", sequence="513")
    first = b.member(home, "甲", relation="之子", identity=twice)
    second = b.member(other_home, "乙", identity=twice)
    # Two people sharing a number, neither in the registry: not this rule's business.
    outside = number(born="19551111", sequence="715")
    insured = b.person("丙", identity=outside)
    b.insurance(insured)
    supported = b.person("丁", identity=outside)
    b.dibao(supported, supported)
    # One person carrying their own number on several rows of several sources.
    many_rows = b.member(home, "戊", relation="配偶")
    b.insurance(many_rows)
    b.insurance(many_rows, year=2019)
    b.housing(many_rows, "A")

    found = b.run(warehouse_url)

    assert found.subjects("ID_CONFLICT") == {
        in_registry.person_id,
        elsewhere.person_id,
        first.person_id,
        second.person_id,
    }
    finding = found.of("ID_CONFLICT", elsewhere.person_id)
    assert (
        finding["evidence"]
        == "证件号码 431224********" + shared[-4:] + " 登记在 2 个不同的人名下；本人: 医保 医保人（不在建档立卡）"
    )
    assert finding["source_rows"] == "insurance:1"
    assert found.of("ID_CONFLICT", in_registry.person_id)["source_rows"] == "registry:1"


def test_duplicate_person_in_the_registry(warehouse_url: str) -> None:
    b = Batch()
    home, other_home, third_home = b.household(), b.household(), b.household()
    two_households = b.member(home, "两户")
    b.registry(two_households, other_home, "之父")
    twice_in_one = b.member(third_home, "同户两次")
    b.registry(twice_in_one, third_home, "其他")
    repeated_row = b.person("整行重复", home=home)
    b.registry(repeated_row, home, "配偶", row_hash="same-cells")
    b.registry(repeated_row, home, "配偶", row_hash="same-cells")
    once = b.member(other_home, "一次", relation="户主")
    b.insurance(once)
    b.dibao(once, once)

    found = b.run(warehouse_url)

    assert found.subjects("DUPLICATE_PERSON") == {
        two_households.person_id,
        twice_in_one.person_id,
        repeated_row.person_id,
    }
    assert found.of("DUPLICATE_PERSON", two_households.person_id)["evidence"].startswith(
        "建档立卡: 同一人登记 2 次，分属 2 户（户编号 "
    )
    assert found.of("DUPLICATE_PERSON", repeated_row.person_id)["evidence"].endswith("，有完全重复的行")
    assert not found.of("DUPLICATE_PERSON", twice_in_one.person_id)["evidence"].endswith("，有完全重复的行")
    assert found.of("DUPLICATE_PERSON", twice_in_one.person_id)["source_rows"] == "registry:3;registry:4"


def test_duplicate_person_evidence_names_the_households(warehouse_url: str) -> None:
    b = Batch()
    home, other_home = b.household(), b.household()
    person = b.member(home, "两户")
    b.registry(person, other_home, "之父")

    found = b.run(warehouse_url)

    assert found.of("DUPLICATE_PERSON", person.person_id)["evidence"] == (
        f"建档立卡: 同一人登记 2 次，分属 2 户（户编号 {home.number} 与 户编号 {other_home.number}）"
    )


def test_deceased_listed(warehouse_url: str) -> None:
    b = Batch()
    home = b.household()
    still_registered = b.member(home, "已故在册")
    b.hukou(still_registered, on=DIED)
    paid_after_death = b.person("已故享低保")  # not in the registry: an active roster member
    b.dibao(paid_after_death, paid_after_death)
    b.hukou(paid_after_death, on=DIED)
    died_after_as_of = b.member(home, "后来去世", relation="配偶")
    b.hukou(died_after_as_of, on=date(2020, 7, 15))
    died_on_as_of = b.member(home, "当天去世", relation="之父")
    b.hukou(died_on_as_of, on=AS_OF)
    moved_out = b.member(home, "迁出", relation="之子")
    b.hukou(moved_out, "迁出", on=DIED)
    suspended_head = b.person("停发户主")
    b.dibao(suspended_head, suspended_head, status="停发")
    b.hukou(suspended_head, on=DIED)
    cancelled = b.person("注销户主")
    b.dibao(cancelled, cancelled, status="注销")
    b.hukou(cancelled, on=DIED)
    dead_not_listed = b.person("只在公安")
    b.hukou(dead_not_listed, on=DIED)

    found = b.run(warehouse_url)

    assert found.subjects("DECEASED_LISTED") == {still_registered.person_id, paid_after_death.person_id}
    assert found.of("DECEASED_LISTED", still_registered.person_id)["evidence"] == (
        "公安: 2019-12-01 因死亡注销户籍；建档立卡: 仍在册"
    )
    dibao = found.of("DECEASED_LISTED", paid_after_death.person_id)
    assert dibao["evidence"] == "公安: 2019-12-01 因死亡注销户籍；民政: 仍在正常享受的低保/特困户中"
    assert dibao["source_rows"] == "dibao:1;hukou:2"


# --- basic medical care --------------------------------------------------------------------


def test_med_not_insured(warehouse_url: str) -> None:
    b = Batch()
    home, second_home = b.household(), b.household()
    no_record = b.member(home, "无记录")
    residents = b.member(home, "居民医保", relation="配偶")
    b.insurance(residents)
    employee = b.member(home, "职工医保", relation="之子")
    b.insurance(employee, scheme=EMPLOYEES, subsidy=None)
    only_2019 = b.member(home, "去年参保", relation="之女")
    b.insurance(only_2019, 2019)
    suspended = b.member(home, "暂停参保", relation="之父")
    b.insurance(suspended, status="暂停参保")
    b.insurance(suspended, 2019)
    terminated = b.member(home, "终止参保", relation="之母")
    b.insurance(terminated, status="终止参保")
    dead = b.member(home, "已故", relation="其他")
    b.hukou(dead, on=DIED)
    died_after_as_of = b.member(second_home, "后来去世")
    b.hukou(died_after_as_of, on=date(2020, 8, 1))
    # A 2020 paid enrolment the linkage could not attach: it waits for people to decide.
    pending = b.person("待核实", home=second_home)
    pending_row = b.registry(pending, second_home, "配偶")
    candidate = b.person("待核实")
    b.review(pending_row, b.insurance(candidate))
    # ... also when the pair put to people is the candidate's 2019 row: the candidate person
    # holds a 2020 paid enrolment too.
    pending_by_2019_row = b.person("待核去年行", home=second_home)
    candidate_insured = b.person("待核去年行")
    b.insurance(candidate_insured)
    b.review(b.registry(pending_by_2019_row, second_home, "之孙子"), b.insurance(candidate_insured, 2019))
    # Near-misses of the review: a candidate of 2019, or one not paid.
    old_candidate = b.person("候选去年", home=second_home)
    b.review(b.registry(old_candidate, second_home, "之子"), b.insurance(b.person("候选去年"), 2019))
    unpaid_candidate = b.person("候选暂停", home=second_home)
    b.review(
        b.registry(unpaid_candidate, second_home, "之女"),
        b.insurance(b.person("候选暂停"), status="暂停参保"),
    )
    not_in_registry = b.person("不在册")
    b.insurance(not_in_registry, 2019)
    # A blank number that tied the person to no other row: not known to be insured, so
    # reported, the evidence naming the doubt (ID_INVALID says why); one linked on a blank
    # number is looked up like anyone.
    unlinked = b.member(second_home, "无号无链", relation="之父", identity="")
    b.unmatched(unlinked)
    linked_blank = b.member(second_home, "无号有链", relation="之母", identity="")
    b.insurance(linked_blank, 2019)

    found = b.run(warehouse_url)
    assert unlinked.person_id in found.subjects("ID_INVALID")

    assert found.subjects("MED_NOT_INSURED") == {
        no_record.person_id,
        only_2019.person_id,
        suspended.person_id,
        terminated.person_id,
        died_after_as_of.person_id,
        old_candidate.person_id,
        unpaid_candidate.person_id,
        linked_blank.person_id,
        unlinked.person_id,
    }
    assert found.of("MED_NOT_INSURED", unlinked.person_id)["evidence"] == (
        "建档立卡: 在册（是否参加城乡居民基本医疗保险 = 是）；"
        "医保: 2020年无参保缴费记录（建档立卡证件号码无效，无法按号码核对）"
    )
    # Each source that made the finding speaks: the registry lists the person (and what it
    # claims), insurance has no paid enrolment of the year.
    assert found.of("MED_NOT_INSURED", no_record.person_id)["evidence"] == (
        "建档立卡: 在册（是否参加城乡居民基本医疗保险 = 是）；医保: 2020年无参保缴费记录（医保无此人任何记录）"
    )
    assert found.of("MED_NOT_INSURED", only_2019.person_id)["evidence"] == (
        "建档立卡: 在册（是否参加城乡居民基本医疗保险 = 是）；医保: 2020年无参保缴费记录（最近参保年度 2019）"
    )
    assert found.of("MED_NOT_INSURED", suspended.person_id)["evidence"] == (
        "建档立卡: 在册（是否参加城乡居民基本医疗保险 = 是）；医保: 2020年无参保缴费记录（参保状态 = 暂停参保）"
    )


def test_med_claim_mismatch(warehouse_url: str) -> None:
    b = Batch()
    home = b.household()
    says_yes_uninsured = b.member(home, "说是未保", claims_insured="是")
    b.insurance(says_yes_uninsured, 2019)
    says_no_insured = b.member(home, "说否已保", relation="配偶", claims_insured="否")
    b.insurance(says_no_insured)
    says_yes_insured = b.member(home, "说是已保", relation="之子", claims_insured="是")
    b.insurance(says_yes_insured)
    b.member(home, "说否未保", relation="之女", claims_insured="否")  # says 否 and has no record: agrees
    says_yes_employee = b.member(home, "说是职工", relation="之父", claims_insured="是")
    b.insurance(says_yes_employee, scheme=EMPLOYEES, subsidy=None)
    says_yes_pending = b.person("说是待核", home=home)
    b.review(b.registry(says_yes_pending, home, "之母", claims_insured="是"), b.insurance(b.person("说是待核")))
    says_yes_dead = b.member(home, "说是已故", relation="其他", claims_insured="是")
    b.hukou(says_yes_dead, on=DIED)
    says_no_insured_2019 = b.member(home, "说否去年", relation="其他", claims_insured="否")
    b.insurance(says_no_insured_2019, 2019)
    # A person whose blank number tied them to no other row is not known to be insured.
    says_yes_unlinked = b.member(home, "说是无号", relation="其他", claims_insured="是", identity="")
    b.unmatched(says_yes_unlinked)
    # Listed twice, insured: the row that says 否 disagrees, whatever the other row says.
    twice_insured = b.member(home, "两行已保", relation="其他", claims_insured="是")
    b.registry(twice_insured, home, "其他", claims_insured="否")
    b.insurance(twice_insured)

    found = b.run(warehouse_url)

    assert found.subjects("MED_CLAIM_MISMATCH") == {
        says_yes_uninsured.person_id,
        says_no_insured.person_id,
        says_yes_unlinked.person_id,
        twice_insured.person_id,
    }
    assert found.of("MED_CLAIM_MISMATCH", says_yes_unlinked.person_id)["evidence"] == (
        "建档立卡: 是否参加城乡居民基本医疗保险 = 是；"
        "医保: 2020年无参保缴费记录（建档立卡证件号码无效，无法按号码核对）"
    )
    assert found.of("MED_CLAIM_MISMATCH", twice_insured.person_id)["evidence"] == (
        "建档立卡: 是否参加城乡居民基本医疗保险 = 否（另一登记行 = 是）；医保: 2020年已参保缴费（城乡居民基本医疗保险）"
    )
    assert found.of("MED_CLAIM_MISMATCH", says_no_insured.person_id)["evidence"] == (
        "建档立卡: 是否参加城乡居民基本医疗保险 = 否；医保: 2020年已参保缴费（城乡居民基本医疗保险）"
    )


def test_med_evidence_quotes_the_claim_that_disagrees(warehouse_url: str) -> None:
    """A person listed twice whose registry rows claim 是 and 否, not insured: the 是 made
    the MED_CLAIM_MISMATCH, so it is quoted first and the other row's 否 beside it."""
    b = Batch()
    home, other_home = b.household(), b.household()
    person = b.member(home, "两行不一", claims_insured="是")
    b.registry(person, other_home, "之父", claims_insured="否")
    b.insurance(person, 2019)

    found = b.run(warehouse_url)

    assert found.of("MED_CLAIM_MISMATCH", person.person_id)["evidence"] == (
        "建档立卡: 是否参加城乡居民基本医疗保险 = 是（另一登记行 = 否）；医保: 2020年无参保缴费记录"
    )
    assert found.of("MED_NOT_INSURED", person.person_id)["evidence"] == (
        "建档立卡: 在册（是否参加城乡居民基本医疗保险 = 是、否）；医保: 2020年无参保缴费记录（最近参保年度 2019）"
    )


def test_med_not_subsidised(warehouse_url: str) -> None:
    b = Batch()
    home = b.household()
    unsubsidised = b.member(home, "无资助")
    b.insurance(unsubsidised, subsidy=None)
    subsidised = b.member(home, "有资助", relation="配偶")
    b.insurance(subsidised, subsidy="低保对象")
    employee = b.member(home, "职工", relation="之子")
    b.insurance(employee, scheme=EMPLOYEES, subsidy=None)
    unsubsidised_last_year = b.member(home, "去年无资助", relation="之女")
    b.insurance(unsubsidised_last_year, 2019, subsidy=None)
    b.insurance(unsubsidised_last_year, subsidy="建档立卡贫困人口")
    unsubsidised_suspended = b.member(home, "暂停无资助", relation="之父")
    b.insurance(unsubsidised_suspended, status="暂停参保", subsidy=None)
    both_rows = b.member(home, "两行一有资助", relation="之母")
    b.insurance(both_rows, subsidy=None)
    b.insurance(both_rows, subsidy="特困人员")
    dead = b.member(home, "已故无资助", relation="其他")
    b.insurance(dead, subsidy=None)
    b.hukou(dead, on=DIED)
    outside = b.person("不在册无资助")
    b.insurance(outside, subsidy=None)

    found = b.run(warehouse_url)

    assert found.subjects("MED_NOT_SUBSIDISED") == {unsubsidised.person_id}
    finding = found.of("MED_NOT_SUBSIDISED", unsubsidised.person_id)
    assert finding["source_rows"] == "registry:1;insurance:1"
    assert finding["evidence"] == (
        "建档立卡: 在册贫困人口；"
        "医保: 2020年城乡居民基本医疗保险已参保缴费，资助参保类别为空（应为 建档立卡贫困人口 等）"
    )


# --- housing safety ---------------------------------------------------------------------------


def _housing_batch() -> tuple[Batch, dict[str, str]]:
    """Households named for their case; the value is the household key."""
    b = Batch()
    keys: dict[str, str] = {}

    def household(case: str, claims: str) -> Household:
        home = b.household(claims_unsafe_house=claims)
        keys[case] = home.key
        return home

    home = household("c_not_renovated_claims_no", "否")
    b.housing(b.member(home, "C未改造"), "C")
    home = household("c_in_progress_claims_yes", "是")
    b.housing(b.member(home, "C改造中"), "C", renovation="改造中")
    home = household("d_completed_claims_no", "否")
    b.housing(b.member(home, "D已竣工"), "D", renovation="已竣工")
    home = household("d_accepted_claims_yes", "是")
    b.housing(b.member(home, "D已验收"), "D", renovation="已验收")
    home = household("d_then_b_claims_no", "否")
    head = b.member(home, "先D后B")
    b.housing(head, "B", date(2019, 9, 1), renovation=None)  # the later appraisal, delivered first
    b.housing(head, "D", date(2018, 3, 1))
    home = household("b_then_d_claims_no", "否")
    head = b.member(home, "先B后D")
    b.housing(head, "D", date(2019, 9, 1))
    b.housing(head, "B", date(2018, 3, 1), renovation=None)
    home = household("fathers_house_claims_yes", "是")
    b.member(home, "儿子户主")
    b.housing(b.member(home, "父亲房主", "19450101", "之父"), "C")
    home = household("a_claims_yes", "是")
    b.housing(b.member(home, "A说危房"), "A", renovation=None)
    home = household("no_record_claims_yes", "是")
    b.member(home, "无鉴定")
    b.member(home, "无鉴定配偶", relation="配偶")
    home = household("all_dead_unsafe_claims_no", "否")
    dead = b.member(home, "已故房主")
    b.hukou(dead, on=DIED)
    b.housing(dead, "D")
    home = household("all_dead_no_record", "是")
    b.hukou(b.member(home, "已故无鉴定"), on=DIED)
    b.hukou(b.member(home, "已故无鉴定配偶", relation="配偶"), on=DIED)
    # A house whose head is in no registry household belongs to no registry household.
    b.housing(b.person("非建档户"), "D")
    return b, keys


def test_housing_unsafe_not_appraised_and_claim_mismatch(warehouse_url: str) -> None:
    b, keys = _housing_batch()
    household_numbers = {row["key"]: row["anchor"].removeprefix("registry:") for row in b.crosswalk}
    found = b.run(warehouse_url)

    assert found.subjects("HOUSING_UNSAFE") == {
        keys["c_not_renovated_claims_no"],
        keys["c_in_progress_claims_yes"],
        keys["b_then_d_claims_no"],
        keys["fathers_house_claims_yes"],
    }
    assert found.subjects("HOUSING_NOT_APPRAISED") == {keys["no_record_claims_yes"]}
    assert found.subjects("HOUSING_CLAIM_MISMATCH") == {
        keys["c_not_renovated_claims_no"],
        keys["d_accepted_claims_yes"],
        keys["b_then_d_claims_no"],
        keys["a_claims_yes"],
    }
    b_then_d = household_numbers[keys["b_then_d_claims_no"]]
    assert found.of("HOUSING_UNSAFE", keys["b_then_d_claims_no"])["evidence"] == (
        f"建档立卡: 户编号 {b_then_d}，1 名成员；住建: 最近一次房屋鉴定等级 = D（2019-09-01 鉴定），改造状态 = 未改造"
    )
    fathers = found.of("HOUSING_UNSAFE", keys["fathers_house_claims_yes"])
    assert fathers["subject_name"] == "儿子户主"  # the registry's head, whoever housing names
    assert fathers["source_rows"] == "registry:7;registry:8;housing:9"
    no_record = household_numbers[keys["no_record_claims_yes"]]
    assert found.of("HOUSING_NOT_APPRAISED", keys["no_record_claims_yes"])["evidence"] == (
        f"建档立卡: 户编号 {no_record}，2 名成员；住建: 无该户任何成员的房屋鉴定记录"
    )
    assert found.of("HOUSING_CLAIM_MISMATCH", keys["a_claims_yes"])["evidence"] == (
        "建档立卡: 是否危房户 = 是；住建: 最近一次鉴定等级 = A，改造状态 = （空白），住房安全"
    )


def test_an_unknown_appraisal_level_is_neither_safe_nor_unsafe(warehouse_url: str) -> None:
    """The latest appraisal's 房屋鉴定等级 is blank or not one of A–D: whether the house is
    safe is not known, so neither HOUSING_UNSAFE nor HOUSING_CLAIM_MISMATCH either way; the
    household has a housing record, so it is not HOUSING_NOT_APPRAISED either."""
    b = Batch()
    keys: dict[str, str] = {}

    def household(case: str, claims: str, *appraisals: tuple[str | None, date]) -> None:
        home = b.household(claims_unsafe_house=claims)
        keys[case] = home.key
        head = b.member(home, f"{case}户主")
        for level, appraised in appraisals:
            b.housing(head, level, appraised)

    latest = date(2019, 9, 1)
    household("blank_claims_yes", "是", (None, latest))
    household("blank_claims_no", "否", (None, latest))
    household("unmapped_claims_yes", "是", ("危", latest))
    household("unmapped_claims_no", "否", ("E", latest))
    # An earlier D does not stand in for the latest appraisal's unknown level.
    household("earlier_d_latest_blank_claims_no", "否", ("D", date(2018, 3, 1)), (None, latest))
    # An unknown earlier level does not hide a known latest one.
    household("earlier_blank_latest_d_claims_no", "否", (None, date(2018, 3, 1)), ("D", latest))

    found = b.run(warehouse_url)

    known = keys["earlier_blank_latest_d_claims_no"]
    assert found.subjects("HOUSING_UNSAFE") == {known}
    assert found.subjects("HOUSING_CLAIM_MISMATCH") == {known}
    assert found.subjects("HOUSING_NOT_APPRAISED") == set()
    # The census extract says the level is unknown (not blank: the house has a record).
    extract = {
        row["household_key"]: row["appraisal_level"]
        for row in query(warehouse_url, "select household_key, appraisal_level from census_extract")
    }
    assert {case: extract[key] for case, key in keys.items()} == {
        "blank_claims_yes": "未知",
        "blank_claims_no": "未知",
        "unmapped_claims_yes": "未知",
        "unmapped_claims_no": "未知",
        "earlier_d_latest_blank_claims_no": "未知",
        "earlier_blank_latest_d_claims_no": "D",
    }


# --- civil affairs -----------------------------------------------------------------------------


def test_dibao_outside_registry(warehouse_url: str) -> None:
    b = Batch()

    def allowance(category: str, *statuses: str) -> str:
        """An allowance household outside the registry, one member per status; its key."""
        key = b.outside_household()
        head = b.person(f"{category}{statuses[0]}户主", home=key)
        b.dibao(head, head, category, statuses[0])
        for index, status in enumerate(statuses[1:]):
            b.dibao(b.person(f"成员{index}", home=key), head, category, status, relation="配偶")
        return key

    dibao = allowance("农村低保", "正常", "正常")
    dispersed = allowance("农村特困（分散供养）", "正常")
    one_row_active = allowance("农村低保", "停发", "正常")
    allowance("农村特困（集中供养）", "正常")
    allowance("农村低保", "停发", "停发")
    allowance("农村低保", "注销")
    # One member in the registry: the household is known to the registry.
    home = b.household()
    registered = b.member(home, "在册户主")
    b.dibao(registered, registered)
    b.dibao(b.person("不在册成员"), registered, relation="之子")

    found = b.run(warehouse_url)

    assert found.subjects("DIBAO_OUTSIDE_REGISTRY") == {dibao, dispersed, one_row_active}
    assert found.of("DIBAO_OUTSIDE_REGISTRY", dibao)["evidence"] == (
        "民政: 农村低保，状态 = 正常，2 名成员；建档立卡: 无任何成员在册"
    )
    assert found.of("DIBAO_OUTSIDE_REGISTRY", dibao)["source_rows"] == "dibao:1;dibao:2"


def test_an_allowance_household_stays_whole_when_its_head_number_is_damaged_on_a_row(warehouse_url: str) -> None:
    b = Batch()
    # Without its head's number the linkage cannot join a row's household to the others: the
    # rows arrive with two household keys.
    stray = b.outside_household()
    key = b.outside_household()
    head = b.person("邓玉兰", home=key)
    b.dibao(head, head, head_identity="4.31224E+17")  # the head's own row: the member number says who
    b.dibao(b.person("邓小兵", home=stray), head, relation="之子", head_identity=head.number[:15] + "000")
    b.dibao(b.person("邓小梅", home=key), head, relation="之女")
    # A fourth row gives someone else's valid number as its head's.
    elsewhere = b.outside_household()
    b.dibao(b.person("邓小红", home=elsewhere), head, relation="之女", head_identity=number(born="19900101"))

    found = b.run(warehouse_url)

    assert found.subjects("DIBAO_OUTSIDE_REGISTRY") == {stray}
    assert found.of("DIBAO_OUTSIDE_REGISTRY", stray)["source_rows"] == "dibao:1;dibao:2;dibao:3;dibao:4"
    assert found.of("DIBAO_OUTSIDE_REGISTRY", stray)["evidence"].startswith("民政: 农村低保，状态 = 正常，4 名成员")


def test_allowance_households_of_namesake_heads_in_one_village_stay_apart(warehouse_url: str) -> None:
    b = Batch()
    first = b.person("邓玉兰", born="19700101")
    second = b.person("邓玉兰", born="19800505")
    for head in (first, second):  # each head's own row (本人) bears out its number
        b.dibao(head, head)
        b.dibao(b.person(f"{head.person_id}之子", home=head.household_key), head, relation="之子")

    found = b.run(warehouse_url)

    assert found.subjects("DIBAO_OUTSIDE_REGISTRY") == {first.household_key, second.household_key}
    assert found.of("DIBAO_OUTSIDE_REGISTRY", first.household_key)["source_rows"] == "dibao:1;dibao:2"


def test_dibao_category_mismatch(warehouse_url: str) -> None:
    b = Batch()
    keys: dict[str, str] = {}

    def household(case: str, category: str, *support: tuple[str, str], dead: tuple[str, ...] = ()) -> None:
        """A registry household (head and spouse, those named in ``dead`` dead); the spouse
        holds each (category, status) support."""
        home = b.household(category)
        keys[case] = home.key
        head = b.member(home, f"{case}户主")
        spouse = b.member(home, f"{case}配偶", relation="配偶")
        for kind, status in support:
            b.dibao(spouse, head, kind, status, relation="配偶")
        for who, person in (("head", head), ("spouse", spouse)):
            if who in dead:
                b.hukou(person, on=DIED)

    household("dibao_without_support", "低保贫困户")
    household("dibao_with_dibao", "低保贫困户", ("农村低保", "正常"))
    household("dibao_with_suspended_dibao", "低保贫困户", ("农村低保", "停发"))
    household("dibao_exited_without_support", "低保脱贫户")
    household("dibao_exited_with_dibao", "低保脱贫户", ("农村低保", "正常"))
    household("ordinary_with_dibao", "一般贫困户", ("农村低保", "正常"))
    household("ordinary_exited_with_tekun", "一般脱贫户", ("农村特困（分散供养）", "正常"))
    household("ordinary_without_support", "一般贫困户")
    household("ordinary_with_cancelled_dibao", "一般贫困户", ("农村低保", "注销"))
    household("tekun_with_centralised", "特困供养贫困户", ("农村特困（集中供养）", "正常"))
    household("tekun_with_dibao_only", "特困供养贫困户", ("农村低保", "正常"))
    household("dibao_tekun_with_both", "低保特困供养贫困户", ("农村低保", "正常"), ("农村特困（分散供养）", "正常"))
    household("dibao_tekun_with_dibao_only", "低保特困供养贫困户", ("农村低保", "正常"))
    # The rule considers everyone listed, the dead too (their death is DECEASED_LISTED's
    # finding): a household of dead members is still checked, and a dead member's active
    # support is still support.
    household("all_dead_dibao_without_support", "低保贫困户", dead=("head", "spouse"))
    household("all_dead_ordinary_with_dibao", "一般贫困户", ("农村低保", "正常"), dead=("head", "spouse"))
    household("dibao_with_dead_spouses_dibao", "低保贫困户", ("农村低保", "正常"), dead=("spouse",))

    found = b.run(warehouse_url)

    assert found.subjects("DIBAO_CATEGORY_MISMATCH") == {
        keys["all_dead_dibao_without_support"],
        keys["all_dead_ordinary_with_dibao"],
        keys["dibao_without_support"],
        keys["dibao_with_suspended_dibao"],
        keys["dibao_exited_without_support"],
        keys["ordinary_with_dibao"],
        keys["ordinary_exited_with_tekun"],
        keys["tekun_with_dibao_only"],
        keys["dibao_tekun_with_dibao_only"],
    }
    assert found.of("DIBAO_CATEGORY_MISMATCH", keys["ordinary_with_dibao"])["evidence"] == (
        "建档立卡: 贫困户属性 = 一般贫困户；民政: 成员正常享受 农村低保"
    )
    assert found.of("DIBAO_CATEGORY_MISMATCH", keys["dibao_with_suspended_dibao"])["evidence"] == (
        "建档立卡: 贫困户属性 = 低保贫困户；民政: 无成员正常享受低保或特困供养"
    )


# --- comprehensive security -------------------------------------------------------------------


def test_no_safety_net(warehouse_url: str) -> None:
    b = Batch()
    keys: dict[str, str] = {}

    def household(case: str, *members: tuple[str, str | None], status: str = "未脱贫") -> list[Person]:
        """A registry household of members (birth date, 劳动技能); the persons."""
        home = b.household(status=status)
        keys[case] = home.key
        return [
            b.member(home, f"{case}{index}", born, "户主" if index == 0 else "其他", labour_capacity=labour)
            for index, (born, labour) in enumerate(members)
        ]

    old = ("19500101", "丧失劳动力")  # 70
    child = ("20100101", None)  # 10
    household("old_and_child", old, child)
    household("returned_old_and_child", old, child, status="返贫")
    household("exited_old_and_child", old, child, status="已脱贫（享受政策）")
    household("with_ordinary_worker_40", old, ("19800101", "普通劳动力"))
    household("with_skilled_worker_40", old, ("19800101", "技能劳动力"))
    household("with_weak_worker_40", old, ("19800101", "弱劳动力或半劳动力"))
    household("lost_capacity_40", ("19800101", "丧失劳动力"))
    household("no_capacity_40", ("19800101", "无劳动力"))
    household("worker_turned_65_on_as_of", ("19550630", "普通劳动力"))
    household("worker_64_turns_65_tomorrow", ("19550701", "普通劳动力"))
    household("worker_turned_16_on_as_of", ("20040630", "普通劳动力"))
    household("worker_15_turns_16_tomorrow", ("20040701", "普通劳动力"))
    _, worker = household("dead_worker_40", old, ("19800101", "普通劳动力"))
    b.hukou(worker, on=DIED)
    head, _ = household("with_active_dibao", old, child)
    b.dibao(head, head)
    head, _ = household("with_suspended_dibao", old, child)
    b.dibao(head, head, status="停发")
    _, kid = household("with_centralised_tekun", old, child)
    b.dibao(kid, kid, "农村特困（集中供养）")
    # A living-only rule: support still paid to a dead member is not a living one's safety net.
    _, _, dead_holder = household("only_the_dead_hold_support", old, child, old)
    b.dibao(dead_holder, dead_holder)
    b.hukou(dead_holder, on=DIED)

    found = b.run(warehouse_url)

    assert found.subjects("NO_SAFETY_NET") == {
        keys["old_and_child"],
        keys["returned_old_and_child"],
        keys["lost_capacity_40"],
        keys["no_capacity_40"],
        keys["worker_turned_65_on_as_of"],
        keys["worker_15_turns_16_tomorrow"],
        keys["dead_worker_40"],
        keys["with_suspended_dibao"],
        keys["only_the_dead_hold_support"],
    }
    assert found.of("NO_SAFETY_NET", keys["dead_worker_40"])["evidence"] == (
        "建档立卡: 脱贫标志 = 未脱贫，1 名在世成员中无16–64岁有劳动能力者；民政: 无在世成员正常享受低保或特困供养"
    )


# --- compulsory education ---------------------------------------------------------------------


def test_edu_out_of_school(warehouse_url: str) -> None:
    b = Batch()
    home = b.household()
    b.member(home, "家长", "19800101")

    def child(name: str, born: str, schooling: str | None = None, **given: str) -> str:
        return b.member(home, name, born, "之子", schooling=schooling, **given).person_id

    ten_blank = child("十岁空白", "20100515")
    found_expected = {
        ten_blank,
        child("十四岁辍学", "20060301", "辍学"),
        child("明天满十六", "20040701"),  # 15 on the as-of date
        child("今天满六岁", "20140630"),  # 6 on the as-of date
    }
    child("十六岁空白", "20040101")
    child("今天满十六", "20040630")
    child("五岁空白", "20150101")
    child("明天满六岁", "20140701")
    child("十岁小学", "20100515", "小学")
    child("七岁学前", "20130101", "学前教育")
    child("十二岁初中", "20080101", "初中")
    # The registry's number is broken; the insurance number gives the age (10).
    linked = b.person("号码在医保", "20100301", home=home)
    b.registry(linked, home, "之女", identity=wrong_check(linked.number))
    b.insurance(linked)
    found_expected.add(linked.person_id)
    # No valid number anywhere: no age, no finding.
    child("无号码", "20100301", identity="")
    dead = b.member(home, "已故十岁", "20100101", "之子")
    b.hukou(dead, on=DIED)

    found = b.run(warehouse_url)

    assert found.subjects("EDU_OUT_OF_SCHOOL") == found_expected
    assert found.of("EDU_OUT_OF_SCHOOL", ten_blank)["evidence"] == (
        "建档立卡: 在校生状况 = （空白，非在校生）；10 周岁（2010-05-15 出生），义务教育阶段"
    )


# --- preventing return to poverty -----------------------------------------------------------


def _relapse_household(
    b: Batch, name: str, status: str, health: str, *, insured: bool, house: str, ill_member_dead: bool = False
) -> str:
    """A household: a head with ``health`` and a healthy spouse (insured or not); its house ``house``."""
    home = b.household(status=status)
    head = b.member(home, f"{name}户主", health=health)
    spouse = b.member(home, f"{name}配偶", relation="配偶", health="健康")
    b.insurance(head)
    if insured:
        b.insurance(spouse)
    if ill_member_dead:
        b.hukou(head, on=DIED)
    b.housing(spouse, house, renovation=None if house in ("A", "B") else "未改造")
    return home.key


def test_relapse_risk(warehouse_url: str) -> None:
    b = Batch()
    exited = "已脱贫（享受政策）"
    disabled_uninsured = _relapse_household(b, "残疾未保", exited, "残疾,长期慢性病", insured=False, house="A")
    ill_unsafe = _relapse_household(b, "大病危房", "已脱贫（不再享受政策）", "患有大病", insured=True, house="C")
    _relapse_household(b, "大病无问题", exited, "患有大病", insured=True, house="A")
    _relapse_household(b, "未脱贫残疾未保", "未脱贫", "残疾", insured=False, house="C")
    _relapse_household(b, "返贫残疾未保", "返贫", "残疾", insured=False, house="A")
    _relapse_household(b, "慢性病未保", exited, "长期慢性病", insured=False, house="D")
    # The disabled head is insured; the uninsured spouse is dead: no open MED_NOT_INSURED.
    home = b.household(status=exited)
    b.insurance(b.member(home, "残疾已保", health="残疾"))
    b.hukou(b.member(home, "已故未保", relation="配偶"), on=DIED)
    b.housing(b.person("非成员", home=home), "A", renovation=None)

    found = b.run(warehouse_url)

    assert found.subjects("RELAPSE_RISK") == {disabled_uninsured, ill_unsafe}
    assert found.of("RELAPSE_RISK", disabled_uninsured)["evidence"] == (
        "建档立卡: 脱贫标志 = 已脱贫（享受政策），有成员患有大病或残疾；医保: 1 名成员未参保"
    )
    assert found.of("RELAPSE_RISK", ill_unsafe)["evidence"] == (
        "建档立卡: 脱贫标志 = 已脱贫（不再享受政策），有成员患有大病或残疾；住建: 住房不安全"
    )


def test_relapse_risk_counts_living_members_only(warehouse_url: str) -> None:
    """The only disabled member is dead: the household has no living member 残疾 or 患有大病
    (the situation rules consider living people only)."""
    b = Batch()
    home = _relapse_household(
        b, "已故残疾", "已脱贫（享受政策）", "残疾", insured=False, house="C", ill_member_dead=True
    )
    found = b.run(warehouse_url)
    assert home in found.subjects("HOUSING_UNSAFE")
    assert found.subjects("RELAPSE_RISK") == set()


# --- what a finding says -------------------------------------------------------------------------


def test_evidence_is_words_and_values_citing_the_rows(warehouse_url: str) -> None:
    b = Batch()
    home = b.household()
    claims_yes = b.member(home, "张大山", claims_insured="是")
    b.insurance(b.person("路人甲"))
    b.insurance(b.person("路人乙"))
    b.insurance(claims_yes, 2019)

    found = b.run(warehouse_url)

    finding = found.of("MED_CLAIM_MISMATCH", claims_yes.person_id)
    assert "是否参加城乡居民基本医疗保险 = 是" in finding["evidence"]
    assert "无参保缴费记录" in finding["evidence"]
    assert finding["evidence"] == "建档立卡: 是否参加城乡居民基本医疗保险 = 是；医保: 2020年无参保缴费记录"
    assert finding["source_rows"] == "registry:1;insurance:3"
    assert finding["subject_name"] == "张大山"
    assert finding["finding_id"] == f"MED_CLAIM_MISMATCH:{claims_yes.person_id}"
    assert finding["responsible"] == "扶贫办、医保局"


_EIGHTEEN = re.compile(r"\d{17}[\dX]")
_MASKED = re.compile(r"\d{6}\*{8}\d{3}[\dX]")


def _masking_batch() -> Batch:
    """Findings whose evidence could carry numbers: conflicts, invalid numbers, deaths, duplicates."""
    b = Batch()
    home = b.household()
    shared = number(born="19650303", sequence="311")
    b.member(home, "共号一", identity=shared)
    b.insurance(b.person("共号二", identity=shared))
    good = number(born="19700101", sequence="901")
    invalid = b.member(home, "校验错", relation="配偶", identity=wrong_check(good))
    b.insurance(invalid, identity=number(born="19700101", sequence="903"))
    dead = b.member(home, "已故", relation="之父")
    b.hukou(dead, on=DIED)
    twice = b.member(home, "两次", relation="之子")
    b.registry(twice, home, "之子")
    key = b.outside_household()
    outside = b.person("档外", home=key)
    b.dibao(outside, outside)
    return b


def test_no_full_identity_number_in_any_finding(warehouse_url: str) -> None:
    b = _masking_batch()
    found = b.run(warehouse_url)

    assert {row["rule_code"] for row in found.rows} >= {
        "ID_CONFLICT",
        "ID_INVALID",
        "DECEASED_LISTED",
        "DUPLICATE_PERSON",
        "DIBAO_OUTSIDE_REGISTRY",
    }
    for row in found.rows:
        for column in ("evidence", "subject_id_masked", "subject_name", "source_rows"):
            value = str(row[column] or "")
            assert not any(identity in value for identity in b.numbers), (row["finding_id"], column, value)
            # Nor anything else that is a valid number (a 户编号 is 18 digits too, but no number).
            for run in _EIGHTEEN.findall(value):
                assert normalise_identity_number(run).number is None, (row["finding_id"], column, value)
        assert row["subject_id_masked"] == "" or _MASKED.fullmatch(row["subject_id_masked"]), row
    shown = "证件号码 431224********" + number(born="19650303", sequence="311")[-4:] + " 登记在 2 个不同的人名下"
    conflicts = [str(row["evidence"]) for row in found.rows if row["rule_code"] == "ID_CONFLICT"]
    assert len(conflicts) == 2 and all(evidence.startswith(shown) for evidence in conflicts), conflicts


# --- the census extract ---------------------------------------------------------------------------


def test_the_census_extract_lists_every_registry_person(warehouse_url: str) -> None:
    """One row per registry person, also for one whose row has no 户编号 (no registry
    household to join): the statistics bureau counts people, not households."""
    b = Batch()
    home = b.household()
    head = b.member(home, "有户编号")
    no_number = b.person("无户编号", home=home)
    b.registry(no_number, home, "配偶", household_number=None)

    b.run(warehouse_url)

    extract = {row["person_id"]: row for row in query(warehouse_url, "select * from census_extract")}
    assert set(extract) == {head.person_id, no_number.person_id}
    assert extract[no_number.person_id]["household_key"] == home.key
    assert extract[no_number.person_id]["household_number"] is None


def test_household_findings_name_the_members_their_village_could_not_place(warehouse_url: str) -> None:
    b = Batch()
    home = b.household()
    b.member(home, "无房户主")  # no housing record: HOUSING_NOT_APPRAISED
    # A registry row of the village whose 户编号 was damaged and that no evidence placed.
    b.registry(b.person("未归户"), home, "之子", household_number=None)
    elsewhere = b.household()
    b.member(elsewhere, "他村户主", village="桐木村")

    found = b.run(warehouse_url)

    assert found.subjects("HOUSING_NOT_APPRAISED") == {home.key, elsewhere.key}
    assert found.of("HOUSING_NOT_APPRAISED", home.key)["evidence"].endswith(
        "（注意: 本村另有 1 名成员户编号无法识别、未能归户，或属本户）"
    )
    assert "未能归户" not in found.of("HOUSING_NOT_APPRAISED", elsewhere.key)["evidence"]
