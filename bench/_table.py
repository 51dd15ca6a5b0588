"""The one markdown table the benchmark prints: ratio first, then ours, botocore, method."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional


@dataclass(frozen=True)
class Row:
    """One line: ``ours`` and ``botocore`` (or the row's reference) in ``unit``; lower is
    better for every row."""

    number: str
    what: str
    unit: str
    ours: float
    botocore: float
    notes: str = ""

    @property
    def ratio(self) -> Optional[float]:
        if self.botocore == 0:
            return None
        return self.ours / self.botocore


def number(value: float) -> str:
    """Compact, stable formatting: integers as integers, small values with 2-3 digits."""
    if value != value:  # NaN
        return "n/a"
    magnitude = abs(value)
    if magnitude >= 1000:
        return f"{value:,.0f}"
    if magnitude >= 100 or float(value).is_integer():
        return f"{value:.0f}"
    if magnitude >= 10:
        return f"{value:.1f}"
    if magnitude >= 1:
        return f"{value:.2f}"
    return f"{value:.3f}"


def ratio_text(ratio: Optional[float]) -> str:
    if ratio is None:
        return "—"
    if ratio == 0:
        return "0"
    if ratio < 0.01:
        return f"1/{1 / ratio:,.0f}"
    return f"{ratio:.2f}"


def render(rows: list[Row], reference: str = "botocore") -> str:
    """The table; ``reference`` names the column ours is divided by (``botocore`` by default)."""
    lines = [
        f"| # | measure (lower is better) | ours ÷ {reference} | ours | {reference} | unit "
        "| how / notes |",
        "|---|---|---:|---:|---:|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row.number} | {row.what} | **{ratio_text(row.ratio)}** | {number(row.ours)} | "
            f"{number(row.botocore)} | {row.unit} | {row.notes} |"
        )
    return "\n".join(lines)
