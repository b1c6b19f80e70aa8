"""Why does an embedded prior generate what it generates? Seven diagnostics of its weights.

    python benchmarks/prior_diagnostics.py [--weights DIR] [--seed 0] [--threads 1]
        [--sections fragility sdedit bands moments halves tones postfilter] [--clips N] [--out FILE.md]

* ``fragility``: held-out world clips are encoded, Gaussian noise of 0-20% of the latents'
  std (sigma_data) is added to the latents, and the decoded audio is scored: SI-SDR against the
  clip and the family judge's accuracy. A decoder that turns small latent errors into noise makes
  every sampled or SDS-edited latent sound like noise.
* ``sdedit``: the same clips' latents are noised to sigma (0.3, 1, 3, 10) and sampled back to 0
  (DPM-Solver++(2M), 20 steps, CFG 4) with a held-out prompt of the clip's own family, or of
  another family drawn at random. The judge then says how often the result is still the clip's
  family and how often it is the prompted one: a well-conditioned prior keeps its family under
  its own prompt at small sigma, and follows another family's prompt at large sigma.
* ``bands``: the same clips encoded and decoded with no noise; per family and frequency band,
  the energy of the reconstruction relative to the original's (dB, 0 = kept, -20 = a tenth of
  the amplitude lost). Bands holding under 1% of a family's energy are left blank. An
  autoencoder that low-passes its input shows it here before any judge does.
* ``moments``: where the family lives in the latent. The share of the latents' variance that
  family means explain (one-way ANOVA, between-family over total sum of squares), for the latent
  itself per (channel, frame), for its time mean per channel, and for the log RMS per channel (a
  second moment: the energy envelope). With F families and n clips a share of (F - 1) / (n - 1)
  is what no family effect at all gives. A family that shows only in second moments is invisible
  to a denoiser's posterior mean at high noise, where the text should decide. For reference, the
  same share for log band energies of the audio at the latent's frame rate (a phase-free
  description: what a latent could carry in its first moment).

* ``halves``: for a latent with envelope channels (``AutoencoderConfig.envelope_bands``), which half
  of a generated latent is wrong? One latent is generated per clip from a held-out prompt of the
  clip's family (DPM-Solver++(2M), 30 steps, CFG 4) and decoded whole, with the clip's own envelope
  channels in place of the generated ones, and with the clip's learned channels in place of the
  generated ones; then the clip's envelope under another family's learned channels shows which half
  the decoder follows. Then both envelopes (generated, the clip's) decoded with the learned channels set
  to zero: a decoder fine-tuned with ``drop_fraction`` renders band energies alone that way. Also: the
  std of each half, generated vs encoded.
* ``tones``: steady sines (``TONE_HZ``, amplitude ``TONE_AMPLITUDE``, 2 s) encoded and decoded. Per
  tone: the latent's RMS relative to the lowest tone's (how strongly the encoder responds), the
  energy of the middle second of the reconstruction within ``TONE_BAND`` of the tone against all the
  rest (dB: high = a clean tone; negative = mostly something else), and the strongest output
  frequency. A latent at R frames/s that carries a partial's phase rotates at its frequency modulo
  R; a decoder that renders it imprecisely leaks that rotation as low-frequency images.
* ``postfilter``: for a latent with envelope channels, the envelope post-filter
  (``AutoencoderConfig.postfilter``) on and off, whatever the weights ship with: the judge's accuracy
  on the clips' reconstructions and on one generation per clip (as in ``halves``), decoded by the
  decoder alone, with the gate, and with gate and fill.

The judge is ``audiosds.bench.judge`` (nearest centroid on spectral features, fitted on other
held-out world clips). Prints markdown; ``--out`` also writes it.
"""

from __future__ import annotations

import argparse
import math
import shlex
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import replace

import numpy as np
import torch

from ..metrics import si_sdr
from ..priors.embedded import EmbeddedConfig, EmbeddedPrior, EmbeddedWeightsError
from ..sampling import generate_latent, karras_sigmas, sample
from ..training.autoencoder import EnvelopePostFilter, zero_learned
from ..training.train_scorer import class_prompts
from ..world import FAMILIES
from ..world.dataset import sample_clips
from .judge import fit_world_judge
from .report import emit

SECTIONS = ("fragility", "sdedit", "bands", "moments", "halves", "tones", "postfilter")
NOISE_LEVELS = (0.0, 0.02, 0.05, 0.1, 0.2)  # latent noise std / sigma_data
SDEDIT_SIGMAS = (0.3, 1.0, 3.0, 10.0)
SECONDS = 2.0
BAND_EDGES_HZ = (0, 500, 1000, 2000, 3000, 4000, 6000, 8000)
BAND_MIN_SHARE = 0.01  # bands with less of a family's energy are not reported
BAND_WINDOW = 1024
TONE_HZ = (250.0, 440.0, 1000.0, 1234.0, 2000.0, 2345.0, 3210.0, 4000.0, 5123.0, 6500.0)
TONE_AMPLITUDE = 0.1  # -20 dBFS peak: the level of a world clip
TONE_BAND = 0.02  # +-2% of the tone's frequency counts as the tone


def band_energies(x: torch.Tensor, sample_rate: int, edges: Sequence[float]) -> torch.Tensor:
    """Energy per band summed over time, per clip (Hann STFT of ``BAND_WINDOW`` samples, hop / 4).
    The last band includes Nyquist.

    Shape:
        x (B, N) -> (B, len(edges) - 1)
    """
    window = torch.hann_window(BAND_WINDOW, dtype=x.dtype)
    power = torch.stft(x, BAND_WINDOW, BAND_WINDOW // 4, window=window, return_complex=True).abs().square()
    freqs = torch.arange(power.shape[1], dtype=x.dtype) * sample_rate / BAND_WINDOW
    columns = []
    for i, (lo, hi) in enumerate(zip(edges[:-1], edges[1:], strict=True)):
        last = i == len(edges) - 2
        inside = (freqs >= lo) & ((freqs <= hi) if last else (freqs < hi))
        columns.append(power[:, inside].sum(dim=(1, 2)))
    return torch.stack(columns, dim=1)


def bands(prior: EmbeddedPrior, x: torch.Tensor, families: list[str]) -> list[str]:
    edges = [e for e in BAND_EDGES_HZ if e < prior.sample_rate / 2] + [prior.sample_rate / 2]
    names = [f"{lo / 1000:g}-{hi / 1000:g} kHz" for lo, hi in zip(edges[:-1], edges[1:], strict=True)]
    with torch.inference_mode():
        y = prior.decode(prior.encode(x))[..., : x.shape[-1]]
    original, rebuilt = (
        band_energies(x[:, 0], prior.sample_rate, edges),
        band_energies(y[:, 0], prior.sample_rate, edges),
    )
    lines = [
        "## Reconstruction energy per band\n",
        "dB, reconstruction vs original; blank: the band holds < 1% of the family's energy.\n",
        "| family | " + " | ".join(names) + " |",
        "|---|" + "---|" * len(names),
    ]
    groups = [(f, [i for i, g in enumerate(families) if g == f]) for f in dict.fromkeys(families)]
    groups.append(("**all**", list(range(len(families)))))
    for name, rows in groups:
        e_x, e_y = original[rows].sum(dim=0), rebuilt[rows].sum(dim=0)
        share = e_x / e_x.sum()
        cells = [
            f"{10 * torch.log10(b / a).item():+.1f}" if s >= BAND_MIN_SHARE else ""
            for a, b, s in zip(e_x, e_y.clamp_min(1e-20), share, strict=True)
        ]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


def tone_purity(y: np.ndarray, sample_rate: int, freq_hz: float) -> tuple[float, float]:
    """Energy within ``TONE_BAND`` of ``freq_hz`` over the rest (dB) and the strongest frequency (Hz)
    of the Hann-windowed spectrum of ``y``.

    Shape:
        y (N,) -> float, float
    """
    power = np.abs(np.fft.rfft(y * np.hanning(len(y)))) ** 2
    freqs = np.fft.rfftfreq(len(y), 1.0 / sample_rate)
    near = np.abs(freqs - freq_hz) <= TONE_BAND * freq_hz
    ratio = 10 * np.log10((power[near].sum() + 1e-20) / (power[~near].sum() + 1e-20))
    return float(ratio), float(freqs[power.argmax()])


def tones(prior: EmbeddedPrior) -> list[str]:
    sr = prior.sample_rate
    t = torch.arange(int(SECONDS * sr)) / sr
    x = torch.stack([TONE_AMPLITUDE * torch.sin(2 * math.pi * f * t) for f in TONE_HZ])[:, None]
    with torch.inference_mode():
        z = prior.encode(x)
        y = prior.decode(z)[:, 0, : x.shape[-1]].numpy()
    rms = z.square().mean(dim=(1, 2)).sqrt()
    middle = slice(int(0.5 * sr), int(1.5 * sr))
    lines = [
        "## Steady tones through the autoencoder\n",
        f"Sines of amplitude {TONE_AMPLITUDE:g}, {SECONDS:g} s; tone-to-rest: energy within "
        f"{TONE_BAND:.0%} of the tone vs all other energy in the middle second of the reconstruction.\n",
        f"| tone (Hz) | latent RMS re {TONE_HZ[0]:g} Hz (dB) | tone-to-rest (dB) | strongest output (Hz) |",
        "|---|---|---|---|",
    ]
    for i, freq in enumerate(TONE_HZ):
        ratio, peak = tone_purity(y[i, middle], sr, freq)
        lines.append(f"| {freq:g} | {20 * math.log10(rms[i] / rms[0]):+.1f} | {ratio:+.1f} | {peak:.0f} |")
    return lines


def fragility(prior: EmbeddedPrior, judge, x: torch.Tensor, families: list[str], seed: int) -> list[str]:
    lines = [
        "## Decoder fragility: noise added to the latents of held-out clips\n",
        "| latent noise / sigma_data | SI-SDR dB | judge accuracy |",
        "|---|---|---|",
    ]
    generator = torch.Generator().manual_seed(seed)
    with torch.inference_mode():
        z = prior.encode(x)
        for level in NOISE_LEVELS:
            noisy = z + level * prior.sigma_data * torch.randn(z.shape, generator=generator)
            y = prior.decode(noisy)[..., : x.shape[-1]]
            sdr = float(si_sdr(y[:, 0], x[:, 0]).mean())
            labels = judge.classify([row[0].numpy() for row in y], prior.sample_rate)
            accuracy = np.mean([a == b for a, b in zip(labels, families, strict=True)])
            lines.append(f"| {level:g} | {sdr:.1f} | {accuracy:.1%} |")
    return lines


def sdedit(prior: EmbeddedPrior, judge, x: torch.Tensor, families: list[str], seed: int) -> list[str]:
    names = list(FAMILIES)
    prompts = class_prompts("heldout", 1, seed + 7)
    rng = np.random.default_rng(seed)
    other = [names[(names.index(f) + 1 + rng.integers(len(names) - 1)) % len(names)] for f in families]
    lines = [
        "## SDEdit: noise held-out latents to sigma, sample back with a prompt\n",
        "| sigma | prompt | judged as the clip's family | judged as the prompted family |",
        "|---|---|---|---|",
    ]
    with torch.inference_mode():
        z = prior.encode(x)
        for sigma in SDEDIT_SIGMAS:
            for which, target in (("own family", families), ("another family", other)):
                cond = prior.embed([prompts[f][0] for f in target])
                generator = torch.Generator().manual_seed(seed)
                start = z + sigma * torch.randn(z.shape, generator=generator)
                out = sample(
                    prior, start, karras_sigmas(20, prior.sigma_min, sigma), cond, 4.0, method="dpmpp_2m"
                )
                y = prior.decode(out)[..., : x.shape[-1]]
                labels = judge.classify([row[0].numpy() for row in y], prior.sample_rate)
                keep = np.mean([a == b for a, b in zip(labels, families, strict=True)])
                hit = np.mean([a == b for a, b in zip(labels, target, strict=True)])
                lines.append(f"| {sigma:g} | {which} | {keep:.0%} | {hit:.0%} |")
    return lines


def between_share(values: np.ndarray, labels: Sequence[str]) -> float:
    """Between-group over total sum of squares of ``values`` (n, ...) grouped by ``labels`` (n,),
    summed over the trailing axes."""
    labels = np.asarray(labels)
    grand = values.mean(axis=0)
    total = float(((values - grand) ** 2).sum())
    between = sum(
        float(((values[labels == g].mean(axis=0) - grand) ** 2).sum()) * int((labels == g).sum())
        for g in np.unique(labels)
    )
    return between / total


def log_band_energies(x: torch.Tensor, sample_rate: int, hop: int, bands: int = 16) -> np.ndarray:
    """Log energy in ``bands`` log-spaced bands (50 Hz to Nyquist) per STFT frame of ``hop`` samples.

    Shape:
        x (B, N) -> (B, bands, frames)
    """
    window = torch.hann_window(BAND_WINDOW, dtype=x.dtype)
    power = torch.stft(x, BAND_WINDOW, hop, window=window, return_complex=True).abs().square()  # (B, F, T)
    freqs = torch.arange(power.shape[1], dtype=torch.float64) * sample_rate / BAND_WINDOW
    edges = np.geomspace(50.0, sample_rate / 2, bands + 1)
    edges[-1] += 1.0  # keep Nyquist
    sums = [
        power[:, (freqs >= lo) & (freqs < hi)].sum(dim=1)
        for lo, hi in zip(edges[:-1], edges[1:], strict=True)
    ]
    return torch.log(torch.stack(sums, dim=1) + 1e-10).double().numpy()


def moments(prior: EmbeddedPrior, x: torch.Tensor, families: list[str]) -> list[str]:
    with torch.inference_mode():
        z = torch.cat([prior.encode(x[i : i + 32]) for i in range(0, len(x), 32)]).double().numpy()
    n, groups = len(families), len(set(families))
    log_rms = 0.5 * np.log((z**2).mean(axis=-1) + 1e-12)  # (n, D)
    rows = [
        ("latent value per (channel, frame)", between_share(z, families)),
        ("time mean per channel", between_share(z.mean(axis=-1), families)),
        ("log RMS per channel (second moment)", between_share(log_rms, families)),
    ]
    energy_in_mean = float((z.mean(axis=-1) ** 2).sum() * z.shape[-1] / (z**2).sum())
    # reference: a phase-free description of the same clips at the latent's frame rate
    log_bands = log_band_energies(x[:, 0], prior.sample_rate, hop=prior.downsampling)  # (n, bands, frames)
    rows.append(
        (
            f"reference: log energy of {log_bands.shape[1]} log-spaced bands of the audio per (band, frame)",
            between_share(log_bands, families),
        )
    )
    return [
        "## Where the family lives in the latent\n",
        f"{n} clips, {groups} families; share of variance explained by the family (chance level "
        f"(F - 1) / (n - 1) = {(groups - 1) / (n - 1):.1%}). The time mean holds {energy_in_mean:.1%} of "
        "the latents' energy.\n",
        "| statistic | share explained by the family |",
        "|---|---|",
        *(f"| {name} | {share:.1%} |" for name, share in rows),
    ]


def _swap(learned_from: torch.Tensor, envelope_from: torch.Tensor, learned: int) -> torch.Tensor:
    """The first ``learned`` channels of one latent with the remaining (envelope) channels of another.

    Shape:
        (B, D, T), (B, D, T) -> (B, D, T)
    """
    return torch.cat([learned_from[:, :learned], envelope_from[:, learned:]], dim=1)


def halves_table(
    decode, classify, generated: torch.Tensor, real: torch.Tensor, families: list[str], learned: int
) -> list[str]:
    """Rows of the ``halves`` section. ``generated[i]`` was prompted with ``families[i]`` and ``real[i]``
    encodes a clip of that family; ``decode`` maps latents to audio, ``classify`` audio to families.
    The "other family" latent of row i is ``real`` of the next row with another family.

    Shape:
        generated (B, D, T), real (B, D, T)
    """
    n = len(families)
    other = [next(j for k in range(1, n + 1) if families[j := (i + k) % n] != families[i]) for i in range(n)]

    def accuracy(z: torch.Tensor, truth: Sequence[str]) -> float:
        return float(np.mean([a == b for a, b in zip(classify(decode(z)), truth, strict=True)]))

    crossed = _swap(real[other], real, learned)
    other_families = [families[j] for j in other]
    cells = [
        ("generated latent", accuracy(generated, families)),
        (
            "generated learned channels + the clip's envelope",
            accuracy(_swap(generated, real, learned), families),
        ),
        (
            "the clip's learned channels + generated envelope",
            accuracy(_swap(real, generated, learned), families),
        ),
        ("the clip's latent (plain reconstruction)", accuracy(real, families)),
        (
            "another family's learned channels + the clip's envelope: judged as the envelope's",
            accuracy(crossed, families),
        ),
        ("... judged as the learned channels' family", accuracy(crossed, other_families)),
        (
            "learned channels zeroed + generated envelope (envelope-only decoding)",
            accuracy(zero_learned(generated, learned), families),
        ),
        ("learned channels zeroed + the clip's envelope", accuracy(zero_learned(real, learned), families)),
    ]
    stds = [
        (name, float(part.std()), float(gen.std()))
        for name, part, gen in (
            ("learned", real[:, :learned], generated[:, :learned]),
            ("envelope", real[:, learned:], generated[:, learned:]),
        )
    ]
    return [
        "## Which half of a generated latent is wrong\n",
        "| decoded latent | judged as the prompted family |",
        "|---|---|",
        *(f"| {name} | {value:.1%} |" for name, value in cells),
        "",
        "| channels | std, encoded clips | std, generated |",
        "|---|---|---|",
        *(f"| {name} | {a:.3f} | {b:.3f} |" for name, a, b in stds),
    ]


def encoded_and_generated(
    prior: EmbeddedPrior, x: torch.Tensor, families: list[str], seed: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """The clips' latents, and one latent per clip generated from a held-out prompt of its family
    (DPM-Solver++(2M), 30 steps, CFG 4; seeded per row)."""
    prompts = class_prompts("heldout", 1, seed + 11)
    frames = prior.autoencoder.latent_frames(x.shape[-1])
    with torch.inference_mode():
        real = torch.cat([prior.encode(x[i : i + 32]) for i in range(0, len(x), 32)])
        generated = torch.cat(
            [
                generate_latent(
                    prior,
                    prior.embed([prompts[family][0]]),
                    frames,
                    30,
                    4.0,
                    "dpmpp_2m",
                    torch.Generator().manual_seed(seed * 1000 + i),
                )
                for i, family in enumerate(families)
            ]
        )
    return real, generated


def _decoded(
    decode: Callable[[torch.Tensor], torch.Tensor], z: torch.Tensor, length: int
) -> list[np.ndarray]:
    with torch.inference_mode():
        audio = torch.cat([decode(z[i : i + 16]) for i in range(0, len(z), 16)])
    return [row[0, :length].numpy() for row in audio]


def halves(prior: EmbeddedPrior, judge, x: torch.Tensor, families: list[str], seed: int) -> list[str]:
    learned = prior.autoencoder.config.latent_channels
    if prior.latent_channels == learned:
        return ["## Which half of a generated latent is wrong\n", "Not applicable: no envelope channels.\n"]
    real, generated = encoded_and_generated(prior, x, families, seed)

    def decode(z: torch.Tensor) -> list[np.ndarray]:
        return _decoded(prior.decode, z, x.shape[-1])

    return halves_table(
        decode, lambda audio: judge.classify(audio, prior.sample_rate), generated, real, families, learned
    )


def postfilter_table(
    decoders: dict[str, Callable[[torch.Tensor], list[np.ndarray]]],
    classify: Callable[[list[np.ndarray]], list[str]],
    latents: dict[str, torch.Tensor],
    families: list[str],
) -> list[str]:
    """Rows of the ``postfilter`` section: the judge's accuracy for every set of latents (rows) decoded
    every way (columns); row i of each set belongs to ``families[i]``."""

    def accuracy(decode: Callable[[torch.Tensor], list[np.ndarray]], z: torch.Tensor) -> float:
        return float(np.mean([a == b for a, b in zip(classify(decode(z)), families, strict=True)]))

    return [
        "## The envelope post-filter on and off\n",
        "| latents | " + " | ".join(decoders) + " |",
        "|---|" + "---|" * len(decoders),
        *(
            f"| {name} | " + " | ".join(f"{accuracy(d, z):.1%}" for d in decoders.values()) + " |"
            for name, z in latents.items()
        ),
    ]


def postfilter(prior: EmbeddedPrior, judge, x: torch.Tensor, families: list[str], seed: int) -> list[str]:
    ae = prior.autoencoder
    if ae.envelope is None:
        return ["## The envelope post-filter on and off\n", "Not applicable: no envelope channels.\n"]
    filters = {
        mode: EnvelopePostFilter(replace(ae.config, postfilter=mode), ae.envelope)
        for mode in ("gate", "gate_fill")
    }
    ways = {
        "decoder alone": ae.decoder,
        "gate": lambda z: filters["gate"](ae.decoder(z), z),
        "gate + fill": lambda z: filters["gate_fill"](ae.decoder(z), z),
    }
    decoders = {name: (lambda z, way=way: _decoded(way, z, x.shape[-1])) for name, way in ways.items()}
    real, generated = encoded_and_generated(prior, x, families, seed)
    latents = {"reconstructions": real, "generations (judged as the prompted family)": generated}
    return [
        *postfilter_table(
            decoders, lambda audio: judge.classify(audio, prior.sample_rate), latents, families
        ),
        "",
        f"Shipped setting of these weights: `postfilter={ae.config.postfilter!r}`, fill above "
        f"{ae.config.postfilter_fill_hz:g} Hz.",
    ]


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--weights", default=None, help="embedded prior weights folder (default: shipped)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--clips", type=int, default=93, help="held-out clips (3 per family by default)")
    parser.add_argument("--sections", nargs="+", choices=SECTIONS, default=list(SECTIONS))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default=None, help="also write the markdown here")
    args = parser.parse_args(argv)
    if args.clips < 1:
        parser.error(f"--clips: expected >= 1, got {args.clips}")
    torch.set_num_threads(args.threads)
    start = time.monotonic()
    try:
        prior = EmbeddedPrior(EmbeddedConfig(weights_dir=args.weights)).freeze()
    except EmbeddedWeightsError as err:
        sys.exit(f"error: {err}")
    needs_judge = bool({"fragility", "sdedit", "halves", "postfilter"} & set(args.sections))
    judge = fit_world_judge(20, SECONDS, prior.sample_rate, seed=args.seed + 1) if needs_judge else None
    clips = sample_clips("heldout", args.clips, SECONDS, prior.sample_rate, seed=args.seed + 3)
    x = torch.from_numpy(np.stack([c.audio for c in clips]))[:, None]
    families = [c.family for c in clips]
    command = "python benchmarks/prior_diagnostics.py " + shlex.join(sys.argv[1:] if argv is None else argv)
    lines = [
        "# Embedded-prior diagnostics\n",
        f"`{command.strip()}`; {len(clips)} held-out clips of {SECONDS:g} s; judge fitted on 20 other "
        f"held-out clips per family; seed {args.seed}; weights {args.weights or 'shipped'}.\n",
    ]
    if "fragility" in args.sections:
        lines += [*fragility(prior, judge, x, families, args.seed), ""]
    if "sdedit" in args.sections:
        lines += [*sdedit(prior, judge, x, families, args.seed), ""]
    if "bands" in args.sections:
        lines += [*bands(prior, x, families), ""]
    if "moments" in args.sections:
        lines += [*moments(prior, x, families), ""]
    if "halves" in args.sections:
        lines += [*halves(prior, judge, x, families, args.seed), ""]
    if "tones" in args.sections:
        lines += [*tones(prior), ""]
    if "postfilter" in args.sections:
        lines += [*postfilter(prior, judge, x, families, args.seed), ""]
    lines.append(f"Total time {time.monotonic() - start:.0f} s.")
    emit(lines, args.out)


if __name__ == "__main__":
    main()
