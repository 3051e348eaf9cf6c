"""Where model folders come from: the hub, and folders prepared once (converted, exported) and kept in the cache.

A prepared folder carries `prepared.json`, a description of what it was made from; a folder whose description
no longer matches (another source, another setting, another converter version) is made again. Building
happens in a staging folder that is renamed into place only when complete, so an interrupted build never
leaves a folder that looks ready.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Callable

log = logging.getLogger(__name__)

MARKER = "prepared.json"


def prepare_once(target: Path, source_id: dict, build: Callable[[Path], None], what: str) -> Path:
    """`target`, made by `build(staging_folder)` unless it was already made from the same `source_id`."""
    marker = target / MARKER
    if marker.is_file() and json.loads(marker.read_text()) == source_id:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    log.info("preparing %s once (later starts reuse %s)...", what, target)
    started = time.perf_counter()
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        build(staging)
        (staging / MARKER).write_text(json.dumps(source_id))
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    log.info("%s prepared in %.1f s", what, time.perf_counter() - started)
    return target


def run_tool(command: list[str], what: str, cwd: Path | None = None) -> None:
    """Run a converter in its own process (its peak memory is not kept by the app); fail with its last words."""
    done = subprocess.run(command, capture_output=True, text=True, cwd=cwd)
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-5:]
        raise RuntimeError(f"{what} failed: " + " | ".join(tail))


def folder_id(folder: Path) -> dict:
    """What identifies a model folder's contents cheaply: its path, and each file's size and change time."""
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.name != MARKER)
    if (folder / MARKER).is_file():  # a prepared folder already says what it holds
        return {"path": str(folder.resolve()), "prepared": json.loads((folder / MARKER).read_text())}
    return {"path": str(folder.resolve()),
            "files": [[p.name, p.stat().st_size, int(p.stat().st_mtime)] for p in files]}


def weights_label(folder: Path) -> str:
    """int8 / int4 / fp16 / fp32 for the status line: what a prepared folder was built as, or what a
    downloaded folder's name says ("cpu-int4-rtn-block-32", "Phi-3-mini-4k-instruct-int4-ov")."""
    marker = folder / MARKER
    if marker.is_file():
        return str(json.loads(marker.read_text()).get("precision", ""))
    name = folder.name.lower()
    return next((p for p in ("int4", "int8", "fp16", "fp32") if p in name), "")


def short_hash(value: object) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()[:10]


def split_hub_spec(spec: str) -> tuple[str, str]:
    """`owner/repo/sub/folder` -> (`owner/repo`, `sub/folder`); a plain `owner/repo` has no subfolder."""
    parts = spec.strip("/").split("/")
    return "/".join(parts[:2]), "/".join(parts[2:])


def hub_folder(spec: str) -> Path:
    """A local folder for a model on the Hugging Face hub, downloaded once (the hub's own cache).

    Raises with the hub's reason when it cannot be reached (offline, HF_HUB_OFFLINE=1, gated repo)."""
    from huggingface_hub import snapshot_download

    repo_id, subfolder = split_hub_spec(spec)
    patterns = [f"{subfolder}/*"] if subfolder else None
    local = Path(snapshot_download(repo_id, allow_patterns=patterns))
    folder = local / subfolder if subfolder else local
    if not folder.is_dir():
        raise FileNotFoundError(f"{repo_id} has no folder {subfolder!r}")
    return folder


def local_folder(model: str | Path) -> Path:
    """A local folder for `model`: itself if it is one, else a download from the hub (hub id[/subfolder])."""
    folder = Path(model).expanduser()
    return folder if folder.is_dir() else hub_folder(str(model))
