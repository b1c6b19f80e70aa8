import pytest
import torch

import audiosds.priors as priors
from audiosds.renderers.base import ParamRange, Renderer
from audiosds.scorer import PromptScorer
from audiosds.sds import SDSConfig
from audiosds.tasks.synthesize import SynthesizeConfig, synthesize


class FreeWave(Renderer):
    """A renderer whose parameters are the samples themselves, bounded to [-2, 2]."""

    def __init__(self, num_samples: int, sample_rate: int = 16000, batch: int = 1, seed: int = 0) -> None:
        super().__init__()
        self.sample_rate, self.num_samples = sample_rate, num_samples
        g = torch.Generator().manual_seed(seed)
        self.add_param(
            "wave", ParamRange(-2.0, 2.0, "amplitude"), 0.1 * torch.randn(batch, 1, num_samples, generator=g)
        )

    def render(self, params):
        return params["wave"]


@pytest.fixture(scope="module")
def prior():
    return priors.build("analytic")


def test_synthesize_drives_a_free_waveform_to_the_prompts_mean(prior):
    # Decoder-SDS with CFG 1: whatever sigma is drawn, the fixed point of the loop is the prompt's mean.
    renderer = FreeWave(num_samples=64 * 8)
    prompt = "a warm bass note"
    target = prior.decode(prior.prompt_mean(prompt)[None, :, None].expand(1, -1, 8))  # (1, 1, N)
    start = (prior.decode(prior.encode(renderer())) - target).norm()
    result = synthesize(
        renderer,
        prior,
        prompt,
        SynthesizeConfig(iters=300, lr=0.05, seed=1),
        SDSConfig(cfg_scale=1.0, t_min=0.6, t_max=0.95, num_draws=4),
    )
    end = (prior.decode(prior.encode(result.audio)) - target).norm()
    # the projection onto the latent subspace lands on the mean within 10% of where it started
    assert end < 0.1 * start
    assert len(result.history) == 300
    assert all(torch.isfinite(torch.tensor(row["loss"])) for row in result.history)


def test_synthesize_leaves_the_prior_untouched_and_is_deterministic(prior):
    before = {k: v.clone() for k, v in prior.state_dict().items()}
    runs = []
    for _ in range(2):
        renderer = FreeWave(num_samples=256, seed=3)
        runs.append(
            synthesize(renderer, prior, "rain", SynthesizeConfig(iters=5, seed=4), SDSConfig(num_draws=2))
        )
    torch.testing.assert_close(runs[0].audio, runs[1].audio, rtol=0, atol=0)
    assert [r["sigma"] for r in runs[0].history] == [r["sigma"] for r in runs[1].history]
    for key, value in prior.state_dict().items():
        torch.testing.assert_close(value, before[key], rtol=0, atol=0)
    assert all(p.grad is None for p in prior.parameters())


def test_synthesize_validates_its_inputs(prior):
    with pytest.raises(ValueError, match="sample rate"):
        synthesize(FreeWave(256, sample_rate=8000), prior, "rain", SynthesizeConfig(iters=1))
    with pytest.raises(ValueError, match="prompt"):
        synthesize(FreeWave(256), prior, "  ", SynthesizeConfig(iters=1))
    with pytest.raises(ValueError, match="iters"):
        SynthesizeConfig(iters=0)
    with pytest.raises(ValueError, match="lr"):
        SynthesizeConfig(lr=float("nan"))


def test_default_sds_is_synthesis_own_and_history_shows_its_range(prior):
    from audiosds.tasks.synthesize import SYNTHESIS_SDS, synthesis_sds

    sds = synthesis_sds()
    assert (sds.mode, sds.t_min, sds.t_max, sds.cfg_scale) == ("spectral", 0.15, 0.6, 12.0)
    assert synthesis_sds(cfg_scale=2.0).cfg_scale == 2.0 and synthesis_sds(cfg_scale=2.0).mode == "spectral"
    assert SYNTHESIS_SDS["mode"] == "spectral"  # the module constant is what the CLI records
    result = synthesize(FreeWave(num_samples=256), prior, "rain", SynthesizeConfig(iters=20, seed=2))
    low, high = float(prior.sigma_of_t(torch.tensor(0.15))), float(prior.sigma_of_t(torch.tensor(0.6)))
    sigmas = [r["sigma"] for r in result.history]
    assert all(low * (1 - 1e-5) <= s <= high * (1 + 1e-5) for s in sigmas)  # t drawn in [0.15, 0.6]


class LoudnessScorer(PromptScorer):
    """A scorer that likes quiet audio: score = -RMS (an oracle whose best iterate is known)."""

    sample_rate = 16000

    def embed_audio(self, audio, sample_rate=None):
        rms = torch.as_tensor(audio).float().reshape(len(audio), -1).square().mean(dim=1).sqrt()
        return torch.stack([-rms, torch.zeros_like(rms)], dim=1)  # (B, 2); the text row is (1, 0)

    def embed_text(self, prompts):
        return torch.tensor([[1.0, 0.0]]).expand(len(prompts), -1)


def _louder_every_step(prior):
    # Decoder-SDS toward a loud prompt mean with CFG 1 makes the render louder step by step, so the
    # quiet-loving scorer's best iterate is the first one
    renderer = FreeWave(num_samples=256, batch=3, seed=5)
    return renderer, SDSConfig(cfg_scale=1.0, t_min=0.6, t_max=0.95)


def test_the_best_iterate_is_reported_with_the_final_score_beside_it(prior):
    renderer, sds = _louder_every_step(prior)
    with torch.no_grad():
        start = renderer().clone()  # (3, 1, 256)
    result = synthesize(
        renderer,
        prior,
        "loud",
        SynthesizeConfig(iters=30, seed=1, score_every=5),
        sds,
        scorer=LoudnessScorer(),
    )
    scores = result.scores
    start_scores = [-float(x.square().mean().sqrt()) for x in start]
    assert scores["reported"] == "best" and scores["initial_particles"] == pytest.approx(
        start_scores, abs=1e-6
    )
    # the reported render is never worse than any start, and here it is the quietest start itself
    assert scores["reported_score"] >= max(scores["initial_particles"]) - 1e-9
    assert scores["particle"] == max(range(3), key=start_scores.__getitem__) and scores["iteration"] == 0
    torch.testing.assert_close(result.audio, start[scores["particle"] : scores["particle"] + 1])
    assert scores["final"] < scores["reported_score"]  # the run drifted away from it: louder at the end
    assert result.final_audio.shape == (3, 1, 256) and len(result.params["wave"]["value"]) == 1
    scored = [row for row in result.history if row["score"] is not None]
    assert [int(r["iter"]) for r in scored] == [0, 5, 10, 15, 20, 25, 29]
    assert all(r["score"] is None and r["best_score"] is None for r in result.history if r not in scored)
    assert all(r["best_score"] == pytest.approx(scores["reported_score"]) for r in scored)


def test_keep_best_off_reports_the_last_iterate(prior):
    renderer, sds = _louder_every_step(prior)
    config = SynthesizeConfig(iters=30, seed=1, score_every=5, keep_best=False)
    result = synthesize(renderer, prior, "loud", config, sds, scorer=LoudnessScorer())
    assert result.scores["reported"] == "final" and result.scores["iteration"] == 30
    torch.testing.assert_close(result.audio, result.final_audio[:1])
    assert result.scores["reported_score"] == result.scores["final"] < result.scores["initial"]
