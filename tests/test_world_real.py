"""world/real.py (real-clip catalogue and captions) and world/reverb.py (reverberation attribute)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from audiosds.world.real import REAL_CLASSES, classify, load_catalogue, make_real_caption
from audiosds.world.reverb import KINDS, apply_reverb, reverb_phrase, simulate_room

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "sounds"
needs_data = pytest.mark.skipif(not (DATA / "manifest.csv").is_file(), reason="shared/data/sounds is absent")


@pytest.mark.parametrize(
    ("path", "label", "expected"),
    [
        ("esc10/dog_bark/1-100032-A.ogg", "dog bark", ("dog_bark", "train", None)),
        ("esc10/rain/5-181766-A.ogg", "rain", ("rain", "heldout", None)),
        ("drums/tr-505/tr505-kick.flac", "tr505-kick", ("kick", "train", None)),
        ("drums/cr-78/cowbell.flac", "cowbell", ("cowbell", "train", None)),
        ("drums/cr-78/guiro-long.flac", "guiro-long", ("percussion", "train", None)),
        ("spoken_digits/7_theo_12.flac", "spoken digit 7 (theo)", ("spoken_digit", "train", 7)),
        ("spoken_digits/3_lucas_47.flac", "spoken digit 3 (lucas)", ("spoken_digit", "heldout", 3)),
        ("impulse_responses/emt140_plate/emt_140_dark_1.flac", "plate reverb impulse response", None),
    ],
)
def test_rows_get_their_class_and_split(path: str, label: str, expected) -> None:
    assert classify(path, label) == expected


def test_heldout_captions_never_repeat_training_captions() -> None:
    rng = np.random.default_rng(0)
    for cls in REAL_CLASSES:
        digit = 4 if cls == "spoken_digit" else None
        train = {make_real_caption(cls, rng, "train", digit) for _ in range(300)}
        heldout = {make_real_caption(cls, rng, "heldout", digit) for _ in range(100)}
        assert train.isdisjoint(heldout), cls
        assert len(heldout) >= 3 and len(train) >= 5, cls


def test_digit_captions_name_the_digit() -> None:
    rng = np.random.default_rng(1)
    captions = [make_real_caption("spoken_digit", rng, "train", 7) for _ in range(50)]
    named = [c for c in captions if "seven" in c]
    generic = [c for c in captions if c in ("a man speaking", "a person speaking", "speech")]
    assert len(named) + len(generic) == len(captions) and len(named) > 30


def test_unknown_class_or_split_is_an_error() -> None:
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="expected one of"):
        make_real_caption("cat_meow", rng)
    with pytest.raises(ValueError, match="split"):
        make_real_caption("rain", rng, "test")


def test_a_folder_without_manifest_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="manifest.csv"):
        load_catalogue(tmp_path)


@needs_data
def test_catalogue_holds_esc10_folds_drums_and_digits() -> None:
    clips = load_catalogue(DATA)
    esc = [c for c in clips if c.path.parent.parent.name == "esc10"]
    assert len(esc) == 400 and sum(c.split == "heldout" for c in esc) == 80
    assert all((c.split == "heldout") == c.path.name.startswith("5") for c in esc)
    assert {c.cls for c in esc} == set(REAL_CLASSES[:10])
    digits = [c for c in clips if c.cls == "spoken_digit"]
    assert len(digits) == 3000 and sum(c.split == "heldout" for c in digits) == 300
    assert all(c.split == "train" for c in clips if "drums" in c.path.parts)


# -- reverb ------------------------------------------------------------------------------------------
def _decay_time_s(h: np.ndarray, sr: int, drop_db: float = 20.0) -> float:
    """Time for the backward-integrated energy (Schroeder) to fall by ``drop_db``."""
    edc = np.cumsum((h**2)[::-1])[::-1]
    edc_db = 10 * np.log10(edc / edc[0] + 1e-20)
    return float(np.argmax(edc_db < -drop_db)) / sr


def test_halls_ring_longer_than_rooms() -> None:
    sr = 16000
    rng = np.random.default_rng(0)
    rooms = [_decay_time_s(simulate_room("room", rng, sr), sr) for _ in range(2)]
    halls = [_decay_time_s(simulate_room("hall", rng, sr), sr) for _ in range(2)]
    assert max(rooms) < 0.4 < min(halls)


def test_reverb_keeps_length_and_level_and_dry_is_identity() -> None:
    rng = np.random.default_rng(0)
    x = np.zeros(8000, np.float32)
    x[100:400] = rng.standard_normal(300).astype(np.float32) * 0.2
    h = np.exp(-np.arange(4000) / 800.0) * rng.standard_normal(4000)
    y = apply_reverb(x, h.astype(np.float32), wet=0.8)
    assert y.shape == x.shape and y.dtype == np.float32
    assert np.sqrt(np.mean(y**2)) == pytest.approx(np.sqrt(np.mean(x**2)), rel=1e-3)
    assert np.abs(y[2000:]).max() > 10 * np.abs(x[2000:]).max() + 1e-3  # the tail rings on
    assert apply_reverb(x, None) is x


def test_reverb_phrases_follow_the_split() -> None:
    rng = np.random.default_rng(0)
    for kind in KINDS:
        train = {reverb_phrase(kind, rng, "train") for _ in range(50)}
        heldout = {reverb_phrase(kind, rng, "heldout") for _ in range(50)}
        assert heldout - train, kind  # held-out phrasings appear only in the held-out split
