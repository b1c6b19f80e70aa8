"""``audiosds batch``: jobs files read into command lines with stable ids; one after another or on a
local Ray, every job writes the run folder the CLI writes (same bytes), reruns skip finished jobs
and resume stopped ones, a killed Ray worker's job still finishes, a bad job is reported while the
others run, and the gallery sorts and plays in a real browser."""

from __future__ import annotations

import csv
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import yaml

from audiosds.batch import BatchConfig, JobsFileError, read_jobs, run_batch, run_job
from audiosds.cli import main


def jobs_file(folder: Path, spec: dict) -> Path:
    path = folder / "jobs.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def summary(out: Path) -> dict[str, dict[str, str]]:
    with open(out / "summary.csv", newline="") as f:
        return {row["job"]: row for row in csv.DictReader(f)}


def run_files(folder: Path) -> dict[str, bytes]:
    """The bytes of a run folder's files that do not name the folder (config.yaml records -o)."""
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.name != "config.yaml"}


QUICK = {
    "defaults": {"prior": "analytic", "iters": 6, "threads": 1},
    "jobs": [{"command": "generate", "prompt": "a dog barking", "seconds": 0.25, "steps": 3}],
    "grid": {"command": ["fm"], "prompt": ["a warm bass note"], "seed": [0, 1]},
}


# -- reading jobs files -----------------------------------------------------------------


def test_grids_expand_defaults_apply_where_taken_and_ids_are_stable(tmp_path):
    spec = {
        "defaults": {"prior": "analytic", "iters": 9},
        "jobs": [
            {"command": "generate", "prompt": "a bell"},
            {"command": "fm", "prompt": "a bell", "seed": 0},
        ],
        "grid": [{"command": ["fm", "impact"], "prompt": ["a bell", "a knock"], "seed": [0, 1]}],
    }
    jobs = read_jobs(jobs_file(tmp_path, spec))
    assert len(jobs) == 1 + 8  # the listed fm job is also in the grid: it runs once
    assert all(j.error is None for j in jobs)
    generate = jobs[0]
    assert "iters" not in generate.options and generate.options["prior"] == "analytic"
    assert {j.options["iters"] for j in jobs[1:]} == {9}
    assert len({j.id for j in jobs}) == len(jobs)
    assert jobs[1].id.startswith("fm-a-bell-")
    # the same job, written in another order, has the same id; another seed another one
    again = read_jobs(
        jobs_file(
            tmp_path,
            {"jobs": [{"seed": 0, "prompt": "a bell", "iters": 9, "prior": "analytic", "command": "fm"}]},
        )
    )
    assert again[0].id == jobs[1].id
    assert jobs[1].id != next(
        j.id for j in jobs if j.command == "fm" and j.options["seed"] == 1 and j.options["prompt"] == "a bell"
    )


def test_a_job_is_the_command_line_a_user_would_type(tmp_path):
    (tmp_path / "mix.wav").write_bytes(b"")
    spec = {
        "jobs": [
            {
                "command": "separate",
                "mixture": "mix.wav",
                "prompt": ["sax", "rain"],
                "noise_source": True,
                "contrast": False,
                "sds-modes": ["decoder", "latent"],
                "config": {"sds": {"cfg_scale": 5}},
            }
        ]
    }
    job = read_jobs(jobs_file(tmp_path, spec))[0]
    argv = job.argv(tmp_path / "out" / job.id, tmp_path / "c.yaml", threads=2)
    assert argv[:2] == ["separate", str((tmp_path / "mix.wav").resolve())]  # relative to the jobs file
    assert argv[2:] == [
        "--prompt",
        "sax",
        "--prompt",
        "rain",
        "--noise-source",
        "--no-contrast",
        "--sds-modes",
        "decoder",
        "latent",
        "--config",
        str(tmp_path / "c.yaml"),
        "--threads",
        "2",
        "-o",
        str(tmp_path / "out" / job.id),
    ]


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        ("jobs: [", "not valid YAML"),
        ("- a list", "expected a mapping"),
        ("jobz: []", "expected a mapping with some of"),
        ("jobs: []", "no jobs"),
        ("jobs: [{command: shell}]", "command: expected one of"),
        ("jobs: [{command: fm, prompt: x, colour: red}]", "colour: not an option of fm"),
        ("jobs: [{command: fm, prompt: x, out: here}]", "set by the batch"),
        ("grid: {command: fm, prompt: [a]}", "expected a non-empty list"),
        ("jobs: [{command: fm, prompt: x, config: 3}]", "config: expected a mapping"),
    ],
)
def test_a_bad_jobs_file_is_one_line(tmp_path, content, needle):
    path = tmp_path / "jobs.yaml"
    path.write_text(content)
    with pytest.raises(JobsFileError, match=needle) as err:
        read_jobs(path)
    assert "\n" not in str(err.value)


def test_the_batch_command_refuses_bad_input_in_one_line(tmp_path, capsys):
    assert main(["batch", str(tmp_path / "missing.yaml"), "-o", str(tmp_path / "out")]) == 2
    assert main(["batch", str(jobs_file(tmp_path, QUICK))]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 2 and "cannot read" in lines[0] and "-o/--out" in lines[1]
    assert not (tmp_path / "out").exists()


# -- running ----------------------------------------------------------------------------


def test_one_after_another_a_batch_writes_the_clis_folders_reports_failures_and_reruns_nothing(
    tmp_path, capsys
):
    spec = {
        **QUICK,
        "jobs": [
            *QUICK["jobs"],
            {"command": "generate", "prompt": "x", "method": "euler_a"},  # parser refuses
            {"command": "fm", "prompt": "a bell", "cfg": 1e6},
        ],
    }  # the run refuses
    jobs = read_jobs(jobs_file(tmp_path, spec))
    out = tmp_path / "out"
    outcomes = run_batch(BatchConfig(out, workers=1), jobs)
    status = {o.job.id: o.status for o in outcomes}
    assert sorted(status.values()) == ["completed"] * 3 + ["failed"] * 2
    errors = [o.error for o in outcomes if o.status == "failed"]
    assert any("--method" in e for e in errors) and any("cfg_scale" in e for e in errors)
    assert all("\n" not in e for e in errors)

    for job in jobs:  # each completed folder is what the CLI writes from the same command line
        if status[job.id] != "completed":
            assert not (out / job.id).exists()
            continue
        alone = tmp_path / "alone" / job.id
        assert main(job.argv(alone, None, None)) == 0
        assert run_files(out / job.id) == run_files(alone)
    rows = summary(out)
    assert [rows[j.id]["status"] for j in jobs] == [status[j.id] for j in jobs]
    fm_rows = [r for r in rows.values() if r["command"] == "fm" and r["status"] == "completed"]
    assert all(float(r["score"]) > -1 and r["outputs"].endswith("initial.wav") for r in fm_rows)
    page = (out / "index.html").read_text()
    assert page.count("<tr data-") == 5 and page.count("<audio") == 3

    again = run_batch(BatchConfig(out, workers=1), jobs)
    assert sorted(o.status for o in again) == ["done"] * 3 + ["failed"] * 2
    assert summary(out)[jobs[0].id]["wall_s"] == rows[jobs[0].id]["wall_s"]  # kept from the first run


@pytest.mark.slow  # about 20 s: CI runs it (.ci/run: pytest -m slow)
def test_ctrl_c_stops_the_running_job_with_a_checkpoint_and_a_rerun_finishes_it_bit_identically(tmp_path):
    spec = {
        "jobs": [
            {
                "command": "fm",
                "prompt": "a bell",
                "iters": 150,
                "prior": "analytic",
                "threads": 1,
                "checkpoint-every": 5,
            }
        ]
    }
    path = jobs_file(tmp_path, spec)
    job = read_jobs(path)[0]
    out = tmp_path / "out"
    command = [sys.executable, "-m", "audiosds", "batch", str(path), "-o", str(out), "--workers", "1"]
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 180
    while not (out / job.id / "checkpoint.pt").is_file() and time.time() < deadline:
        time.sleep(0.2)
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=180) == 130
    assert "rerun the same command" in process.stderr.read()
    assert summary(out)[job.id]["status"] == "stopped" and (out / job.id / "checkpoint.pt").is_file()

    assert subprocess.run(command, capture_output=True).returncode == 0
    assert summary(out)[job.id]["status"] == "completed"
    alone = tmp_path / "alone"
    assert main(job.argv(alone, None, None)) == 0
    assert (out / job.id / "audio.wav").read_bytes() == (alone / "audio.wav").read_bytes()


@pytest.mark.slow  # about 45 s: CI runs it (.ci/run: pytest -m slow)
def test_on_ray_two_workers_finish_every_job_even_when_one_is_killed(tmp_path):
    pytest.importorskip("ray", reason="Ray is not installed (pip install -e '.[batch]')")
    spec = {
        "defaults": {"prior": "analytic", "threads": 1},
        "jobs": [
            {"command": "fm", "prompt": "a glass bell", "iters": 300, "checkpoint-every": 5},
            {"command": "fm", "prompt": "a bell", "cfg": 1e6, "iters": 6},  # the run refuses it
        ],
        "grid": {"command": ["fm", "impact"], "prompt": ["a warm bass note"], "seed": [0, 1], "iters": [6]},
    }
    jobs = read_jobs(jobs_file(tmp_path, spec))
    long, bad = jobs[0], jobs[1]
    out = tmp_path / "ray"
    result: dict = {}
    thread = threading.Thread(target=lambda: result.update(done=run_batch(BatchConfig(out, workers=2), jobs)))
    thread.start()
    pid_file = out / ".batch" / f"{long.id}.pid"
    deadline = time.time() + 240
    while not ((out / long.id / "checkpoint.pt").is_file() and pid_file.is_file()) and time.time() < deadline:
        time.sleep(0.2)
    worker = int(pid_file.read_text().split()[0])
    assert worker != os.getpid()
    os.kill(worker, signal.SIGKILL)  # the worker dies mid-job; Ray retries the task, which resumes
    thread.join(timeout=400)
    assert not thread.is_alive()
    status = {o.job.id: o.status for o in result["done"]}
    assert status.pop(bad.id) == "failed" and set(status.values()) == {"completed"}
    assert "cfg_scale" in next(o.error for o in result["done"] if o.job is bad or o.job.id == bad.id)
    assert int(pid_file.read_text().split()[0]) != worker  # the retry ran in another worker

    for job in jobs[:1] + jobs[2:]:  # the same bytes as the CLI alone, the killed job included
        alone = tmp_path / "alone" / job.id
        assert main(job.argv(alone, None, None)) == 0
        assert run_files(out / job.id) == run_files(alone), job.id
    again = run_batch(BatchConfig(out, workers=2), jobs)  # a rerun on Ray skips everything that finished
    assert sorted(o.status for o in again) == ["done"] * 5 + ["failed"]


def test_the_gallery_plays_and_sorts_in_a_real_browser(tmp_path):
    playwright = pytest.importorskip("playwright.sync_api", reason="Playwright is not installed")
    chromium = (
        os.environ.get("AUDIOSDS_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    )
    if chromium is None:
        pytest.skip("no Chromium found (apt-get install chromium, or set AUDIOSDS_CHROMIUM)")
    # three scored synthesis runs and an unscored generation, as run folders hold them
    from audiosds.batch import Outcome
    from audiosds.batch.report import write_gallery

    spec = {
        "jobs": [{"command": "generate", "prompt": "a dog"}],
        "grid": {"command": ["fm"], "prompt": ["a bell"], "seed": [0, 1, 2]},
    }
    jobs = read_jobs(jobs_file(tmp_path, spec))
    out = tmp_path / "out"
    outcomes = []
    for job, score in zip(jobs, [None, 0.31, 0.52, 0.12], strict=True):
        name = "generated.wav" if job.command == "generate" else "audio.wav"
        (out / job.id).mkdir(parents=True)
        sf.write(out / job.id / name, np.zeros(8000, np.float32), 16000)
        outcomes.append(Outcome(job, "completed", 1.0, None, score, [f"{job.id}/{name}"]))
    write_gallery(out, outcomes, {})
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        page = browser.new_page()
        page.goto((out / "index.html").as_uri())
        page.wait_for_function(
            "[...document.querySelectorAll('audio')].every(a => a.readyState >= 1 && a.duration > 0)"
        )
        assert page.locator("audio").count() == 4
        scores = lambda: page.evaluate("[...document.querySelectorAll('tbody tr')].map(r => r.dataset.score)")  # noqa: E731
        page.click("th[data-key=score]")
        down = scores()
        numbers = [float(s) for s in down if s]
        assert numbers == sorted(numbers, reverse=True) and down[-1] == ""  # unscored (generate) last
        page.click("th[data-key=score]")
        assert scores()[0] == "" and [float(s) for s in scores() if s] == sorted(numbers)
        page.click("th[data-key=seed]")
        assert page.evaluate("document.querySelector('tbody tr').dataset.seed") == "2"
        browser.close()


def test_a_mixture_job_reads_its_input_relative_to_the_jobs_file(tmp_path):
    rate = 16000
    t = np.arange(rate // 2) / rate
    sf.write(tmp_path / "mix.wav", (0.3 * np.sin(2 * np.pi * 300 * t)).astype(np.float32), rate)
    spec = {
        "jobs": [
            {
                "command": "separate",
                "mixture": "mix.wav",
                "prompt": ["a hum", "a hiss"],
                "iters": 2,
                "prior": "analytic",
                "threads": 1,
            }
        ]
    }
    jobs = read_jobs(jobs_file(tmp_path, spec))
    outcome = run_job(jobs[0], tmp_path / "out", None)
    assert outcome.status == "completed"
    assert [Path(p).name for p in outcome.outputs] == [
        "mixture_reconstruction.wav",
        "source_1.wav",
        "source_2.wav",
    ]
    assert outcome.score is not None
    with open(tmp_path / "out" / jobs[0].id / "history.csv", newline="") as f:  # each source's last score
        rows = list(csv.reader(f))
    columns = [i for i, h in enumerate(rows[0]) if h.startswith("score_")]
    last = [next(float(r[i]) for r in reversed(rows[1:]) if r[i]) for i in columns]
    assert len(last) == 2 and outcome.score == pytest.approx(sum(last) / 2)
