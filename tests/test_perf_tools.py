"""The measurement helpers of ``audiosds.bench.perf``: their logic, never their timings.

Clocks are faked where a helper reads one; memory helpers are checked against allocations of
known size; the floor is checked by counting the prior calls it makes.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch

from audiosds.bench import report, sao
from audiosds.bench.perf import measure, work
from audiosds.priors.analytic import AnalyticPrior

MIB = 2**20


# -- pure helpers ----------------------------------------------------------------------------------


def test_iteration_times_drops_the_unstamped_first_iteration_and_the_warmup():
    stamps = [10.0, 11.0, 13.0, 16.0, 20.0]  # iterations 1..4 lasted 1, 2, 3, 4
    assert measure.iteration_times(stamps, warmup=0) == [1.0, 2.0, 3.0, 4.0]
    assert measure.iteration_times(stamps, warmup=2) == [3.0, 4.0]
    with pytest.raises(ValueError, match="at least"):
        measure.iteration_times(stamps, warmup=4)
    with pytest.raises(ValueError, match="non-decreasing"):
        measure.iteration_times([0.0, 2.0, 1.0], warmup=0)


def test_median_time_skips_warmup_calls_and_takes_the_median(monkeypatch):
    clock = [0.0]
    durations = iter([100.0, 7.0, 1.0, 9.0, 3.0])  # one warm-up call, then four timed ones

    def fn() -> None:
        clock[0] += next(durations)

    monkeypatch.setattr(measure.time, "perf_counter", lambda: clock[0])
    assert measure.median_time(fn, warmup=1, repeats=4) == 5.0  # median of 7, 1, 9, 3
    with pytest.raises(StopIteration):
        fn()  # exactly warmup + repeats calls were made
    with pytest.raises(ValueError, match="repeats"):
        measure.median_time(fn, warmup=0, repeats=0)


@pytest.mark.parametrize("exponent", [0.0, 0.5, 1.0, 1.5, 2.0])
def test_loglog_slope_recovers_power_laws(exponent):
    xs = [1.0, 2.0, 4.0, 8.0, 30.0]
    ys = [3.0 * x**exponent for x in xs]
    assert measure.loglog_slope(xs, ys) == pytest.approx(exponent, abs=1e-9)


def test_loglog_slope_rejects_unusable_input():
    with pytest.raises(ValueError):
        measure.loglog_slope([1.0], [1.0])
    with pytest.raises(ValueError):
        measure.loglog_slope([1.0, 2.0], [1.0, 0.0])
    with pytest.raises(ValueError):
        measure.loglog_slope([2.0, 2.0], [1.0, 3.0])


def test_markdown_table_layout_and_ragged_rows():
    table = report.markdown_table(["a", "b"], [[1, "x"], [2.5, "y"]])
    assert table.splitlines() == ["| a | b |", "|---|---|", "| 1 | x |", "| 2.5 | y |"]
    with pytest.raises(ValueError, match=r"rows\[1\]"):
        report.markdown_table(["a", "b"], [[1, 2], [3]])


def test_plans_full_covers_the_issue_grid_and_quick_is_a_subset():
    for prior in work.PRIORS:
        full, quick = work.make_plan(prior, False), work.make_plan(prior, True)
        assert full.draws == (1, 4, 8) and full.steps == (1, 2, 4, 8)
        assert full.cli_iters is None and full.sources[0] == 2 and full.sources[-1] == 8
        assert set(quick.draws) <= set(full.draws) and set(quick.steps) <= set(full.steps)
        assert set(quick.lengths) <= set(full.lengths)
    assert work.make_plan("analytic", False).lengths[-1] == 30.0
    with pytest.raises(ValueError, match="prior"):
        work.make_plan("nope", False)


def test_make_mixture_is_seeded_mono_and_peak_normalised():
    a = work.make_mixture(3, 8000, 16000, seed=1)
    assert a.shape == (1, 8000) and a.dtype == np.float32
    assert np.abs(a).max() == pytest.approx(0.5)
    assert np.array_equal(a, work.make_mixture(3, 8000, 16000, seed=1))
    assert not np.array_equal(a, work.make_mixture(3, 8000, 16000, seed=2))


# -- memory ----------------------------------------------------------------------------------------


@pytest.mark.skipif(measure.rss_method() != "VmHWM reset", reason="needs a resettable VmHWM (Linux >= 4.0)")
def test_peak_rss_sees_each_block_alone():
    with measure.PeakRSS() as big:
        x = torch.ones(64 * MIB // 4)  # 64 MiB, touched
        del x
    with measure.PeakRSS() as small:
        y = torch.ones(32 * MIB // 4)  # below the earlier peak: a max-RSS delta would report 0
        del y
    with measure.PeakRSS() as none:
        pass
    assert 60 * MIB <= big.peak_bytes <= 80 * MIB
    assert 28 * MIB <= small.peak_bytes <= 48 * MIB
    assert none.peak_bytes <= 8 * MIB
    assert big.method == "VmHWM reset"


def test_run_command_reports_the_child_alone():
    exe = sys.executable
    wall, code, rss, last = measure.run_command(
        [exe, "-c", "import sys; sys.stderr.write('first\\nlast line\\n'); sys.exit(3)"], {}
    )
    assert code == 3 and last == "last line" and wall > 0
    _, code, big, _ = measure.run_command([exe, "-c", "b = bytearray(200 * 2**20)"], {})
    assert code == 0
    # the pytest process (torch imported) is far bigger than a bare interpreter: nothing is inherited
    assert rss < 64 * MIB <= 200 * MIB <= big


# -- the floor and the task runs -------------------------------------------------------------------


def test_floor_makes_exactly_the_prior_calls_of_one_sds_iteration():
    prior = AnalyticPrior().freeze()
    calls: dict[str, list] = {"encode": [], "denoise": [], "decode": []}
    encode, denoise, decode = prior.encode, prior._denoise_batch, prior.decode

    def spy(name, fn):
        def wrapped(*args):
            calls[name].append(args)
            return fn(*args)

        return wrapped

    prior.encode = spy("encode", encode)
    prior._denoise_batch = spy("denoise", denoise)
    prior.decode = spy("decode", decode)
    renders, draws, steps, n = 2, 3, 4, 640
    run = work.floor_call(prior, renders, n, draws, steps, ["a dog", "a cat"])
    assert all(not v for v in calls.values())  # nothing runs before the call
    run()
    rows = renders * draws
    assert [a[0].shape for a in calls["encode"]] == [(renders, 1, n)]
    assert [a[0].shape for a in calls["decode"]] == [(rows, prior.latent_channels, n // 64)]
    assert len(calls["denoise"]) == steps
    z, sigma, cond = calls["denoise"][0]
    assert z.shape == (2 * rows, prior.latent_channels, n // 64) and sigma.shape == (2 * rows,)
    # CFG halves in one batch, prompt-major: rows [0, 3) use "a dog", [3, 6) "a cat", then the null prompt
    expected = torch.stack([prior.prompt_mean(p) for p in ["a dog"] * 3 + ["a cat"] * 3 + [""] * 6])
    assert torch.equal(cond["mean"], expected)
    with pytest.raises(ValueError, match="prompts"):
        work.floor_call(prior, 2, n, 1, 1, ["a", "b", "c"])


def test_floor_with_the_encoder_backward_differentiates_the_encode_alone():
    prior = AnalyticPrior().freeze()
    seen = []
    encode, denoise = prior.encode, prior._denoise_batch

    def spy_encode(x):
        seen.append(("encode", x.requires_grad, torch.is_grad_enabled()))
        return encode(x)

    def spy_denoise(*args):
        seen.append(("denoise", args[0].requires_grad, torch.is_grad_enabled()))
        return denoise(*args)

    prior.encode, prior._denoise_batch = spy_encode, spy_denoise
    grads = []
    backward = torch.Tensor.backward

    def spy_backward(t, gradient=None, *args, **kwargs):
        grads.append(gradient.shape)
        return backward(t, gradient, *args, **kwargs)

    run = work.floor_call(prior, 2, 640, 1, 2, ["a dog"], decode=False, encode_backward=True)
    torch.Tensor.backward = spy_backward
    try:
        run()
    finally:
        torch.Tensor.backward = backward
    assert seen == [("encode", True, True), ("denoise", False, False), ("denoise", False, False)]
    assert grads == [(2, prior.latent_channels, 10)]  # one backward, of the encoded renders
    seen.clear()
    work.floor_call(prior, 2, 640, 1, 1, ["a dog"], decode=False)()
    assert seen == [("encode", False, False), ("denoise", False, False)]


def test_latent_synthesis_counts_the_encoder_backward_outside_the_floor(monkeypatch):
    prior = AnalyticPrior().freeze()
    sds, _ = work.task_sds(prior, "fm", 1, 1)
    monkeypatch.setattr(work, "task_sds", lambda *args: (sds, "latent"))
    m = work.measure(prior, "fm", 1, 1, 0.25, 1, warmup=0, repeats=2)
    assert m.outside_s is not None and m.outside_s >= 0
    assert m.ratio_with_outside == pytest.approx(m.iteration_s / (m.floor_s + m.outside_s))
    monkeypatch.setattr(work, "task_sds", lambda *args: (sds, "spectral"))
    spectral = work.measure(prior, "fm", 1, 1, 0.25, 1, warmup=0, repeats=2)
    assert spectral.outside_s is None and spectral.ratio_with_outside is None


def test_source_decode_differentiates_the_decoder_on_the_k_latents():
    prior = AnalyticPrior().freeze()
    seen = []
    decode = prior.decode

    def spy(z):
        seen.append((tuple(z.shape), z.requires_grad, torch.is_grad_enabled()))
        return decode(z)

    prior.decode = spy
    run = work.source_decode_call(prior, num_sources=3, num_samples=640)
    run()
    run()
    assert seen == [((3, prior.latent_channels, 10), True, True)] * 2


@pytest.mark.parametrize(("task", "sources"), [("fm", 1), ("impact", 1), ("separate", 3)])
def test_run_task_stamps_every_iteration_of_the_real_loop(task, sources):
    prior = AnalyticPrior().freeze()
    stamps = work.run_task(prior, task, draws=2, steps=2, seconds=0.25, num_sources=sources, iters=4)
    assert len(stamps) == 4
    assert stamps == sorted(stamps)


# -- the Stable-Audio-Open-shaped folder -----------------------------------------------------------


def test_sao_shaped_folder_loads_with_the_real_geometry_and_stated_sizes(tmp_path):
    from audiosds.priors.stable_audio import StableAudioConfig, StableAudioPrior

    config = sao.SaoShapedConfig(
        dit_layers=1,
        dit_heads=2,
        dit_kv_heads=1,
        dit_head_dim=8,
        cond_dim=16,
        time_proj_dim=16,
        max_seconds=1.0,
        vae_channel_multiples=(1, 1, 1, 1, 1),
        vae_decoder_channels=4,
        t5_layers=1,
        t5_width=16,
        t5_heads=2,
        t5_ff=32,
        text_tokens=40,
    )
    folder = sao.build_sao_shaped(tmp_path / "sao", config)
    prior = StableAudioPrior.from_config(StableAudioConfig(model=str(folder)))
    assert (prior.sample_rate, prior.channels, prior.latent_channels, prior.downsampling) == (
        44100,
        2,
        64,
        2048,
    )
    assert prior.max_text_tokens == 40
    assert prior.max_frames == 22  # ceil(1 s * 44100 / 2048)
    dit, vae, t5 = prior.transformer.config, prior.vae.config, prior.text_encoder.config
    assert (dit.num_layers, dit.num_attention_heads, dit.num_key_value_attention_heads) == (1, 2, 1)
    assert (dit.attention_head_dim, dit.cross_attention_input_dim, dit.time_proj_dim) == (8, 16, 16)
    assert tuple(vae.channel_multiples) == (1, 1, 1, 1, 1) and vae.decoder_channels == 4
    assert vae.encoder_hidden_size == 128  # 2 x 64 latent channels: posterior mean and scale
    assert (t5.num_layers, t5.d_model, t5.num_heads, t5.d_ff) == (1, 16, 2, 32)
    counts = sao.sao_parameter_counts(prior.transformer, prior.vae, prior.text_encoder)
    assert counts["transformer (StableAudioDiTModel)"][1] == sum(
        p.numel() for p in prior.transformer.parameters()
    )
    assert counts["transformer (StableAudioDiTModel)"][0] > 10**9  # the real DiT, for comparison


# -- the denoiser's training step (benchmarks/train_step.py) ---------------------------------------


def test_train_step_times_each_net_in_each_precision(capsys):
    from audiosds.bench import train_step

    assert train_step.parse_net("16,32") == ((16, 32), ())
    assert train_step.parse_net("16,32,64:2") == ((16, 32, 64), (2,))
    assert (
        train_step.main(
            ["--nets", "8,16", "8,16:1", "--batch", "2", "--frames", "16", "--warmup", "0", "--repeats", "1"]
        )
        == 0
    )
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.startswith("| 8-16")]
    assert [r.split(" | ")[0] for r in rows] == ["| 8-16", "| 8-16, attention at level (1,)"]
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert len(cells) == 4 and all(float(c) > 0 for c in cells[2:])  # float32 and bfloat16 seconds


@pytest.mark.parametrize("net", ["8,x", "8,12"])
def test_train_step_refuses_a_bad_net_in_one_line(net, capsys):
    from audiosds.bench import train_step

    with pytest.raises(SystemExit) as exc:
        train_step.main(["--nets", net])
    assert exc.value.code == 2
    assert "error:" in capsys.readouterr().err
