"""A batch's reports: DIR/summary.csv (one row per job) and DIR/index.html (a listening gallery).

The gallery is one static page that opens from disk with no server: a row per job with its prompt,
seed, status, final prompt score, players for its audio and its spectrogram, sortable by any column
(click a header). Paths are relative, so the folder can be copied or zipped whole.
"""

from __future__ import annotations

import csv
import html
import io
from collections.abc import Sequence
from pathlib import Path

from ..audio import write_text
from ..runfolder import SPECTROGRAMS
from .runner import Outcome

SUMMARY_FIELDS = ("job", "command", "prompt", "seed", "status", "wall_s", "score", "outputs", "error")
# the files a gallery row plays, per command (a separation plays each source)
PLAYED = {
    "fm": ("audio.wav",),
    "impact": ("audio.wav",),
    "generate": ("generated.wav",),
    "reverb": ("wet.wav",),
    "enhance": ("enhanced.wav", "noise.wav"),
}


def _seed(outcome: Outcome) -> str:
    seed = outcome.job.options.get("seed")
    return "" if seed is None else str(seed)


def previous_wall_times(out_dir: Path) -> dict[str, str]:
    """job id -> wall time from an earlier summary.csv (kept for jobs this run skips as done)."""
    path = out_dir / "summary.csv"
    if not path.is_file():
        return {}
    with open(path, newline="") as f:
        return {row["job"]: row.get("wall_s", "") for row in csv.DictReader(f) if row.get("job")}


def wall_times(out_dir: Path) -> dict[str, float]:
    """job id -> wall time in seconds from DIR/summary.csv (NaN where it has none)."""
    return {job: float(wall or "nan") for job, wall in previous_wall_times(out_dir).items()}


def write_summary(out_dir: Path, outcomes: Sequence[Outcome], earlier: dict[str, str]) -> Path:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(SUMMARY_FIELDS)
    for o in outcomes:
        wall = f"{o.wall_s:.2f}" if o.wall_s is not None else earlier.get(o.job.id, "")
        writer.writerow(
            [
                o.job.id,
                o.job.command,
                o.job.label,
                _seed(o),
                o.status,
                wall,
                "" if o.score is None else f"{o.score:.4f}",
                " ".join(o.outputs),
                o.error or "",
            ]
        )
    path = out_dir / "summary.csv"
    write_text(path, buffer.getvalue())
    return path


def _played(outcome: Outcome) -> list[str]:
    names = PLAYED.get(outcome.job.command)
    if names is None:  # separate: every source
        return [p for p in outcome.outputs if Path(p).name.startswith("source_")]
    return [p for p in outcome.outputs if Path(p).name in names]


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>audiosds batch: {title}</title>
<style>
body {{ font: 14px/1.4 system-ui, sans-serif; margin: 1.2em; color: #1d2330; }}
table {{ border-collapse: collapse; width: 100%; }}
th, td {{ border-bottom: 1px solid #dde; padding: 0.4em 0.6em; text-align: left; vertical-align: top; }}
th {{ cursor: pointer; user-select: none; background: #f3f4f8; }}
th[data-dir="desc"]::after {{ content: " \\25BC"; }} th[data-dir="asc"]::after {{ content: " \\25B2"; }}
td.failed {{ color: #b3261e; }} audio {{ width: 260px; display: block; }} img {{ width: 360px; }}
.muted {{ color: #6b7385; font-size: 0.85em; }}
</style></head><body>
<h1>audiosds batch</h1>
<p class="muted">{summary} · <a href="summary.csv">summary.csv</a> · click a header to sort</p>
<table id="jobs"><thead><tr>
<th data-key="prompt">prompt</th><th data-key="command">command</th><th data-key="seed" data-num="1">seed</th>
<th data-key="status">status</th><th data-key="score" data-num="1">score</th>
<th data-key="wall" data-num="1">wall (s)</th><th>listen</th><th>spectrogram</th></tr></thead>
<tbody>
{rows}
</tbody></table>
<script>
const body = document.querySelector("#jobs tbody");
for (const th of document.querySelectorAll("th[data-key]")) {{
  th.addEventListener("click", () => {{
    const dir = th.dataset.dir === "desc" ? "asc" : "desc";
    for (const other of document.querySelectorAll("th")) delete other.dataset.dir;
    th.dataset.dir = dir;
    const key = th.dataset.key, num = th.dataset.num === "1";
    const value = (tr) => !num ? tr.dataset[key]
      : tr.dataset[key] === "" ? -Infinity : parseFloat(tr.dataset[key]);
    const rows = [...body.rows].sort((a, b) => {{
      const x = value(a), y = value(b);
      return (x < y ? -1 : x > y ? 1 : 0) * (dir === "asc" ? 1 : -1);
    }});
    body.append(...rows);
  }});
}}
</script>
</body></html>
"""


def write_gallery(out_dir: Path, outcomes: Sequence[Outcome], earlier: dict[str, str]) -> Path:
    """DIR/index.html, its rows by descending score (unscored last)."""
    ordered = sorted(outcomes, key=lambda o: (o.score is None, -(o.score or 0.0)))
    rows = []
    for o in ordered:
        wall = f"{o.wall_s:.1f}" if o.wall_s is not None else earlier.get(o.job.id, "")
        score = "" if o.score is None else f"{o.score:.3f}"
        players = "".join(
            f'<audio controls preload="metadata" src="{html.escape(p)}"></audio>' for p in _played(o)
        )
        folder = out_dir / o.job.id
        picture = next((name for name in SPECTROGRAMS if (folder / name).is_file()), None)
        image = f'<img src="{html.escape(o.job.id)}/{picture}" alt="spectrogram">' if picture else ""
        status = html.escape(o.status) + (
            f'<div class="muted">{html.escape(o.error)}</div>' if o.error else ""
        )
        data = {
            "prompt": o.job.label,
            "command": o.job.command,
            "seed": _seed(o),
            "status": o.status,
            "score": score,
            "wall": wall,
        }
        attrs = " ".join(f'data-{k}="{html.escape(v, quote=True)}"' for k, v in data.items())
        rows.append(
            f'<tr {attrs} data-job="{html.escape(o.job.id)}"><td>{html.escape(o.job.label)}'
            f'<div class="muted">{html.escape(o.job.id)}</div></td><td>{html.escape(o.job.command)}</td>'
            f'<td>{html.escape(_seed(o))}</td><td class="{html.escape(o.status)}">{status}</td>'
            f"<td>{score}</td>"
            f"<td>{wall}</td><td>{players}</td><td>{image}</td></tr>"
        )
    counts: dict[str, int] = {}
    for o in outcomes:
        counts[o.status] = counts.get(o.status, 0) + 1
    summary = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
    page = _PAGE.format(title=html.escape(out_dir.name), summary=html.escape(summary), rows="\n".join(rows))
    path = out_dir / "index.html"
    write_text(path, page)
    return path
