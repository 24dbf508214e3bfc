"""benchmarks.candidates: ina patches mapped onto the shipped block grid, the balanced logistic fit, the pools."""

import numpy as np
import pytest

from benchmarks import candidates


def test_patches_every_68_and_34_frames_land_in_the_block_holding_their_centre():
    every_68 = np.array([0.9, 0.1, 0.5])  # centres at frames 34, 102, 170
    shifted = np.array([0.2, 0.8])  # centres at frames 68, 136
    step68, step34 = candidates.ina_block_logits(every_68, shifted, blocks=2, block_frames=96)
    lg = candidates.logit
    np.testing.assert_allclose(step68, [lg(0.9), np.mean(lg(np.array([0.1, 0.5])))])
    np.testing.assert_allclose(step34, [np.mean(lg(np.array([0.9, 0.2]))), np.mean(lg(np.array([0.1, 0.5, 0.8])))])


def test_a_block_without_a_patch_is_nan_and_patches_past_the_last_block_are_dropped():
    means = candidates.block_means(np.array([1.0, 2.0, 3.0]), np.array([10, 20, 500]), blocks=3, block_frames=96)
    np.testing.assert_allclose(means[0], 1.5)
    assert np.isnan(means[1]) and np.isnan(means[2])


def test_saturated_probabilities_give_finite_logits():
    assert np.all(np.isfinite(candidates.logit(np.array([0.0, 1.0, 0.5]))))


def test_the_balanced_fit_recovers_a_known_boundary_on_imbalanced_data():
    rng = np.random.default_rng(0)
    y = (rng.random(3000) < 0.25).astype(float)  # one class three times the other
    x = rng.normal(size=(3000, 2)) + np.where(y[:, None] == 1, [2.0, 0.0], [-2.0, 0.0])
    w = candidates.fit_logistic(x, y)
    assert w[0] > 1.0 and abs(w[1]) < 0.3 * w[0]  # only the first input separates the classes
    assert abs(w[2]) < 0.3  # balanced weights: no shift toward the larger class


def test_the_pools_fuse_the_two_logits_and_score_unanswered_clips_as_wrong():
    blocks = np.array([[2.0, 1.0, 1.0], [1.0, 0.0, 2.0]])  # per block: shipped, ina step 68, ina step 34
    female, male = candidates.ClipComponents(blocks, 0.7), candidates.ClipComponents(-blocks, -0.7)
    pools, weights = candidates.candidates([female, male, female, male], np.array([1, 0, 1, 0]))
    assert pools["fuse_mean_logit"](female) == pytest.approx(candidates.sigmoid(1.5))
    assert pools["shipped"](male) == pytest.approx(candidates.sigmoid(np.array([-2.0, -1.0])).mean())
    assert pools["ina_step34_logit"](female) == pytest.approx(candidates.sigmoid(1.5))
    assert pools["ina_recipe"](male) == pytest.approx(candidates.sigmoid(-0.7))
    assert pools["fuse_recipe_mean_logit"](female) == pytest.approx(candidates.sigmoid((1.5 + 0.7) / 2))
    assert len(weights["fuse_fit_clip"]) == 3 and pools["fuse_fit_clip"](female) > 0.5 > pools["fuse_fit_clip"](male)
    result = candidates.score(pools["shipped"], [female, None, male], np.array([1, 1, 0]),
                              ["angry", "angry", "angry"])
    assert result["balanced_accuracy"] == pytest.approx((0.5 + 1.0) / 2)
    assert result["angry_male_recall"] == 1.0


def test_frame_log_energy_is_the_log_power_of_each_pre_emphasised_frame():
    rng = np.random.default_rng(1)
    wave = rng.normal(size=1000)
    energy = candidates.frame_log_energy(wave)
    assert len(energy) == 1 + (1000 - 400) // 160
    frame = wave[160:560]
    emphasised = np.concatenate([[0.03 * frame[0]], frame[1:] - 0.97 * frame[:-1]])
    np.testing.assert_allclose(energy[1], np.log(np.sum(emphasised ** 2)))
    assert len(candidates.frame_log_energy(wave[:300])) == 0


def test_the_recipe_pools_only_patches_centred_on_energetic_frames():
    energy = np.full(200, -20.0)
    energy[:60] = 0.0  # the first 60 frames are loud: only the patch centred at frame 34 is kept
    every_68 = np.array([0.9, 0.1])  # centres 34, 102
    shifted = np.array([0.2])  # centre 68
    assert candidates.recipe_logit(every_68, shifted, energy) == pytest.approx(candidates.logit(np.array(0.9)))
    silent = np.full(200, -np.inf)  # no finite energy: every patch counts
    expected = candidates.logit(np.array([0.9, 0.1, 0.2])).mean()
    assert candidates.recipe_logit(every_68, shifted, silent) == pytest.approx(expected)
    assert np.isnan(candidates.recipe_logit(np.zeros(0), np.zeros(0), energy))


def test_an_export_is_pooled_as_the_shipped_model_is():
    blocks = np.array([[2.0, 1.0, 1.0], [1.0, 0.0, 2.0]])
    clip = candidates.ClipComponents(blocks, 0.7, {"tuned": np.array([3.0, -1.0, 0.5])})
    other = candidates.ClipComponents(-blocks, -0.7, {"tuned": np.array([-2.0])})
    pools, _ = candidates.candidates([clip, other], np.array([1, 0]), exports=("tuned",))
    assert pools["tuned"](clip) == pytest.approx(candidates.sigmoid(np.array([3.0, -1.0, 0.5])).mean())
    assert pools["tuned"](other) == pytest.approx(candidates.sigmoid(-2.0))
    assert "tuned" not in candidates.candidates([clip, other], np.array([1, 0]))[0]


@pytest.mark.slow
def test_an_export_is_scored_on_the_same_speech_blocks_as_the_shipped_model(tmp_path):
    import soundfile

    from model.predict import export_format
    from tests.helpers import generated_voice

    path = str(tmp_path / "voice.wav")
    soundfile.write(path, np.concatenate([generated_voice(True, 3.0, 4), generated_voice(True, 2.0, 5)]), 16000)
    # The shipped export stands in for ina's (only the exports' column is checked) and is scored again as "again".
    model = candidates.ComponentClassifier(export_format.PRETRAINED_DIR, export_format.PRETRAINED_DIR,
                                           {"again": export_format.PRETRAINED_DIR})
    clip = model.components(path)
    assert clip is not None and len(clip.blocks) >= 2
    np.testing.assert_allclose(clip.exports["again"], clip.blocks[:, candidates.SHIPPED], atol=1e-6)
    assert model.seconds["again"] > 0


def test_the_peer_row_counts_unanswered_clips_as_wrong_and_splits_recall_by_emotion():
    labels = np.array([0, 0, 1, 1])  # male, male, female, female
    p = np.array([0.1, np.nan, 0.8, 0.3])
    result = candidates.score_p(p, labels, ["angry", "happy", "angry", "happy"])
    assert result["balanced_accuracy"] == pytest.approx(0.5)  # men 1 of 2 (NaN wrong), women 1 of 2
    assert result["angry_male_recall"] == 1.0 and result["happy_male_recall"] == 0.0
    assert "fearful_male_recall" not in result


def test_the_peer_row_scores_each_set_on_that_sets_own_clips():
    from benchmarks import common

    clip = candidates.ClipComponents(np.array([[2.0, 0.0, 0.0]]), 0.0)  # shipped says female
    sets = {"a": (["a1", "a2"], np.array([1, 0]), None), "b": (["b1"], np.array([0]), ["angry"])}
    comps = {"a": [clip, clip], "b": [clip]}
    pools = {"shipped": lambda c: float(candidates.sigmoid(c.blocks[:, candidates.SHIPPED]).mean())}
    peer = {"a": np.array([0.9, 0.1]), "b": np.array([0.2])}  # right on every clip
    table = candidates.score_table(pools, comps, peer, sets)
    assert table["shipped"]["a"]["balanced_accuracy"] == 0.5 and table["shipped"]["b"]["balanced_accuracy"] == 0.0
    assert table[common.PEER]["a"]["balanced_accuracy"] == 1.0
    assert table[common.PEER]["b"] == {"balanced_accuracy": 1.0, "angry_male_recall": 1.0}
    assert common.PEER not in candidates.score_table(pools, comps, {}, sets)
