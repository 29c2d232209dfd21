"""Splits as people slice them: ``"train[:90%]"``, ``"train[-5000:]"``, ``"test[10%:20%]"``, as
tfds and Hugging Face datasets write them.

Grammar: ``SPLIT`` or ``SPLIT[START:STOP]``, where ``SPLIT`` is one of the dataset's splits (or a
slice its registry names, such as QMNIST's ``test10k``) and each bound is empty, a whole number of
rows, or a percent (``%``, fractions allowed) of the split's rows; both bounds in the same unit;
negative bounds count from the end, as Python's slices do. A percent bound becomes
``int(round(percent * rows / 100))``, tfds's "closest" rounding (Python's ``round``: halves to
even): on 60,000 rows ``train[:33%]`` is rows 0 to 19,800 and ``train[33%:67%]`` 19,800 to 40,200;
on 999 rows ``[50%:52%]`` is 500 to 519. A bound past the split's rows, or a slice that cuts no
row, is a ``ValueError`` quoting the spec and this grammar.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

GRAMMAR = "SPLIT or SPLIT[START:STOP], each bound empty, N rows or P% (e.g. 'train[:90%]', 'train[-5000:]')"
_SPEC = re.compile(r"(?P<split>[A-Za-z0-9][A-Za-z0-9._+-]*)(?:\[(?P<start>[^\]:]*):(?P<stop>[^\]:]*)\])?")
_BOUND = re.compile(r"(?P<value>-?(?:\d+(?:\.\d*)?|\.\d+))(?P<percent>%?)")


def _bad(text: str, why: str) -> ValueError:
    return ValueError(f"split {text!r}: {why} (a split is {GRAMMAR})")


@dataclass(frozen=True)
class Spec:
    """A parsed split spec: the split, and each bound in rows (int) or percent (float), or None."""

    text: str
    split: str
    start: int | float | None = None
    stop: int | float | None = None
    percent: bool = False

    def rows(self, n: int) -> slice:
        """The rows of a split of ``n`` rows this spec takes."""
        bounds = [self._row(b, n) for b in (self.start, self.stop)]
        start, stop = bounds[0] if bounds[0] is not None else 0, bounds[1] if bounds[1] is not None else n
        if start >= stop:
            raise _bad(self.text, f"it cuts no row of the {n:,} of {self.split!r}")
        return slice(start, stop)

    def cut(self, images: Any, labels: Any) -> tuple[Any, Any]:
        """The rows this spec takes of a split's arrays (views; both as they are when it takes all)."""
        if self.start is None and self.stop is None:
            return images, labels
        rows = self.rows(len(labels))
        return images[rows], labels[rows]

    def _row(self, bound: int | float | None, n: int) -> int | None:
        if bound is None:
            return None
        row = int(round(bound * n / 100)) if self.percent else int(bound)
        if abs(row) > n:
            raise _bad(self.text, f"{bound:g}{'%' * self.percent} is past the {n:,} rows of {self.split!r}")
        return row + n if row < 0 else row


def parse(text: str) -> Spec:
    """``text`` as a ``Spec``; a ``ValueError`` quoting it and the grammar when it is none."""
    if not isinstance(text, str):
        raise TypeError(f"a split is a str such as 'train' or 'train[:90%]', not {type(text).__name__}")
    m = _SPEC.fullmatch(text.strip())
    if m is None:
        raise _bad(text, "not a split spec")
    if m["start"] is None:
        return Spec(text, m["split"])
    bounds = [_BOUND.fullmatch(b.strip()) if b.strip() else None for b in (m["start"], m["stop"])]
    given = [b.strip() for b in (m["start"], m["stop"]) if b.strip()]
    if len([b for b in bounds if b]) != len(given) or not given:
        raise _bad(text, "its bounds are not rows or percents")
    units = {b["percent"] == "%" for b in bounds if b}
    if len(units) > 1:
        raise _bad(text, "it mixes rows and percents: both bounds take one unit")
    percent = units.pop()
    values: list[int | float | None] = []
    for b in bounds:
        if b is None:
            values.append(None)
        elif percent:
            values.append(float(b["value"]))
        elif "." in b["value"]:
            raise _bad(text, "a row bound is a whole number")
        else:
            values.append(int(b["value"]))
    if percent and any(v is not None and abs(v) > 100 for v in values):
        raise _bad(text, "a percent bound is from -100% to 100%")
    return Spec(text, m["split"], values[0], values[1], percent)
