"""The option table (audiosds.options): every flag reaches its config key, --config layers the same
way for every command, and what a run writes reads back as the same settings."""

import argparse
import dataclasses

import numpy as np
import pytest
import soundfile as sf
import yaml

from audiosds.cli import main
from audiosds.options import (
    COMMANDS,
    Section,
    _count,
    _finite_float,
    _positive_int,
    build_parser,
    default_of,
    layered_config,
    options,
    schema,
)
from audiosds.priors import DEFAULT_PRIOR, prior_defaults
from audiosds.renderers.fm import FMConfig
from audiosds.tasks.synthesize import synthesis_sds

SETTINGS = [(o, c) for o in options() for c in o.keys if o.paths(c)]  # the rows that set a config key


def parse(command, *argv):
    return build_parser().parse_args([command, *map(str, argv)])


def non_default(option, default):
    """(argv, the value the config should then hold) for a value of ``option`` other than ``default``."""
    kw, flag = option.argparse, option.flags[-1]
    action = kw.get("action")
    if action == "store_const":
        return [flag], kw["const"]
    if action is argparse.BooleanOptionalAction:
        return ([flag.replace("--", "--no-")] if default else [flag]), not default
    if action == "append":
        return [flag, "one", flag, "two"], ["one", "two"]
    if kw.get("nargs") == "+":
        value = [c for c in kw["choices"] if c not in default][:1]
        return [flag, *value], value
    if "choices" in kw:
        value = next(c for c in kw["choices"] if c != default)
    elif kw.get("type") in (int, _positive_int, _count):
        value = (default or 0) + 3
    elif kw.get("type") is _finite_float:
        value = (default or 0) + 0.25
    else:
        value = "some text"
    return ([] if option.flags[0][0] != "-" else [flag]) + [value], value


@pytest.mark.parametrize(("option", "command"), SETTINGS, ids=[f"{c} {o.flags[-1]}" for o, c in SETTINGS])
def test_every_flag_reaches_its_config_key(option, command):
    spec = schema(command)
    argv, expected = non_default(option, default_of(spec, option.paths(command)[0]))
    cfg = layered_config(parse(command, *argv))
    for path in option.paths(command):
        key, _, inner = path.partition(".")
        assert key in spec, f"{path}: not a key of {command}'s config"
        assert expected != default_of(spec, path), f"{path}: the test value is the default"
        if inner:
            # the section's dataclass (or the registry's options) must know the key
            section = spec[key]
            known = {"prior": {"name", "model"}, "renderer": {f.name for f in dataclasses.fields(FMConfig)}}
            names = {f.name for f in dataclasses.fields(section.cls)} if section.cls else known[key]
            assert inner in names, f"{path}: no such setting"
        assert (cfg[key][inner] if inner else cfg[key]) == expected, path


def test_no_flag_changes_the_defaults():
    for command in COMMANDS:
        argv = ["mix.wav"] if command == "separate" else []
        cfg = layered_config(parse(command, *argv))
        expected = {k: dict(v.base) if isinstance(v, Section) else v for k, v in schema(command).items()}
        assert cfg == {**expected, **({"mixture": "mix.wav"} if argv else {})}


def test_help_shows_the_dataclass_defaults():
    from audiosds.tasks.separate import SeparateConfig
    from audiosds.tasks.synthesize import SYNTHESIS_SDS, SynthesizeConfig

    helps = {c: a.format_help() for c, a in build_parser()._subparsers._group_actions[0].choices.items()}
    assert f"optimisation steps (default {SynthesizeConfig.iters})" in helps["fm"]
    assert f"(default {SYNTHESIS_SDS['cfg_scale']:g})" in helps["impact"]
    modes = prior_defaults(DEFAULT_PRIOR, "separation", "separate").get("sds_modes", SeparateConfig.sds_modes)
    assert f"(default: {' '.join(modes)})" in " ".join(helps["separate"].split())
    assert "{default}" not in "".join(helps.values()) and "{cores}" not in "".join(helps.values())


LAYERING = {  # command -> (a file's settings, the flags that then override one of them, the result)
    "fm": (
        {"prompt": "a bell", "sds": {"cfg_scale": 5.0}, "synthesize": {"iters": 7}},
        ["--iters", "9"],
        {
            ("prompt",): "a bell",
            ("sds", "cfg_scale"): 5.0,
            ("synthesize", "iters"): 9,
            ("sds", "mode"): synthesis_sds(DEFAULT_PRIOR).mode,  # what the file leaves alone
        },
    ),
    "impact": (
        {"prompt": "a knock", "renderer": {"fade_out_s": 0}, "seconds": 0.5},
        ["--seconds", "0.75"],
        {("renderer", "fade_out_s"): 0, ("renderer", "batch_size"): 2, ("seconds",): 0.75},
    ),
    "separate": (
        {"prompts": ["a", "b"], "separate": {"gamma": 2.0, "iters": 5}, "sds": {"cfg_scale": 3.0}},
        ["--gamma", "0.5"],
        {
            ("prompts",): ["a", "b"],
            ("separate", "gamma"): 0.5,
            ("separate", "iters"): 5,
            ("sds", "t_min"): prior_defaults(DEFAULT_PRIOR, "separation")["t_min"],  # left alone
        },
    ),
    "generate": (
        {"prompt": "a bell", "seed": 5, "steps": 7, "sampler": "heun"},
        ["--steps", "9"],
        {("seed",): 5, ("steps",): 9, ("sampler",): "heun", ("cfg",): 4.0},
    ),
}


@pytest.mark.parametrize("command", COMMANDS)
def test_config_layering_is_defaults_then_file_then_flags(tmp_path, command):
    file_cfg, flags, expected = LAYERING[command]
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump({"command": command, **file_cfg}))
    cfg = layered_config(parse(command, "--config", path, *flags))
    for keys, value in expected.items():
        got = cfg[keys[0]][keys[1]] if len(keys) == 2 else cfg[keys[0]]
        assert got == value, keys
    # a file written for another command is refused
    other = "generate" if command != "generate" else "fm"
    path.write_text(yaml.safe_dump({"command": other}))
    with pytest.raises(Exception, match=f"written for '{other}'"):
        layered_config(parse(command, "--config", path))


@pytest.mark.parametrize("command", COMMANDS)
def test_a_written_config_reads_back_as_the_same_settings(tmp_path, capsys, command):
    """Every command writes its resolved settings the same way; --config of that file, with no
    flags, resolves to the same file again."""
    fast = ["--quiet", "--threads", "1", "--seed", "3"]
    if command == "separate":
        mix = tmp_path / "mix.wav"
        t = np.arange(8000) / 16000
        sf.write(str(mix), 0.3 * np.sin(2 * np.pi * 440 * t), 16000)
        argv = [mix, "--prompt", "a bell", "--prompt", "rain", "--iters", "2", "--sds-modes", "latent"]
    elif command == "generate":
        argv = ["--prompt", "a bell", "--seconds", "0.25", "--steps", "2"]
    else:
        argv = ["--prompt", "a bell", "--iters", "2", "--seconds", "0.25", "--particles", "1"]
    if command == "generate":
        first, second = tmp_path / "a.wav", tmp_path / "b.wav"
        written = {first: first.with_suffix(".json"), second: second.with_suffix(".json")}
    else:
        first, second = tmp_path / "a", tmp_path / "b"
        written = {first: first / "config.yaml", second: second / "config.yaml"}
    assert main([command, *map(str, argv), *fast, "-o", str(first)]) == 0, capsys.readouterr().err
    assert main([command, "--config", str(written[first]), "--quiet", "-o", str(second)]) == 0
    assert yaml.safe_load(written[second].read_text()) == yaml.safe_load(written[first].read_text())
    saved = yaml.safe_load(written[first].read_text())
    assert saved["command"] == command and saved["threads"] == 1


@pytest.mark.parametrize("command", ["fm", "impact"])
def test_the_sds_defaults_follow_the_prior_named_by_flag_or_file(tmp_path, command):
    from audiosds.priors import PRIOR_DEFAULTS
    from audiosds.tasks.synthesize import SYNTHESIS_SDS

    mel = PRIOR_DEFAULTS["embedded-mel"]["synthesis"]["sds"]
    assert mel["mode"] != SYNTHESIS_SDS["mode"]  # otherwise this test shows nothing
    plain = layered_config(parse(command, "--prior", "analytic"))["sds"]
    assert plain["mode"] == SYNTHESIS_SDS["mode"] and plain["t_max"] == SYNTHESIS_SDS["t_max"]
    by_flag = layered_config(parse(command, "--prior", "embedded-mel"))["sds"]
    assert {k: by_flag[k] for k in mel} == mel
    assert by_flag["cfg_scale"] == SYNTHESIS_SDS["cfg_scale"]  # what the prior leaves alone
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"prior": {"name": "embedded-mel"}, "sds": {"t_max": 0.5}}))
    by_file = layered_config(parse(command, "--config", path))["sds"]
    assert by_file["mode"] == mel["mode"] and by_file["t_max"] == 0.5  # the file's own value wins
    flag_wins = layered_config(parse(command, "--prior", "embedded-mel", "--mode", "spectral"))["sds"]
    assert flag_wins["mode"] == "spectral"


def test_the_python_api_takes_the_same_prior_defaults():
    from audiosds.priors import PRIOR_DEFAULTS, build
    from audiosds.tasks.separate import SEPARATION_SDS, separation_sds
    from audiosds.tasks.synthesize import SYNTHESIS_SDS, synthesis_sds

    assert synthesis_sds().mode == SYNTHESIS_SDS["mode"]
    assert synthesis_sds("embedded-mel").mode == "latent"
    assert synthesis_sds(build("analytic")).mode == SYNTHESIS_SDS["mode"]
    assert synthesis_sds("embedded-mel", mode="decoder").mode == "decoder"
    assert separation_sds().t_max == SEPARATION_SDS["t_max"]
    mel = PRIOR_DEFAULTS["embedded-mel"]["separation"]["sds"]
    assert separation_sds("embedded-mel").t_max == mel["t_max"]


def test_separation_takes_the_prior_defaults_for_both_sections():
    from audiosds.priors import PRIOR_DEFAULTS
    from audiosds.tasks.separate import SEPARATION_SDS, SeparateConfig

    mel = PRIOR_DEFAULTS["embedded-mel"]["separation"]
    assert tuple(mel["separate"]["sds_modes"]) != SeparateConfig().sds_modes  # else this shows nothing
    cfg = layered_config(parse("separate", "mix.wav", "--prior", "embedded-mel"))
    assert tuple(cfg["separate"]["sds_modes"]) == tuple(mel["separate"]["sds_modes"])
    assert {k: cfg["sds"][k] for k in mel["sds"]} == mel["sds"]
    plain = layered_config(parse("separate", "mix.wav", "--prior", "analytic"))
    assert tuple(plain["separate"].get("sds_modes", SeparateConfig().sds_modes)) == SeparateConfig().sds_modes
    assert plain["sds"]["t_max"] == SEPARATION_SDS["t_max"]
