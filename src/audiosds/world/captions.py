"""Caption vocabulary and templates of the sound world.

A caption is a sentence template filled with a name synonym of the family, an optional verb phrase
and words for some of the clip's attributes, placed before the name (adjectives, in shuffled order)
or after it (phrases). Whole fixed captions (the Audio-SDS paper's prompts among them) are used as
they are. Phrasings are split: held-out templates, one held-out name per family and one held-out
synonym per attribute word appear only in ``split="heldout"`` captions, and every held-out caption
contains at least one of them, so held-out captions never coincide with training captions.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from audiosds.world.attributes import AXES

SPLITS = ("train", "heldout")


@dataclass(frozen=True)
class Phrase:
    """A name or a fixed caption, valid only for clips whose attributes match ``requires``."""

    text: str
    requires: tuple[tuple[str, str], ...] = ()
    has_verb: bool = False  # a name that already says what happens ("a window breaking"): no verb slot

    def fits(self, attributes: Mapping[str, str]) -> bool:
        """True when every required attribute word equals the clip's."""
        return all(attributes.get(axis) == word for axis, word in self.requires)


def phrase(text: str, has_verb: bool = False, **requires: str) -> Phrase:
    """Shorthand: ``phrase("a tenor saxophone", pitch="low")``."""
    return Phrase(text, tuple(sorted(requires.items())), has_verb)


@dataclass(frozen=True)
class Vocabulary:
    """The caption vocabulary of one family.

    Attributes:
        names: noun phrases naming the sound (training and held-out captions).
        heldout_names: noun phrases used only in held-out captions.
        verbs: phrases that follow a name ("ringing", "dropping on concrete").
        fixed: whole captions used verbatim in training captions (paper prompts among them).
        words: extra adjectives for (axis, level word), e.g. rain ("rate", "fast") -> "heavy".
    """

    names: tuple[Phrase, ...]
    heldout_names: tuple[Phrase, ...]
    verbs: tuple[str, ...]
    fixed: tuple[Phrase, ...] = ()
    words: tuple[tuple[str, str, tuple[str, ...]], ...] = ()

    def extra_words(self, axis: str, word: str) -> tuple[str, ...]:
        """Family-specific adjectives for one attribute word."""
        return tuple(w for a, v, ws in self.words if (a, v) == (axis, word) for w in ws)


# Adjectives (before the name) and phrases (after it) for each attribute word.
ADJECTIVES: dict[str, tuple[str, ...]] = {
    "low": ("low", "low-pitched", "deep"),
    "high": ("high", "high-pitched"),
    "dark": ("dark", "warm", "muffled", "mellow"),
    "bright": ("bright", "sharp", "crisp", "brilliant"),
    "short": ("short", "staccato", "damped", "tight", "brief"),
    "long": ("long", "ringing", "sustained", "resonant"),
    "slow": ("slow", "sparse", "leisurely"),
    "fast": ("fast", "rapid", "quick"),
    "soft": ("soft", "quiet", "gentle", "faint"),
    "loud": ("loud", "powerful", "strong", "intense"),
    "near": ("close", "close-up", "nearby", "dry"),
    "far": ("distant", "faraway", "reverberant", "echoing"),
}
PHRASES: dict[str, tuple[str, ...]] = {
    "low": ("low pitched", "with a low pitch", "in a low register"),
    "high": ("high pitched", "with a high pitch", "in a high register"),
    "dark": ("with a dark tone", "dark sounding", "warm timbre"),
    "bright": ("with a bright tone", "bright sounding", "bright timbre"),
    "short": ("with a short decay", "short decay", "short tail"),
    "long": ("with a long decay", "long decay", "with a long tail"),
    "slow": ("at a slow pace", "slow rhythm", "slow tempo"),
    "fast": ("at a fast pace", "fast rhythm", "fast tempo"),
    "soft": ("at low volume", "very quiet", "quietly"),
    "loud": ("at high volume", "very loud", "loudly"),
    "near": ("up close", "close to the microphone", "in a dry room", "recorded close"),
    "far": ("far away", "in the distance", "with reverb", "in a large hall", "reverb"),
}
HELDOUT_ADJECTIVES: dict[str, tuple[str, ...]] = {
    "low": ("low-toned",),
    "high": ("shrill",),
    "dark": ("dull",),
    "bright": ("sparkling",),
    "short": ("clipped",),
    "long": ("lingering",),
    "slow": ("unhurried",),
    "fast": ("brisk",),
    "soft": ("hushed",),
    "loud": ("forceful",),
    "near": ("close-miked",),
    "far": ("far off",),
}

# : adjectives, {name}: a name, {verb}: a verb phrase, {post}: ", " + attribute phrases.
TRAIN_TEMPLATES = (
    "{name}{post}",
    "{name} {verb}{post}",
    "the sound of {name}{post}",
    "the sound of {name} {verb}",
    "a recording of {name} {verb}{post}",
    "{name}, {verb}",
)
HELDOUT_TEMPLATES = (
    "you can hear {name} {verb}{post}",
    "an audio clip of {name}{post}",
    "{name} {verb} in this recording",
    "listen to {name}{post}",
)

PAPER_PROMPTS: dict[str, str] = {
    "traffic": "cars passing by on a busy street, traffic, road noise",
    "sax": "saxophone playing melody, jazzy, modal interchange, post bop",
    "bongo": "bongo drum playing a rhythmic beat",
    "waves": "waves crashing on a rocky shore",
    "pipes": "clanging metal pipes dropping on concrete",
    "glass": "glass breaking and shattering",
    "clock": "rhythmic ticking of an old grandfather clock",
    "wind": "gentle rustling of leaves in the wind",
}
SYNTHESIS_PROMPTS: dict[str, str] = {
    "kick drum, bass, reverb": "kick",
    "hitting pot with wooden spoon": "pot",
    "bass drum, low pitched": "kick",
    "sharp metallic clang": "metal",
    "a warm bass note": "bass",
}
_PAPER_FAMILY = {
    "traffic": "traffic",
    "sax": "saxophone",
    "bongo": "bongo",
    "waves": "waves",
    "pipes": "metal_pipes",
    "glass": "glass_break",
    "clock": "clock",
    "wind": "wind",
}
PROMPT_FAMILY: dict[str, str] = {
    **{PAPER_PROMPTS[k]: fam for k, fam in _PAPER_FAMILY.items()},
    **SYNTHESIS_PROMPTS,
}

VOCABULARIES: dict[str, Vocabulary] = {
    "traffic": Vocabulary(
        names=(
            phrase("traffic"),
            phrase("cars passing by", has_verb=True),
            phrase("road noise"),
            phrase("a busy street"),
            phrase("passing cars"),
            phrase("city traffic"),
            phrase("vehicles driving by", has_verb=True),
        ),
        heldout_names=(phrase("motorway traffic"),),
        verbs=("rumbling", "passing by", "roaring past", "going by", "on a busy road"),
        fixed=(
            phrase(PAPER_PROMPTS["traffic"]),
            phrase("traffic noise on a city road"),
            phrase("cars driving past"),
        ),
        words=(("rate", "slow", ("light",)), ("rate", "fast", ("heavy", "dense"))),
    ),
    "saxophone": Vocabulary(
        names=(
            phrase("a saxophone"),
            phrase("saxophone"),
            phrase("a sax"),
            phrase("a jazz saxophone"),
            phrase("a reed instrument"),
            phrase("a tenor saxophone", pitch="low"),
            phrase("an alto saxophone", pitch="high"),
        ),
        heldout_names=(phrase("a sax player"),),
        verbs=(
            "playing a melody",
            "playing a jazzy melody",
            "improvising",
            "playing a solo",
            "playing a jazz tune",
        ),
        fixed=(
            phrase(PAPER_PROMPTS["sax"]),
            phrase("jazz saxophone solo"),
            phrase("a saxophone melody, jazz"),
        ),
        words=(("rate", "slow", ("laid-back",)), ("rate", "fast", ("bebop",))),
    ),
    "bongo": Vocabulary(
        names=(
            phrase("bongo drums"),
            phrase("bongos"),
            phrase("a bongo drum"),
            phrase("hand drums"),
            phrase("latin percussion"),
        ),
        heldout_names=(phrase("a pair of bongos"),),
        verbs=("playing a rhythmic beat", "playing a rhythm", "being played by hand", "drumming a groove"),
        fixed=(phrase(PAPER_PROMPTS["bongo"]), phrase("bongo beats"), phrase("hand percussion on bongos")),
    ),
    "waves": Vocabulary(
        names=(
            phrase("waves"),
            phrase("ocean waves"),
            phrase("sea waves"),
            phrase("the surf"),
            phrase("the sea"),
            phrase("waves on a rocky shore"),
        ),
        heldout_names=(phrase("the tide"),),
        verbs=(
            "crashing",
            "crashing on a rocky shore",
            "breaking on the rocks",
            "washing ashore",
            "rolling in",
        ),
        fixed=(
            phrase(PAPER_PROMPTS["waves"]),
            phrase("ocean waves crashing on rocks"),
            phrase("sea surf on the shore"),
        ),
        words=(("rate", "slow", ("calm",)), ("rate", "fast", ("rough", "choppy", "stormy"))),
    ),
    "metal_pipes": Vocabulary(
        names=(
            phrase("metal pipes"),
            phrase("steel pipes"),
            phrase("metal rods"),
            phrase("a pile of metal pipes"),
            phrase("iron bars"),
        ),
        heldout_names=(phrase("scaffolding poles"),),
        verbs=(
            "clanging",
            "dropping on concrete",
            "falling on the floor",
            "clattering",
            "bouncing on concrete",
        ),
        fixed=(
            phrase(PAPER_PROMPTS["pipes"]),
            phrase("metal pipes falling and clanging"),
            phrase("steel pipes clattering on a concrete floor"),
        ),
    ),
    "glass_break": Vocabulary(
        names=(
            phrase("breaking glass"),
            phrase("shattering glass"),
            phrase("a window breaking", has_verb=True),
            phrase("smashed glass"),
            phrase("a bottle smashing", has_verb=True),
            phrase("glass"),
            phrase("glass shards"),
        ),
        heldout_names=(phrase("a windowpane"),),
        verbs=(
            "shattering",
            "breaking",
            "smashing",
            "breaking and shattering",
            "crashing to pieces",
            "shattering on the floor",
        ),
        fixed=(
            phrase(PAPER_PROMPTS["glass"]),
            phrase("a window smashing into pieces"),
            phrase("glass shattering"),
        ),
    ),
    "clock": Vocabulary(
        names=(
            phrase("a clock"),
            phrase("a grandfather clock"),
            phrase("an old clock"),
            phrase("a pendulum clock"),
            phrase("a ticking clock"),
            phrase("a wall clock"),
        ),
        heldout_names=(phrase("a mantel clock"),),
        verbs=("ticking", "tick-tocking", "ticking rhythmically", "ticking steadily"),
        fixed=(phrase(PAPER_PROMPTS["clock"]), phrase("clock ticking"), phrase("the tick tock of a clock")),
    ),
    "wind": Vocabulary(
        names=(
            phrase("wind"),
            phrase("the wind"),
            phrase("a breeze"),
            phrase("gusts of wind"),
            phrase("rustling leaves"),
            phrase("wind in the trees"),
            phrase("leaves rustling in the wind", has_verb=True),
        ),
        heldout_names=(phrase("a gale"),),
        verbs=("blowing", "rushing past", "howling", "blowing through the trees", "rustling the leaves"),
        fixed=(
            phrase(PAPER_PROMPTS["wind"], loudness="soft"),
            phrase("wind blowing through leaves"),
            phrase("a breeze rustling the leaves"),
        ),
        words=(("rate", "slow", ("steady",)), ("rate", "fast", ("gusty", "blustery"))),
    ),
    "kick": Vocabulary(
        names=(
            phrase("a kick drum"),
            phrase("a bass drum"),
            phrase("a kick"),
            phrase("kick drum hits"),
            phrase("an 808 kick"),
        ),
        heldout_names=(phrase("a drum machine kick"),),
        verbs=("thumping", "pounding", "hitting", "booming", "playing a steady beat"),
        fixed=(
            phrase("kick drum, bass, reverb", distance="far"),
            phrase("bass drum, low pitched", pitch="low"),
            phrase("a kick drum hit"),
        ),
    ),
    "snare": Vocabulary(
        names=(
            phrase("a snare drum"),
            phrase("snare"),
            phrase("a snare hit"),
            phrase("a rimshot"),
            phrase("snare drum hits"),
        ),
        heldout_names=(phrase("a marching snare"),),
        verbs=("cracking", "hitting", "playing a backbeat", "rattling", "being struck"),
        fixed=(phrase("snare drum hit"), phrase("a snare drum backbeat")),
    ),
    "pot": Vocabulary(
        names=(
            phrase("a pot"),
            phrase("a cooking pot"),
            phrase("a metal pot"),
            phrase("a saucepan"),
            phrase("a pan"),
        ),
        heldout_names=(phrase("a stockpot"),),
        verbs=(
            "hit with a wooden spoon",
            "being struck with a spoon",
            "banged with a wooden spoon",
            "being tapped",
        ),
        fixed=(
            phrase("hitting pot with wooden spoon"),
            phrase("someone banging on a pot"),
            phrase("a wooden spoon hitting a pan"),
        ),
    ),
    "wood": Vocabulary(
        names=(
            phrase("a wood block"),
            phrase("knocking on wood", has_verb=True),
            phrase("a wooden knock"),
            phrase("wooden sticks"),
            phrase("a knock on a door", has_verb=True),
        ),
        heldout_names=(phrase("knocks on a wooden table"),),
        verbs=("knocking", "clacking", "being hit", "tapping"),
        fixed=(phrase("knocking on a wooden door"), phrase("wood block percussion")),
    ),
    "metal": Vocabulary(
        names=(
            phrase("a metal clang"),
            phrase("a metal plate"),
            phrase("a steel beam"),
            phrase("an anvil"),
            phrase("a metallic hit"),
            phrase("a metal sheet"),
        ),
        heldout_names=(phrase("an iron plate"),),
        verbs=("being struck", "clanging", "ringing after a hit", "being hit with a hammer"),
        fixed=(
            phrase("sharp metallic clang", brightness="bright"),
            phrase("a hammer hitting metal"),
            phrase("metal impact"),
        ),
    ),
    "glass_clink": Vocabulary(
        names=(
            phrase("clinking glasses"),
            phrase("a wine glass"),
            phrase("a drinking glass"),
            phrase("glasses"),
            phrase("a crystal glass"),
        ),
        heldout_names=(phrase("a glass cup"),),
        verbs=("clinking", "being tapped", "chiming", "touching in a toast"),
        fixed=(phrase("glasses clinking together"), phrase("tapping a wine glass")),
    ),
    "bell": Vocabulary(
        names=(
            phrase("a bell"),
            phrase("church bells"),
            phrase("a large bell"),
            phrase("a handbell"),
            phrase("bells"),
            phrase("a temple bell"),
        ),
        heldout_names=(phrase("a cathedral bell"),),
        verbs=("ringing", "tolling", "chiming", "ringing out"),
        fixed=(phrase("a bell ringing"), phrase("church bell tolling")),
    ),
    "bass": Vocabulary(
        names=(
            phrase("a bass note"),
            phrase("bass guitar"),
            phrase("a bass"),
            phrase("a synth bass"),
            phrase("an electric bass"),
            phrase("a low bass tone", pitch="low"),
        ),
        heldout_names=(phrase("a bassline"),),
        verbs=("playing", "playing a note", "humming", "thumping", "being plucked"),
        fixed=(phrase("a warm bass note", brightness="dark"), phrase("bass guitar note")),
    ),
    "organ": Vocabulary(
        names=(
            phrase("an organ"),
            phrase("a church organ"),
            phrase("an electric organ"),
            phrase("organ chords"),
            phrase("a hammond organ"),
            phrase("a pipe organ"),
        ),
        heldout_names=(phrase("a harmonium"),),
        verbs=("playing a chord", "holding a chord", "playing sustained chords", "droning"),
        fixed=(phrase("organ playing a chord"), phrase("sustained organ chord")),
    ),
    "pluck": Vocabulary(
        names=(
            phrase("a plucked string"),
            phrase("a guitar"),
            phrase("an acoustic guitar"),
            phrase("a harp"),
            phrase("plucked strings"),
            phrase("a pizzicato string"),
        ),
        heldout_names=(phrase("a lute"),),
        verbs=("being plucked", "playing notes", "playing an arpeggio", "playing a melody"),
        fixed=(phrase("plucked guitar strings"), phrase("a harp arpeggio")),
    ),
    "brass": Vocabulary(
        names=(
            phrase("a brass instrument"),
            phrase("a horn"),
            phrase("brass"),
            phrase("a french horn"),
            phrase("a trumpet", pitch="high"),
            phrase("a trombone", pitch="low"),
        ),
        heldout_names=(phrase("a bugle"),),
        verbs=("playing a note", "blowing a fanfare", "playing long notes", "sounding"),
        fixed=(phrase("brass fanfare"), phrase("a trumpet playing a melody", pitch="high")),
    ),
    "flute": Vocabulary(
        names=(
            phrase("a flute"),
            phrase("a wooden flute"),
            phrase("a recorder"),
            phrase("a pan flute"),
            phrase("a breathy flute"),
        ),
        heldout_names=(phrase("a fife"),),
        verbs=("playing a melody", "playing a tune", "playing a simple melody", "trilling"),
        fixed=(phrase("flute melody"), phrase("a flute playing a folk tune")),
    ),
    "whistle": Vocabulary(
        names=(
            phrase("someone whistling"),
            phrase("a person whistling"),
            phrase("whistling"),
            phrase("a boy whistling"),
        ),
        heldout_names=(phrase("a man whistling"),),
        verbs=("a tune", "a melody", "a little song", "a cheerful tune"),
        fixed=(phrase("whistling a melody"), phrase("a person whistling a song")),
    ),
    "fm": Vocabulary(
        names=(
            phrase("an fm synth"),
            phrase("a synthesizer"),
            phrase("an electric piano"),
            phrase("a synth tone"),
            phrase("a digital synth"),
            phrase("fm synthesis"),
        ),
        heldout_names=(phrase("a dx7 patch"),),
        verbs=("playing a note", "playing notes", "sounding", "playing a short phrase"),
        fixed=(phrase("fm synthesizer tone"), phrase("frequency modulation synth notes")),
    ),
    "siren": Vocabulary(
        names=(
            phrase("a siren"),
            phrase("a police siren"),
            phrase("an ambulance siren"),
            phrase("an emergency siren"),
            phrase("an alarm"),
        ),
        heldout_names=(phrase("an air raid siren"),),
        verbs=("wailing", "blaring", "going off", "sounding"),
        fixed=(phrase("police siren wailing"), phrase("an emergency vehicle siren")),
    ),
    "sweep": Vocabulary(
        names=(
            phrase("a sine sweep"),
            phrase("a frequency sweep"),
            phrase("a sweeping tone"),
            phrase("a laser sound"),
            phrase("a synth sweep"),
            phrase("a tone sweep"),
        ),
        heldout_names=(phrase("a pitch sweep"),),
        verbs=("sweeping", "gliding", "sliding in pitch", "sweeping across the spectrum"),
        fixed=(phrase("sine wave frequency sweep"), phrase("a tone gliding up and down")),
    ),
    "rain": Vocabulary(
        names=(
            phrase("rain"),
            phrase("rainfall"),
            phrase("a rain shower"),
            phrase("raindrops"),
            phrase("rain on a roof"),
        ),
        heldout_names=(phrase("rain on a tent"),),
        verbs=("falling", "pattering", "pouring", "falling on leaves", "drumming on a roof"),
        fixed=(phrase("rain falling"), phrase("raindrops pattering on the ground")),
        words=(("rate", "slow", ("light", "drizzling")), ("rate", "fast", ("heavy", "pouring"))),
    ),
    "fire": Vocabulary(
        names=(
            phrase("a fire"),
            phrase("a crackling fire"),
            phrase("a campfire"),
            phrase("a fireplace"),
            phrase("burning wood"),
            phrase("flames"),
        ),
        heldout_names=(phrase("a bonfire"),),
        verbs=("crackling", "burning", "popping", "crackling and popping"),
        fixed=(phrase("fire crackling"), phrase("wood burning in a fireplace")),
        words=(("rate", "slow", ("smoldering",)), ("rate", "fast", ("roaring", "blazing"))),
    ),
    "engine": Vocabulary(
        names=(
            phrase("an engine"),
            phrase("a motor"),
            phrase("a car engine"),
            phrase("engine hum"),
            phrase("a diesel engine"),
            phrase("a generator"),
        ),
        heldout_names=(phrase("a boat motor"),),
        verbs=("humming", "idling", "running", "rumbling", "droning"),
        fixed=(phrase("engine idling"), phrase("a motor running steadily")),
        words=(("pitch", "high", ("revving",)),),
    ),
    "birds": Vocabulary(
        names=(
            phrase("birds"),
            phrase("a bird"),
            phrase("birdsong"),
            phrase("songbirds"),
            phrase("a small bird"),
            phrase("bird calls"),
        ),
        heldout_names=(phrase("a sparrow"),),
        verbs=("chirping", "singing", "tweeting", "twittering"),
        fixed=(phrase("birds chirping"), phrase("a bird singing in the morning")),
    ),
    "footsteps": Vocabulary(
        names=(
            phrase("footsteps"),
            phrase("steps"),
            phrase("someone walking", has_verb=True),
            phrase("a person walking", has_verb=True),
            phrase("footfalls"),
        ),
        heldout_names=(phrase("boots"),),
        verbs=("walking", "on a hard floor", "approaching", "passing by"),
        fixed=(phrase("footsteps on a floor"), phrase("a person walking")),
        words=(("rate", "slow", ("walking",)), ("rate", "fast", ("running", "hurried"))),
    ),
    "noise": Vocabulary(
        names=(
            phrase("noise"),
            phrase("static"),
            phrase("hiss"),
            phrase("background noise"),
            phrase("broadband noise"),
            phrase("random noise"),
            phrase("white noise", brightness="bright"),
            phrase("pink noise", brightness="dark"),
            phrase("brown noise", brightness="dark"),
        ),
        heldout_names=(phrase("tape hiss"),),
        verbs=("hissing", "in the background", "steady", "continuous"),
        fixed=(phrase("steady noise"), phrase("white noise", brightness="bright")),
    ),
    "hum": Vocabulary(
        names=(
            phrase("hum"),
            phrase("electrical hum"),
            phrase("mains hum"),
            phrase("a buzz"),
            phrase("electrical buzz"),
            phrase("a transformer hum"),
            phrase("ground loop hum"),
        ),
        heldout_names=(phrase("power line hum"),),
        verbs=("humming", "buzzing", "droning"),
        fixed=(phrase("electrical mains hum"), phrase("a buzzing transformer")),
    ),
}

_FIXED_PROB = 0.2  # share of training captions that are a fixed caption when one fits the attributes
_N_MENTIONS = ((0, 1, 2, 3), (0.2, 0.35, 0.3, 0.15))  # how many attributes a caption names


def _pick(rng: np.random.Generator, items: tuple | list):
    return items[int(rng.integers(len(items)))]


def _attach(adjectives: list[str], name: str) -> str:
    """Put adjectives between a name's article and its noun, fixing a/an."""
    if not adjectives:
        return name
    article, rest = "", name
    for art in ("a ", "an ", "the "):
        if name.startswith(art):
            article, rest = art.strip(), name[len(art) :]
    if article in ("a", "an"):
        article = "an" if adjectives[0][0] in "aeiou" else "a"
    return " ".join(filter(None, [article, *adjectives, rest]))


def _join(rng: np.random.Generator, words: list[str], comma_first: bool) -> str:
    if len(words) == 2 and rng.random() < 0.3:
        return f"{words[0]} and {words[1]}"
    return (", " if comma_first or rng.random() < 0.5 else " ").join(words)


def _attribute_words(
    vocab: Vocabulary, attributes: Mapping[str, str], rng: np.random.Generator, split: str, allow_post: bool
) -> tuple[list[str], list[str]]:
    """Choose which attributes to name, and for each an adjective or a phrase."""
    axes = list(attributes)
    counts, probs = _N_MENTIONS
    k = min(int(rng.choice(counts, p=probs)), len(axes))
    chosen = [axes[i] for i in rng.permutation(len(axes))[:k]]
    pre: list[str] = []
    post: list[str] = []
    for axis in chosen:
        word = attributes[axis]
        adjectives = ADJECTIVES[word] + vocab.extra_words(axis, word)
        if split == "heldout":
            adjectives = adjectives + HELDOUT_ADJECTIVES[word]
        if not allow_post or rng.random() < 0.6:
            pre.append(_pick(rng, adjectives))
        else:
            post.append(_pick(rng, PHRASES[word]))
    return pre, post


def make_caption(
    family: str, attributes: Mapping[str, str], rng: np.random.Generator, split: str = "train"
) -> str:
    """A caption for a clip of ``family`` with ``attributes``, in the phrasings of ``split``.

    Training captions use training templates, names and attribute words, or a fixed caption that
    fits the attributes. Held-out captions use a held-out template, or a training template with a
    held-out name; their attribute words may include held-out synonyms.

    Args:
        family: a family name (a key of ``VOCABULARIES``).
        attributes: axis -> level word (the axes the family supports).
        rng: randomness of the phrasing.
        split: "train" or "heldout".

    Returns:
        a lower-case caption.
    """
    if family not in VOCABULARIES:
        raise ValueError(f"make_caption family: expected one of {sorted(VOCABULARIES)}, got {family!r}")
    if split not in SPLITS:
        raise ValueError(f"make_caption split: expected one of {SPLITS}, got {split!r}")
    for axis, word in attributes.items():
        if axis not in AXES or word not in AXES[axis]:
            raise ValueError(f"make_caption attributes: expected words of {AXES}, got {axis!r}: {word!r}")
    vocab = VOCABULARIES[family]
    if split == "train":
        fixed = [p for p in vocab.fixed if p.fits(attributes)]
        if fixed and rng.random() < _FIXED_PROB:
            return _pick(rng, fixed).text
        templates, names = TRAIN_TEMPLATES, vocab.names
    elif rng.random() < 0.5:
        templates, names = HELDOUT_TEMPLATES, vocab.names + vocab.heldout_names
    else:
        templates, names = TRAIN_TEMPLATES, vocab.heldout_names
    chosen = _pick(rng, [p for p in names if p.fits(attributes)])
    name = chosen.text
    template = _pick(rng, [t for t in templates if not (chosen.has_verb and "{verb}" in t)])
    pre, post = _attribute_words(vocab, attributes, rng, split, allow_post="{post}" in template)
    order = rng.permutation(len(pre))
    pre = [pre[i] for i in order]
    subject = _attach([_join(rng, pre, comma_first=False)] if pre else [], name)
    return template.format(
        name=subject,
        verb=_pick(rng, vocab.verbs),
        post=(", " + _join(rng, post, comma_first=True)) if post else "",
    )
