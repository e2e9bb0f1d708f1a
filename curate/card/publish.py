"""`curate publish`: push a run's dataset and its card to the Hugging Face Hub.

The folder uploaded is built in one place, so `--dry-run` writes exactly what would be uploaded:

    README.md                 the data card (repo id filled in), as `curate card` writes it
    funnel.png lengths.png scores.png   its plots
    data.parquet              the kept rows: parquet when the run wrote it, else data.jsonl, else data/*.arrow
    baseline_random.parquet   the matched random baseline, in the same way (when the run has one)
    manifest.json             the run's manifest, local input paths reduced to base names
    rejects.jsonl             only with --include-rejects

The card's `configs` metadata names the two data files, so the Hub's viewer and `load_dataset(repo)`
read them as the `default` and `random_baseline` configs.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from pathlib import Path

from curate.card import stats as S
from curate.card.plots import PLOTS
from curate.card.metadata import published_files
from curate.card.sections.recipe import scrub_paths
from curate.card.writer import write_card
from curate.errors import CurateError
from curate.atomic import staged_folder

REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
PLOT_NAMES = tuple(name for name, _ in PLOTS)
OWNED = re.compile(r"^(README\.md|manifest\.json|rejects\.jsonl|[\w.-]+\.png|(data|baseline_random)(\.\w+)?)$")


def check_repo_id(repo_id: str) -> str:
    if not repo_id or not REPO_ID.match(repo_id) or ".." in repo_id or len(repo_id) > 96:
        raise CurateError(f"not a Hub dataset id: {repo_id!r} (expected owner/name)", "--repo")
    return repo_id


def build_folder(run_dir: str | os.PathLike, folder: Path, repo_id: str, include_rejects: bool = False) -> list[str]:
    """Write the upload folder's content into `folder` (which must be empty); returns the files, sorted."""
    run_dir = Path(run_dir)
    manifest = S.load_run(run_dir).manifest  # the same checks as the card (missing / newer manifest)
    folder.mkdir(parents=True, exist_ok=True)
    write_card(run_dir, out_dir=folder, repo_id=repo_id, report=False)
    for stem, (fmt, files) in published_files(run_dir).items():
        if fmt == "arrow":
            (folder / stem).mkdir(exist_ok=True)
            for f in files:
                shutil.copyfile(f, folder / stem / f.name)
        else:
            shutil.copyfile(files[0], folder / files[0].name)
    public = dict(manifest)
    public["recipe"] = scrub_paths(manifest.get("recipe") or {})
    public["sources"] = {name: dict(info, inputs=[dict(i, path=S.display_path(i.get("path", ""))) for i in info.get("inputs", [])])
                         for name, info in manifest["sources"].items()}
    (folder / "manifest.json").write_text(json.dumps(public, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    if include_rejects:
        shutil.copyfile(run_dir / "rejects.jsonl", folder / "rejects.jsonl")
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


def _check_replaceable(target: Path) -> None:
    """An existing target must be a folder holding nothing but what publish writes."""
    if target.exists():
        if not target.is_dir():
            raise CurateError("exists and is not a folder", str(target))
        foreign = [p.name for p in target.iterdir() if not OWNED.match(p.name)]
        if foreign:
            raise CurateError(f"exists and holds files curate publish did not write ({', '.join(sorted(foreign)[:5])}); "
                              "choose another --out", str(target))


def publish(run_dir: str | os.PathLike, repo_id: str, dry_run: bool = False, out: str | os.PathLike | None = None,
            private: bool = False, token: str | None = None, include_rejects: bool = False) -> dict:
    """Build the folder and upload it (or, with dry_run, leave it at `out`, default RUN_DIR/publish).

    Returns {"folder", "files", "url"}: url is None for a dry run."""
    check_repo_id(repo_id)
    run_dir = Path(run_dir)
    if dry_run:
        target = Path(out) if out is not None else run_dir / "publish"
        _check_replaceable(target)
        with staged_folder(target) as staged:
            files = build_folder(run_dir, staged, repo_id, include_rejects)
        return {"folder": target, "files": files, "url": None}
    with tempfile.TemporaryDirectory(prefix="curate-publish-") as tmp:
        folder = Path(tmp) / "upload"
        files = build_folder(run_dir, folder, repo_id, include_rejects)
        url = upload(folder, repo_id, private=private, token=token,
                     message=f"curate publish: {json.loads((folder / 'manifest.json').read_text())['name']}")
        return {"folder": None, "files": files, "url": url}


def upload(folder: Path, repo_id: str, private: bool = False, token: str | None = None, message: str = "curate publish") -> str:
    """create_repo (if needed) + upload_folder; any failure becomes one CurateError."""
    from huggingface_hub import HfApi, constants

    if constants.HF_HUB_OFFLINE:
        raise CurateError("HF_HUB_OFFLINE is set: nothing was uploaded (use --dry-run to write the folder)", "publish")
    api = HfApi(token=token)
    try:
        api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
        info = api.upload_folder(repo_id=repo_id, folder_path=str(folder), repo_type="dataset", commit_message=message,
                                 delete_patterns=["*.png", "data.*", "data/*", "baseline_random.*", "baseline_random/*",
                                                  "rejects.jsonl"])
    except Exception as e:  # noqa: BLE001 - network, auth and Hub errors all end the same way for the user
        raise CurateError(f"could not upload to the Hub ({type(e).__name__}: {_first_line(e)}); nothing was "
                          "published. Check the network and `hf auth login`, or use --dry-run to write the folder",
                          f"publish {repo_id}") from None
    return getattr(info, "commit_url", None) or f"https://huggingface.co/datasets/{repo_id}"


def _first_line(e: Exception) -> str:
    text = str(e).strip().splitlines()
    return text[0][:300] if text else ""
