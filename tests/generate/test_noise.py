"""Dates and months written in each style are the texts strftime gives, for every year."""

from __future__ import annotations

from datetime import date

import pytest

from lookback.generate.noise import DATE_STYLES, MONTH_STYLES, excel_serial, format_date, format_month


@pytest.mark.parametrize(
    "value", [date(1, 1, 1), date(999, 12, 31), date(1000, 1, 1), date(1987, 3, 9), date(9999, 12, 31)]
)
def test_date_and_month_texts_are_strftime_s(value: date) -> None:
    dates = {
        "iso": value.isoformat(),
        "slash": f"{value.year}/{value.month}/{value.day}",
        "compact": value.strftime("%Y%m%d"),
        "chinese": f"{value.year}年{value.month}月{value.day}日",
        "excel_serial": str(excel_serial(value)),
        "datetime": value.strftime("%Y-%m-%d") + " 00:00:00",
    }
    months = {
        "iso": value.strftime("%Y-%m"),
        "compact": value.strftime("%Y%m"),
        "chinese": f"{value.year}年{value.month}月",
    }
    assert {style: format_date(value, style) for style in DATE_STYLES} == dates
    assert {style: format_month(value, style) for style in MONTH_STYLES} == months
