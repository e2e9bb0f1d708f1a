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
ALLOWED = {("curate.recipe", "curate.steps.registry")}


def layer_of(module: str) -> str:
    """The layer of a module named `curate.x.y`."""
    parts = module.split(".")[1:]
    head = parts[0] if parts else ""
    if module in ("curate.cli", "curate.card.cli", "curate.train.cli", "curate.docs"):
        return "cli"
    if head == "" or head in ("errors", "rows", "io", "atomic", "console", "progress", "faults", "models", "ledger",
                              "embeddings", "vectors", "sources", "strict", "seeds", "numbers", "model_files", "encoding", "jsonl"):
        return "core"  # as an import, `curate` itself gives only __version__
    if head in ("recipe", "specs") or module == "curate.templates.spec":
        return "recipe"
    if head in ("steps", "templates", "textsets"):
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


# -- no cycle between curate's packages -------------------------------------------------------------------

# Package-level import edges left out of the cycle check, each with its reason. Nothing else may close a loop.
CYCLE_EXCEPTIONS: set[tuple[str, str]] = set()  # none: the registry lives inside curate.steps


def package_of(module: str) -> str:
    """`curate.x.y.z` -> `curate.x` (a top-level module is its own package)."""
    return ".".join(module.split(".")[:2])


def package_graph() -> dict[str, dict[str, list[str]]]:
    """package -> {imported package: ["module -> imported module", ...]}, between curate's top-level packages
    and modules (every `import curate...`, at the top or inside a function)."""
    graph: dict[str, dict[str, list[str]]] = {}
    for path in sorted(ROOT.rglob("*.py")):
        name = module_name(path)
        if name == "curate":
            continue  # the package's face imports everything it shows; nothing imports curate for more than __version__
        for target in sorted(imports(path)):
            a, b = package_of(name), package_of(target)
            if a != b and b != "curate":
                graph.setdefault(a, {}).setdefault(b, []).append(f"{name} -> {target}")
    return graph


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one node (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def test_no_import_cycle_between_packages():
    graph = package_graph()
    for a, b in CYCLE_EXCEPTIONS:
        assert b in graph.get(a, {}), f"the exception {a} -> {b} is no longer needed: remove it"
    edges = {a: {b for b in targets if (a, b) not in CYCLE_EXCEPTIONS} for a, targets in graph.items()}
    loops = cycles(edges)
    detail = []
    for loop in loops:
        detail.append(" <-> ".join(loop))
        detail += [f"    {line}" for a in loop for b in sorted(edges[a] & set(loop)) for line in graph[a][b]]
    assert not loops, "import cycles between curate's packages:\n" + "\n".join(detail)


def test_the_cycle_check_sees_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []
    assert package_of("curate.steps.score.ifd") == "curate.steps" and package_of("curate.recipe") == "curate.recipe"
