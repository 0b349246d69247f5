"""Reading a batch's identity numbers at once finds what the normaliser finds in each, and the
generator's own check characters are the normaliser's."""

from __future__ import annotations

import random
from datetime import date, timedelta

from lookback.generate.identities import read_identities
from lookback.generate.noise import code_full_width, damage_identity
from lookback.generate.people import make_identity_number
from lookback.generate.profiles import DAMAGING_IDENTITY_QUIRKS, HARMLESS_IDENTITY_QUIRKS
from lookback.standardise.identity import check_character, normalise_identity_number


def _numbers(count: int, rng: random.Random) -> list[str]:
    used: set[str] = set()
    divisions = ("431230", "433030", "431224", "433130")
    return [
        make_identity_number(
            rng.choice(divisions), date(2020, 6, 30) - timedelta(days=rng.randrange(1, 36000)), i % 2 == 0, used, rng
        )
        for i in range(count)
    ]


def _edge_cases(rng: random.Random) -> set[str]:
    """18-character texts around every check: provinces, impossible and future dates, the
    earliest birth year, Excel's zeros, a wrong check character; bare and protected."""
    texts = {"", "   ", "'431230199001010017", "４３１２３０１９９００１０１００１７", "431230900101001"}
    for _ in range(3000):
        province = rng.choice(("43", "11", "65", "99", "00", "82"))
        year = rng.choice(("1870", "1879", "1880", "1999", "2000", "2019", f"{date.today().year + 1}"))
        month = rng.choice(("00", "01", "02", "12", "13"))
        day = rng.choice(("00", "01", "28", "29", "30", "31", "32"))
        first_17 = f"{province}1230{year}{month}{day}{rng.randrange(1000):03d}"
        right = check_character(first_17)
        texts |= {first_17 + right, first_17 + rng.choice("0123456789X"), first_17[:15] + "000"}
        texts.add(first_17 + right.lower())
        # The same with a protection or full-width digits: plain numbers once cleaned.
        texts |= {f"'{first_17}{right}", f" {first_17[:15]}000\t", code_full_width(first_17) + right}
    return texts


def test_read_identities_finds_what_the_normaliser_finds() -> None:
    rng = random.Random(7)
    numbers = _numbers(3000, rng)
    texts = set(numbers) | _edge_cases(rng)
    for number in numbers[:1500]:
        for quirk in (*HARMLESS_IDENTITY_QUIRKS, *DAMAGING_IDENTITY_QUIRKS):
            if quirk != "someone_elses":
                texts.add(damage_identity(number, quirk, rng))
    found = read_identities(texts)
    assert set(found) == texts
    for text in texts:
        expected = normalise_identity_number(text)
        assert found[text].number == expected.number, text
        assert found[text].is_valid == expected.is_valid, text
        assert found[text].birth_date == (expected.birth_date if expected.is_valid else None), text


def test_generated_numbers_carry_the_normalisers_check_character() -> None:
    for number in _numbers(5000, random.Random(3)):
        assert number[17] == check_character(number[:17])
        assert normalise_identity_number(number).number == number
