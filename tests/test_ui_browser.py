"""The page of ``audiosds ui`` in a real headless Chromium (Playwright against the system browser):
each tab end to end, live progress, Cancel, a reload during a run, refusals in the page.

CI installs Chromium (.ci/run); elsewhere these tests skip with one line when it is missing. The
prior is the analytic one unless AUDIOSDS_UI_PRIOR names another; screenshots go to the test's temp
folder unless AUDIOSDS_UI_SCREENSHOTS names a folder (docs/ui's were taken with
``AUDIOSDS_UI_PRIOR=embedded-mel AUDIOSDS_UI_SCREENSHOTS=docs/ui python -m pytest tests/test_ui_browser.py``).
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from audiosds.ui import Server, UiConfig

playwright = pytest.importorskip("playwright.sync_api", reason="Playwright is not installed")
CHROMIUM = os.environ.get("AUDIOSDS_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
if CHROMIUM is None:
    pytest.skip(
        "no Chromium found (apt-get install chromium, or set AUDIOSDS_CHROMIUM)", allow_module_level=True
    )

PRIOR = os.environ.get("AUDIOSDS_UI_PRIOR", "analytic")
RUN_TIMEOUT_MS = 240_000
ITERS = 200 if PRIOR == "analytic" else 30  # long enough for the page to show a few steps on the way


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    folder = Path(os.environ.get("AUDIOSDS_UI_SCREENSHOTS") or tmp_path_factory.mktemp("screenshots"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = Server(
        UiConfig(runs=tmp_path_factory.mktemp("ui") / "runs", prior=PRIOR, port=0, threads=1)
    ).start()
    yield srv
    srv.close()


@pytest.fixture(scope="module")
def browser():
    with playwright.sync_playwright() as p:
        args = ["--no-sandbox", "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream"]
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=args)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, server):
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    context.grant_permissions(["microphone"], origin=server.url.rstrip("/"))
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda err: errors.append(str(err)))
    tab.goto(server.url)
    tab.wait_for_selector("body[data-ready='1']")
    yield tab
    context.close()
    assert errors == [], f"the page's script failed: {errors}"


def mixture_file(folder: Path, name: str = "mix.wav", seconds: float = 1.0) -> Path:
    rate = 16000
    t = np.arange(int(seconds * rate)) / rate
    audio = 0.3 * np.sin(2 * np.pi * 330 * t) + 0.1 * np.random.default_rng(0).standard_normal(t.size)
    path = folder / name
    sf.write(path, audio.astype(np.float32), rate)
    return path


def start_run(section) -> None:
    """Click Run and wait until the tab holds the new job. A page attaches each tab's latest job when it
    loads, so until the server answers the click the tab still shows an earlier test's job (its status
    and full progress bar), which a wait on the status alone could take for the new one."""
    name = section.get_attribute("id").removeprefix("tab-")
    before = section.page.evaluate("(t) => TABS[t].job?.id ?? null", name)
    section.locator(".run").click()
    section.page.wait_for_function(
        "([t, before]) => TABS[t].job !== null && TABS[t].job.id !== before",
        arg=[name, before],
        timeout=RUN_TIMEOUT_MS,
    )


def status_of(section) -> str:
    return section.locator(".job .status").inner_text()


def wait_status(section, statuses: tuple[str, ...], timeout_ms: int = RUN_TIMEOUT_MS) -> str:
    section.page.wait_for_function(
        "([sel, want]) => want.includes(document.querySelector(sel)?.textContent)",
        arg=[f"#{section.get_attribute('id')} .job .status", list(statuses)],
        timeout=timeout_ms,
    )
    return status_of(section)


def steps_seen(section, until: str, timeout_s: float = 240.0) -> list[int]:
    """The progress bar's values, read every 50 ms until the job's status is ``until``."""
    seen: list[int] = []
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        value = section.locator("progress").evaluate("p => p.value")
        if not seen or seen[-1] != value:
            seen.append(value)
        if status_of(section) == until:
            return seen
        time.sleep(0.05)
    raise AssertionError(f"no '{until}' in {timeout_s} s; progress {seen}")


def served_bytes(page, section, file: str) -> bytes:
    src = section.locator(f".player[data-file='{file}'] audio").evaluate("a => a.src")  # absolute
    response = page.request.get(src)
    assert response.ok, src
    return response.body()


def test_synthesize_runs_with_live_progress_players_and_parameters(page, server, shots):
    tab = page.locator("#tab-synthesize")
    tab.locator("[name=prompt]").fill("a warm bass note")
    tab.locator("[name=iters]").fill(str(ITERS))
    tab.locator("[name=seed]").fill("1")
    start_run(tab)
    seen = steps_seen(tab, "completed")
    assert len([v for v in seen if 0 < v < ITERS]) >= 2, f"progress did not move: {seen}"
    assert seen[-1] == ITERS
    folder = server.app.runs / page.evaluate("TABS.synthesize.job.folder")
    for name in ("audio.wav", "initial.wav"):
        assert served_bytes(page, tab, name) == (folder / name).read_bytes()
    assert (
        tab.locator("img[data-file='spectrogram.png']").evaluate("img => img.complete && img.naturalWidth")
        > 0
    )
    assert tab.locator("table.params tr").count() > 3
    assert tab.locator("svg.chart[data-title='loss'] polyline").count() == 1
    page.screenshot(path=shots / "synthesize.png", full_page=True)


def test_cancel_stops_a_run_a_reload_finds_it_and_resume_is_offered(page, server, monkeypatch):
    # The server takes the job late here, as on a busy machine: meanwhile the tab shows the first
    # test's completed job and its full progress bar, which start_run must not take for this run's.
    submit = server.app.submit

    def late(body):
        time.sleep(1.0)
        return submit(body)

    monkeypatch.setattr(server.app, "submit", late)
    tab = page.locator("#tab-synthesize")
    tab.locator("[name=prompt]").fill("a bell")
    tab.locator("[name=iters]").fill("3000")
    start_run(tab)
    page.wait_for_function(
        "document.querySelector('#tab-synthesize progress').value >= 2", timeout=RUN_TIMEOUT_MS
    )
    page.reload()
    page.wait_for_selector("body[data-ready='1']")
    tab = page.locator("#tab-synthesize")
    assert status_of(tab) == "running"  # the reloaded page found the job
    before = tab.locator("progress").evaluate("p => p.value")
    page.wait_for_function(
        f"document.querySelector('#tab-synthesize progress').value > {before}", timeout=RUN_TIMEOUT_MS
    )
    tab.locator(".cancel").click()
    assert wait_status(tab, ("stopped", "failed", "cancelled")) == "stopped"
    folder = server.app.runs / page.evaluate("TABS.synthesize.job.folder")
    assert (folder / "checkpoint.pt").is_file()
    tab.locator(".job button.resume").wait_for()
    assert tab.locator(".job .error").is_hidden()


def test_separate_uploads_suggests_and_plays_every_source(page, server, shots, tmp_path):
    page.locator("#tabs button[data-tab=separate]").click()
    tab = page.locator("#tab-separate")
    tab.locator("input[type=file]").set_input_files(str(mixture_file(tmp_path)))
    page.wait_for_function(
        "document.querySelector('#tab-separate .upload-status').textContent.includes('Hz')"
    )
    assert "mix.wav: 1 s, 16000 Hz, 1 channel" in tab.locator(".upload-status").inner_text()
    tab.locator(".suggest").click()
    page.wait_for_function(
        "document.querySelector('#tab-separate .suggest-status').textContent.startsWith('suggested')",
        timeout=RUN_TIMEOUT_MS,
    )
    prompts = tab.locator(".prompt-row [name=prompt]")
    assert prompts.count() == 2 and all(prompts.nth(i).input_value() for i in range(2))
    tab.locator(".add-prompt").click()
    assert prompts.count() == 3
    prompts.nth(2).fill("a hum")
    tab.locator("[name=iters]").fill("4")
    start_run(tab)
    assert wait_status(tab, ("completed", "failed")) == "completed", tab.locator(".job .error").inner_text()
    folder = server.app.runs / page.evaluate("TABS.separate.job.folder")
    for name in ("source_1.wav", "source_2.wav", "source_3.wav", "mixture_reconstruction.wav"):
        assert served_bytes(page, tab, name) == (folder / name).read_bytes()
    assert "a hum" in tab.locator(".player[data-file='source_3.wav']").inner_text()
    pictures = tab.locator(".player img.spectrogram")  # one per player, drawn by the server
    pictures.last.scroll_into_view_if_needed()
    page.wait_for_function(
        "[...document.querySelectorAll('#tab-separate .player img.spectrogram')]"
        ".every(img => img.complete && img.naturalWidth > 0)",
        timeout=RUN_TIMEOUT_MS,
    )
    assert pictures.count() == 4
    assert tab.locator("svg.chart[data-title='prompt score per source']").count() == 1
    page.screenshot(path=shots / "separate.png", full_page=True)


def test_a_bad_upload_is_a_message_in_the_page_and_keeps_nothing(page, server, tmp_path):
    bad = tmp_path / "notes.wav"
    bad.write_text("these are my notes, not a recording")
    before = set((server.app.runs / "uploads").iterdir())
    page.locator("#tabs button[data-tab=separate]").click()
    tab = page.locator("#tab-separate")
    tab.locator("input[type=file]").set_input_files(str(bad))
    message = tab.locator(".upload-status.error")
    message.wait_for()
    assert "notes.wav" in message.inner_text() and "Traceback" not in message.inner_text()
    assert set((server.app.runs / "uploads").iterdir()) == before
    tab.locator("[name=prompt]").nth(0).fill("a")
    tab.locator("[name=prompt]").nth(1).fill("b")
    tab.locator(".run").click()  # no mixture: refused before anything runs
    alert = tab.locator(".job .error")
    alert.wait_for()
    assert "upload or record" in alert.inner_text()


def test_a_recording_from_the_microphone_becomes_the_mixture(page, server):
    page.locator("#tabs button[data-tab=separate]").click()
    tab = page.locator("#tab-separate")
    tab.locator(".record").click()
    page.wait_for_function("document.querySelector('#tab-separate .record').textContent.startsWith('Stop')")
    time.sleep(1.0)
    tab.locator(".record").click()
    page.wait_for_function(
        "document.querySelector('#tab-separate .upload-status').textContent.includes('Hz')"
    )
    name = page.evaluate("TABS.separate.mixture.name")
    audio, _ = sf.read(server.app.runs / "uploads" / name)
    assert 0.5 < page.evaluate("TABS.separate.mixture.seconds") < 10 and np.abs(audio).max() > 0


def test_a_run_refused_by_the_cli_shows_its_line(page, server):
    tab = page.locator("#tab-synthesize")
    tab.locator("[name=prompt]").fill("a bell")
    tab.locator("[name=cfg]").fill("1e6")
    start_run(tab)
    assert wait_status(tab, ("completed", "failed")) == "failed"
    error = tab.locator(".job .error").inner_text()
    assert "cfg_scale" in error and "\n" not in error.strip()


def test_generate_plays_its_sound(page, server, shots):
    tab = page.locator("#tab-generate")
    page.locator("#tabs button[data-tab=generate]").click()
    tab.locator("[name=prompt]").fill("a dog barking")
    tab.locator("[name=seconds]").fill("1")
    tab.locator("[name=steps]").fill("6")
    start_run(tab)
    seen = steps_seen(tab, "completed")
    assert seen[-1] == 6
    folder = server.app.runs / page.evaluate("TABS.generate.job.folder")
    assert served_bytes(page, tab, "generated.wav") == (folder / "generated.wav").read_bytes()
    assert (
        tab.locator("img[data-file='generated.png']").evaluate("img => img.complete && img.naturalWidth") > 0
    )
    page.screenshot(path=shots / "generate.png", full_page=True)


def test_runs_lists_newest_first_and_reopens_a_run(page, server, shots):
    page.locator("#tabs button[data-tab=runs]").click()
    items = page.locator("#run-list li[data-run]")
    items.first.wait_for()
    names = items.evaluate_all("lis => lis.map(li => li.dataset.run)")
    folders = sorted(
        (p for p in server.app.runs.iterdir() if p.is_dir() and p.name not in ("uploads", ".ui")),
        key=lambda p: p.stat().st_mtime,
        reverse=True,
    )
    assert names == [p.name for p in folders] and len(names) >= 3
    synth = next(n for n in names if "-fm-a-warm-bass-note" in n)
    page.locator(f"#run-list li[data-run='{synth}']").click()
    detail = page.locator("#run-detail")
    detail.locator("pre.config").wait_for()
    assert "command: fm" in detail.locator("pre.config").inner_text()
    assert detail.locator(".player audio").count() == 2
    page.screenshot(path=shots / "runs.png", full_page=True)
    detail.locator("button.reopen").click()
    assert page.locator("#tab-synthesize").is_visible()
    assert page.locator("#tab-synthesize [name=prompt]").input_value() == "a warm bass note"
    assert page.locator("#tab-synthesize [name=iters]").input_value() == str(ITERS)


def test_the_page_opens_on_synthesis_and_names_its_prior(page, server):
    assert page.locator("#tab-synthesize").is_visible() and not page.locator("#tab-runs").is_visible()
    assert f"prior {PRIOR}" in page.locator("#server-info").inner_text()
    modes = page.locator("#tab-synthesize select[name=mode] option").evaluate_all("o => o.map(x => x.value)")
    assert {"spectral", "decoder", "latent"} <= set(modes)
