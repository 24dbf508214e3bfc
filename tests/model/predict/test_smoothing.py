"""model.predict.smoothing: Viterbi over block posteriors on hand-made cases, and against brute force."""

import itertools

import numpy as np
import pytest

from model.predict import smoothing


def test_a_soft_block_inside_a_turn_does_not_flip_it():
    woman = np.array([0.9, 0.85, 0.3, 0.2, 0.8, 0.9])  # two far-field blocks read male between loud ones
    assert smoothing.turn_starts(woman, 0.5, 0.01) == []
    assert smoothing.turn_starts(woman, 0.5, 0.5) == [2, 4]  # each block alone: the turn is cut twice


def test_a_real_turn_change_is_kept_where_it_happens():
    p = np.array([0.1, 0.2, 0.1, 0.05, 0.9, 0.8, 0.9, 0.7])
    assert smoothing.turn_starts(p, 0.5, 0.01) == [4]
    # Two blocks that lean the other way, weakly, do not pay for two changes; strongly, they do.
    assert smoothing.turn_starts(np.array([0.1, 0.1, 0.7, 0.7, 0.1, 0.1]), 0.5, 0.01) == []
    assert smoothing.turn_starts(np.array([0.1] * 4 + [0.999] * 2 + [0.1] * 4), 0.5, 0.01) == [4, 6]
    # Short stretches are decided whole, by the stronger side: 2 x 6.9 nats for female beat 4 x 2.2 for male.
    states = smoothing.viterbi_states(smoothing.log_odds(np.array([0.1, 0.1, 0.999, 0.999, 0.1, 0.1])), 0.01)
    assert states.tolist() == [1] * 6


def test_one_overconfident_block_cannot_outvote_its_neighbours():
    p = np.array([0.8, 0.8, 0.0, 0.8, 0.8])  # p = 0 would be infinite evidence unclipped
    assert smoothing.turn_starts(p, 0.5, 0.01) == []
    assert np.all(np.isfinite(smoothing.log_odds(np.array([0.0, 1.0]))))


def test_the_threshold_is_where_the_evidence_is_zero():
    assert smoothing.log_odds(np.array([0.3]), threshold=0.3)[0] == pytest.approx(0.0)
    states = smoothing.viterbi_states(smoothing.log_odds(np.array([0.4, 0.4, 0.4]), threshold=0.3), 0.01)
    assert states.tolist() == [1, 1, 1]  # above a 0.3 threshold: female


def _brute_force(evidence: np.ndarray, switch_prob: float) -> float:
    best = -np.inf
    for path in itertools.product((0, 1), repeat=len(evidence)):
        path = np.array(path)
        score = np.sum(np.where(path == 1, evidence / 2, -evidence / 2))
        changes = np.count_nonzero(np.diff(path))
        score += changes * np.log(switch_prob) + (len(path) - 1 - changes) * np.log1p(-switch_prob)
        best = max(best, score)
    return best


@pytest.mark.parametrize("seed", range(8))
def test_viterbi_finds_the_best_path(seed):
    rng = np.random.default_rng(seed)
    evidence = rng.normal(0, 3, rng.integers(1, 10))
    switch_prob = float(rng.choice([0.01, 0.1, 0.3, 0.5]))
    states = smoothing.viterbi_states(evidence, switch_prob)
    changes = np.count_nonzero(np.diff(states))
    score = np.sum(np.where(states == 1, evidence / 2, -evidence / 2)) + changes * np.log(switch_prob) + \
        (len(states) - 1 - changes) * np.log1p(-switch_prob)
    assert score == pytest.approx(_brute_force(evidence, switch_prob), abs=1e-9)


def test_edges_and_bad_settings():
    assert smoothing.viterbi_states(np.zeros(0), 0.01).tolist() == []
    assert smoothing.viterbi_states(np.array([2.0]), 0.01).tolist() == [1]
    for bad in (0.0, 0.6, -1.0):
        with pytest.raises(ValueError, match="switch_prob"):
            smoothing.viterbi_states(np.array([1.0]), bad)
