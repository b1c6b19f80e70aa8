"""``audiosds ui`` without a browser: forms become the CLI's command lines, jobs are CLI runs (the
same bytes as the shell's), Cancel keeps a resumable checkpoint, and nothing outside the runs folder
is ever served. The page itself is driven in a real browser in test_ui_browser.py."""

from __future__ import annotations

import io
import json
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from audiosds.cli import main
from audiosds.ui import Server, UiConfig
from audiosds.ui.forms import FormError, Settings, command_line
from audiosds.ui.jobs import FINISHED
from audiosds.ui.server import check_config, is_loopback


@pytest.fixture
def server(tmp_path):
    srv = Server(UiConfig(runs=tmp_path / "runs", prior="analytic", port=0, threads=1)).start()
    yield srv
    srv.close()


def call(srv: Server, path: str, body: object = None, raw: bytes | None = None) -> tuple[int, object]:
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    request = urllib.request.Request(
        srv.url.rstrip("/") + path, data=data, method="POST" if data is not None else "GET"
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            payload = response.read()
            kind = response.headers.get("Content-Type", "")
            return response.status, json.loads(payload) if kind == "application/json" else payload
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def wait(srv: Server, job_id: str, until=lambda snap: snap["status"] in FINISHED, timeout=240.0) -> dict:
    deadline = time.time() + timeout
    while time.time() < deadline:
        _, snap = call(srv, f"/api/jobs/{job_id}")
        if until(snap):
            return snap
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} did not get there in {timeout} s: {snap}")


def wav_bytes(seconds: float = 1.0, rate: int = 16000) -> bytes:
    t = np.arange(int(seconds * rate)) / rate
    audio = 0.3 * np.sin(2 * np.pi * 440 * t) + 0.2 * np.sin(2 * np.pi * 1500 * t)
    buffer = io.BytesIO()
    sf.write(buffer, audio.astype(np.float32), rate, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


# -- forms ------------------------------------------------------------------------------


def test_a_form_becomes_the_command_line_a_user_would_type(tmp_path):
    settings = Settings(tmp_path, "analytic", threads=1)
    argv, folder, label = command_line(
        "fm", {"prompt": " a bell ", "iters": "7", "seed": "", "cfg": 3}, settings
    )
    assert argv[:5] == ["fm", "--prompt", "a bell", "--iters", "7"]
    assert ["--cfg", "3"] == argv[argv.index("--cfg") : argv.index("--cfg") + 2]
    assert "--seed" not in argv  # an empty field is the command's default
    assert argv[-2:] == ["-o", str(folder)] and folder.parent == tmp_path and label == "a bell"
    assert not folder.exists()  # nothing is written before the run


@pytest.mark.parametrize(
    ("task", "form", "needle"),
    [
        ("fm", {"prompt": "a bell", "iters": "0"}, "--iters"),
        ("fm", {"prompt": "a bell", "cfg": "lots"}, "--cfg"),
        ("fm", {"prompt": ""}, "prompt"),
        ("impact", {"prompt": "a knock", "mode": "bogus"}, "--mode"),
        ("generate", {"prompt": "a bell", "method": "euler_a"}, "--method"),
        ("separate", {"prompts": ["a", "b"], "mixture": "nothing.wav"}, "mixture"),
        ("shell", {"prompt": "x"}, "task"),
        ("fm", {"prompt": ["a", "list"]}, "prompt"),
    ],
)
def test_a_bad_form_is_refused_in_the_clis_words(tmp_path, task, form, needle):
    with pytest.raises(FormError, match=needle):
        command_line(task, form, Settings(tmp_path, "analytic"))
    assert list(tmp_path.iterdir()) == []


def test_separation_forms_take_2_to_8_prompts_and_negatives_only_as_a_set(tmp_path):
    (tmp_path / "uploads").mkdir()
    (tmp_path / "uploads" / "mix.wav").write_bytes(wav_bytes(0.2))
    settings = Settings(tmp_path, "analytic")
    with pytest.raises(FormError, match="at least 2"):
        command_line("separate", {"mixture": "mix.wav", "prompts": ["a", " "]}, settings)
    with pytest.raises(FormError, match="at most 8"):
        command_line("separate", {"mixture": "mix.wav", "prompts": [f"p{i}" for i in range(9)]}, settings)
    (tmp_path / "outside.wav").write_bytes(wav_bytes(0.2))
    for name in ("../outside.wav", str(tmp_path / "outside.wav"), "missing.wav", ""):
        with pytest.raises(FormError, match="upload"):  # only an upload can be the mixture
            command_line("separate", {"mixture": name, "prompts": ["a", "b"]}, settings)
    argv, _, label = command_line(
        "separate",
        {"mixture": "mix.wav", "prompts": ["sax", "", "rain"], "negatives": ["", "x", "wind"]},
        settings,
    )
    assert argv[1] == str((tmp_path / "uploads" / "mix.wav").resolve()) and label == "sax + rain"
    flags = lambda flag: [argv[i + 1] for i, a in enumerate(argv) if a == flag]  # noqa: E731
    assert flags("--prompt") == ["sax", "rain"]  # the blank row is dropped
    assert flags("--negative") == ["", "wind"]  # a blank negative keeps its source's default


def test_a_busy_port_is_refused(server, tmp_path):
    port = int(server.url.rstrip("/").rsplit(":", 1)[1])
    with pytest.raises(ValueError, match=f"--port {port}: cannot listen"):
        Server(UiConfig(runs=tmp_path / "other", prior="analytic", port=port))


def test_only_loopback_unless_allowed():
    assert is_loopback("127.0.0.1") and is_loopback("localhost") and not is_loopback("8.8.8.8")
    with pytest.raises(ValueError, match="--allow-remote"):
        check_config(UiConfig(runs=Path("r"), prior="analytic", host="0.0.0.0"))
    check_config(UiConfig(runs=Path("r"), prior="analytic", host="0.0.0.0", allow_remote=True))
    with pytest.raises(ValueError, match="--port"):
        check_config(UiConfig(runs=Path("r"), prior="analytic", port=70000))


def test_the_ui_command_refuses_bad_settings_in_one_line(tmp_path, capsys):
    assert main(["ui", "--host", "0.0.0.0", "--runs", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--allow-remote" in err[0]
    (tmp_path / "file").write_text("x")
    assert main(["ui", "--runs", str(tmp_path / "file"), "--port", "0"]) == 2
    assert "not a folder" in capsys.readouterr().err


# -- serving ----------------------------------------------------------------------------


def test_nothing_outside_the_runs_folder_is_served(server, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("do not serve")
    (server.app.runs / "link").symlink_to(secret)
    for path in [
        "/files/../secret.txt",
        "/files/%2e%2e/secret.txt",
        "/files/link",
        "/files//etc/passwd",
        "/static/../../../etc/passwd",
        "/files/.ui/anything",
        "/api/runs/..",
        "/api/runs/uploads",
    ]:
        status, body = call(server, path)
        assert status == 404, path
    assert call(server, "/api/state")[1]["prior"] == "analytic"


def test_an_upload_that_is_not_audio_or_too_long_leaves_nothing(tmp_path):
    srv = Server(UiConfig(runs=tmp_path / "runs", prior="analytic", port=0, max_seconds=0.5)).start()
    try:
        status, body = call(srv, "/api/upload?name=notes.wav", raw=b"this is not a recording")
        assert status == 400 and "notes.wav" in body["error"] and "\n" not in body["error"]
        status, body = call(srv, "/api/upload?name=long.wav", raw=wav_bytes(1.0))
        assert status == 400 and "at most 0.5 s" in body["error"]
        assert list((srv.app.runs / "uploads").iterdir()) == []
        status, body = call(srv, "/api/upload?name=short.wav", raw=wav_bytes(0.25, 8000))
        assert status == 200 and body["seconds"] == 0.25 and body["sample_rate"] == 8000
        assert call(srv, body["url"])[1] == wav_bytes(0.25, 8000)
    finally:
        srv.close()


# -- jobs are CLI runs ------------------------------------------------------------------


def test_a_ui_synthesis_writes_the_clis_run_folder_byte_for_byte(server, tmp_path, capsys):
    form = {"prompt": "a bright bell", "iters": "12", "seed": "3", "cfg": "2"}
    status, job = call(server, "/api/jobs", {"task": "fm", "form": form})
    assert status == 200, job
    snap = wait(server, job["id"])
    assert snap["status"] == "completed", snap
    assert [r["step"] for r in call(server, f"/api/jobs/{job['id']}")[1]["rows"]] == list(range(1, 13))
    ui_run = server.app.runs / snap["folder"]

    cli_run = tmp_path / "cli"
    argv = ["fm", "--prompt", "a bright bell", "--iters", "12", "--seed", "3", "--cfg", "2"]
    assert main([*argv, "--prior", "analytic", "--threads", "1", "-o", str(cli_run)]) == 0
    names = sorted(p.name for p in cli_run.iterdir())
    assert sorted(p.name for p in ui_run.iterdir()) == names
    for name in ("audio.wav", "initial.wav", "params.json", "history.csv"):
        assert (ui_run / name).read_bytes() == (cli_run / name).read_bytes(), name
    ui_cfg = (ui_run / "config.yaml").read_text().replace(str(ui_run), "OUT")
    assert ui_cfg == (cli_run / "config.yaml").read_text().replace(str(cli_run), "OUT")

    status, info = call(server, f"/api/runs/{snap['folder']}")
    assert info["status"] == "completed" and len(info["history"]) == 12 and info["params"]["renderer"] == "fm"

    status, png = call(server, f"/spectrogram/{snap['folder']}/audio.wav")  # drawn, never written
    assert status == 200 and png.startswith(b"\x89PNG")
    assert sorted(p.name for p in ui_run.iterdir()) == names
    for path in (
        f"/spectrogram/{snap['folder']}/params.json",
        "/spectrogram/../x.wav",
        "/spectrogram/nope.wav",
    ):
        assert call(server, path)[0] == 404, path


def test_a_failed_run_shows_its_one_line_and_leaves_no_folder(server):
    status, job = call(server, "/api/jobs", {"task": "fm", "form": {"prompt": "a bell", "seconds": "1000"}})
    assert status == 200  # a number the parser takes; the run refuses it
    snap = wait(server, job["id"])
    assert snap["status"] == "failed" and "--seconds" in snap["error"] and "\n" not in snap["error"]
    assert not (server.app.runs / snap["folder"]).exists()


def test_cancel_keeps_a_checkpoint_that_resumes_to_the_end(server):
    status, job = call(server, "/api/jobs", {"task": "fm", "form": {"prompt": "a bell", "iters": "400"}})
    wait(server, job["id"], until=lambda s: len(s["rows"]) >= 3)
    call(server, f"/api/jobs/{job['id']}/cancel", {})
    snap = wait(server, job["id"])
    assert snap["status"] == "stopped", snap
    folder = server.app.runs / snap["folder"]
    assert (folder / "checkpoint.pt").is_file() and (folder / "audio.wav").is_file()
    status, info = call(server, f"/api/runs/{snap['folder']}")
    assert info["status"] == "stopped" and info["resumable"]
    done = len(snap["rows"])

    status, resumed = call(server, f"/api/runs/{snap['folder']}/resume", {})
    assert status == 200 and "--resume" in resumed["command"]
    last = wait(server, resumed["id"])
    assert last["status"] == "completed" and last["rows"][0]["step"] > 1 and last["rows"][-1]["step"] == 400
    assert done < 400 and not (folder / "checkpoint.pt").exists()
    assert call(server, f"/api/runs/{snap['folder']}/resume", {})[0] == 400  # nothing left to resume


def test_a_queued_job_waits_its_turn_and_cancels_without_running(server):
    _, first = call(server, "/api/jobs", {"task": "fm", "form": {"prompt": "a bell", "iters": "400"}})
    _, second = call(server, "/api/jobs", {"task": "impact", "form": {"prompt": "a knock", "iters": "3"}})
    assert call(server, f"/api/jobs/{second['id']}")[1]["status"] == "queued"
    _, snap = call(server, f"/api/jobs/{second['id']}/cancel", {})
    assert snap["status"] == "cancelled" and not (server.app.runs / snap["folder"]).exists()
    call(server, f"/api/jobs/{first['id']}/cancel", {})
    assert wait(server, first["id"])["status"] in ("stopped", "cancelled")


def test_suggest_is_the_clis_ranking(server):
    _, up = call(server, "/api/upload?name=mix.wav", raw=wav_bytes(1.0))
    status, result = call(server, "/api/suggest", {"mixture": up["name"], "top": 3})
    assert status == 200 and len(result["overall"]) == 3
    assert all(set(s) == {"prompt", "name", "score"} for s in result["overall"])
    scores = [s["score"] for s in result["overall"]]
    assert scores == sorted(scores, reverse=True)
    assert call(server, "/api/suggest", {"mixture": "missing.wav"})[0] == 400


def test_audiosds_ui_serves_loopback_with_no_set_up_and_stops_on_ctrl_c(tmp_path):
    import re
    import signal
    import subprocess
    import sys

    runs = tmp_path / "fresh" / "runs"
    process = subprocess.Popen(
        [sys.executable, "-m", "audiosds", "ui", "--port", "0", "--runs", str(runs), "--prior", "analytic"],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = process.stderr.readline()
        match = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
        assert match, line
        with urllib.request.urlopen(match.group(0), timeout=30) as response:
            assert b"<title>audiosds</title>" in response.read()
        with urllib.request.urlopen(match.group(0) + "api/state", timeout=30) as response:
            assert json.loads(response.read())["prior"] == "analytic"
        assert (runs / "uploads").is_dir()
    finally:
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=60) == 0
    assert "stopping" in process.stderr.read()


def test_ctrl_c_stops_the_ui_even_when_a_script_started_it_with_sigint_ignored(tmp_path):
    # a shell script's `audiosds ui &` starts it with SIGINT ignored, which exec keeps
    import re
    import signal
    import subprocess
    import sys

    launch = (
        "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_IGN); "
        "os.execv(sys.executable, [sys.executable, '-m', 'audiosds', *sys.argv[1:]])"
    )
    runs = tmp_path / "runs"
    argv = ["ui", "--port", "0", "--runs", str(runs), "--prior", "analytic"]
    process = subprocess.Popen([sys.executable, "-c", launch, *argv], stderr=subprocess.PIPE, text=True)
    try:
        assert re.search(r"http://127\.0\.0\.1:(\d+)/", process.stderr.readline())
    finally:
        process.send_signal(signal.SIGINT)
        try:
            code = process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            raise
    assert code == 0 and "stopping" in process.stderr.read()


def test_ctrl_c_right_after_the_address_is_printed_still_stops_cleanly(tmp_path, monkeypatch):
    # the race the subprocess test above can hit on a loaded machine: the interrupt lands after the
    # address line and before serving starts
    from audiosds.ui import server as ui_server

    said = []

    def info(message, *args, **kwargs):
        said.append(message)
        if len(said) == 1:
            raise KeyboardInterrupt

    monkeypatch.setattr(ui_server.log, "info", info)
    closed = []
    monkeypatch.setattr(ui_server.Server, "close", lambda self: closed.append(True))
    assert ui_server.serve(UiConfig(runs=tmp_path / "runs", prior="analytic", port=0, threads=1)) == 0
    assert "stopping" in said[-1] and closed == [True]
