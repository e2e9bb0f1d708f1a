"""A model's files on disk: the user's model cache (dequantised GGUF copies), content hashes of weight
files (memoised there) and cheap stat tokens of a local model's files. `curate.models` loads through it.

The cache is `$CURATE_MODELS_DIR`, else `$XDG_CACHE_HOME/curate/models`, else `~/.cache/curate/models`
(a model spec's `cache_dir` overrides it). It lives in the user's cache rather than the project's
`.curate/` because it is the same for every project and large (540 MB for SmolLM2-135M in float32);
delete a folder to reclaim the space.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

from curate.io import file_digest, write_text_atomic

# Weight files: with config.json, what decides a model folder's outputs.
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".gguf")


def cache_root(cache_dir: str | None = None) -> Path:
    """Where dequantised GGUF copies and weight fingerprints are kept: `cache_dir` when given."""
    if cache_dir:
        return Path(cache_dir).expanduser()
    if os.environ.get("CURATE_MODELS_DIR"):
        return Path(os.environ["CURATE_MODELS_DIR"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "curate" / "models"


# -- GGUF: dequantise once, keep the float copy ----------------------------------------------------


def dequantised_copy(gguf_path: str | os.PathLike, root: str | os.PathLike | None = None) -> Path:
    """A folder with the float (dequantised) model and tokenizer of a GGUF file, made once and reused.

    The folder is `<root>/<file stem>-<sha256[:16]>`; it is written to a temporary folder and renamed
    into place, so an interrupted first load leaves nothing half-written behind.
    """
    gguf_path = Path(gguf_path)
    root = Path(root) if root is not None else cache_root()
    digest = file_sha256(gguf_path)
    target = root / f"{gguf_path.stem}-{digest[:16]}"
    done = target / "curate-source.json"
    if done.is_file():
        return target
    import transformers
    from transformers import AutoModelForCausalLM, AutoTokenizer

    root.mkdir(parents=True, exist_ok=True)
    tmp = root / f".{target.name}.tmp-{os.getpid()}"
    folder, name = str(gguf_path.parent), gguf_path.name
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name)
    model.hf_quantizer = None  # the weights are plain floats now; save them as such
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    (tmp / "curate-source.json").write_text(
        json.dumps({"gguf": str(gguf_path), "sha256": digest, "transformers": transformers.__version__,
                    "created": time.strftime("%Y-%m-%dT%H:%M:%S")}, indent=1),
        encoding="utf-8",
    )
    try:
        os.replace(tmp, target)
    except OSError:  # another process finished first: keep theirs
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
        if not done.is_file():
            raise
    return target


# -- fingerprints ----------------------------------------------------------------------------------


def file_sha256(path: str | os.PathLike) -> str:
    """sha256 of a file's content, memoised on disk by (absolute path, size, mtime)."""
    path = Path(path).resolve()
    st = path.stat()
    key = f"{path}|{st.st_size}|{st.st_mtime_ns}"
    memo_file = cache_root() / "sha256.json"
    memo = _read_json(memo_file)
    if key in memo:
        return memo[key]
    digest = file_digest(path)[0]
    memo = _read_json(memo_file)  # re-read: another process may have added entries meanwhile
    memo[key] = digest
    _write_json(memo_file, memo)
    return digest


def folder_digest(folder: Path) -> str:
    """sha256 over the names and contents of a model folder's config and weight files."""
    h = hashlib.sha256()
    for p in _weight_files(folder):
        h.update(p.name.encode() + b"\0" + file_sha256(p).encode() + b"\0")
    return h.hexdigest()


def weights_stat_token(name: str, base_dir: str | os.PathLike = ".") -> str | None:
    """A cheap token that changes when the files of the local model `name` (a folder or file, relative
    to `base_dir` or the current directory) change: names, sizes, mtimes; None for a hub id (its name
    and revision already say which model it is). For step cache keys."""
    name = Path(name).expanduser()
    for p in ([Path(base_dir) / name, name] if not name.is_absolute() else [name]):
        if p.is_file():
            st = p.stat()
            return f"{p.resolve()}|{st.st_size}|{st.st_mtime_ns}"
        if p.is_dir():
            parts = [f"{f.name}|{f.stat().st_size}|{f.stat().st_mtime_ns}" for f in _weight_files(p)]
            return hashlib.sha256("\n".join([str(p.resolve())] + parts).encode()).hexdigest()[:24]
    return None


def _weight_files(folder: Path) -> list[Path]:
    """The files that decide a model folder's outputs: config.json and the weights, sorted by name."""
    return sorted(p for p in folder.iterdir() if p.is_file() and (p.name == "config.json" or p.name.endswith(_WEIGHT_SUFFIXES)))


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _write_json(path: Path, data: dict) -> None:
    try:
        write_text_atomic(path, [json.dumps(data, indent=0, sort_keys=True)])
    except OSError:
        pass  # the memo is an optimisation; a read-only cache folder only costs re-hashing
