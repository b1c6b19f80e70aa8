"""The sound classes a prompt can name: every family of the procedural world and every class of
the real recordings, one entry per sound (a class both know, such as rain, is one).

Prompt suggestion ranks these (:mod:`audiosds.tasks.suggest`) and the suggestion model is trained
to tag them (:mod:`audiosds.training.train_suggest`).
"""

from __future__ import annotations

from dataclasses import dataclass

from .captions import VOCABULARIES as WORLD_VOCABULARIES
from .captions import Vocabulary
from .real import DIGITS
from .real import VOCABULARIES as REAL_VOCABULARIES

# real class -> the world family it names the same sound as (one candidate for both)
SAME_AS = {"fire_crackling": "fire", "sea_waves": "waves", "clock_tick": "clock"}


@dataclass(frozen=True)
class Candidate:
    """A class a prompt can name.

    Attributes:
        name: the world family or real class ("rain", "dog_bark", ...).
        prompt: the caption printed and used for separation (the class's first fixed caption).
        phrasings: every caption whose embeddings are averaged into the class's.
    """

    name: str
    prompt: str
    phrasings: tuple[str, ...]


def _phrasings(vocab: Vocabulary) -> list[str]:
    """Names and fixed captions of a vocabulary; ``{digit}`` is filled with every digit word."""
    texts = [p.text for p in (*vocab.fixed, *vocab.names)]
    return [t.format(digit=d) for t in texts for d in (DIGITS if "{digit}" in t else ("",))]


def candidates() -> list[Candidate]:
    """Every class of the world and of the real recordings, world families first."""
    vocabularies: dict[str, list[Vocabulary]] = {name: [v] for name, v in WORLD_VOCABULARIES.items()}
    for name, vocab in REAL_VOCABULARIES.items():
        vocabularies.setdefault(SAME_AS.get(name, name), []).append(vocab)
    out = []
    for name, vocabs in vocabularies.items():
        texts = list(dict.fromkeys(t for v in vocabs for t in _phrasings(v)))
        first = vocabs[0].fixed[0] if vocabs[0].fixed else vocabs[0].names[0]
        out.append(Candidate(name, first.text.format(digit=DIGITS[1]), tuple(texts)))
    return out


__all__ = ["SAME_AS", "Candidate", "candidates"]
