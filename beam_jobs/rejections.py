"""The rejection machinery shared by every DoFn: counters, the tagged output, ``reject()``.

A row, clip or file that cannot be used never raises: it becomes a
``common_voice.Rejection`` on the ``REJECTED`` output, is counted under
``voicegender:rejected_<reason>`` and ends up in ``rejected-*.tsv``.
"""

from __future__ import annotations

import apache_beam as beam
from apache_beam.metrics import Metrics

from pipeline import common_voice as cv

NAMESPACE = "voicegender"  # every Beam counter of the project
REJECTED = "rejected"  # the tagged output rejections travel on


def reject(item: str, reason: str, detail: str = "") -> beam.pvalue.TaggedOutput:
    """Counts a rejection and returns it as the ``REJECTED`` tagged output.

    Args:
      item: what was refused (a clip id, a TSV path or ``path:line``).
      reason: the reason code (names the counter and the TSV's ``reason``).
      detail: a human-readable explanation.
    """
    Metrics.counter(NAMESPACE, f"rejected_{reason}").inc()
    return beam.pvalue.TaggedOutput(REJECTED, cv.Rejection(item, reason, detail))


def reject_row(rejection: cv.Rejection) -> beam.pvalue.TaggedOutput:
    """Counts and tags a Rejection made elsewhere (e.g. by the TSV parser)."""
    return reject(rejection.item, rejection.reason, rejection.detail)
