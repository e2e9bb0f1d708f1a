"""Imports go one way: core -> recipe -> steps -> engine -> features -> cli (CONTRIBUTING.md, "The layers").

Every `import curate...` in every module, at the top or inside a function, is checked against the layer
of the module it names: a module may import its own layer or a lower one, never a higher one."""

from __future__ import annotations

import ast
from pathlib import Path

import curate

ROOT = Path(curate.__file__).parent
LAYERS = ["core", "recipe", "steps", "engine", "features", "cli"]
# The one import that goes up, and why: a recipe's steps are validated by each step's own Params, which
# the recipe finds by name in the registry (a plug-in table: importing it loads every step module).
ALLOWED = {("curate.recipe", "curate.registry")}


def layer_of(module: str) -> str:
    """The layer of a module named `curate.x.y`."""
    parts = module.split(".")[1:]
    head = parts[0] if parts else ""
    if module in ("curate.cli", "curate.card.cli", "curate.train.cli", "curate.docs"):
        return "cli"
    if head == "" or head in ("errors", "rows", "io", "atomic", "console", "progress", "faults", "models", "ledger",
                              "embeddings", "vectors", "sources", "strict", "seeds", "numbers", "model_files"):
        return "core"  # as an import, `curate` itself gives only __version__
    if head == "recipe" or module.endswith("spec"):
        return "recipe"
    if head in ("steps", "registry", "templates", "textsets"):
        return "steps"
    if head in ("engine", "cache", "runfolder"):
        return "engine"
    if head in ("pipeline", "mix", "ablate", "card", "train", "evals", "inspect"):
        return "features"
    raise AssertionError(f"{module}: no layer; add it to tests/test_layers.py and CONTRIBUTING.md")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "curate":
            found.add(node.module)
            # `from curate.steps import lm_loss` names the module curate.steps.lm_loss
            for alias in node.names:
                if (ROOT.parent / (node.module.replace(".", "/") + "/" + alias.name + ".py")).exists():
                    found.add(f"{node.module}.{alias.name}")
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "curate"}
    return found


def test_every_module_has_a_layer_and_imports_only_downward():
    wrong = []
    for path in sorted(ROOT.rglob("*.py")):
        name = module_name(path)
        if name == "curate":
            continue  # the package's face (`from curate import Pipeline, steps`) sits above every layer
        mine = LAYERS.index(layer_of(name))
        for target in sorted(imports(path)):
            theirs = LAYERS.index(layer_of(target))
            if theirs > mine and (name, target) not in ALLOWED:
                wrong.append(f"{name} ({LAYERS[mine]}) imports {target} ({LAYERS[theirs]})")
    assert not wrong, "imports against the layers:\n" + "\n".join(wrong)


def test_the_check_sees_an_upward_import(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from curate.cli import app\n")
    assert imports(bad) == {"curate.cli"}
    assert LAYERS.index(layer_of("curate.cli")) > LAYERS.index(layer_of("curate.rows"))
