"""The ``audiosds`` command's options, each declared once.

One table, :func:`options`, has a row per option: its flags, its help, its argparse settings and,
per subcommand, the config key(s) it sets. The argparse parsers, the flag -> config mapping and the
``--config`` layering (defaults < config file < command-line flags) are all derived from it, and
the defaults a help text shows are read from the config a command starts from (:func:`schema`: the
task and loop dataclasses, with each command's own overrides such as ``SYNTHESIS_SDS``), never
written into the help. Plain argparse and a table of our own: no third-party option library.
"""

from __future__ import annotations

import argparse
import functools
import math
import os
import textwrap
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from . import __version__

SYNTH = ("fm", "impact")
SEPARATE = ("separate",)
GENERATE = ("generate",)
SUGGEST = ("suggest",)
REVERB = ("reverb",)
ENHANCE = ("enhance",)
UI = ("ui",)
BATCH = ("batch",)
FOLDER = SYNTH + SEPARATE  # the commands that write a run folder (and can be resumed)
COMMANDS = FOLDER + GENERATE
TUNE = SYNTH + REVERB  # the commands that tune a renderer toward a prompt
OUT_DIR = FOLDER + REVERB + ENHANCE  # the commands that write a run folder
RUN = COMMANDS + REVERB + ENHANCE  # the commands that run a prior
SEPARATING = SEPARATE + ENHANCE  # the commands that run a separation
ALL = RUN + SUGGEST

DEFAULT_PARTICLES = 2  # fm / impact: starts optimised side by side in one batch (1.4-2.1x one's time)
# generate's settings file keeps GenerateConfig's fields at its top level, under these names
GENERATE_KEYS = {
    "seconds": "seconds",
    "seed": "seed",
    "steps": "steps",
    "cfg": "cfg_scale",
    "sampler": "method",
}


class UsageError(Exception):
    """A bad option, argument or config value: exit status 2."""


class _Parser(argparse.ArgumentParser):
    """argparse that raises UsageError instead of printing usage and exiting."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(message)


# -- value parsers ----------------------------------------------------------------------


def _int_at_least(low: int, expected: str) -> Callable[[str], int]:
    """A parser of integers >= ``low``; ``expected`` names them in the error."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError as err:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from err
        if value < low:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
        return value

    return parse


_positive_int = _int_at_least(1, "a positive integer")
_count = _int_at_least(0, "an integer >= 0")


def _finite_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from err
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def default_threads() -> int:
    """CPU threads a run uses unless told: the physical cores this process may run on, less the
    cores other processes keep busy (the 1-minute load average), capped by OMP_NUM_THREADS when
    set; at least 1. Never more threads than free cores: on a busy 2-core machine two threads
    ran 16x slower than one."""
    cpus = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else set(range(os.cpu_count() or 1))
    cores = _physical_cores(cpus) or len(cpus)
    busy = round(os.getloadavg()[0]) if hasattr(os, "getloadavg") else 0
    threads = max(1, min(cores, len(cpus) - busy))
    omp = os.environ.get("OMP_NUM_THREADS", "")
    if omp.isdigit() and int(omp) >= 1:
        threads = min(threads, int(omp))
    return threads


def _physical_cores(cpus: set[int]) -> int:
    """Distinct (package, core) pairs among ``cpus`` from /proc/cpuinfo; 0 when unknown."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return 0
    cores = set()
    for block in text.split("\n\n"):
        fields = dict(
            (k.strip(), v.strip()) for k, _, v in (line.partition(":") for line in block.splitlines())
        )
        if "processor" in fields and int(fields["processor"]) in cpus:
            cores.add((fields.get("physical id", "0"), fields.get("core id", fields["processor"])))
    return len(cores)


# -- what each command's config holds ---------------------------------------------------


@dataclass(frozen=True)
class Section:
    """A mapping-valued config key (``prior``, ``sds``, ...): a config file or a flag sets keys
    inside it. ``base`` holds the command's own defaults over those of ``cls``, the dataclass the
    run builds from the section (None: free-form options a registry checks, e.g. the prior's)."""

    cls: type | None = None
    base: Mapping[str, Any] = field(default_factory=dict)

    def default(self, key: str) -> Any:
        if key in self.base:
            return self.base[key]
        return getattr(self.cls, key, None)


def schema(command: str, prior: str | None = None) -> dict[str, Any]:
    """The config ``command`` starts from with ``prior`` (default: the default prior), in the order
    its config file lists it: a plain default per key, or a :class:`Section`."""
    from .priors import DEFAULT_PRIOR, prior_defaults
    from .renderers.fm import FMConfig
    from .renderers.impact import ImpactConfig
    from .sds import SDSConfig
    from .tasks.enhance import DEFAULT_PROMPT, NOISE_PROMPT
    from .tasks.generate import GenerateConfig
    from .tasks.loop import LoopConfig
    from .tasks.reverb import FIT_SECONDS
    from .tasks.separate import SEPARATION_SDS, SeparateConfig
    from .tasks.suggest import SuggestConfig
    from .tasks.synthesize import SYNTHESIS_SDS, SynthesizeConfig

    if command == "suggest":
        return {"command": command, "mixture": None, "threads": None, "suggest": Section(SuggestConfig)}
    if command == "batch":
        return {"command": command, "jobs_file": None, "workers": None, "address": None, "threads": None}
    if command == "ui":
        return {
            "command": command,
            "host": "127.0.0.1",
            "port": 7860,
            "runs": "runs",
            "jobs": 1,
            "allow_remote": False,
            "max_seconds": 600.0,
            "device": "cpu",
            "threads": None,
            "prior": Section(base={"name": prior or DEFAULT_PRIOR}),
        }
    head = {"command": command, "prompt": None, "negative": None}
    prior = prior or DEFAULT_PRIOR
    run = {"device": "cpu", "threads": None, "prior": Section(base={"name": prior})}
    task = "enhancement" if command == "enhance" else "separation"
    separation = {
        "separate": Section(SeparateConfig, prior_defaults(prior, task, "separate")),
        "sds": Section(SDSConfig, {**SEPARATION_SDS, **prior_defaults(prior, task)}),
        "loop": Section(LoopConfig),
    }
    if command == "enhance":
        return {
            "command": command,
            "noisy": None,
            "prompt": DEFAULT_PROMPT,
            "noise_prompt": NOISE_PROMPT,
            **run,
            **separation,
        }
    if command == "reverb":
        return {
            "command": command,
            "dry": None,
            "prompt": None,
            "negative": None,
            "seconds": FIT_SECONDS,
            **run,
            "renderer": Section(base={"batch_size": DEFAULT_PARTICLES}),
            "synthesize": Section(SynthesizeConfig),
            "sds": Section(SDSConfig, {**SYNTHESIS_SDS, **prior_defaults(prior, "synthesis")}),
            "loop": Section(LoopConfig),
        }
    if command in SYNTH:
        return {
            **head,
            "seconds": {"fm": FMConfig, "impact": ImpactConfig}[command].seconds,
            **run,
            "renderer": Section(base={"batch_size": DEFAULT_PARTICLES}),
            "synthesize": Section(SynthesizeConfig),
            "sds": Section(SDSConfig, {**SYNTHESIS_SDS, **prior_defaults(prior, "synthesis")}),
            "loop": Section(LoopConfig),
        }
    if command == "separate":
        return {
            "command": command,
            "mixture": None,
            "prompts": None,
            "negative": None,
            **run,
            **separation,
        }
    return {
        **head,
        **{key: getattr(GenerateConfig, name) for key, name in GENERATE_KEYS.items()},
        **run,
        "version": None,  # written for the record; any version's file is read
        "sample_rate": None,  # written for the record; the prior decides it
    }


def default_of(spec: dict[str, Any], path: str) -> Any:
    """The default at a dotted config path ("sds.cfg_scale") of a :func:`schema`."""
    key, _, inner = path.partition(".")
    return spec[key].default(inner) if inner else spec[key]


# -- the table --------------------------------------------------------------------------


@dataclass(frozen=True)
class Option:
    """One command-line option.

    ``keys`` maps the commands that take the option to the config path(s) it sets there, dotted
    and space-separated ("synthesize.seed renderer.seed"); "" marks a run flag that is no setting
    (``--quiet``). ``help`` may name ``{default}`` (the command's default at the first path) and
    ``{cores}`` (:func:`default_threads` now).
    """

    flags: tuple[str, ...]
    keys: dict[str, str]
    help: str
    argparse: dict[str, Any]

    @property
    def dest(self) -> str:
        """argparse's attribute name: the first long flag, or the positional's name."""
        name = next((f for f in self.flags if f.startswith("--")), self.flags[0])
        return name.lstrip("-").replace("-", "_")

    def paths(self, command: str) -> list[str]:
        return self.keys[command].split()


def _opt(*flags: str, to: dict[tuple[str, ...], str] | tuple[str, ...], help: str, **kw: Any) -> Option:
    """A table row; ``to`` is {commands: config paths}, or just the commands of a run flag."""
    groups = to if isinstance(to, dict) else {to: ""}
    return Option(flags, {c: paths for group, paths in groups.items() for c in group}, help, kw)


@functools.cache
def options() -> tuple[Option, ...]:
    """The table: every option of every command, in the order --help lists them."""
    from .priors import PRIORS
    from .sampling import GENERATION_METHODS
    from .sds import MODES
    from .tasks.separate import PARAMETRIZATIONS, STARTS

    return (
        _opt(
            "mixture", to={SEPARATE + SUGGEST: "mixture"}, help="audio file (WAV, FLAC, OGG, ...)", nargs="?"
        ),
        _opt(
            "jobs_file",
            to={BATCH: "jobs_file"},
            help="the jobs, as YAML: defaults, a list of jobs and/or grids of options (docs/batch.md)",
            nargs="?",
            metavar="JOBS.yaml",
        ),
        _opt("dry", to={REVERB: "dry"}, help="the dry recording (WAV, FLAC, OGG, ...)", nargs="?"),
        _opt("noisy", to={ENHANCE: "noisy"}, help="the noisy recording (WAV, FLAC, OGG, ...)", nargs="?"),
        _opt(
            "--prompt",
            to={TUNE + GENERATE: "prompt"},
            help="what the sound should be, in words (required)",
        ),
        _opt(
            "--negative",
            to={TUNE + GENERATE: "negative"},
            help="what the sound should not be, in words (default: {default})",
        ),
        _opt(
            "--seed",
            to={TUNE: "synthesize.seed renderer.seed", SEPARATING: "separate.seed", GENERATE: "seed"},
            help="random seed; the same seed gives the same result (default {default})",
            type=int,
        ),
        _opt(
            "--prior",
            to={RUN + UI: "prior.name"},
            help="the diffusion model that judges and guides the sound (default {default}, shipped "
            "with the package; analytic is a test oracle that knows no sounds)",
            choices=sorted(PRIORS),
        ),
        _opt(
            "--model",
            to={RUN + UI: "prior.model"},
            help="model folder or Hugging Face id, for auto, stable-audio-open, stable-audio-3 and "
            "audioldm2; a weights folder for embedded-mel (default: {default})",
        ),
        _opt(
            "--cfg",
            to={OUT_DIR: "sds.cfg_scale", GENERATE: "cfg"},
            help="prompt strength: higher follows the prompt harder, too high buzzes (default {default})",
            type=_finite_float,
        ),
        _opt(
            "--device",
            to={RUN + UI: "device"},
            help="where to compute (default {default})",
            choices=("cpu", "cuda"),
        ),
        _opt(
            "--threads",
            to={ALL + UI + BATCH: "threads"},
            help="CPU threads (default: the free physical cores, {cores} now); a rerun gives "
            "the same bytes only with the same thread count, which config files record",
            type=_positive_int,
            metavar="N",
        ),
        _opt(
            "--config",
            to=ALL + UI,
            help="settings file to start from, e.g. a previous run's config (default: none)",
            type=Path,
        ),
        _opt("--debug", to=ALL + UI + BATCH, help="show full tracebacks on errors", action="store_true"),
        _opt("--no-score", to=RUN, help="do not score the sound against the prompt", action="store_true"),
        _opt("--quiet", to=RUN + BATCH, help="no progress bar and no closing line", action="store_true"),
        _opt(
            "--progress-log",
            to=RUN,
            help="append one JSON line per step (step, total and the step's losses and scores) to FILE, "
            "for a dashboard that follows the run (default: none)",
            type=Path,
            metavar="FILE",
        ),
        _opt(
            "--prompt",
            to={SEPARATE: "prompts"},
            help="one per source, 2 to 8 (repeat the flag; required); or auto[:N] alone: the N "
            "(default 2) prompts audiosds suggest ranks first",
            action="append",
            metavar="PROMPTS",
        ),
        _opt(
            "--prompt",
            to={ENHANCE: "prompt"},
            help="what to keep, in words (default: {default})",
        ),
        _opt(
            "--noise-prompt",
            to={ENHANCE: "noise_prompt"},
            help="what to remove, in words: the catch-all source; auto: the suggestion ranked first "
            "that --prompt does not name (default: {default})",
        ),
        _opt(
            "--negative",
            to={SEPARATE: "negative"},
            help="per-source negative prompts, none or one per --prompt (default: {default})",
            action="append",
            metavar="NEGATIVES",
        ),
        _opt(
            "--iters",
            to={TUNE: "synthesize.iters"},
            help="optimisation steps (default {default})",
            type=_positive_int,
        ),
        _opt(
            "--iters",
            to={SEPARATING: "separate.iters"},
            help="optimisation steps per window; 0 keeps the start (default {default})",
            type=_count,
        ),
        _opt(
            "--lr",
            to={TUNE: "synthesize.lr"},
            help="step size of the parameter updates (Adam learning rate; default {default})",
            type=_finite_float,
        ),
        _opt(
            "--lr",
            to={SEPARATING: "separate.lr"},
            help="step size of the updates (Adam learning rate; default {default})",
            type=_finite_float,
        ),
        _opt(
            "--gamma",
            to={SEPARATING: "separate.gamma"},
            help="weight of the prompts against fitting the recording (default {default})",
            type=_finite_float,
        ),
        _opt(
            "--sources",
            to={SEPARATING: "separate.parametrization"},
            help="how a source is represented: remasked (the prior's sound turned into a mask over the "
            "recording), masks (masks over the recording) or latent (the prior's code) (default {default})",
            choices=PARAMETRIZATIONS,
        ),
        _opt(
            "--start",
            to={SEPARATING: "separate.start"},
            help="where the sources begin: mixture (an even split) or noise_floor (two sources: the first "
            "starts as a classic noise suppression's foreground, the second as its noise floor) "
            "(default {default})",
            choices=STARTS,
        ),
        _opt(
            "--noise-source",
            to={SEPARATE: "separate.noise_source"},
            help="add a catch-all 'noise' source (default: {default})",
            action="store_const",
            const=True,
        ),
        _opt(
            "--contrast",
            to={SEPARATE: "separate.contrast"},
            help="a source without --negative uses the other sources' prompts as its negative prompt "
            "(default: {default})",
            action=argparse.BooleanOptionalAction,
        ),
        _opt(
            "--sds-modes",
            to={SEPARATE: "separate.sds_modes"},
            help="one set of sources per comparison mode, averaged (default: {default})",
            nargs="+",
            choices=MODES,
        ),
        _opt(
            "--seconds",
            to={SYNTH: "seconds"},
            help="length of the sound in seconds (default {default})",
            type=_finite_float,
        ),
        _opt(
            "--seconds",
            to={REVERB: "seconds"},
            help="the room is tuned on the loudest this many seconds of DRY (default {default})",
            type=_finite_float,
        ),
        _opt(
            "--seconds",
            to={GENERATE: "seconds"},
            help="length in seconds (default {default})",
            type=_finite_float,
        ),
        _opt(
            "--mode",
            to={TUNE: "sds.mode"},
            help="how the prior's suggestion is compared with the sound: spectral (magnitude "
            "spectrograms), decoder (waveforms) or latent (the prior's own code) (default {default})",
            choices=MODES,
        ),
        _opt(
            "--steps",
            to={OUT_DIR: "sds.num_steps"},
            help="denoising steps per suggestion from the prior (default {default})",
            type=_positive_int,
        ),
        _opt("--steps", to={GENERATE: "steps"}, help="sampler steps (default {default})", type=_positive_int),
        _opt(
            "--draws",
            to={TUNE: "sds.num_draws"},
            help="noise draws averaged per optimisation step (default {default})",
            type=_positive_int,
        ),
        _opt(
            "--particles",
            to={TUNE: "renderer.batch_size"},
            help="independent starting sounds tuned side by side, the best-scoring reported "
            "(default {default}; each costs about one more run's time)",
            type=_positive_int,
            metavar="N",
        ),
        _opt(
            "--final",
            to={TUNE: "synthesize.keep_best"},
            help="report the last iterate instead of the best-scoring one (default: the best)",
            action="store_const",
            const=False,
        ),
        _opt(
            "--top",
            to={SUGGEST: "suggest.top"},
            help="suggestions shown, overall and per window (default {default})",
            type=_positive_int,
            metavar="N",
        ),
        _opt("--json", to=SUGGEST, help="print the ranking as JSON instead of a table", action="store_true"),
        _opt(
            "--window",
            to={SUGGEST: "suggest.window_seconds"},
            help="window length in seconds; each window is ranked on its own (default {default})",
            type=_finite_float,
        ),
        _opt(
            "--method",
            to={GENERATE: "sampler"},
            help="sampler (default {default}); euler_ancestral adds seeded noise on the way",
            choices=GENERATION_METHODS,
        ),
        _opt("-o", "--out", to=OUT_DIR + BATCH, help="output folder (required)", type=Path),
        _opt("-o", "--out", to=GENERATE, help="output WAV file (required)", type=Path),
        _opt(
            "--force", to=OUT_DIR, help="replace this tool's files in an existing folder", action="store_true"
        ),
        _opt("--force", to=GENERATE, help="replace existing output files", action="store_true"),
        _opt(
            "--resume", to=FOLDER, help="continue an interrupted run in its folder", type=Path, metavar="DIR"
        ),
        _opt(
            "--workers",
            to={BATCH: "workers"},
            help="jobs at once, on a local Ray (default: the free physical cores, {cores} now; 1 runs them "
            "one after another without Ray)",
            type=_positive_int,
            metavar="N",
        ),
        _opt(
            "--address",
            to={BATCH: "address"},
            help="run on the Ray cluster at this address, e.g. ray://head:10001 or auto (default: "
            "$RAY_ADDRESS, else a local Ray)",
        ),
        _opt(
            "--host",
            to={UI: "host"},
            help="address to serve on (default {default}: this machine only)",
        ),
        _opt(
            "--port",
            to={UI: "port"},
            help="port to serve on; 0 picks a free one (default {default})",
            type=int,
        ),
        _opt(
            "--runs",
            to={UI: "runs"},
            help="folder of the run folders the page writes, lists and serves; nothing outside it is served "
            "(default {default})",
            metavar="DIR",
        ),
        _opt(
            "--jobs",
            to={UI: "jobs"},
            help="runs at once; the others wait in a queue (default {default})",
            type=_positive_int,
            metavar="N",
        ),
        _opt(
            "--allow-remote",
            to={UI: "allow_remote"},
            help="allow a --host other than this machine's loopback (anyone who reaches it can run jobs)",
            action="store_const",
            const=True,
        ),
        _opt(
            "--max-seconds",
            to={UI: "max_seconds"},
            help="the longest recording the page takes, in seconds (default {default})",
            type=_finite_float,
        ),
        _opt(
            "--checkpoint-every",
            to={FOLDER: "loop.checkpoint_every"},
            help="iterations between saved checkpoints (default {default})",
            type=int,
            metavar="N",
        ),
        _opt(
            "--keep-checkpoint",
            to=FOLDER,
            help="keep the checkpoint file after a run that finished (default: removed)",
            action="store_true",
        ),
    )


def _shown(value: Any) -> str:
    """A default as a help text shows it."""
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list | tuple):
        return " ".join(map(str, value))
    return "none" if value is None else str(value)


# -- parsers ----------------------------------------------------------------------------


PAPER_NOTES = """\
References: Score Distillation Sampling for audio is Audio-SDS (arXiv 2505.04621). The update
modes are its equations: spectral = eq. 7 (spectrogram emphasis), decoder = eqs. 5-6
(Decoder-SDS), latent = eq. 4 (classic SDS); the FM synthesizer is eq. 8, the impact model
eqs. 9-10 and separation eq. 13. Guidance is classifier-free guidance (CFG)."""

_SYNTH_TEXT = (
    "Tune {what} so that its sound matches a text prompt. Writes audio.wav (the best-scoring sound), "
    "initial.wav (where it started), params.json, config.yaml, history.csv and spectrogram.png into the "
    "output folder."
)
SUBCOMMANDS = {  # name -> (one-line help, description)
    "fm": (
        "tune a 4-operator FM synthesizer toward a prompt",
        _SYNTH_TEXT.format(what="a 4-operator FM synthesizer"),
    ),
    "impact": (
        "tune a modal impact (struck object) model toward a prompt",
        _SYNTH_TEXT.format(what="a modal impact (struck object) model"),
    ),
    "separate": (
        "split a recording into prompt-named sources",
        "Split a recording into one source per prompt: the sources add up to the recording, and each is "
        "pushed toward its prompt. Writes source_1.wav, source_2.wav, ..., mixture_reconstruction.wav, "
        "params.json, config.yaml, history.csv and spectrograms.png.",
    ),
    "reverb": (
        "tune a room's reverb so a dry recording matches a prompt",
        "Tune a reverb (per-octave RT60, pre-delay, early reflections, wet/dry) so that a dry recording "
        "through it matches a text prompt such as 'in a large stone hall'. Writes wet.wav (the whole "
        "recording through the room, with its tail), impulse_response.wav, params.json (the room in "
        "human units, and the RT60 measured on the written response), config.yaml, history.csv and "
        "spectrogram.png.",
    ),
    "enhance": (
        "keep the prompted sound (speech by default), remove the noise",
        "Separate the sound a prompt names (default: speech) from everything else, a catch-all "
        "noise source: a two-source separation with settings tuned for speech in noise. Writes "
        "enhanced.wav and noise.wav (which add up to the input), params.json, config.yaml, history.csv "
        "and spectrograms.png.",
    ),
    "suggest": (
        "suggest prompts for what is audible in a recording",
        "Rank the sounds the shipped suggestion model knows (the procedural world's families and the "
        "real recordings' classes) by how well they match a recording, overall and per window, and "
        "print their prompts with their scores (cosine similarity, -1 to 1). Nothing is written. "
        "'audiosds separate MIX --prompt auto:N' separates with the top N.",
    ),
    "batch": (
        "many runs from a jobs file, on this machine or a Ray cluster",
        "Run every job of a YAML jobs file (runs listed one by one, or grids over prompts, seeds, "
        "commands and options), each the matching audiosds command writing DIR/<job id>/. Finished jobs "
        "are skipped and stopped ones resumed, so rerunning the same command continues a batch. Writes "
        "DIR/summary.csv (one row per job) and DIR/index.html (a gallery to listen to, sortable by score).",
    ),
    "ui": (
        "a local web page for every task",
        "Serve a web page on this machine for synthesis, separation and generation, with live progress, "
        "players, spectrograms and the run folders. Every run it starts is the matching audiosds command "
        "in a child process, writing the same run folder under --runs: the shell can resume it, and the "
        "page lists the shell's runs there too.",
    ),
    "generate": (
        "text-to-audio with the prior alone",
        "Generate a sound from a text prompt with the prior alone. Writes OUT.wav, OUT.json (its "
        "settings: rerun with --config OUT.json) and OUT.png (its spectrogram).",
    ),
}


def build_parser() -> argparse.ArgumentParser:
    """The ``audiosds`` parser: one subparser per command, its options read off :func:`options`."""
    parser = _Parser(
        prog="audiosds", description="Score Distillation Sampling for audio.", epilog=PAPER_NOTES
    )
    parser.add_argument("--version", action="version", version=f"audiosds {__version__}")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser)
    cores = default_threads()
    for command, (summary, description) in SUBCOMMANDS.items():
        p = sub.add_parser(
            command,
            help=summary,
            # the raw formatter keeps the references' lines; the description is wrapped here
            description=textwrap.fill(description, 90),
            epilog=PAPER_NOTES,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        spec = schema(command)
        for option in options():
            if command not in option.keys:
                continue
            paths = option.paths(command)
            default = _shown(default_of(spec, paths[0])) if paths else None
            kwargs = {**option.argparse, "help": option.help.format(default=default, cores=cores)}
            if option.flags[0].startswith("-"):
                kwargs["dest"] = option.dest
            p.add_argument(*option.flags, **kwargs)
    return parser


# -- layering ---------------------------------------------------------------------------


def read_config_file(path: Path, command: str) -> dict[str, Any]:
    """A --config file's settings for ``command``: a mapping of keys its :func:`schema` knows."""
    allowed = set(schema(command))
    if not path.is_file():
        raise UsageError(f"--config {path}: no such file")
    try:
        data = yaml.safe_load(path.read_text())
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        raise UsageError(f"--config {path}: not valid YAML ({str(err).splitlines()[0]})") from err
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise UsageError(f"--config {path}: expected a mapping at the top level")
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise UsageError(f"--config {path}: unknown key(s) {unknown}; expected some of {sorted(allowed)}")
    if data.get("command", command) != command:
        raise UsageError(f"--config {path}: written for '{data['command']}', not '{command}'")
    return data


def layered_config(args: argparse.Namespace) -> dict[str, Any]:
    """Defaults < ``--config`` file < command-line flags, as one plain dict (what config.yaml holds).

    A section's keys are layered one by one: a file that sets ``sds: {cfg_scale: 5}`` keeps the
    command's other SDS defaults. The defaults are those of the prior the file or a flag names
    (``audiosds.priors.PRIOR_DEFAULTS``).
    """
    config_file = getattr(args, "config", None)
    given = read_config_file(config_file, args.command) if config_file is not None else {}
    named = given.get("prior", {}).get("name") if isinstance(given.get("prior"), dict) else None
    spec = schema(args.command, getattr(args, "prior", None) or named)
    cfg = {k: dict(v.base) if isinstance(v, Section) else v for k, v in spec.items()}
    if config_file is not None:
        for key, value in given.items():
            if not isinstance(spec[key], Section):
                cfg[key] = value
            elif isinstance(value, dict):
                cfg[key].update(value)
            else:
                raise UsageError(f"--config {config_file}: '{key}' must be a mapping")
    for option in options():
        value = getattr(args, option.dest, None)
        if value is None or args.command not in option.keys:
            continue
        for path in option.paths(args.command):
            key, _, inner = path.partition(".")
            if inner:
                cfg[key][inner] = value
            else:
                cfg[key] = value
    return cfg
