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
