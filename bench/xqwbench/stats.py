"""Small statistics the report needs (pure)."""
import math
from typing import Optional, Sequence


def percentile(values: Sequence[float], fraction: float) -> Optional[float]:
    """Linear interpolation between closest ranks (as numpy's default); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = fraction * (len(ordered) - 1)
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def median(values: Sequence[float]) -> Optional[float]:
    return percentile(values, 0.5)


def ratio(numerator: Optional[float], denominator: Optional[float]) -> Optional[float]:
    if numerator is None or not denominator:
        return None
    return numerator / denominator


def ratio_over_floor(value: Optional[float], reference: Optional[float], floor: Optional[float]) -> Optional[float]:
    """(value - floor) / (reference - floor): `value`'s cost above a common floor as a share of the reference's
    cost above it. None when a figure is missing or the reference is exactly at the floor; a reference below
    the floor (noise on a shared machine) gives a negative denominator, and the value says so."""
    if value is None or reference is None or floor is None or reference == floor:
        return None
    return (value - floor) / (reference - floor)


def hundred_blocks(times: Sequence[float], block: int = 100):
    """Per-item time of the first and the last `block` items of a sorted series of completion times.

    The first block is measured from the first completion to the block-th, the last block from the
    (n - block)-th completion to the last, so both cover `block` intervals. None when too few items.
    """
    ordered = sorted(times)
    if len(ordered) < 2 * block + 1:
        return None
    first = (ordered[block] - ordered[0]) / block
    last = (ordered[-1] - ordered[-1 - block]) / block
    return first, last
