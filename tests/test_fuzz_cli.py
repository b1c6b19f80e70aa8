"""Seeded fuzzing of the command line: broken files and bad argument combinations.

Every case must end with exactly one line on stderr naming the problem, exit status 2 (usage:
bad options or input files) and no output left behind. The cases are drawn from a fixed seed,
so a failure reproduces; the default run has well over 200 of them.
"""

import io
import random

import numpy as np
import pytest
import soundfile as sf

from audiosds.cli import main

SEED = 20261123

BAD_OPTIONS = {
    "--iters": ["0", "-3", "abc", "1.5", "1e9", "", "nan", "99999999"],
    "--cfg": ["nan", "inf", "-1", "1e6", "x", "-inf"],
    "--seconds": ["0", "-1", "1e9", "nan", "x", "0.001", "inf"],
    "--steps": ["0", "-1", "x", "2.5"],
    "--lr": ["0", "-1", "nan", "100", "x"],
    "--prior": ["nope", "", "ANALYTIC", "stable_audio"],
    "--draws": ["0", "x", "-2"],
    "--gamma": ["-1", "nan", "x", "inf"],
    "--mode": ["bogus", ""],
    "--device": ["tpu", "gpu"],
    "--sources": ["mask", "all"],
    "--method": ["euler_a", ""],
    "--checkpoint-every": ["-1", "x"],
    "--start": ["even", ""],
}
# a separation's --iters 0 is valid (the sources stay at their start)
SEPARATION_BAD = {"--iters": [v for v in BAD_OPTIONS["--iters"] if v != "0"]}
BAD_FOR = {"separate": SEPARATION_BAD}
APPLIES = {
    "fm": {
        "--iters",
        "--cfg",
        "--seconds",
        "--steps",
        "--lr",
        "--prior",
        "--draws",
        "--mode",
        "--device",
        "--checkpoint-every",
    },
    "separate": {
        "--iters",
        "--cfg",
        "--lr",
        "--prior",
        "--gamma",
        "--device",
        "--sources",
        "--steps",
        "--start",
    },
    "generate": {"--cfg", "--seconds", "--steps", "--prior", "--device", "--method"},
}
APPLIES["impact"] = APPLIES["fm"]
BAD_PROMPT_SETS = [[], ["only one"], [""], ["   ", "x"], [f"p{i}" for i in range(9)], ["a", "\t"]]


def _wav_bytes(rng: random.Random, fmt: str) -> bytes:
    n = rng.randint(200, 4000)
    audio = (0.1 * np.random.default_rng(rng.randint(0, 2**31)).standard_normal((n, 1))).astype(np.float32)
    buf = io.BytesIO()
    sf.write(buf, audio, 16000, format=fmt, subtype="PCM_16" if fmt != "OGG" else "VORBIS")
    return buf.getvalue()


def broken_file(rng: random.Random) -> tuple[str, bytes | None]:
    """A (suffix, content) pair that is not usable audio; content None means missing."""
    kind = rng.choice(
        [
            "missing",
            "random",
            "empty",
            "text",
            "truncated_wav",
            "truncated_flac",
            "header_only",
            "nan_wav",
            "zero_frames",
            "bad_chunks",
        ]
    )
    if kind == "missing":
        return ".wav", None
    if kind == "random":
        return rng.choice([".wav", ".flac", ".ogg", ".mp3"]), rng.randbytes(rng.randint(1, 3000))
    if kind == "empty":
        return rng.choice([".wav", ".flac"]), b""
    if kind == "text":
        return ".wav", ("not audio " * rng.randint(1, 50)).encode()
    if kind == "truncated_wav":
        data = _wav_bytes(rng, "WAV")
        return ".wav", data[: rng.randint(1, len(data) - 2)]
    if kind == "truncated_flac":
        data = _wav_bytes(rng, "FLAC")
        return ".flac", data[: rng.randint(1, len(data) - 2)]
    if kind == "header_only":
        return ".wav", _wav_bytes(rng, "WAV")[:44]
    if kind == "nan_wav":
        audio = np.zeros((rng.randint(10, 500), 1), np.float32)
        audio[rng.randrange(audio.shape[0])] = rng.choice([np.nan, np.inf, -np.inf])
        buf = io.BytesIO()
        sf.write(buf, audio, 16000, format="WAV", subtype="FLOAT")
        return ".wav", buf.getvalue()
    if kind == "zero_frames":
        buf = io.BytesIO()
        sf.write(buf, np.zeros((0, 1), np.float32), 16000, format=rng.choice(["WAV", "FLAC"]))
        return ".wav", buf.getvalue()
    data = bytearray(_wav_bytes(rng, "WAV"))
    for _ in range(rng.randint(1, 4)):  # corrupt the RIFF / WAVE / fmt tags
        at = rng.choice([*range(0, 4), *range(8, 16)])
        data[at] = (data[at] + rng.randrange(1, 256)) % 256
    return ".wav", bytes(data)


def argument_case(rng: random.Random) -> list[str]:
    command = rng.choice(["fm", "impact", "separate", "generate"])
    options = sorted(APPLIES[command])
    argv = [command]
    if command == "separate":
        argv.append("MIXTURE")
    bad = rng.sample(options, rng.randint(1, 3))
    prompts_bad = command == "separate" and rng.random() < 0.3
    if command == "separate":
        prompts = rng.choice(BAD_PROMPT_SETS) if prompts_bad else ["a bell", "rain"]
        argv += [a for p in prompts for a in ("--prompt", p)]
    else:
        argv += ["--prompt", rng.choice(["a bell", "", "  "]) if rng.random() < 0.2 else "a bell"]
    for flag in bad:
        argv += [flag, rng.choice(BAD_FOR.get(command, {}).get(flag, BAD_OPTIONS[flag]))]
    argv += ["-o", "OUT.wav" if command == "generate" else "OUT"]
    return argv


def assert_clean_failure(code: int, err: str, out_path) -> None:
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, err
    assert len(lines) == 1, err
    assert lines[0].startswith("audiosds: error:"), err
    assert "Traceback" not in err
    assert not out_path.exists(), "a failed run left output behind"


ARG_CASES = [argument_case(random.Random(SEED + i)) for i in range(160)]
FILE_CASES = [broken_file(random.Random(SEED * 7 + i)) for i in range(60)]


@pytest.fixture(scope="module")
def good_mixture(tmp_path_factory):
    path = tmp_path_factory.mktemp("mix") / "mix.wav"
    sf.write(str(path), 0.1 * np.random.default_rng(0).standard_normal((8000, 1)), 16000)
    return path


@pytest.mark.parametrize("argv", ARG_CASES, ids=[" ".join(a)[:60] for a in ARG_CASES])
def test_bad_arguments_fail_cleanly(tmp_path, capsys, good_mixture, argv):
    out = tmp_path / ("out.wav" if argv[0] == "generate" else "out")
    resolved = [
        str(good_mixture) if a == "MIXTURE" else str(out) if a in ("OUT", "OUT.wav") else a for a in argv
    ]
    code = main([*resolved, "--quiet"])
    assert_clean_failure(code, capsys.readouterr().err, out)


@pytest.mark.parametrize("case", FILE_CASES, ids=[f"{i}-{c[0]}" for i, c in enumerate(FILE_CASES)])
def test_broken_input_files_fail_cleanly(tmp_path, capsys, case):
    suffix, content = case
    mixture = tmp_path / f"mixture{suffix}"
    if content is not None:
        mixture.write_bytes(content)
    out = tmp_path / "out"
    code = main(
        [
            "separate",
            str(mixture),
            "--prompt",
            "a bell",
            "--prompt",
            "rain",
            "--iters",
            "1",
            "--quiet",
            "-o",
            str(out),
        ]
    )
    assert_clean_failure(code, capsys.readouterr().err, out)


# -- issue 30's commands: suggest, reverb, enhance ------------------------------------------------

NEW_APPLIES = {
    "suggest": {"--top": ["0", "-1", "x", "1.5"], "--window": ["0", "nan", "x", "-1", "1e9"]},
    "reverb": {
        flag: BAD_OPTIONS[flag]
        for flag in (
            "--iters",
            "--cfg",
            "--seconds",
            "--steps",
            "--lr",
            "--prior",
            "--draws",
            "--mode",
            "--device",
        )
    },
    "enhance": {
        flag: SEPARATION_BAD.get(flag) or BAD_OPTIONS[flag]
        for flag in ("--iters", "--cfg", "--lr", "--prior", "--gamma", "--device", "--sources", "--start")
    },
}
PROMPTED = {
    "reverb": ["--prompt", "in a large hall"],
    "enhance": ["--prompt", "a man speaking"],
    "suggest": [],
}


def new_argument_case(rng: random.Random) -> list[str]:
    command = rng.choice(sorted(NEW_APPLIES))
    argv = [command, "MIXTURE", *PROMPTED[command]]
    if command != "suggest" and rng.random() < 0.2:
        argv[-1] = rng.choice(["", "  ", "\t"])
    for flag in rng.sample(sorted(NEW_APPLIES[command]), rng.randint(1, 2)):
        argv += [flag, rng.choice(NEW_APPLIES[command][flag])]
    return argv if command == "suggest" else [*argv, "-o", "OUT"]


NEW_ARG_CASES = [new_argument_case(random.Random(SEED * 3 + i)) for i in range(45)]
NEW_FILE_CASES = [
    (c, broken_file(random.Random(SEED * 11 + i))) for i, c in enumerate(sorted(NEW_APPLIES) * 10)
]


@pytest.mark.parametrize("argv", NEW_ARG_CASES, ids=[" ".join(a)[:60] for a in NEW_ARG_CASES])
def test_new_commands_refuse_bad_arguments_cleanly(tmp_path, capsys, good_mixture, argv):
    out = tmp_path / "out"
    resolved = [str(good_mixture) if a == "MIXTURE" else str(out) if a == "OUT" else a for a in argv]
    code = main(resolved if argv[0] == "suggest" else [*resolved, "--quiet"])
    assert_clean_failure(code, capsys.readouterr().err, out)


@pytest.mark.parametrize(
    "case", NEW_FILE_CASES, ids=[f"{c}-{i}-{f[0]}" for i, (c, f) in enumerate(NEW_FILE_CASES)]
)
def test_new_commands_refuse_broken_files_cleanly(tmp_path, capsys, case):
    command, (suffix, content) = case
    path = tmp_path / f"input{suffix}"
    if content is not None:
        path.write_bytes(content)
    out = tmp_path / "out"
    argv = [command, str(path), *PROMPTED[command]]
    code = main(argv if command == "suggest" else [*argv, "--iters", "1", "--quiet", "-o", str(out)])
    assert_clean_failure(code, capsys.readouterr().err, out)
