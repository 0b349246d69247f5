"""The look-back rule codes and what each finding is about (``docs/rules.md``).

The codes are part of the output contract: counties and the statistics bureau sort, count
and close findings by them.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

PERSON: Final = "person"
HOUSEHOLD: Final = "household"
DIBAO_HOUSEHOLD: Final = "dibao_household"

# Rule code → the kind of subject a finding is about, in the order of the rules spec.
RULE_SUBJECT_KINDS: Final[Mapping[str, str]] = MappingProxyType(
    {
        "ID_INVALID": PERSON,
        "ID_CONFLICT": PERSON,
        "DUPLICATE_PERSON": PERSON,
        "DECEASED_LISTED": PERSON,
        "MED_NOT_INSURED": PERSON,
        "MED_CLAIM_MISMATCH": PERSON,
        "MED_NOT_SUBSIDISED": PERSON,
        "HOUSING_UNSAFE": HOUSEHOLD,
        "HOUSING_NOT_APPRAISED": HOUSEHOLD,
        "HOUSING_CLAIM_MISMATCH": HOUSEHOLD,
        "DIBAO_OUTSIDE_REGISTRY": DIBAO_HOUSEHOLD,
        "DIBAO_CATEGORY_MISMATCH": HOUSEHOLD,
        "NO_SAFETY_NET": HOUSEHOLD,
        "EDU_OUT_OF_SCHOOL": PERSON,
        "RELAPSE_RISK": HOUSEHOLD,
    }
)
RULE_CODES: Final = tuple(RULE_SUBJECT_KINDS)
