"""Prompt scorers: the embedded CLAP-like scorer (tiny random network, exported and loaded the way
the shipped weights are), a tiny random transformers ClapModel through ClapScorer, the registry,
and, when the package ships trained weights, that a clip's own caption outranks other families'."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from audiosds.models.scorer import ScorerConfig, ScorerNet, contrastive_loss
from audiosds.scorer import (
    SCORERS,
    ClapScorer,
    EmbeddedScorer,
    ScorerWeightsError,
    build_scorer,
    default_weights_dir,
    load_scorer_net,
)
from audiosds.training.train_scorer import TrainConfig, export

TINY = ScorerConfig(n_ffts=(512, 256), n_mels=(16, 8), hop=256, channels=(8, 12), embed_dim=8, text_hidden=16)
PROMPTS = ["a bell ringing", "rain on a roof", "a distant siren"]


def _audio(batch: int, seconds: float, seed: int, rate: int = 16000) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(round(seconds * rate)) / rate
    tone = torch.sin(2 * torch.pi * 440.0 * t * (1 + torch.arange(batch)[:, None]))
    return 0.3 * tone + 0.05 * torch.randn(batch, t.numel(), generator=g)


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    """A randomly initialised tiny scorer exported by the training script's ``export``."""
    torch.manual_seed(0)
    net = ScorerNet(TINY)
    with torch.no_grad():  # non-trivial normalisation statistics, as after training
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm1d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
    state = {
        "model_config": TINY.to_dict(),
        "ema": net.state_dict(),
        "train_config": {"seed": 0},
        "step": 0,
        "total_steps": 0,
        "val_top1": 0.0,
    }
    folder = tmp_path_factory.mktemp("tiny_scorer")
    export(state, folder)
    return folder, net


@pytest.fixture(scope="module")
def tiny(tiny_dir):
    return build_scorer("embedded", weights_dir=str(tiny_dir[0]))


def test_export_round_trip_is_the_float16_network(tiny_dir, tiny):
    folder, net = tiny_dir
    assert json.loads((folder / "scorer.json").read_text()) == TINY.to_dict()
    reference = ScorerNet(TINY).eval()
    params = {name for name, _ in net.named_parameters()}  # stored as float16; buffers keep float32
    reference.load_state_dict(
        {k: (v.half().float() if k in params else v) for k, v in net.state_dict().items()}
    )
    x = _audio(2, 1.0, 1)
    with torch.no_grad():
        torch.testing.assert_close(tiny.embed_audio(x), reference.embed_audio(x), rtol=0, atol=1e-6)
    assert tiny.sample_rate == 16000


def test_scores_are_cosines_in_range(tiny):
    x = _audio(3, 1.0, 2)
    scores = tiny.score(x, PROMPTS)
    assert scores.shape == (3, 3)
    assert bool(((scores >= -1) & (scores <= 1)).all())
    audio_emb, text_emb = tiny.embed_audio(x), tiny.embed_text(PROMPTS)
    torch.testing.assert_close(audio_emb.norm(dim=1), torch.ones(3))
    torch.testing.assert_close(scores, audio_emb @ text_emb.T)
    torch.testing.assert_close(tiny.score_pairs(x, PROMPTS), scores.diagonal())
    assert scores.std() > 0  # a random network still separates different inputs


def test_deterministic_across_loads(tiny_dir, tiny):
    x = _audio(2, 0.7, 3)
    again = EmbeddedScorer(EmbeddedScorer.Config(weights_dir=str(tiny_dir[0])))
    assert torch.equal(tiny.score(x, PROMPTS), again.score(x, PROMPTS))


def test_batch_equals_singles(tiny):
    x = _audio(4, 0.5, 4)
    batch = tiny.score(x, PROMPTS)
    singles = torch.cat([tiny.score(x[i : i + 1], [p]) for i in range(4) for p in PROMPTS]).reshape(4, 3)
    torch.testing.assert_close(batch, singles, rtol=0, atol=1e-6)


def test_level_channels_and_lengths(tiny):
    x = _audio(2, 1.0, 5)
    base = tiny.embed_audio(x)
    # loudness normalisation: a 40 dB quieter copy embeds the same
    torch.testing.assert_close(tiny.embed_audio(0.01 * x), base, rtol=0, atol=1e-5)
    # (B, C, N) is averaged to mono
    stereo = torch.stack([x, x], dim=1)
    torch.testing.assert_close(tiny.embed_audio(stereo), base)
    # audio at another rate is resampled: a 32 kHz render of the same tones embeds close to 16 kHz
    hi = _audio(2, 1.0, 5, rate=32000)
    assert (tiny.embed_audio(hi, sample_rate=32000) * base).sum(dim=1).min() > 0.9
    for seconds in (0.05, 0.5, 10.0):
        assert tiny.embed_audio(_audio(1, seconds, 6)).shape == (1, TINY.embed_dim)


def test_the_audio_gradient_predicts_the_change_of_the_score(tiny):
    def score(audio: torch.Tensor) -> float:
        return float(tiny.score_pairs(audio, PROMPTS[:1]))

    x = _audio(1, 0.5, 7).requires_grad_(True)
    tiny.score_pairs(x, PROMPTS[:1]).sum().backward()
    grad, x = x.grad, x.detach()
    # The score ignores loudness (score(a x) = score(x)), so d score(a x) / da = <grad, x> = 0.
    assert abs(float((grad * x).sum())) < 1e-4 * float(grad.norm() * x.norm())
    with torch.no_grad():
        # Ascent along the unit gradient raises the score, descent lowers it, each by h * ||grad|| to
        # first order (h = 3e-3 on a clip of norm ~20 moves the score ~6e-3, far above float32 noise).
        h, unit = 3e-3, grad / grad.norm()
        assert score(x + h * unit) - score(x) == pytest.approx(h * float(grad.norm()), rel=0.05)
        assert score(x) - score(x - h * unit) == pytest.approx(h * float(grad.norm()), rel=0.05)
        # Along a random direction v the central difference is <grad, v>.
        v = torch.randn(x.shape, generator=torch.Generator().manual_seed(8))
        h, v = 1e-2, v / v.norm()
        central = (score(x + h * v) - score(x - h * v)) / (2 * h)
    assert central == pytest.approx(float((grad * v).sum()), rel=0.05)


def test_contrastive_loss_closed_form():
    e = torch.eye(3)
    # perfectly aligned unit embeddings at scale s: loss = log(1 + 2 exp(-s))
    s = torch.tensor(5.0)
    expected = torch.log(1 + 2 * torch.exp(-s))
    torch.testing.assert_close(contrastive_loss(e, e, s), expected)
    # targets equal to the identity give the same value; swapping modalities is symmetric
    torch.testing.assert_close(contrastive_loss(e, e, s, torch.eye(3)), expected)
    g = torch.Generator().manual_seed(0)
    a = torch.nn.functional.normalize(torch.randn(4, 5, generator=g), dim=1)
    b = torch.nn.functional.normalize(torch.randn(4, 5, generator=g), dim=1)
    torch.testing.assert_close(contrastive_loss(a, b, s), contrastive_loss(b, a, s))


def test_errors(tmp_path, tiny):
    with pytest.raises(ScorerWeightsError, match="scorer.json"):
        load_scorer_net(tmp_path)
    (tmp_path / "scorer.json").write_text(json.dumps(TINY.to_dict()))
    with pytest.raises(ScorerWeightsError, match="scorer.safetensors"):
        EmbeddedScorer(EmbeddedScorer.Config(weights_dir=str(tmp_path))).embed_text(["x"])
    with pytest.raises(ValueError, match="clap.*embedded|embedded.*clap"):
        build_scorer("nope")
    with pytest.raises(ValueError, match="weigths_dir"):
        build_scorer("embedded", weigths_dir="x")
    with pytest.raises(ValueError, match=r"\(B, N\)"):
        tiny.embed_audio(torch.zeros(16000))
    with pytest.raises(ValueError, match="prompts"):
        tiny.score(_audio(1, 0.5, 0), "a bell")
    with pytest.raises(ValueError, match="one prompt per clip"):
        tiny.score_pairs(_audio(2, 0.5, 0), ["a bell"])
    assert set(SCORERS) == {"embedded", "clap"}


# ----------------------------------------------------------------------------------------------
# ClapScorer with a tiny random transformers ClapModel


@pytest.fixture(scope="module")
def clap_dir(tmp_path_factory):
    from transformers import ClapConfig, ClapFeatureExtractor, ClapModel, ClapProcessor, RobertaTokenizer
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    # byte-level tokenizer without merges: every character is a token
    vocab = {t: i for i, t in enumerate(["<pad>", "<unk>", "<s>", "</s>", "<mask>"])}
    for ch in bytes_to_unicode().values():
        vocab.setdefault(ch, len(vocab))
    tokenizer = RobertaTokenizer(vocab=vocab, merges=[], model_max_length=64)
    config = ClapConfig(
        text_config={
            "vocab_size": len(vocab),
            "hidden_size": 16,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "intermediate_size": 32,
            "max_position_embeddings": 70,
            "pad_token_id": 0,
            "bos_token_id": 2,
            "eos_token_id": 3,
        },
        audio_config={
            "hidden_size": 16,
            "patch_embeds_hidden_size": 8,
            "depths": [1, 1],
            "num_attention_heads": [2, 2],
            "window_size": 4,
            "spec_size": 256,
            "num_mel_bins": 64,
            "patch_size": 16,
            "patch_stride": [16, 16],
            "enable_fusion": False,
        },
        projection_dim=8,
    )
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("tiny_clap")
    ClapModel(config).save_pretrained(folder)
    ClapProcessor(feature_extractor=ClapFeatureExtractor(), tokenizer=tokenizer).save_pretrained(folder)
    return folder


@pytest.fixture()
def clap(clap_dir, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return build_scorer("clap", model_dir=str(clap_dir))


def test_clap_scorer(clap):
    x = _audio(3, 1.0, 8)
    assert clap.sample_rate == 48000
    scores = clap.score(x, PROMPTS, sample_rate=16000)
    assert scores.shape == (3, 3)
    audio_emb = clap.embed_audio(x, sample_rate=16000)
    text_emb = clap.embed_text(PROMPTS)
    assert audio_emb.shape == (3, 8) and text_emb.shape == (3, 8)
    torch.testing.assert_close(scores, audio_emb @ text_emb.T)
    # deterministic (no random fusion crops) and a batch equals its singles
    assert torch.equal(clap.score(x, PROMPTS, sample_rate=16000), scores)
    singles = torch.cat([clap.embed_audio(x[i : i + 1], sample_rate=16000) for i in range(3)])
    torch.testing.assert_close(singles, audio_emb, rtol=0, atol=1e-5)
    torch.testing.assert_close(
        torch.cat([clap.embed_text([p]) for p in PROMPTS]), text_emb, rtol=0, atol=1e-5
    )


def test_clap_long_clips_are_centre_cropped(clap):
    rate, limit = 48000, 10 * 48000
    x = _audio(1, 12.0, 9, rate=rate)
    start = (x.shape[-1] - limit) // 2
    torch.testing.assert_close(
        clap.embed_audio(x, sample_rate=rate), clap.embed_audio(x[:, start : start + limit], sample_rate=rate)
    )


def test_clap_missing_folder(tmp_path):
    with pytest.raises(ScorerWeightsError, match="config.json"):
        ClapScorer(ClapScorer.Config(model_dir=str(tmp_path))).embed_text(["x"])
    with pytest.raises(ValueError, match="model_dir"):
        build_scorer("clap")


# ----------------------------------------------------------------------------------------------
# the shipped weights


SHIPPED = (default_weights_dir() / "scorer.safetensors").is_file()


@pytest.mark.skipif(not SHIPPED, reason="no trained scorer weights in audiosds/weights/scorer/")
def test_shipped_scorer_ranks_own_caption_first():
    from audiosds.world import make_caption, render_clip

    scorer = build_scorer("embedded")
    families = [
        "traffic",
        "saxophone",
        "bongo",
        "waves",
        "metal_pipes",
        "glass_break",
        "clock",
        "wind",
        "bell",
        "rain",
        "kick",
        "noise",
    ]
    rng = np.random.default_rng(0)
    clips = [render_clip(f, 7, seconds=2.0, split="heldout") for f in families]
    audio = torch.from_numpy(np.stack([c.audio for c in clips]))
    for i, clip in enumerate(clips):
        other = families[(i + 1 + int(rng.integers(len(families) - 1))) % len(families)]
        other_caption = make_caption(other, {}, rng, split="heldout")
        own, wrong = scorer.score(audio[i : i + 1], [clip.caption, other_caption])[0]
        assert own > wrong, (clip.family, clip.caption, other_caption, float(own), float(wrong))


@pytest.mark.skipif(not SHIPPED, reason="no trained scorer weights in audiosds/weights/scorer/")
def test_shipped_scorer_embeds_clips_shorter_than_its_training_crops():
    scorer = build_scorer("embedded")
    for seconds in (0.01, 0.1, 0.3):
        emb = scorer.embed_audio(_audio(2, seconds, 8))
        assert emb.shape == (2, scorer.embed_audio(_audio(1, 1.0, 8)).shape[1])
        assert torch.isfinite(emb).all()


def test_train_config_is_strict():
    with pytest.raises(TypeError):
        TrainConfig(batchsize=3)
    with pytest.raises(ValueError, match="crop_seconds"):
        TrainConfig(crop_seconds=(0.5, 8.0))


def test_training_batches_replay_per_step():
    from audiosds.training.train_scorer import Cache, draw_batch

    rng = np.random.default_rng(0)
    cache = Cache(
        audio=rng.standard_normal((6, 16000)).astype(np.float16),
        combo=np.array([0, 1, 2, 0, 1, 2]),
        family=np.array([0, 1, 1, 0, 1, 1]),
        caption_table=np.array([[0, 1], [2, 3], [4, 5]]),
        caption_emb=rng.standard_normal((6, 384)).astype(np.float32),
        families=["a", "b"],
        val_audio=np.zeros((1, 16000), np.float32),
        val_family=np.zeros(1, np.int64),
        val_prompt_emb=np.zeros((2, 1, 384), np.float32),
    )
    cfg = TrainConfig(batch=5, clip_seconds=1.0, crop_seconds=(0.25, 1.0))
    audio, text, targets = draw_batch(cache, cfg, step=3)
    again = draw_batch(cache, cfg, step=3)
    assert all(torch.equal(u, v) for u, v in zip((audio, text, targets), again, strict=True))
    assert not torch.equal(draw_batch(cache, cfg, step=4)[1], text)
    assert 4000 <= audio.shape[1] <= 16000 and text.shape == (5, 384)
    # targets: row-stochastic, symmetric, mass only on same-family pairs
    torch.testing.assert_close(targets.sum(dim=1), torch.ones(5))
    torch.testing.assert_close(targets, targets.T)
    assert bool((targets.diagonal() >= 1 - cfg.family_smoothing).all())
    # noise floors: the same crops, gains and captions, plus white noise 20-30 dB below each row's RMS
    noisy_cfg = replace(cfg, noise_prob=1.0, noise_floor_db=(-30.0, -20.0))
    noisy, noisy_text, _ = draw_batch(cache, noisy_cfg, step=3)
    assert torch.equal(noisy_text, text) and noisy.shape == audio.shape
    floor_db = 10 * torch.log10((noisy - audio).square().mean(1) / audio.square().mean(1))
    assert bool(((floor_db > -31) & (floor_db < -19)).all()), floor_db
    with pytest.raises(ValueError, match="noise_prob"):
        TrainConfig(noise_prob=1.5)
