"""Real recordings the embedded prior learns beside the procedural world: a catalogue and captions.

The clips live outside the package (``--data DIR``, a folder with ``manifest.csv``: path, label,
seconds, sample_rate, source, licence). Each manifest row becomes a :class:`RealClip` with a
*class* (what its captions name) and a split:

    ESC-10 field recordings   class = the folder (dog_bark, rain, ...); fold 5 (the file name's first
                              digit) is held out of training for evaluation
    drum one-shots            class = the drum (kick, snare, hihat, tom, cymbal, hand_drum, clap,
                              cowbell, percussion), all training
    spoken digits             class = spoken_digit, the digit in the caption; takes 45-49 held out
    plate impulse responses   not clips: the reverb bank (:mod:`audiosds.world.reverb`) uses them

Captions come from the world's caption machinery (templates, names, held-out phrasings; see
:mod:`audiosds.world.captions`), with a vocabulary per class written here.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from audiosds.world.captions import (
    HELDOUT_TEMPLATES,
    SPLITS,
    TRAIN_TEMPLATES,
    Vocabulary,
    phrase,
)

MANIFEST = "manifest.csv"
DIGITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
HELDOUT_TAKES = range(45, 50)  # spoken-digit takes kept out of training
ESC_HELDOUT_FOLD = 5

# {digit} in a spoken_digit phrase is replaced by the digit's word.
VOCABULARIES: dict[str, Vocabulary] = {
    "dog_bark": Vocabulary(
        names=(
            phrase("a dog barking", True),
            phrase("a barking dog"),
            phrase("a dog"),
            phrase("dog barks", True),
            phrase("a dog bark", True),
        ),
        heldout_names=(phrase("a hound barking", True),),
        verbs=("barking", "barking loudly", "woofing", "barking at someone"),
        fixed=(phrase("a dog barking"), phrase("dog barking outside")),
    ),
    "rain": Vocabulary(
        names=(
            phrase("rain"),
            phrase("rainfall"),
            phrase("heavy rain"),
            phrase("raindrops"),
            phrase("a rainstorm"),
        ),
        heldout_names=(phrase("a rain shower"),),
        verbs=("falling", "pouring down", "pattering on the ground", "falling steadily"),
        fixed=(phrase("rain falling"), phrase("the sound of rain")),
    ),
    "sea_waves": Vocabulary(
        names=(
            phrase("sea waves"),
            phrase("ocean waves"),
            phrase("the surf"),
            phrase("waves on a beach"),
            phrase("the sea"),
        ),
        heldout_names=(phrase("breakers on the coast"),),
        verbs=("crashing", "rolling in", "washing ashore", "breaking on the shore"),
        fixed=(phrase("ocean waves crashing"), phrase("waves crashing on a beach")),
    ),
    "baby_cry": Vocabulary(
        names=(
            phrase("a baby crying", True),
            phrase("a crying baby"),
            phrase("an infant crying", True),
            phrase("a baby"),
        ),
        heldout_names=(phrase("a newborn wailing", True),),
        verbs=("crying", "wailing", "sobbing", "crying loudly"),
        fixed=(phrase("a baby crying"), phrase("an infant cries")),
    ),
    "clock_tick": Vocabulary(
        names=(
            phrase("a clock ticking", True),
            phrase("a ticking clock"),
            phrase("a clock"),
            phrase("a wall clock"),
        ),
        heldout_names=(phrase("a pocket watch ticking", True),),
        verbs=("ticking", "ticking steadily", "tick-tocking"),
        fixed=(phrase("clock ticking"), phrase("the ticking of a clock")),
    ),
    "person_sneeze": Vocabulary(
        names=(
            phrase("a person sneezing", True),
            phrase("a sneeze", True),
            phrase("someone sneezing", True),
            phrase("a man sneezing", True),
        ),
        heldout_names=(phrase("a loud achoo", True),),
        verbs=("sneezing", "sneezing loudly"),
        fixed=(phrase("a person sneezes"), phrase("sneezing")),
    ),
    "helicopter": Vocabulary(
        names=(phrase("a helicopter"), phrase("helicopter rotors"), phrase("a helicopter engine")),
        heldout_names=(phrase("a chopper"),),
        verbs=("flying overhead", "hovering", "passing by", "whirring"),
        fixed=(phrase("a helicopter flying overhead"), phrase("helicopter blades chopping")),
    ),
    "chainsaw": Vocabulary(
        names=(phrase("a chainsaw"), phrase("a gas chainsaw"), phrase("a chain saw")),
        heldout_names=(phrase("a power saw"),),
        verbs=("cutting wood", "revving", "running", "sawing through a log"),
        fixed=(phrase("a chainsaw cutting wood"), phrase("chainsaw revving")),
    ),
    "rooster": Vocabulary(
        names=(
            phrase("a rooster crowing", True),
            phrase("a rooster"),
            phrase("a cockerel"),
            phrase("a crowing rooster"),
        ),
        heldout_names=(phrase("a cock crowing at dawn", True),),
        verbs=("crowing", "crowing loudly", "calling in the morning"),
        fixed=(phrase("a rooster crowing"), phrase("rooster crows in the morning")),
    ),
    "fire_crackling": Vocabulary(
        names=(
            phrase("a fire crackling", True),
            phrase("a crackling fire"),
            phrase("a campfire"),
            phrase("burning wood"),
        ),
        heldout_names=(
            phrase(
                "a fireplace",
            ),
        ),
        verbs=("crackling", "burning", "popping and crackling"),
        fixed=(phrase("fire crackling"), phrase("crackling campfire")),
    ),
    "kick": Vocabulary(
        names=(phrase("a kick drum"), phrase("a bass drum"), phrase("a kick"), phrase("a drum machine kick")),
        heldout_names=(phrase("a thumping kick drum"),),
        verbs=("hit once", "hit", "one shot"),
        fixed=(phrase("kick drum hit"), phrase("bass drum")),
    ),
    "snare": Vocabulary(
        names=(phrase("a snare drum"), phrase("a snare"), phrase("a drum machine snare")),
        heldout_names=(phrase("a snappy snare"),),
        verbs=("hit once", "hit", "one shot"),
        fixed=(phrase("snare drum hit"),),
    ),
    "hihat": Vocabulary(
        names=(phrase("a hi-hat"), phrase("a hihat"), phrase("a hi hat cymbal")),
        heldout_names=(phrase("a closed hat"),),
        verbs=("hit once", "hit", "one shot"),
        fixed=(phrase("hi-hat hit"),),
    ),
    "tom": Vocabulary(
        names=(phrase("a tom drum"), phrase("a tom"), phrase("a tom-tom")),
        heldout_names=(phrase("a floor tom"),),
        verbs=("hit once", "hit", "one shot"),
        fixed=(phrase("tom drum hit"),),
    ),
    "cymbal": Vocabulary(
        names=(phrase("a cymbal"), phrase("a crash cymbal"), phrase("a ride cymbal")),
        heldout_names=(phrase("a splash cymbal"),),
        verbs=("crashing", "hit once", "ringing"),
        fixed=(phrase("cymbal crash"),),
    ),
    "hand_drum": Vocabulary(
        names=(phrase("a conga"), phrase("a bongo"), phrase("a hand drum"), phrase("a conga drum")),
        heldout_names=(phrase("a djembe"),),
        verbs=("hit once", "slapped", "one shot"),
        fixed=(phrase("conga hit"),),
    ),
    "clap": Vocabulary(
        names=(phrase("a hand clap"), phrase("a clap"), phrase("a drum machine clap")),
        heldout_names=(phrase("a single clap"),),
        verbs=("once", "one shot"),
        fixed=(phrase("hand clap"),),
    ),
    "cowbell": Vocabulary(
        names=(phrase("a cowbell"), phrase("a drum machine cowbell")),
        heldout_names=(phrase("a clanky cowbell"),),
        verbs=("hit once", "struck", "one shot"),
        fixed=(phrase("cowbell hit"),),
    ),
    "percussion": Vocabulary(
        names=(
            phrase("a percussion hit"),
            phrase("a tambourine"),
            phrase("a wood block"),
            phrase("claves"),
            phrase("a rim shot"),
        ),
        heldout_names=(phrase("a shaker"),),
        verbs=("hit once", "struck", "one shot"),
        fixed=(phrase("percussion hit"),),
    ),
    "spoken_digit": Vocabulary(
        names=(
            phrase("a man saying {digit}", True),
            phrase("a person saying the number {digit}", True),
            phrase("someone counting, {digit}", True),
            phrase("a voice saying {digit}", True),
            phrase("a man speaking the word {digit}", True),
            phrase("speech, the word {digit}", True),
        ),
        heldout_names=(phrase("a speaker pronouncing {digit}", True),),
        verbs=("",),
        fixed=(
            phrase("a man speaking"),
            phrase("a person speaking"),
            phrase("speech"),
            phrase("spoken digit {digit}"),
        ),
    ),
}

# drum label (manifest, lower case, without a machine prefix) -> class, by its first word
_DRUM_CLASSES = {
    "kick": "kick",
    "snare": "snare",
    "hihat": "hihat",
    "tom": "tom",
    "crash": "cymbal",
    "ride": "cymbal",
    "cymbal": "cymbal",
    "cymball": "cymbal",
    "splash": "cymbal",
    "conga": "hand_drum",
    "bongo": "hand_drum",
    "timbal": "hand_drum",
    "clap": "clap",
    "cowb": "cowbell",
    "cowbell": "cowbell",
}
REAL_CLASSES = tuple(VOCABULARIES)


@dataclass(frozen=True)
class RealClip:
    """One manifest row: where it is, its class, split and, for spoken digits, the digit."""

    path: Path
    label: str
    cls: str
    split: str
    source: str
    licence: str
    digit: int | None = None


def classify(rel_path: str, label: str) -> tuple[str, str, int | None] | None:
    """(class, split, digit) of a manifest row; None for rows that are not training clips (IRs)."""
    parts = rel_path.split("/")
    name = Path(rel_path).name
    if parts[0] == "esc10":
        split = "heldout" if name[0] == str(ESC_HELDOUT_FOLD) else "train"
        return parts[1], split, None
    if parts[0] == "drums":
        word = re.split(r"[-_ ]", label.lower().removeprefix("tr505-"))[0]
        return _DRUM_CLASSES.get(word, "percussion"), "train", None
    if parts[0] == "spoken_digits":
        digit, _, take = Path(name).stem.split("_")
        split = "heldout" if int(take) in HELDOUT_TAKES else "train"
        return "spoken_digit", split, int(digit)
    return None


def load_catalogue(data_dir: str | Path) -> list[RealClip]:
    """Every training or evaluation clip of ``data_dir/manifest.csv``.

    Raises:
        ValueError: the folder has no manifest, or a listed file is missing.
    """
    data_dir = Path(data_dir)
    manifest = data_dir / MANIFEST
    if not manifest.is_file():
        raise ValueError(f"--data {data_dir}: expected a folder with {MANIFEST}, found none")
    clips = []
    with manifest.open(newline="") as f:
        for row in csv.DictReader(f):
            kind = classify(row["path"], row["label"])
            if kind is None:
                continue
            path = data_dir / row["path"]
            if not path.is_file():
                raise ValueError(f"{manifest}: lists {row['path']}, which is missing")
            cls, split, digit = kind
            clips.append(RealClip(path, row["label"], cls, split, row["source"], row["licence"], digit))
    return clips


def impulse_response_paths(data_dir: str | Path) -> list[Path]:
    """The plate impulse responses listed in ``data_dir/manifest.csv``."""
    manifest = Path(data_dir) / MANIFEST
    with manifest.open(newline="") as f:
        return [Path(data_dir) / r["path"] for r in csv.DictReader(f) if "impulse response" in r["label"]]


def _pick(rng: np.random.Generator, items):
    return items[int(rng.integers(len(items)))]


def make_real_caption(
    cls: str, rng: np.random.Generator, split: str = "train", digit: int | None = None
) -> str:
    """A caption of a real clip of class ``cls`` in the phrasings of ``split`` (as the world's:
    held-out captions use a held-out template or a held-out name, training ones never do)."""
    if cls not in VOCABULARIES:
        raise ValueError(f"make_real_caption cls: expected one of {sorted(VOCABULARIES)}, got {cls!r}")
    if split not in SPLITS:
        raise ValueError(f"make_real_caption split: expected one of {SPLITS}, got {split!r}")
    vocab = VOCABULARIES[cls]
    word = DIGITS[digit] if digit is not None else ""
    if split == "train":
        if vocab.fixed and rng.random() < 0.2:
            return _pick(rng, vocab.fixed).text.format(digit=word)
        templates, names = TRAIN_TEMPLATES, vocab.names
    elif rng.random() < 0.5:
        templates, names = HELDOUT_TEMPLATES, vocab.names + vocab.heldout_names
    else:
        templates, names = TRAIN_TEMPLATES, vocab.heldout_names
    chosen = _pick(rng, names)
    verbs = [v for v in vocab.verbs if v]
    template = _pick(rng, [t for t in templates if not ((chosen.has_verb or not verbs) and "{verb}" in t)])
    text = template.format(
        name=chosen.text.format(digit=word), verb=_pick(rng, verbs) if verbs else "", post=""
    )
    return " ".join(text.split())
