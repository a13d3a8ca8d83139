"""A histogram of durations with buckets that grow by a fifth, for loop lag and blocked time."""

from __future__ import annotations

import math

from .._hubstats import Distribution

__all__ = ["Histogram"]

# Bucket i holds durations in (FIRST * 2**((i-1)/4), FIRST * 2**(i/4)]; bucket 0 everything
# up to FIRST, the last one everything beyond LAST_EDGE.
FIRST = 1e-6
STEPS_PER_DOUBLING = 4
BUCKETS = 30 * STEPS_PER_DOUBLING + 1  # up to about 18 minutes


def upper_edge(i: int) -> float:
    """The upper edge of bucket ``i``, in seconds (infinite for the last)."""
    if i >= BUCKETS - 1:
        return math.inf
    return FIRST * 2 ** (i / STEPS_PER_DOUBLING)


class Histogram:
    """Durations in seconds, counted into buckets; one thread records, any thread may read.

    A reader in another thread may see a record half made (a count raised,
    the sum not yet): a summary is a snapshot, not a transaction.
    """

    def __init__(self) -> None:
        self.counts = [0] * BUCKETS
        self.count = 0
        self.sum = 0.0
        self.max = 0.0

    def record(self, seconds: float) -> None:
        """Count one duration."""
        if seconds <= FIRST:
            i = 0
        else:
            i = min(BUCKETS - 1, math.ceil(math.log2(seconds / FIRST) * STEPS_PER_DOUBLING - 1e-9))
        self.counts[i] += 1
        self.count += 1
        self.sum += seconds
        if seconds > self.max:
            self.max = seconds

    def quantile(self, q: float) -> float:
        """The upper edge of the bucket holding the ``q`` quantile, capped at the largest duration."""
        counts = list(self.counts)
        rank = max(1, math.ceil(q * sum(counts)))
        seen = 0
        for i, n in enumerate(counts):
            seen += n
            if seen >= rank:
                return min(upper_edge(i), self.max)
        return self.max

    def summary(self) -> Distribution:
        """Count, median, 99th percentile and largest duration."""
        if not self.count:
            return Distribution(0, 0.0, 0.0, 0.0)
        return Distribution(self.count, self.quantile(0.5), self.quantile(0.99), self.max)

    def cumulative(self, smallest: float = 1.5e-5) -> list[tuple[float, int]]:
        """(upper edge, durations at or below it) at each doubling from ``smallest`` on, then (inf, all)."""
        out = []
        seen = 0
        counts = list(self.counts)
        for i, n in enumerate(counts[:-1]):
            seen += n
            if i % STEPS_PER_DOUBLING == 0 and upper_edge(i) >= smallest:
                out.append((upper_edge(i), seen))
        out.append((math.inf, seen + counts[-1]))
        return out
