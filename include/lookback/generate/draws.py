"""A :class:`random.Random` whose ``choice`` and ``randrange`` take the same draws from the
same stream as the standard ones, in one Python call instead of two.

The generator draws millions of choices; the standard methods reach the stream through
``_randbelow``, which takes ``n.bit_length()`` bits and draws again while they are ``n`` or
more. :class:`Draws` does exactly that inline. ``tests/generate/test_draws.py`` holds its
draws and the state they leave to the standard methods', so a Python that draws otherwise
fails there, not in a batch's bytes.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from _typeshed import SupportsLenAndGetItem

T = TypeVar("T")


class Draws(random.Random):
    """``random.Random`` with ``choice`` and ``randrange`` (whole numbers, step 1) drawn inline."""

    def choice(self, seq: SupportsLenAndGetItem[T]) -> T:
        n = len(seq)
        if not n:
            raise IndexError("Cannot choose from an empty sequence")
        k = n.bit_length()
        getrandbits = self.getrandbits
        r = getrandbits(k)
        while r >= n:
            r = getrandbits(k)
        return seq[r]

    def randrange(self, start: int, stop: int | None = None, step: int = 1) -> int:
        if stop is None or step != 1 or start.__class__ is not int or stop.__class__ is not int or stop <= start:
            return super().randrange(start, stop, step)
        n = stop - start
        k = n.bit_length()
        getrandbits = self.getrandbits
        r = getrandbits(k)
        while r >= n:
            r = getrandbits(k)
        return start + r
