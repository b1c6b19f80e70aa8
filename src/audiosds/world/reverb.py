"""Reverberation as a world attribute: dry, a small room, a large hall, or a plate.

Room and hall impulse responses are simulated offline with ``pyroomacoustics`` (shoebox rooms, image
sources plus ray tracing, absorption from Sabine's formula for a drawn RT60); plate responses are the
EMT-140 recordings of the real-sound folder. :func:`apply_reverb` convolves and keeps the clip's
length and level; :func:`reverb_phrase` gives the words a caption adds for each kind.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

KINDS = ("dry", "room", "hall", "plate")

# kind -> (room size range in m (x, y, z) lower, upper; RT60 range in s)
_ROOMS = {
    "room": ((3.0, 3.5, 2.4), (5.5, 6.5, 3.2), (0.25, 0.6)),
    "hall": ((18.0, 25.0, 9.0), (30.0, 45.0, 16.0), (1.6, 3.2)),
}

PHRASES: dict[str, dict[str, tuple[str, ...]]] = {
    "train": {
        "dry": ("dry", "recorded close", "no reverb", "in a dry studio"),
        "room": ("in a small room", "small room reverb", "in a room", "indoors, small room"),
        "hall": (
            "in a large hall",
            "big hall reverb",
            "in a cathedral",
            "with a long reverb",
            "in a huge reverberant hall",
        ),
        "plate": ("with plate reverb", "plate reverb", "through a plate reverb"),
    },
    "heldout": {
        "dry": ("completely dry",),
        "room": ("in a tiny bedroom",),
        "hall": ("in a vast concert hall",),
        "plate": ("drenched in plate reverb",),
    },
}


@dataclass
class ReverbBank:
    """Impulse responses per kind (each a float32 array at ``sample_rate``, peak-normalised)."""

    sample_rate: int
    responses: dict[str, list[np.ndarray]]

    def draw(self, kind: str, rng: np.random.Generator) -> np.ndarray | None:
        """A random response of ``kind``; None for "dry"."""
        if kind == "dry":
            return None
        items = self.responses.get(kind) or []
        if not items:
            raise ValueError(f"reverb bank: no '{kind}' responses")
        return items[int(rng.integers(len(items)))]


def simulate_room(kind: str, rng: np.random.Generator, sample_rate: int) -> np.ndarray:
    """One shoebox impulse response of ``kind`` ("room" or "hall") with a random size, RT60 and
    source / microphone positions."""
    import pyroomacoustics as pra

    lower, upper, rt_range = _ROOMS[kind]
    dim = rng.uniform(lower, upper)
    rt60 = float(rng.uniform(*rt_range))
    absorption, max_order = pra.inverse_sabine(rt60, dim)
    room = pra.ShoeBox(
        dim,
        fs=sample_rate,
        materials=pra.Material(absorption),
        max_order=min(max_order, 10),
        air_absorption=True,
    )
    room.set_ray_tracing(n_rays=3000)
    margin = 0.8
    src = rng.uniform(margin, dim - margin)
    mic = rng.uniform(margin, dim - margin)
    room.add_source(src)
    room.add_microphone(mic)
    room.compute_rir()
    h = np.asarray(room.rir[0][0], dtype=np.float64)
    return (h / np.max(np.abs(h))).astype(np.float32)


def build_bank(
    sample_rate: int, seed: int, per_kind: int = 8, plate_paths: list[Path] | None = None
) -> ReverbBank:
    """``per_kind`` simulated rooms and halls from ``seed``, plus the plate recordings given."""
    import soundfile as sf

    from audiosds.audio import resample

    rng = np.random.default_rng(np.random.SeedSequence([seed, 0xEC40]))
    responses: dict[str, list[np.ndarray]] = {k: [] for k in KINDS if k != "dry"}
    for kind in ("room", "hall"):
        responses[kind] = [simulate_room(kind, rng, sample_rate) for _ in range(per_kind)]
    for path in plate_paths or []:
        audio, sr = sf.read(str(path), dtype="float32", always_2d=True)
        h = resample(audio.mean(axis=1), sr, sample_rate).reshape(-1)
        responses["plate"].append((h / np.max(np.abs(h))).astype(np.float32))
    return ReverbBank(sample_rate, responses)


def apply_reverb(x: np.ndarray, h: np.ndarray | None, wet: float = 1.0) -> np.ndarray:
    """``x`` convolved with ``h`` (cut to ``x``'s length), mixed ``wet`` with the dry signal, and scaled
    back to ``x``'s RMS; ``h`` None returns ``x``."""
    from scipy.signal import fftconvolve

    if h is None:
        return x
    y = fftconvolve(x, h)[: len(x)]
    y = wet * y / (np.sqrt(np.mean(y**2)) + 1e-9) * np.sqrt(np.mean(x**2)) + (1 - wet) * x
    rms_in, rms_out = np.sqrt(np.mean(x**2)), np.sqrt(np.mean(y**2)) + 1e-9
    y = y * (rms_in / rms_out)
    peak = np.max(np.abs(y))
    return (y / peak * 0.98 if peak > 0.98 else y).astype(np.float32)


def reverb_phrase(kind: str, rng: np.random.Generator, split: str = "train") -> str:
    """Words a caption adds for reverb ``kind`` (held-out phrasings only in the held-out split)."""
    options = PHRASES["train"][kind] + (PHRASES["heldout"][kind] if split == "heldout" else ())
    if split == "heldout" and rng.random() < 0.5:
        options = PHRASES["heldout"][kind]
    return options[int(rng.integers(len(options)))]
