"""The data card's PNG plots (the funnel, lengths, score histograms): matplotlib without a display, with fixed
sizes, style and metadata so that the same run gives the same bytes."""

from __future__ import annotations

import io
import math
from pathlib import Path

from curate.card import stats as S
from curate.card.stats import Run

DPI = 80


def _figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=DPI)
    FigureCanvasAgg(fig)
    return fig


def _png(fig) -> bytes:
    import matplotlib

    buf = io.BytesIO()
    with matplotlib.rc_context({"savefig.dpi": DPI}):
        fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
    return buf.getvalue()


_STYLE = {"font.size": 8, "axes.titlesize": 9, "axes.spines.top": False, "axes.spines.right": False,
          "font.family": "DejaVu Sans", "path.simplify": True}
_COLORS = ["#4C72B0", "#DD8452", "#55A868", "#C44E52", "#8172B3", "#937860", "#DA8BC3", "#8C8C8C", "#CCB974", "#64B5CD"]


def plot_funnel(run: Run) -> bytes:
    import matplotlib

    stages = S.funnel(run)
    with matplotlib.rc_context(_STYLE):
        fig = _figure(7, 0.32 * len(stages) + 1.2)
        ax = fig.add_subplot()
        y = list(range(len(stages)))[::-1]
        outs = [s["rows_out"] for s in stages]
        drops = [s["dropped"] for s in stages]
        ax.barh(y, outs, color=_COLORS[0], label="rows after the step")
        ax.barh(y, drops, left=outs, color=_COLORS[3], alpha=0.55, label="dropped by the step")
        ax.set_yticks(y, [s["label"] for s in stages])
        for yi, s in zip(y, stages):
            ax.text(s["rows_in"], yi, f"  {s['rows_out']:,}" + (f"  (-{s['dropped']:,})" if s["dropped"] else ""),
                    va="center", fontsize=7)
        ax.set_xlim(0, run.manifest["totals"]["rows_in"] * 1.3 or 1)
        ax.set_xlabel("rows")
        ax.set_title(f"funnel: {run.name}")
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.22 * 10 / (len(stages) + 3)), ncol=2, fontsize=7, frameon=False)
        fig.tight_layout()
        return _png(fig)


def _bins(values: list[float], n: int = 30):
    import numpy as np

    lo, hi = min(values), max(values)
    if lo == hi:
        return np.array([lo - 0.5, hi + 0.5]), False
    srt = sorted(values)
    med = S.quantile(srt, 0.5)
    if lo >= 0 and hi > 100 and hi / (med + 1) > 8:  # long-tailed counts: log-spaced bins
        return np.geomspace(max(lo, 1), hi, n + 1), True
    return np.linspace(lo, hi, n + 1), False


def plot_lengths(run: Run) -> bytes:
    """Prompt and response words of the kept rows, one line per source."""
    import matplotlib
    import numpy as np

    sources = list(run.manifest["sources"])
    with matplotlib.rc_context(_STYLE):
        fig = _figure(7, 2.6)
        for k, (title, fn) in enumerate((("prompt words", S.prompt_of), ("response words", S.response_of))):
            ax = fig.add_subplot(1, 2, k + 1)
            per = {s: [max(len(fn(r).split()), 1) for r in run.kept if r["source"] == s] for s in sources}
            allv = [v for vs in per.values() for v in vs]
            if not allv:
                ax.set_title(f"{title} (no rows)")
                continue
            edges = np.geomspace(1, max(allv) + 1, 31) if max(allv) > 1 else np.array([0.5, 1.5])
            for i, s in enumerate(sources):
                if per[s]:
                    ax.hist(per[s], bins=edges, histtype="step", linewidth=1.2, color=_COLORS[i % len(_COLORS)], label=s)
            if max(allv) > 1:
                ax.set_xscale("log")
            ax.set_title(f"{title} per kept row")
            ax.set_xlabel("words (log scale)")
            ax.set_ylabel("rows")
            if k == 1:
                ax.legend(fontsize=6, frameon=False)
        fig.tight_layout()
        return _png(fig)


def plot_scores(run: Run) -> bytes | None:
    """One histogram per numeric score column: kept rows against every scored row."""
    import matplotlib

    cols = S.score_columns(run)
    if not cols:
        return None
    scored = S.scored_rows(run)
    ncol = 3
    nrow = math.ceil(len(cols) / ncol)
    with matplotlib.rc_context(_STYLE):
        fig = _figure(7, 1.7 * nrow + 0.3)
        for k, col in enumerate(cols):
            ax = fig.add_subplot(nrow, ncol, k + 1)
            allv = [v for v in (S.number(r.get(col)) for r in scored) if v is not None]
            kept = [v for v in (S.number(r.get(col)) for r in run.kept) if v is not None]
            if not allv:
                continue
            edges, log = _bins(allv)
            clip = lambda vs: [min(max(v, edges[0]), edges[-1]) for v in vs]  # noqa: E731
            ax.hist(clip(allv), bins=edges, color=_COLORS[7], alpha=0.45, label="scored")
            ax.hist(clip(kept), bins=edges, color=_COLORS[0], alpha=0.9, label="kept")
            if log:
                ax.set_xscale("log")
            ax.set_title(col)
            ax.tick_params(labelsize=6)
            if k == 0:
                ax.legend(fontsize=6, frameon=False)
        fig.tight_layout()
        return _png(fig)


PLOTS = (("funnel.png", plot_funnel), ("lengths.png", plot_lengths), ("scores.png", plot_scores))


def write_plots(run: Run, out_dir: Path) -> list[str]:
    """Write every plot as a PNG into out_dir; returns the file names written."""
    written = []
    for name, fn in PLOTS:
        png = fn(run)
        if png is None:
            (out_dir / name).unlink(missing_ok=True)
            continue
        (out_dir / name).write_bytes(png)
        written.append(name)
    return written
