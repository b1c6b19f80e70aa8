"""Speech enhancement benchmark (issue 30, "Must show": enhance).

    python benchmarks/enhance.py --mixtures 24 --seed 0 [--seconds 3] [--sep NAME=VALUE ...]
        [--sds NAME=VALUE ...] [--dnsmos] [--out enhance.md]

Mixtures: clean speech (excerpts of the LibriSpeech clips ``speech1-3`` in ``../shared/data/real``
and sequences of held-out spoken digits, takes 45-49, from the sounds folder) plus a real noise
(held-out ESC-10 fold 5: rain, helicopter, chainsaw, fire crackling) at 0 and 5 dB SNR, at the
prior's rate. Mixture i takes speech item i, noise class i mod 4 (the clip drawn from the seed) and
SNR 0 dB for even i // 4, 5 dB for odd.

Reported per mixture and on average: SI-SDR of the noisy input, of ``enhance``'s output and of an
oracle (the ideal ratio mask |S| / (|S| + |N|) of the true speech and noise over the noisy STFT),
and the improvements over the input; with ``--dnsmos``, DNSMOS P.835 overall (the ``speechmos``
package's ONNX models, at 16 kHz) of the same three. Prints markdown.
"""

from __future__ import annotations

import argparse
import functools
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..audio import load_audio, resample
from ..metrics import si_sdr
from ..priors import build
from ..renderers.sources import apply_masks
from ..sds import SDSConfig
from ..spectral import magnitude, stft
from ..tasks.enhance import DEFAULT_PROMPT, NOISE_PROMPT, enhance, enhance_config, enhance_sds
from ..world.real import DIGITS, VOCABULARIES, load_catalogue
from . import log
from .keys import overrides

DATA_DIR = Path(__file__).resolve().parents[4] / "shared/data"  # <repo>/src/audiosds/bench/ -> <repo>/..
NOISES = ("rain", "helicopter", "chainsaw", "fire_crackling")
SNRS_DB = (0.0, 5.0)
SPEECH_FILES = ("speech1", "speech2", "speech3")
DIGIT_GAP_S = 0.12  # silence between spoken digits in a digit sequence
ORACLE_FFT, ORACLE_HOP = 1024, 256


@dataclass(frozen=True)
class Mixture:
    name: str
    noise_class: str
    speech: np.ndarray  # (N,) at the prior's rate
    noise: np.ndarray  # (N,), scaled to the SNR

    @property
    def noisy(self) -> np.ndarray:
        return self.speech + self.noise


def _mono(path: Path, sample_rate: int) -> np.ndarray:
    audio, sr = load_audio(path)
    return resample(audio, sr, sample_rate).mean(axis=0)


def _fit(x: np.ndarray, n: int) -> np.ndarray:
    return np.pad(x[:n], (0, max(0, n - x.shape[0])))


@functools.cache
def _catalogue(data_dir: Path) -> tuple:
    return tuple(load_catalogue(data_dir))


def speech_item(index: int, seconds: float, sample_rate: int, data: Path) -> tuple[str, np.ndarray]:
    """Speech item ``index``: even indices are LibriSpeech excerpts, odd ones digit sequences."""
    n = round(seconds * sample_rate)
    if index % 2 == 0:
        stem = SPEECH_FILES[(index // 2) % len(SPEECH_FILES)]
        mono = _mono(data / "real" / f"{stem}.ogg", sample_rate)
        offset = (index // (2 * len(SPEECH_FILES))) * n  # later rounds take later excerpts
        return f"{stem}@{offset / sample_rate:.0f}s", _fit(mono[offset % max(1, mono.shape[0] - n) :], n)
    digits = sorted(
        (c for c in _catalogue(data / "sounds") if c.cls == "spoken_digit" and c.split == "heldout"),
        key=lambda c: c.path.name,
    )
    speakers = sorted({c.path.stem.split("_")[1] for c in digits})
    speaker = speakers[(index // 2) % len(speakers)]
    own = [c for c in digits if c.path.stem.split("_")[1] == speaker]
    rng = np.random.default_rng(index)
    pieces, words, total = [], [], 0
    gap = np.zeros(round(DIGIT_GAP_S * sample_rate), dtype=np.float32)
    while total < n:
        clip = own[int(rng.integers(len(own)))]
        audio = _mono(clip.path, sample_rate)
        pieces += [audio, gap]
        words.append(DIGITS[clip.digit])
        total += audio.shape[0] + gap.shape[0]
    return f"digits({speaker}: {' '.join(words[:3])}...)", _fit(np.concatenate(pieces), n)


def noise_clip(index: int, seed: int, seconds: float, sample_rate: int, data: Path) -> tuple[str, np.ndarray]:
    cls = NOISES[index % len(NOISES)]
    clips = sorted(c.path for c in _catalogue(data / "sounds") if c.cls == cls and c.split == "heldout")
    path = clips[(index // len(NOISES) + seed) % len(clips)]
    return f"{cls}:{path.stem}", _fit(_mono(path, sample_rate), round(seconds * sample_rate))


def make_mixture(index: int, args: argparse.Namespace, sample_rate: int) -> Mixture:
    speech_name, speech = speech_item(index, args.seconds, sample_rate, args.data)
    noise_name, noise = noise_clip(index, args.seed, args.seconds, sample_rate, args.data)
    snr = SNRS_DB[(index // len(NOISES)) % len(SNRS_DB)]
    speech = speech * (0.1 / (np.sqrt(np.mean(speech**2)) + 1e-9))  # speech at -20 dBFS RMS
    gain = np.sqrt(np.mean(speech**2) / (np.mean(noise**2) + 1e-12)) * 10 ** (-snr / 20)
    return Mixture(
        f"{speech_name} + {noise_name} @ {snr:g} dB",
        noise_name.split(":")[0],
        speech.astype(np.float32),
        (gain * noise).astype(np.float32),
    )


def esc_caption(cls: str) -> str:
    """The noise class's own plain caption, e.g. "rain falling"."""
    return VOCABULARIES[cls].fixed[0].text


def oracle(mix: Mixture) -> np.ndarray:
    """The ideal ratio mask |S| / (|S| + |N|) over the noisy STFT: the speech estimate."""
    sources = torch.from_numpy(np.stack([mix.speech, mix.noise])[:, None]).double()  # (2, 1, N)
    mags = magnitude(stft(sources, ORACLE_FFT, ORACLE_HOP))
    masks = mags / (mags.sum(dim=0, keepdim=True) + 1e-12)
    noisy = stft(torch.from_numpy(mix.noisy[None]).double(), ORACLE_FFT, ORACLE_HOP)
    return apply_masks(masks, noisy, ORACLE_FFT, ORACLE_HOP, mix.noisy.shape[0])[0, 0].numpy()


def dnsmos(audio: np.ndarray, sample_rate: int) -> float:
    """DNSMOS P.835 overall (OVRL) of mono ``audio``, at 16 kHz."""
    from speechmos import dnsmos as model

    x = resample(audio[None].astype(np.float32), sample_rate, 16000)[0]
    x = x / max(1.0, float(np.abs(x).max()))
    return float(model.run(x, sr=16000)["ovrl_mos"])


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--prior", default="embedded-mel")
    parser.add_argument("--mixtures", type=int, default=24)
    parser.add_argument("--first", type=int, default=0, help="index of the first mixture")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--prompt", default=DEFAULT_PROMPT)
    parser.add_argument(
        "--noise-prompt",
        default=NOISE_PROMPT,
        help="the catch-all's prompt; auto: suggested (enhance's own); truth: the noise class's caption",
    )
    parser.add_argument("--sep", nargs="+", metavar="NAME=VALUE", help="SeparateConfig fields over enhance's")
    parser.add_argument("--sds", nargs="+", metavar="NAME=VALUE", help="SDSConfig fields over enhance's")
    parser.add_argument("--dnsmos", action="store_true", help="also DNSMOS (needs the speechmos package)")
    parser.add_argument("--data", type=Path, default=DATA_DIR, help="folder holding sounds/ and real/")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    try:
        args.sep_overrides = overrides(args.sep, type(enhance_config(args.prior)), "--sep")
        enhance_config(args.prior, **args.sep_overrides)
        args.sds_overrides = overrides(args.sds, SDSConfig, "--sds")
        enhance_sds(args.prior, **args.sds_overrides)
    except (TypeError, ValueError) as err:
        parser.error(str(err))
    if not (args.data / "sounds").is_dir() or not (args.data / "real").is_dir():
        parser.error(f"--data {args.data}: expected sounds/ and real/ folders")
    return args


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    prior = build(args.prior)
    config = enhance_config(prior, seed=args.seed, **args.sep_overrides)
    sds = enhance_sds(prior, **args.sds_overrides)
    cmd = "python benchmarks/enhance.py " + " ".join(sys.argv[1:] if argv is None else argv)
    rows, header = [], ["mixture", "SI-SDR in", "enhanced", "oracle"]
    if args.dnsmos:
        header += ["DNSMOS in", "enhanced", "oracle"]
    lines = [
        "## Speech enhancement",
        "",
        f"Command: `{cmd}`; prior {args.prior} ({prior.sample_rate} Hz); prompts {args.prompt!r} vs "
        f"{args.noise_prompt!r}; {config.iters} iterations; {args.threads} thread(s).",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
    ]
    print("\n".join(lines), flush=True)
    start = time.perf_counter()
    for i in range(args.first, args.first + args.mixtures):
        mix = make_mixture(i, args, prior.sample_rate)
        noise_prompt = esc_caption(mix.noise_class) if args.noise_prompt == "truth" else args.noise_prompt
        result = enhance(mix.noisy[None], prior.sample_rate, prior, args.prompt, noise_prompt, config, sds)
        estimates = {"in": mix.noisy, "enhanced": result.enhanced[0], "oracle": oracle(mix)}
        row = {k: float(si_sdr(v, mix.speech)) for k, v in estimates.items()}
        if args.dnsmos:
            row |= {f"mos_{k}": dnsmos(v, prior.sample_rate) for k, v in estimates.items()}
        rows.append(row)
        cells = [mix.name, *(f"{row[k]:.2f}" for k in ("in", "enhanced", "oracle"))]
        if args.dnsmos:
            cells += [f"{row[f'mos_{k}']:.2f}" for k in ("in", "enhanced", "oracle")]
        print("| " + " | ".join(cells) + " |", flush=True)
        log.info(f"mixture {i}: {time.perf_counter() - start:.0f} s")
        lines.append("| " + " | ".join(cells) + " |")
    mean = {k: float(np.mean([r[k] for r in rows])) for k in rows[0]}
    summary = [
        "",
        f"Mean SI-SDR over {len(rows)} mixtures: input {mean['in']:.2f} dB, "
        f"enhanced {mean['enhanced']:.2f} dB "
        f"(improvement {mean['enhanced'] - mean['in']:+.2f} dB), oracle {mean['oracle']:.2f} dB "
        f"({mean['oracle'] - mean['in']:+.2f} dB).",
    ]
    for snr in SNRS_DB:
        at = [
            r
            for r, j in zip(rows, range(args.first, args.first + args.mixtures), strict=True)
            if SNRS_DB[(j // len(NOISES)) % len(SNRS_DB)] == snr
        ]
        if at:
            gain = np.mean([r["enhanced"] - r["in"] for r in at])
            summary.append(f"At {snr:g} dB SNR ({len(at)} mixtures): SI-SDR improvement {gain:+.2f} dB.")
    if args.dnsmos:
        summary.append(
            f"Mean DNSMOS overall: input {mean['mos_in']:.2f}, enhanced {mean['mos_enhanced']:.2f} "
            f"({mean['mos_enhanced'] - mean['mos_in']:+.2f}), oracle {mean['mos_oracle']:.2f}."
        )
    summary.append(f"Time: {time.perf_counter() - start:.0f} s.")
    print("\n".join(summary), flush=True)
    if args.out is not None:
        args.out.write_text("\n".join(lines + summary) + "\n")
