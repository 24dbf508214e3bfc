"""Gender over time within a stretch of talk: a two-state HMM decoded by Viterbi over block posteriors.

Each 0.96 s block has the model's p_female. Taken one block at a time, a
soft or distant block in a woman's turn can read male and cut the turn in
two. As the field's segmenters do (inaSpeechSegmenter's Viterbi pass over
its frame posteriors), the blocks are the observations of a two-state
(male, female) hidden Markov model whose state changes between two blocks
with probability ``switch_prob``: a turn change is decided only where the
evidence after it outweighs the cost of changing, ``log((1 - s) / s)`` nats
(4.6 at s = 0.01), and once more if it changes back. A single odd block
never flips a turn unless it is more certain than two changes cost; a run of
blocks that all lean the other way does.

The emissions are the blocks' log-odds against the decision threshold,
clipped to ``max_log_odds`` so one over-confident block (p = 0.0000) cannot
outvote its neighbours alone.
"""

from __future__ import annotations

import numpy as np

MAX_LOG_ODDS = 6.9  # |log-odds| of p = 0.001


def log_odds(p: np.ndarray, threshold: float = 0.5, max_log_odds: float = MAX_LOG_ODDS) -> np.ndarray:
    """Each block's evidence for female over male, relative to ``threshold`` (0 at the threshold), clipped."""
    eps = 1e-12
    p = np.clip(np.asarray(p, np.float64), eps, 1 - eps)
    evidence = np.log(p / (1 - p)) - np.log(threshold / (1 - threshold))
    return np.clip(evidence, -max_log_odds, max_log_odds)


def viterbi_states(evidence: np.ndarray, switch_prob: float) -> np.ndarray:
    """The most likely state sequence (0 male, 1 female) given each block's log-odds for female.

    Args:
      evidence: log-odds per block (``log_odds``).
      switch_prob: the probability that the state changes between two
        blocks, in (0, 0.5]; 0.5 decides each block on its own sign.

    Returns:
      int array of 0/1, one per block (ties stay in the earlier state; a
      block at exactly 0 evidence takes its neighbours' state).

    Raises:
      ValueError: ``switch_prob`` outside (0, 0.5].
    """
    if not 0.0 < switch_prob <= 0.5:
        raise ValueError(f"switch_prob must be in (0, 0.5], got {switch_prob}")
    evidence = np.asarray(evidence, np.float64)
    n = len(evidence)
    if n == 0:
        return np.zeros(0, dtype=int)
    stay, change = np.log1p(-switch_prob), np.log(switch_prob)
    # Log-likelihood up to a constant: state 1 emits +evidence/2, state 0 emits -evidence/2.
    emit = np.stack([-evidence / 2, evidence / 2], axis=1)
    score = emit[0].copy()
    back = np.zeros((n, 2), dtype=np.int8)
    for t in range(1, n):
        from_same, from_other = score + stay, score[::-1] + change
        back[t] = np.where(from_same >= from_other, [0, 1], [1, 0])
        score = np.maximum(from_same, from_other) + emit[t]
    states = np.zeros(n, dtype=int)
    states[-1] = int(score[1] > score[0]) if score[1] != score[0] else int(evidence.sum() > 0)
    for t in range(n - 1, 0, -1):
        states[t - 1] = back[t, states[t]]
    return states


def turn_starts(p: np.ndarray, threshold: float, switch_prob: float) -> list[int]:
    """Block indices where the smoothed gender changes (each the first block of a new turn)."""
    states = viterbi_states(log_odds(p, threshold), switch_prob)
    return [int(i) for i in np.flatnonzero(np.diff(states)) + 1]
