"""A consultation's record as one self-contained ZIP: ``record.json``, the original images, the
chat's voice messages, clips and files, the call's recordings, and an ``index.html`` that shows
(and plays) the record offline, from the folder it is unpacked into.

The originals go in byte for byte (stored, not recompressed); ``record.json`` lists them with
their SHA-256, so anyone can check them. Synchronous: run it in an executor.
"""

from __future__ import annotations

import html
import json
import os
import shutil
import tempfile
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["ExportFile", "Progress", "write_bundle", "write_export"]

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class ExportFile:
    """A still's original or an attachment to include: its path on disk and its name in the
    archive."""

    path: Path
    name: str


def write_export(
    record: dict[str, Any],
    files: Sequence[ExportFile],
    out: Path,
    progress: Progress | None = None,
) -> Path:
    """Write the ZIP to ``out`` atomically (a temp file beside it, then a rename)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{out.name}.", dir=out.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    total = len(files) + 2
    try:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            archive.writestr("record.json", json.dumps(record, indent=2, ensure_ascii=False))
            if progress:
                progress(1, total)
            for done, item in enumerate(files, start=2):
                # Images and recordings are compressed already: store them as they are.
                archive.write(item.path, item.name, compress_type=zipfile.ZIP_STORED)
                if progress:
                    progress(done, total)
            archive.writestr("index.html", render_html(record))
            if progress:
                progress(total, total)
        os.replace(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return out


def write_bundle(parts: Sequence[tuple[str, Path]], out: Path) -> Path:
    """Several exports as one ZIP (a customer's consultations): each part's ZIP unpacked
    into its own folder, ``name/``, written atomically as ``write_export`` does."""
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{out.name}.", dir=out.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as bundle:
            for folder, part in parts:
                with zipfile.ZipFile(part) as archive:
                    for info in archive.infolist():
                        target = zipfile.ZipInfo(f"{folder}/{info.filename}", info.date_time)
                        target.compress_type = info.compress_type
                        with archive.open(info) as src, bundle.open(target, "w") as dst:
                            shutil.copyfileobj(src, dst, 1024 * 1024)
        os.replace(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return out


def attachment_html(a: dict[str, Any]) -> str:
    """A voice message or clip plays in the page, an image shows, a PDF is a link: each from
    its file in the archive."""
    e = html.escape
    src, kind = e(a["file"]), a["kind"]
    size = (
        f"{a['bytes'] / 1024:.0f} kB"
        if a["bytes"] < 1024 * 1024
        else f"{a['bytes'] / 1048576:.1f} MB"
    )
    about = f"{e(a['name'])} · {size}"
    if a.get("duration") is not None:
        about += f" · {a['duration']:.1f} s"
    if kind == "voice":
        player = f'<audio controls preload=metadata src="{src}"></audio>'
    elif kind == "video":
        player = f'<video controls preload=metadata src="{src}"></video>'
    elif a["media_type"].startswith("image/"):
        player = f'<a href="{src}"><img src="{src}" alt=""></a>'
    else:
        player = f'<a href="{src}" download="{e(a["name"])}">{e(a["name"])}</a>'
    return f"<div class=attachment>{player}<br><small>{about}</small></div>"


def checkin_html(c: dict[str, Any], record: dict[str, Any]) -> str:
    """A check-in: when it was due and answered, the form, and each view's photo."""
    e = html.escape
    files = {s["id"]: s["file"] for s in record.get("stills", [])}
    answers = c.get("answers")
    form = (
        f"<p>Lifting: {'yes' if answers['lifting'] else 'no'} · "
        f"chipping: {'yes' if answers['chipping'] else 'no'} · comfort {answers['comfort']}/5"
        f"</p><p>{e(answers['text'])}</p>"
        if answers
        else "<p>Not answered.</p>"
    )
    photos = "".join(
        f'<figure><a href="{e(files[still])}"><img src="{e(files[still])}" alt=""></a>'
        f"<figcaption>{e(view)}</figcaption></figure>"
        for view, still in c.get("photos", {}).items()
        if still in files
    )
    answered = c.get("answered_at")
    return (
        f"<li><b>Due {e(c['due_at'][:16].replace('T', ' '))}</b> · {e(c['state'])}"
        f"{' · answered ' + e(answered[:16].replace('T', ' ')) if answered else ''}"
        f"{form}{photos}</li>"
    )


def render_html(record: dict[str, Any]) -> str:
    """The record as one static page: no script, no network, images from the archive."""
    e = html.escape
    stills = "".join(
        f'<figure><a href="{e(s["file"])}"><img src="{e(s["file"])}" alt=""></a>'
        f"<figcaption>{e(s['source'])} · {s['width']}&times;{s['height']} · "
        f"{e(s['created_at'][:19].replace('T', ' '))}"
        f"{' · ' + e(', '.join(s['flags'])) if s['flags'] else ''}"
        f"<br><small>SHA-256 {e(s['sha256'])}</small></figcaption></figure>"
        for s in record.get("stills", [])
    )

    def chip(entry: dict[str, Any]) -> str:
        sw = entry["swatch"]
        return (
            f'<li><span class=chip style="background:{e(sw["hex"])}"></span>'
            f"<b>{e(sw['name'])}</b> {e(sw['brand'])} {e(sw['code'])} · {e(sw['hex'])} · "
            f"{e(sw['finish'])} <time>{e(entry['at'][:16].replace('T', ' '))}</time></li>"
        )

    videos = "".join(
        f'<figure><video controls preload="metadata" src="{e(r["file"])}"></video>'
        f"<figcaption>{e(r['role'])} · {e(r['started_at'][:19].replace('T', ' '))} · "
        f"{r['duration_s']:.0f} s<br><small>SHA-256 {e(r['sha256'])}</small></figcaption>"
        "</figure>"
        for r in record.get("recordings", [])
        if "file" in r  # one kept on another node's storage is listed in record.json only
    )
    chosen = "".join(chip(c) for c in record.get("swatches_chosen", []))
    shown = "".join(chip(c) for c in record.get("swatches_shown", []))
    messages = "".join(
        f'<li class="{e(m["from"])}"><b>{e(m["from"])}</b> '
        f"<time>{e(m['at'][:16].replace('T', ' '))}</time><p>{e(m['text'])}</p>"
        f"{attachment_html(m['attachment']) if m.get('attachment') else ''}</li>"
        for m in record.get("messages", [])
    )
    checkins = "".join(checkin_html(c, record) for c in record.get("checkins", []))
    notes = (
        f"<h2>Private notes</h2><p class=text>{e(record['notes'])}</p>"
        if record.get("notes")
        else ""
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Consultation: {e(record["customer_name"])}</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 60rem; margin: 2rem auto; padding: 0 1rem;
       color: #222; }}
figure {{ display: inline-block; margin: 0 1rem 1rem 0; max-width: 18rem; vertical-align: top; }}
figure img, figure video {{ max-width: 100%; border-radius: 6px; }}
figcaption small {{ word-break: break-all; color: #666; }}
.attachment img, .attachment video {{ max-width: 18rem; border-radius: 6px; }}
.attachment small {{ color: #666; }}
ul.chat {{ list-style: none; padding: 0; }} ul.chat li {{ margin: 0.5rem 0; }}
ul.chat p, .text {{ white-space: pre-wrap; margin: 0.2rem 0; }}
time {{ color: #666; font-size: 0.85em; }}
ul.swatches {{ list-style: none; padding: 0; }}
.chip {{ display: inline-block; width: 1.5rem; height: 1.5rem; border-radius: 4px;
        vertical-align: middle; margin-right: 0.5rem; border: 1px solid #ccc; }}
</style></head><body>
<h1>Consultation: {e(record["customer_name"])}</h1>
<p>Created {e(record["created_at"][:16].replace("T", " "))} UTC{
        " · appointment " + e(record["scheduled_at"][:16].replace("T", " ")) + " UTC"
        if record.get("scheduled_at")
        else ""
    }</p>
<h2>Summary</h2><p class=text>{e(record.get("summary") or "") or "&ndash;"}</p>
{notes}
<h2>Chosen shades</h2><ul class=swatches>{chosen or "<li>None.</li>"}</ul>
<h2>Shades shown</h2><ul class=swatches>{shown or "<li>None.</li>"}</ul>
<h2>Stills</h2>{stills or "<p>None.</p>"}
{"<h2>Recordings</h2>" + videos if videos else ""}
{"<h2>Aftercare check-ins</h2><ul class=chat>" + checkins + "</ul>" if checkins else ""}
<h2>Chat</h2><ul class=chat>{messages or "<li>None.</li>"}</ul>
</body></html>
"""
