"""Audio I/O, validation, resampling and conversion between renderer and prior formats.

Files are read with soundfile (WAV, FLAC, OGG, ...) and written atomically (a temporary file
in the same folder, then a rename), so a crash never leaves a half-written file that looks
complete; the file gets the mode a plain ``open()`` would give it (0666 less the umask: 0644 under
the usual umask 022), not the temporary file's private 0600. Arrays on disk-facing functions are
channel-first ``(C, N)`` float32.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import Tensor


class AudioError(ValueError):
    """A file that is missing, unreadable, empty or holds non-finite samples."""


def _check_wav_complete(path: Path) -> None:
    """AudioError if a RIFF/WAVE file's data chunk promises more bytes than the file holds
    (libsndfile would silently read the truncated remainder)."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return
        offset = 12
        while offset + 8 <= size:
            f.seek(offset)
            chunk = f.read(8)
            chunk_id, chunk_size = chunk[:4], int.from_bytes(chunk[4:8], "little")
            if chunk_id == b"data":
                if chunk_size not in (0, 0xFFFFFFFF) and offset + 8 + chunk_size > size:
                    raise AudioError(
                        f"{path}: truncated WAV (its header promises {chunk_size} bytes of audio, "
                        f"the file holds {size - offset - 8})"
                    )
                return
            offset += 8 + chunk_size + (chunk_size & 1)


def load_audio(path: str | os.PathLike) -> tuple[np.ndarray, int]:
    """Read an audio file as float32 ``(C, N)`` and its sample rate.

    Raises:
        AudioError: missing file, not audio, truncated/corrupt, zero length, NaN/Inf samples.
    """
    import soundfile as sf

    p = Path(path)
    if not p.exists():
        raise AudioError(f"{p}: no such file")
    if p.is_dir():
        raise AudioError(f"{p}: is a folder, expected an audio file")
    _check_wav_complete(p)
    try:
        data, sr = sf.read(str(p), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError) as err:
        raise AudioError(f"{p}: not a readable audio file ({str(err).strip().splitlines()[0]})") from err
    if data.shape[0] == 0:
        raise AudioError(f"{p}: zero-length audio")
    if not np.isfinite(data).all():
        raise AudioError(f"{p}: contains NaN or Inf samples")
    return np.ascontiguousarray(data.T), int(sr)


def _umask() -> int:
    """The process umask (read by setting it and putting it back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Write through ``write(tmp_path)`` to a temporary file beside ``path``, then rename; the
    file ends with mode 0666 & ~umask."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        write(tmp_path)
        os.chmod(tmp_path, 0o666 & ~_umask())
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def save_wav(path: str | os.PathLike, audio: np.ndarray | Tensor, sample_rate: int) -> None:
    """Write ``(C, N)`` or ``(N,)`` audio as 32-bit float WAV, atomically.

    Written with scipy rather than libsndfile, whose float WAVs carry a time-stamped PEAK
    chunk: the same audio then always gives the same bytes.
    """
    from scipy.io import wavfile

    a = audio.detach().cpu().numpy() if isinstance(audio, Tensor) else np.asarray(audio)
    if a.ndim == 1:
        a = a[None]
    if a.ndim != 2:
        raise ValueError(f"save_wav: expected (C, N) or (N,), got {a.shape}")
    data = np.ascontiguousarray(a.T.astype(np.float32))
    _atomic_write(Path(path), lambda tmp: wavfile.write(str(tmp), int(sample_rate), data))


def write_text(path: str | os.PathLike, text: str) -> None:
    """Write a text file atomically."""
    _atomic_write(Path(path), lambda tmp: tmp.write_text(text))


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write a binary file atomically."""
    _atomic_write(Path(path), lambda tmp: tmp.write_bytes(data))


def resample(audio: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    """Resample ``(C, N)`` float32 audio with soxr (high quality). Not differentiable."""
    if sr_in == sr_out:
        return audio
    import soxr

    out = soxr.resample(np.ascontiguousarray(audio.T), sr_in, sr_out, quality="HQ")
    return np.ascontiguousarray(np.atleast_2d(out.T).astype(np.float32))


def match_channels(x: Tensor, channels: int) -> Tensor:
    """Duplicate mono to ``channels`` or average down to mono; differentiable.

    Shape:
        x (B, C, N) -> (B, channels, N)
    """
    if x.ndim != 3:
        raise ValueError(f"match_channels: expected (B, C, N), got {tuple(x.shape)}")
    c = x.shape[1]
    if c == channels:
        return x
    if c == 1:
        return x.expand(-1, channels, -1)
    if channels == 1:
        return x.mean(dim=1, keepdim=True)
    raise ValueError(f"match_channels: cannot map {c} channels to {channels}")


def fit_length(x: Tensor, num_samples: int) -> Tensor:
    """Crop or zero-pad the last axis to ``num_samples``."""
    n = x.shape[-1]
    if n == num_samples:
        return x
    if n > num_samples:
        return x[..., :num_samples]
    return torch.nn.functional.pad(x, (0, num_samples - n))
