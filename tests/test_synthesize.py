import pytest
import torch

import audiosds.priors as priors
from audiosds.renderers.base import ParamRange, Renderer
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
