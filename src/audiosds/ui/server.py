"""``audiosds ui``: a local web page over the CLI, served by the standard library.

The HTTP side is Python's own ``http.server``: one page (``static/``), a small JSON API, and the
files of the run folders. Every task runs through :mod:`audiosds.ui.jobs` as the CLI command it
stands for. Only files under the runs folder (the run folders and the uploads kept there) are ever
served; a path that resolves outside it is a 404.

    GET  /                          the page
    GET  /api/state                 the server's settings and every job, newest first
    POST /api/jobs                  {"task", "form"} -> a queued job (400: the one-line reason)
    GET  /api/jobs/ID?since=N       a job, with its progress rows from N on
    POST /api/jobs/ID/cancel        stop it (a run folder keeps its checkpoint)
    POST /api/upload?name=F         the request body is a recording; kept under RUNS/uploads/
    POST /api/suggest               {"mixture", "top"} -> ``audiosds suggest --json``
    GET  /api/runs                  the run folders, newest first
    GET  /api/runs/NAME             one run: config, files, history, params
    POST /api/runs/NAME/resume      continue a stopped run (``audiosds CMD --resume``)
    GET  /files/NAME/FILE           a file of a run folder, or an upload
    GET  /spectrogram/NAME/FILE     a WAV file's spectrogram, drawn on request (nothing is written)
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import logging
import math
import mimetypes
import socket
import subprocess
import sys
import threading
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

from .. import __version__, runfolder
from .forms import FormError, Settings, command_line, input_file
from .jobs import JobQueue

log = logging.getLogger("audiosds.ui")

STATIC = Path(__file__).parent / "static"
STATE_DIR = ".ui"  # the job logs and progress files, inside the runs folder
UPLOADS = "uploads"
MAX_UPLOAD_BYTES = 200 * 2**20
SUGGEST_TIMEOUT_S = 300
SPECTROGRAMS_KEPT = 64  # drawn spectrograms kept in memory


@dataclass(frozen=True)
class UiConfig:
    """What ``audiosds ui`` was started with."""

    runs: Path
    prior: str
    model: str | None = None
    host: str = "127.0.0.1"
    port: int = 7860
    jobs: int = 1  # runs at once
    threads: int | None = None  # per run; None: the CLI's default (the free cores)
    device: str = "cpu"
    allow_remote: bool = False  # bind to a non-loopback address
    max_seconds: float = 600.0  # the longest recording the page takes


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a name or an address) is this machine's loopback interface only."""
    try:
        return ipaddress.ip_address(socket.gethostbyname(host)).is_loopback
    except (OSError, ValueError):
        return False


def check_config(config: UiConfig) -> None:
    """ValueError (one line) for settings the server cannot start with."""
    if not 0 <= config.port <= 65535:
        raise ValueError(f"--port: expected 0 to 65535, got {config.port}")
    if not is_loopback(config.host) and not config.allow_remote:
        raise ValueError(
            f"--host {config.host}: not this machine's loopback; anyone who can reach it could run jobs "
            "and read the runs folder: add --allow-remote to serve it anyway"
        )
    if not (math.isfinite(config.max_seconds) and config.max_seconds > 0):
        raise ValueError(f"--max-seconds: expected a positive length, got {config.max_seconds:g}")
    if config.runs.exists() and not config.runs.is_dir():
        raise ValueError(f"--runs {config.runs}: exists and is not a folder")


class App:
    """The server's state: its settings, the job queue, the runs folder."""

    def __init__(self, config: UiConfig) -> None:
        check_config(config)
        self.config = config
        self.runs = config.runs.resolve()
        (self.runs / UPLOADS).mkdir(parents=True, exist_ok=True)
        threads = config.threads
        if threads is None and config.jobs > 1:
            from ..options import default_threads

            threads = max(1, default_threads() // config.jobs)
        self.settings = Settings(self.runs, config.prior, config.model, threads, config.device)
        self.queue = JobQueue(self.runs / STATE_DIR, config.jobs)
        self._spectrograms: dict[tuple[str, int], bytes] = {}
        self._drawing = threading.Lock()

    # -- the API --------------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        from ..priors import PRIORS
        from ..sampling import GENERATION_METHODS
        from ..sds import MODES

        return {
            "version": __version__,
            "prior": self.config.prior,
            "model": self.config.model,
            "runs": str(self.runs),
            "workers": self.config.jobs,
            "max_seconds": self.config.max_seconds,
            "max_upload_mb": MAX_UPLOAD_BYTES // 2**20,
            "suggest": True,
            "choices": {"mode": list(MODES), "method": list(GENERATION_METHODS), "prior": sorted(PRIORS)},
            "jobs": [job.snapshot(since=10**9) for job in self.queue.jobs()],
        }

    def submit(self, body: dict[str, Any]) -> dict[str, Any]:
        task, form = body.get("task"), body.get("form")
        if not isinstance(task, str) or not isinstance(form, dict):
            raise FormError('expected {"task": ..., "form": {...}}')
        argv, folder, label = command_line(task, form, self.settings)
        job = self.queue.submit(task, argv, folder, label, resumable=task in runfolder.RESUMABLE)
        return job.snapshot()

    def resume(self, name: str) -> dict[str, Any]:
        folder = self._run_folder(name)
        info = self.run_info(name)
        if not info["resumable"]:
            raise FormError(f"{name}: nothing to resume (no checkpoint, or it is running)")
        argv = [info["command"], "--resume", str(folder)]
        job = self.queue.submit(info["command"], argv, folder, info["label"], resumable=True)
        return job.snapshot()

    def upload(self, name: str, data: bytes) -> dict[str, Any]:
        """Keep an uploaded recording under RUNS/uploads (named by its content) if it reads as
        audio no longer than max_seconds; otherwise keep nothing."""
        from ..audio import AudioError, load_audio

        if not data:
            raise FormError("upload: the file is empty")
        suffix = Path(name).suffix.lower()
        if not suffix or not suffix[1:].isalnum() or len(suffix) > 6:
            raise FormError(f"upload {name!r}: expected an audio file name such as mix.wav")
        digest = hashlib.sha256(data).hexdigest()[:16]
        path = self.runs / UPLOADS / f"{digest}{suffix}"
        partial = path.with_name(f".{path.name}.partial")
        partial.write_bytes(data)
        try:
            audio, sample_rate = load_audio(partial)
        except AudioError as err:
            partial.unlink(missing_ok=True)
            message = str(err).replace(str(partial), repr(name))
            raise FormError(f"upload: {message}") from err
        seconds = audio.shape[1] / sample_rate
        if seconds > self.config.max_seconds:
            partial.unlink(missing_ok=True)
            raise FormError(
                f"upload {name!r}: {seconds:.1f} s long; this page takes at most "
                f"{self.config.max_seconds:g} s (audiosds ui --max-seconds)"
            )
        partial.replace(path)
        return {
            "name": path.name,
            "original": name,
            "url": f"/files/{UPLOADS}/{path.name}",
            "seconds": round(seconds, 3),
            "sample_rate": sample_rate,
            "channels": int(audio.shape[0]),
        }

    def suggest(self, body: dict[str, Any]) -> dict[str, Any]:
        """``audiosds suggest MIX --top N --json``, as the shell runs it."""
        path = input_file(self.runs, str(body.get("mixture") or ""))
        top = body.get("top", 4)
        if isinstance(top, bool) or not isinstance(top, int) or not 1 <= top <= 8:
            raise FormError(f"top: expected 1 to 8, got {top!r}")
        argv = ["suggest", str(path), "--top", str(top), "--json"]
        if self.settings.threads:
            argv += ["--threads", str(self.settings.threads)]
        done = subprocess.run(
            [sys.executable, "-m", "audiosds", *argv],
            capture_output=True,
            text=True,
            timeout=SUGGEST_TIMEOUT_S,
            stdin=subprocess.DEVNULL,
        )
        if done.returncode != 0:
            raise FormError(runfolder.error_line(done.stderr) or "suggest failed")
        return json.loads(done.stdout)

    # -- run folders ----------------------------------------------------------------------

    def _run_folder(self, name: str) -> Path:
        folder = (self.runs / name).resolve()
        if folder.parent != self.runs or name in (UPLOADS, STATE_DIR) or not folder.is_dir():
            raise LookupError(name)
        return folder

    def runs_list(self) -> list[dict[str, Any]]:
        folders = [p for p in self.runs.iterdir() if p.is_dir() and p.name not in (UPLOADS, STATE_DIR)]
        folders.sort(key=lambda p: p.stat().st_mtime, reverse=True)
        return [self.run_info(p.name, brief=True) for p in folders]

    def run_info(self, name: str, brief: bool = False) -> dict[str, Any]:
        """A run folder as the page shows it: command, label, status, files (and, unless ``brief``,
        its config text, history rows and params)."""
        folder = self._run_folder(name)
        config_text, config = runfolder.settings(folder)
        command = str(config.get("command", "?"))
        prompts = config.get("prompts") or [config.get("prompt")]
        label = " + ".join(str(p) for p in prompts if p) if isinstance(prompts, list) else str(prompts)
        status = runfolder.status(folder, command)
        if folder in self.queue.running_folders():
            status = "running"
        files = sorted(p.name for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
        info = {
            "name": name,
            "command": command,
            "label": label,
            "status": status,
            "resumable": status == "stopped",
            "modified": folder.stat().st_mtime,
            "files": [{"name": f, "url": f"/files/{name}/{f}"} for f in files],
        }
        if not brief:
            info["config"] = config_text
            info["history"] = runfolder.history(folder)
            params = folder / "params.json"
            info["params"] = json.loads(params.read_text()) if params.is_file() else None
        return info

    def file_path(self, relative: str) -> Path:
        """A servable file: under the runs folder, not the server's own state. LookupError otherwise."""
        path = (self.runs / relative).resolve()
        if not path.is_relative_to(self.runs) or path.is_relative_to(self.runs / STATE_DIR):
            raise LookupError(relative)
        if not path.is_file():
            raise LookupError(relative)
        return path

    def spectrogram(self, relative: str) -> bytes:
        """The PNG spectrogram of a servable WAV file, as the CLI draws them; the last few are kept."""
        from ..audio import AudioError, load_audio
        from ..plots import spectrogram_png

        path = self.file_path(relative)
        if path.suffix.lower() != ".wav":
            raise LookupError(relative)
        key = (str(path), path.stat().st_mtime_ns)
        with self._drawing:  # pyplot draws one figure at a time
            if key not in self._spectrograms:
                try:
                    audio, sample_rate = load_audio(path)
                except AudioError as err:
                    raise LookupError(relative) from err
                if len(self._spectrograms) >= SPECTROGRAMS_KEPT:
                    self._spectrograms.pop(next(iter(self._spectrograms)))
                self._spectrograms[key] = spectrogram_png([(path.name, audio)], sample_rate, width_in=3.6)
            return self._spectrograms[key]

    def close(self) -> None:
        self.queue.close()


class _Handler(BaseHTTPRequestHandler):
    app: App  # set on the subclass the server builds
    server_version = f"audiosds/{__version__}"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the base class's name)
        log.debug("%s " + format, self.address_string(), *args)

    # -- replies --------------------------------------------------------------------------

    def _json(self, data: Any, status: HTTPStatus = HTTPStatus.OK) -> None:
        body = json.dumps(data, allow_nan=False, default=str).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def _bytes(self, body: bytes, kind: str) -> None:
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-cache")
        self.end_headers()
        self.wfile.write(body)

    def _error(self, message: str, status: HTTPStatus = HTTPStatus.BAD_REQUEST) -> None:
        self._json({"error": message}, status)

    def _file(self, path: Path) -> None:
        """The file, or the byte range asked for (players seek with ranges)."""
        size = path.stat().st_size
        start, end = 0, size - 1
        ranged = self.headers.get("Range", "")
        if ranged.startswith("bytes="):
            first, _, last = ranged[6:].split(",")[0].partition("-")
            try:
                start = int(first) if first else max(0, size - int(last))
                end = min(int(last), size - 1) if first and last else end
            except ValueError:
                start, end = 0, size - 1
            if start > end or start >= size:
                self.send_response(HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE)
                self.send_header("Content-Range", f"bytes */{size}")
                self.end_headers()
                return
        self.send_response(HTTPStatus.PARTIAL_CONTENT if ranged else HTTPStatus.OK)
        kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        if path.suffix in (".yaml", ".csv", ".log", ".jsonl"):
            kind = "text/plain; charset=utf-8"
        self.send_header("Content-Type", kind)
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Length", str(end - start + 1))
        if ranged:
            self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.send_header("Cache-Control", "no-cache")
        self.end_headers()
        with open(path, "rb") as f:
            f.seek(start)
            self.wfile.write(f.read(end - start + 1))

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_UPLOAD_BYTES:
            raise FormError(f"upload: larger than {MAX_UPLOAD_BYTES // 2**20} MB")
        return self.rfile.read(length)

    def _json_body(self) -> dict[str, Any]:
        try:
            data = json.loads(self._body() or b"{}")
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise FormError("expected a JSON body") from err
        if not isinstance(data, dict):
            raise FormError("expected a JSON object")
        return data

    # -- routes ---------------------------------------------------------------------------

    def do_GET(self) -> None:  # noqa: N802 (the base class's name)
        url = urlparse(self.path)
        parts = [unquote(p) for p in url.path.split("/") if p]
        try:
            if not parts:
                self._file(STATIC / "index.html")
            elif parts[0] == "static" and len(parts) == 2 and parts[1] in _static_names():
                self._file(STATIC / parts[1])
            elif parts == ["api", "state"]:
                self._json(self.app.state())
            elif parts[:2] == ["api", "jobs"] and len(parts) == 3:
                job = self.app.queue.get(parts[2])
                if job is None:
                    raise LookupError(parts[2])
                since = parse_qs(url.query).get("since", ["0"])[0]
                self._json(job.snapshot(int(since) if since.isdigit() else 0))
            elif parts == ["api", "runs"]:
                self._json(self.app.runs_list())
            elif parts[:2] == ["api", "runs"] and len(parts) == 3:
                self._json(self.app.run_info(parts[2]))
            elif parts[0] == "files" and len(parts) >= 2:
                self._file(self.app.file_path("/".join(parts[1:])))
            elif parts[0] == "spectrogram" and len(parts) >= 2:
                self._bytes(self.app.spectrogram("/".join(parts[1:])), "image/png")
            else:
                raise LookupError(url.path)
        except LookupError:
            self._error("not found", HTTPStatus.NOT_FOUND)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def do_POST(self) -> None:  # noqa: N802 (the base class's name)
        url = urlparse(self.path)
        parts = [unquote(p) for p in url.path.split("/") if p]
        try:
            if parts == ["api", "jobs"]:
                self._json(self.app.submit(self._json_body()))
            elif parts[:2] == ["api", "jobs"] and parts[3:] == ["cancel"] and len(parts) == 4:
                job = self.app.queue.cancel(parts[2])
                if job is None:
                    raise LookupError(parts[2])
                self._json(job.snapshot())
            elif parts == ["api", "upload"]:
                name = parse_qs(url.query).get("name", ["recording.wav"])[0]
                self._json(self.app.upload(name, self._body()))
            elif parts == ["api", "suggest"]:
                self._json(self.app.suggest(self._json_body()))
            elif parts[:2] == ["api", "runs"] and parts[3:] == ["resume"] and len(parts) == 4:
                self._json(self.app.resume(parts[2]))
            else:
                raise LookupError(url.path)
        except FormError as err:
            self._error(str(err))
        except LookupError:
            self._error("not found", HTTPStatus.NOT_FOUND)
        except subprocess.TimeoutExpired:
            self._error("suggest took too long", HTTPStatus.GATEWAY_TIMEOUT)
        except (BrokenPipeError, ConnectionResetError):
            pass


def _static_names() -> set[str]:
    return {p.name for p in STATIC.iterdir() if p.is_file()}


class _HTTPServer(ThreadingHTTPServer):
    # http.server lets a second server share a busy port (SO_REUSEPORT): it must fail instead
    allow_reuse_port = False
    daemon_threads = True


class Server:
    """The app behind a threading HTTP server; ``port`` 0 picks a free port (``url`` tells it)."""

    def __init__(self, config: UiConfig) -> None:
        self.app = App(config)
        handler = type("Handler", (_Handler,), {"app": self.app})
        try:
            self.httpd = _HTTPServer((config.host, config.port), handler)
        except OSError as err:
            self.app.close()
            raise ValueError(
                f"--port {config.port}: cannot listen on {config.host} ({err.strerror})"
            ) from err
        host, port = self.httpd.server_address[:2]
        self.url = f"http://{host}:{port}/"
        self._thread: threading.Thread | None = None

    def start(self) -> Server:
        """Serve in a background thread (tests); :meth:`serve_forever` serves in this one."""
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self.httpd.serve_forever()

    def close(self) -> None:
        """Stop serving and stop the jobs as Cancel does (their checkpoints stay)."""
        if self._thread is not None:
            self.httpd.shutdown()
        self.httpd.server_close()
        self.app.close()


def serve(config: UiConfig) -> int:
    """Serve until Ctrl-C; running jobs then stop as Cancel stops them."""
    server = Server(config)
    try:  # from the address line on: a Ctrl-C as soon as it is printed still stops cleanly
        if not is_loopback(config.host):
            log.warning(
                f"serving on {config.host}, not only this machine: anyone who reaches it can run jobs and "
                f"read {server.app.runs}"
            )
        log.info(
            f"audiosds ui: {server.url} (prior {config.prior}; runs in {server.app.runs}; {config.jobs} "
            "job(s) at a time); Ctrl-C stops"
        )
        server.serve_forever()
    except KeyboardInterrupt:
        log.info("audiosds ui: stopping; running jobs keep their checkpoints")
    finally:
        server.close()
    return 0
