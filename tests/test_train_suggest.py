"""training/train_suggest.py: mixtures with their labels, per-step replay, the loss, and a tiny run that
resumes bit for bit and exports weights the suggester loads."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from audiosds.scorer import build_scorer, default_weights_dir
from audiosds.tasks.suggest import Suggester
from audiosds.training.train_suggest import (
    SuggestCache,
    SuggestTrainConfig,
    draw_batch,
    draw_mixtures,
    sigmoid_loss,
    train,
)

RATE = 16000


def _tone_cache(classes: int = 5, clips_per_class: int = 3) -> SuggestCache:
    """Class c's clips are sines at 200 * (c + 1) Hz; clip 0 of each class is a short one-shot."""
    t = np.arange(RATE) / RATE
    rows, lengths, pools = [], [], []
    for c in range(classes):
        for j in range(clips_per_class):
            n = RATE // 4 if j == 0 else RATE
            rows.append(np.sin(2 * np.pi * 200 * (c + 1) * t) * (np.arange(RATE) < n))
            lengths.append(n)
            pools.append(2 * c + (j % 2))  # world and recorded clips for every class
    return SuggestCache(
        audio=np.asarray(rows, dtype=np.float16),
        length=np.asarray(lengths),
        pool=np.asarray(pools),
        classes=[f"c{c}" for c in range(classes)],
        caption_emb=np.random.default_rng(0).standard_normal((classes, 2, 384)).astype(np.float32),
    )


def test_mixtures_hold_exactly_their_labelled_classes():
    cache, cfg = _tone_cache(), SuggestTrainConfig(clip_seconds=1.0, crop_seconds=(0.5, 1.0), level_db=0.0)
    audio, labels = draw_mixtures(cache, cfg, np.random.default_rng(3), 400, RATE // 2)
    assert audio.shape == (400, RATE // 2) and labels.shape == (400, 5)
    counts = labels.sum(axis=1)
    share = [float(np.mean(counts == k)) for k in (1, 2, 3)]
    assert np.allclose(share, cfg.sources, atol=0.07), share
    # the spectrum of each row has energy at exactly its classes' frequencies
    spectrum = np.abs(np.fft.rfft(audio, axis=1))  # bin = 2 Hz at 0.5 s
    energy = spectrum[:, [100 * (c + 1) for c in range(5)]]
    present = energy > 0.1 * energy.max(axis=1, keepdims=True)
    assert np.array_equal(present, labels.astype(bool))
    # equal RMS per source at level_db 0 (up to the mixture's random gain and sign)
    single = counts == 1
    gains = np.sqrt(np.mean(audio[single] ** 2, axis=1))
    assert np.all(gains > 0)


def test_batches_replay_per_step():
    cache = _tone_cache()
    cfg = SuggestTrainConfig(batch=6, clip_seconds=1.0, crop_seconds=(0.25, 1.0))
    first = draw_batch(cache, cfg, step=7)
    assert all(torch.equal(u, v) for u, v in zip(first, draw_batch(cache, cfg, step=7), strict=True))
    assert not torch.equal(draw_batch(cache, cfg, step=8)[0][:, :100], first[0][:, :100])
    audio, labels, text = first
    assert 4000 <= audio.shape[1] <= RATE and labels.shape == (6, 5) and text.shape == (5, 384)


def test_sigmoid_loss_closed_form():
    a = torch.nn.functional.normalize(torch.tensor([[1.0, 0.0], [0.6, 0.8]]), dim=-1)
    t = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    labels = torch.tensor([[1.0, 0.0, 0.0], [1.0, 1.0, 0.0]])
    scale, bias = torch.tensor(10.0), torch.tensor(-2.0)
    logits = 10.0 * a @ t.T - 2.0
    expected = -(
        labels * torch.log(torch.sigmoid(logits)) + (1 - labels) * torch.log(1 - torch.sigmoid(logits))
    )
    torch.testing.assert_close(sigmoid_loss(a, t, scale, bias, labels), expected.mean())


def test_config_is_strict():
    with pytest.raises(ValueError, match="sources"):
        SuggestTrainConfig(sources=(0.5, 0.6))
    with pytest.raises(ValueError, match="crop_seconds"):
        SuggestTrainConfig(crop_seconds=(0.5, 9.0))


def _fake_data(folder: Path) -> Path:
    """A manifest with one recording per kind the catalogue knows (and a held-out one it must skip)."""
    rows = [
        ("esc10/dog_bark/1-1-A.wav", "dog bark", 300.0),
        ("esc10/dog_bark/5-9-A.wav", "dog bark", 300.0),  # fold 5: held out
        ("esc10/rain/2-1-A.wav", "rain", 0.0),
        ("drums/kit/kick.wav", "kick", 60.0),
        ("spoken_digits/3_anna_1.wav", "spoken digit 3 (anna)", 150.0),
    ]
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True)
    with (folder / "manifest.csv").open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["path", "label", "seconds", "sample_rate", "source", "licence"])
        for path, label, hz in rows:
            (folder / path).parent.mkdir(parents=True, exist_ok=True)
            t = np.arange(8000) / 8000
            audio = np.sin(2 * np.pi * hz * t) if hz else rng.standard_normal(8000)
            sf.write(folder / path, (0.3 * audio).astype(np.float32), 8000)
            writer.writerow([path, label, 1.0, 8000, "test", "CC0"])
    return folder


def test_a_tiny_run_resumes_bit_for_bit_and_exports_what_the_suggester_loads(tmp_path):
    torch.set_num_threads(1)
    data = _fake_data(tmp_path / "data")
    cfg = SuggestTrainConfig(
        world_clips=31,
        render_chunk=31,
        batch=4,
        captions_per_class=2,
        val_mixtures=8,
        log_every=1,
        eval_every=2,
        checkpoint_every=2,
    )
    init = default_weights_dir()
    whole = train(tmp_path / "whole", data, cfg, 4, False, init, cache_dir=tmp_path / "cache")
    # a run stopped after its step-2 checkpoint and resumed ends where the uninterrupted one did
    train(tmp_path / "half", data, cfg, 2, False, init, cache_dir=tmp_path / "cache")
    state = torch.load(tmp_path / "half" / "checkpoint.pt", weights_only=False)
    state["total_steps"] = 4
    torch.save(state, tmp_path / "half" / "checkpoint.pt")
    resumed = train(tmp_path / "half", data, cfg, 4, True, init, cache_dir=tmp_path / "cache")
    assert whole.read_bytes() == resumed.read_bytes()
    # the held-out dog bark is not in the cache: 31 world clips + 4 training recordings
    assert np.load(tmp_path / "cache" / "pool.npy").shape == (35,)
    with pytest.raises(ValueError, match="already holds a checkpoint"):
        train(tmp_path / "whole", data, cfg, 4, False, init, cache_dir=tmp_path / "cache")
    suggester = Suggester(build_scorer("embedded", weights_dir=str(whole.parent)))
    result = suggester(
        np.zeros(RATE, np.float32) + 0.01 * np.random.default_rng(1).standard_normal(RATE), RATE
    )
    assert len(result.overall) == 3 and all(np.isfinite(s.score) for s in result.overall)


def test_augmentations_tilt_the_spectrum_and_move_the_pitch():
    from audiosds.training.train_suggest import _speed, tilt

    t = np.arange(RATE) / RATE
    tones = np.stack([np.sin(2 * np.pi * 4000 * t), np.sin(2 * np.pi * 250 * t)]).astype(np.float32)
    out = tilt(tones, np.array([6.0, 6.0]))
    gain_db = 20 * np.log10(np.abs(out).max(axis=1) / np.abs(tones).max(axis=1))
    np.testing.assert_allclose(gain_db, [4.0, -4.0], atol=0.1)  # +-2 octaves of 3 around 1 kHz
    fast = _speed(tones[1], 1.25)
    peak = np.argmax(np.abs(np.fft.rfft(fast))) * RATE / len(fast)
    assert abs(peak - 312.5) < 2 and len(fast) == pytest.approx(RATE / 1.25, abs=2)
    # off by default: the draws of a config without them are unchanged by their existence
    cache, cfg = _tone_cache(), SuggestTrainConfig(clip_seconds=1.0, crop_seconds=(0.5, 1.0))
    on = SuggestTrainConfig(clip_seconds=1.0, crop_seconds=(0.5, 1.0), speed=(0.9, 1.1), tilt_db=6.0)
    plain = draw_mixtures(cache, cfg, np.random.default_rng(4), 8, RATE // 2)
    augmented = draw_mixtures(cache, on, np.random.default_rng(4), 8, RATE // 2)
    assert plain[0].shape == augmented[0].shape and not np.allclose(plain[0], augmented[0])
    with pytest.raises(ValueError, match="speed"):
        SuggestTrainConfig(speed=(1.2, 1.1))


def test_recorded_only_rows_draw_recordings_of_recorded_classes():
    cache = _tone_cache()
    cache.pool[cache.pool == 1] = 0  # class c0 has world clips only
    cfg = SuggestTrainConfig(clip_seconds=1.0, crop_seconds=(0.5, 1.0), real_rows=1.0)
    _, labels = draw_mixtures(cache, cfg, np.random.default_rng(5), 200, RATE // 2)
    assert labels[:, 0].sum() == 0 and labels[:, 1:].sum(axis=0).min() > 0
    half = SuggestTrainConfig(clip_seconds=1.0, crop_seconds=(0.5, 1.0), real_rows=0.5)
    _, labels = draw_mixtures(cache, half, np.random.default_rng(5), 200, RATE // 2)
    assert labels[:, 0].sum() > 0
    with pytest.raises(ValueError, match="real_rows"):
        SuggestTrainConfig(real_rows=2.0)
