"""The procedural sound world: seeded, captioned clips the embedded prior and the scorer learn from.

Every clip is rendered by numpy from (family, seed, split), 16 kHz mono float32 by default, any
length 0.5-10 s, peak <= 0.99, loudness normalised to a family-typical RMS. Training draws
hundreds of thousands of clips, so every generator is vectorised (a few ms per 2 s clip).

Families (31):
    paper analogues: traffic, saxophone, bongo, waves, metal_pipes, glass_break, clock, wind;
    impacts: kick, snare, pot (wooden spoon on a pot), wood, metal, glass_clink;
    tones: bell, bass, organ, pluck, brass, flute, whistle, fm, siren, sweep, engine;
    textures: rain, fire, birds, footsteps;
    noises: noise (white / pink / brown, the separation's catch-all), hum (mains hum, buzz).

Attribute vocabulary (axis: words; a family uses the axes that make sense for it):
    pitch: low / high            f0 and spectral centroid
    brightness: dark / bright    spectral tilt (harmonic roll-off, filter cut-off, FM index)
    decay: short / long          decay times of modes and envelopes
    rate: slow / fast            event, note, gust, wave or sweep rate
    loudness: soft / loud        RMS offset from the family level (every family)
    distance: near / far         far: direct sound down 6-12 dB, low-passed, plus room reverb

Captions come from templates with name synonyms, verb phrases, attribute adjectives (shuffled) or
trailing phrases, and fixed captions that include the Audio-SDS paper's prompts (``PAPER_PROMPTS``,
``PROMPT_FAMILY``). ``split="heldout"`` uses a disjoint seed stream and held-out phrasings.
"""

from audiosds.world.attributes import AXES
from audiosds.world.captions import PAPER_PROMPTS, PROMPT_FAMILY, SPLITS
from audiosds.world.dataset import (
    Clip,
    load_clips,
    make_caption,
    mix,
    render_clip,
    sample_clips,
    save_clips,
    stack,
)
from audiosds.world.families import FAMILIES, Family

__all__ = [
    "AXES",
    "FAMILIES",
    "PAPER_PROMPTS",
    "PROMPT_FAMILY",
    "SPLITS",
    "Clip",
    "Family",
    "load_clips",
    "make_caption",
    "mix",
    "render_clip",
    "sample_clips",
    "save_clips",
    "stack",
]
