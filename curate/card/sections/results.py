"""The card's results section: compare's results, the ablation grid, its trained front and fitted ratio, or Not run."""

from __future__ import annotations

import json
from pathlib import Path

from curate.card.markdown import code
from curate.card.sections.ablate import ABLATE_FIT, ABLATE_INDEX, ABLATE_TRAINED, ablation_index, ablation_markdown, trained_grid_markdown
from curate.card.sections.compare import COMPARE_RESULTS, compare_markdown
from curate.errors import CurateError


def _read_json(path: Path, what: str):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise CurateError(f"cannot read the {what}: {e}", str(path)) from None


def results_section(c) -> str:
    run = c["run"]
    out = ["## Results", "", "### Compared with the random baseline", ""]
    cmp_path = run.dir / COMPARE_RESULTS
    if cmp_path.is_file():
        results = _read_json(cmp_path, "compare results")
        if not (isinstance(results, dict) and results.get("kind") == "compare"):  # compare's own file says what it is
            out += ["Means over seeds, with their confidence intervals in brackets:" if isinstance(results, dict) and "metrics" in results
                    else "From `compare/results.json`:", ""]
        out.append(compare_markdown(results))
        for png in sorted(c["plots"]):
            if png.startswith("compare-"):
                out += ["", f"![{png[8:-4]}]({png})"]
    else:
        out.append(f"Not run: the run folder has no {code(COMPARE_RESULTS.as_posix())} (written by `curate compare`).")
    out += ["", "### Ablations", ""]
    abl_path = ablation_index(run)
    if abl_path is not None:
        out.append(ablation_markdown(_read_json(abl_path, "ablation index")))
        trained = abl_path.parent / ABLATE_TRAINED
        if trained.is_file():
            out += ["", trained_grid_markdown(_read_json(trained, "trained ablation results"))]
            if "ablate-pareto.png" in c["plots"]:
                out += ["", "![domain gain against general retention](ablate-pareto.png)"]
        fitted = abl_path.parent / ABLATE_FIT
        if fitted.is_file():  # the mixing law fitted to the trained grid (curate.card.fit)
            from curate.card.fit import fit_markdown

            out += ["", "#### The fitted ratio", "", fit_markdown(_read_json(fitted, "fitted mixing law"))]
            if "ablate-fit.png" in c["plots"]:
                out += ["", "![the fitted mixing law per metric](ablate-fit.png)"]
    else:
        out.append(f"Not run: no `curate ablate` index ({code(ABLATE_INDEX.as_posix())} in the run folder, or "
                   f"`{run.name}-ablate/index.json` beside it).")
    return "\n".join(out)
