import pytest
import torch
from torch import nn

import audiosds.priors as priors
import audiosds.renderers as renderers
from audiosds.sds import SDSConfig
from audiosds.tasks.loop import LoopConfig, LoopState, load_checkpoint, run_loop, save_checkpoint
from audiosds.tasks.synthesize import SynthesizeConfig, synthesize


class Quadratic(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.tensor([1.0, -2.0, 3.0]))


def make(lr=0.1):
    module = Quadratic()
    return module, torch.optim.Adam(module.parameters(), lr=lr), torch.Generator().manual_seed(0)


def test_a_nan_loss_never_reaches_the_parameters():
    module, opt, gen = make()
    seen = {}

    def step(it):
        seen[it] = module.w.detach().clone()
        loss = (module.w**2).sum()
        return (loss * float("nan") if it == 2 else loss), {"loss": float(loss)}

    outcome = run_loop(module, opt, gen, 5, step)
    assert outcome.status == "completed"
    assert [row["skipped"] for row in outcome.state.history] == [0, 0, 1, 0, 0]
    # the bad step left the parameters exactly as they were
    torch.testing.assert_close(seen[3], seen[2], rtol=0, atol=0)
    assert not torch.equal(seen[2], seen[1])


def test_a_nan_gradient_is_refused_and_too_many_stop_the_run():
    module, opt, gen = make()
    start = module.w.detach().clone()

    def step(it):
        # a finite loss whose gradient is NaN: sqrt of negative numbers, masked afterwards
        loss = torch.sqrt(module.w - 10.0).nan_to_num(0.0).sum()
        assert torch.isfinite(loss)
        return loss, {"loss": float(loss)}

    outcome = run_loop(module, opt, gen, 50, step, LoopConfig(max_bad_steps=4))
    assert outcome.status == "diverged"
    assert len(outcome.state.history) == 4
    assert all(row["skipped"] == 1 for row in outcome.state.history)
    assert "4 consecutive" in outcome.message
    torch.testing.assert_close(module.w.detach(), start, rtol=0, atol=0)


def test_checkpoints_hold_no_pickled_objects_and_round_trip(tmp_path):
    module, opt, gen = make()
    run_loop(module, opt, gen, 3, lambda it: ((module.w**2).sum(), {"loss": 1.0}))
    path = tmp_path / "c.pt"
    save_checkpoint(path, module, opt, gen, LoopState(3, 0, [{"loss": 1.0}]))
    module2, opt2, gen2 = make()
    state = load_checkpoint(path, module2, opt2, gen2)
    assert state.iteration == 3 and state.history == [{"loss": 1.0}]
    torch.testing.assert_close(module2.w, module.w, rtol=0, atol=0)
    assert torch.equal(gen2.get_state(), gen.get_state())
    path.write_bytes(b"garbage")
    with pytest.raises(ValueError, match="not a usable checkpoint"):
        load_checkpoint(path, module2, opt2, gen2)
    with pytest.raises(ValueError, match="no checkpoint"):
        load_checkpoint(tmp_path / "missing.pt", module2, opt2, gen2)


def test_stopped_then_resumed_synthesis_is_bit_identical(tmp_path):
    prior = priors.build("analytic")
    cfg = SynthesizeConfig(iters=12, seed=5)
    sds = SDSConfig(num_draws=2, anneal="linear")
    opts = {"sample_rate": prior.sample_rate, "seconds": 0.1, "seed": 2}

    whole = synthesize(renderers.build("fm", **opts), prior, "a bell", cfg, sds, checkpoint=tmp_path / "a.pt")

    calls = iter(range(100))
    stop_after_5 = lambda: next(calls) >= 4  # noqa: E731 - stops after the 5th iteration
    part = synthesize(
        renderers.build("fm", **opts),
        prior,
        "a bell",
        cfg,
        sds,
        loop=LoopConfig(checkpoint_every=0),
        checkpoint=tmp_path / "b.pt",
        should_stop=stop_after_5,
    )
    assert part.status == "stopped" and len(part.history) == 5
    torch.manual_seed(1234)  # the resumed run must not depend on the global RNG's state
    rest = synthesize(
        renderers.build("fm", **opts), prior, "a bell", cfg, sds, checkpoint=tmp_path / "b.pt", resume=True
    )
    assert rest.status == "completed" and len(rest.history) == 12
    assert torch.equal(rest.audio, whole.audio)
    assert rest.history == whole.history


@pytest.mark.parametrize("stop_at", [3, 9])  # inside the first window, inside the second
def test_stopped_then_resumed_separation_is_bit_identical(tmp_path, stop_at):
    import numpy as np

    from audiosds.tasks.separate import SeparateConfig, separate

    prior = priors.build("analytic")
    rng = np.random.default_rng(0)
    mixture = (0.1 * rng.standard_normal((1, 24000))).astype(np.float32)  # 1.5 s: two 1 s windows
    cfg = SeparateConfig(iters=6, max_seconds=1.0, overlap_seconds=0.25, parametrization="latent")
    args = (mixture, 16000, prior, ["a bell", "rain"], cfg, SDSConfig(num_draws=2))

    whole = separate(*args)
    calls = iter(range(100))
    part = separate(
        *args,
        loop=LoopConfig(checkpoint_every=2),
        checkpoint_dir=tmp_path,
        should_stop=lambda: next(calls) >= stop_at - 1,
    )
    assert part.status == "stopped" and len(part.history) == stop_at
    assert part.sources.shape == whole.sources.shape  # full-length outputs even when stopped
    torch.manual_seed(99)
    rest = separate(*args, loop=LoopConfig(checkpoint_every=2), checkpoint_dir=tmp_path, resume=True)
    assert rest.status == "completed"
    assert rest.history == whole.history
    np.testing.assert_array_equal(rest.sources, whole.sources)
