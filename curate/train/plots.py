"""PNG figures (matplotlib, Agg backend): loss curves, the comparison, the Pareto front."""

from __future__ import annotations

from pathlib import Path


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _smooth(values: list[float], k: int) -> list[float]:
    out, acc = [], []
    for v in values:
        acc.append(v)
        if len(acc) > k:
            acc.pop(0)
        out.append(sum(acc) / len(acc))
    return out


def loss_plot(log: list[dict], path: Path, title: str = "", staircase: dict | None = None) -> Path:
    """Training loss per step (and a running mean), validation loss, epoch boundaries, learning rate."""
    plt = _plt()
    train = [r for r in log if r["kind"] == "train"]
    evals = [r for r in log if r["kind"] == "eval"]
    ends = [r["step"] for r in log if r["kind"] == "epoch_end"]
    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=100)
    if train:
        xs = [r["step"] for r in train]
        ys = [r["loss"] for r in train]
        ax.plot(xs, ys, color="#9ecae1", lw=1, label="train loss (step)")
        k = max(1, len(xs) // 25)
        if k > 1:
            ax.plot(xs, _smooth(ys, k), color="#08519c", lw=1.8, label=f"train loss (mean of {k})")
    if evals:
        ax.plot([r["step"] for r in evals], [r["loss"] for r in evals], "o-", color="#d94801", ms=4, label="validation loss")
    for i, s in enumerate(ends[:-1] if train and ends and ends[-1] >= train[-1]["step"] else ends):
        ax.axvline(s + 0.5, color="grey", ls="--", lw=0.8, label="epoch end" if i == 0 else None)
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("loss (assistant tokens)")
    if staircase and staircase.get("score") is not None:
        flag = " — FLAGGED" if staircase.get("flagged") else ""
        title = f"{title}  staircase score {staircase['score']:.3f}{flag}".strip()
    ax.set_title(title, fontsize=10)
    lrs = [(r["step"], r["learning_rate"]) for r in train if r.get("learning_rate") is not None]
    if lrs:
        ax2 = ax.twinx()
        ax2.plot([s for s, _ in lrs], [v for _, v in lrs], color="#74c476", lw=1, alpha=0.8, label="learning rate")
        ax2.set_ylabel("learning rate", color="#31a354")
        ax2.ticklabel_format(axis="y", style="sci", scilimits=(-2, 2))
        h1, l1 = ax.get_legend_handles_labels()
        h2, l2 = ax2.get_legend_handles_labels()
        ax.legend(h1 + h2, l1 + l2, fontsize=8, loc="upper right")
    else:
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def curves_plot(curves: dict[str, list[dict]], path: Path, title: str = "") -> Path:
    """Training (running mean) and validation loss of several runs on one axis."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=100)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, (name, log) in enumerate(curves.items()):
        c = colors[i % len(colors)]
        train = [r for r in log if r["kind"] == "train"]
        if train:
            ys = [r["loss"] for r in train]
            ax.plot([r["step"] for r in train], _smooth(ys, max(1, len(ys) // 20)), color=c, lw=1.5, label=f"{name} train")
        ev = [r for r in log if r["kind"] == "eval"]
        if ev:
            ax.plot([r["step"] for r in ev], [r["loss"] for r in ev], "o--", color=c, ms=3, lw=1, label=f"{name} validation")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("loss")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def compare_plot(metrics: dict, conditions: list[str], path: Path, title: str = "") -> Path:
    """One panel per metric: the mean per condition (point) with its confidence interval (bar); the base model
    dashed."""
    plt = _plt()
    names = list(metrics)
    cols = min(3, max(1, len(names)))
    rows = (len(names) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.2 * rows), dpi=100, squeeze=False)
    colors = {"subset": "#2171b5", "random": "#969696", "random_tokens": "#636363", "random_balanced": "#bdbdbd",
              "full": "#41ab5d", "full_steps": "#a1d99b"}
    for k, name in enumerate(names):
        ax = axes[k // cols][k % cols]
        m = metrics[name]
        xs, means, lo, hi, cs = [], [], [], [], []
        for i, cond in enumerate(conditions):
            s = m["by_condition"].get(cond)
            if not s or s["mean"] is None:
                continue
            xs.append(i)
            means.append(s["mean"])
            ci = s.get("ci") or [s["mean"], s["mean"]]
            lo.append(s["mean"] - ci[0])
            hi.append(ci[1] - s["mean"])
            cs.append(colors.get(cond, "#6a51a3"))
        for x, mu, l, h, c in zip(xs, means, lo, hi, cs):  # points with intervals: honest on a zoomed axis
            ax.errorbar([x], [mu], yerr=[[l], [h]], fmt="o", color=c, ms=7, capsize=5, lw=1.5)
        if m.get("base") is not None:
            ax.axhline(m["base"], color="black", ls="--", lw=1, label="base model")
            ax.legend(fontsize=7)
        ax.set_xticks(range(len(conditions)))
        ax.set_xticklabels(conditions, rotation=30 if len(conditions) > 3 else 0, fontsize=7 if len(conditions) > 3 else None)
        ax.set_xlim(-0.6, len(conditions) - 0.4)
        arrow = "lower is better" if not m.get("higher_is_better", True) else "higher is better"
        ax.set_title(f"{name} ({m.get('role') or 'no role'}; {arrow})", fontsize=9)
        ax.grid(axis="y", alpha=0.3)
    for k in range(len(names), rows * cols):
        axes[k // cols][k % cols].axis("off")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def pareto_plot(points: list[dict], path: Path, x_label: str, y_label: str, title: str = "", fit: dict | None = None) -> Path:
    """Domain gain (x) against general retention (y) per grid point; the Pareto front joined. With `fit` (the fit
    document of curate.train.grid_fit): each group's fitted curve (domain gain(r), general retention(r)) over the
    ratios it spans, the 95% bands of both at every 0.1 of r as crosses, and the recommended ratio as a star."""
    import numpy as np

    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.5, 5), dpi=100)
    for p in points:
        if p["domain_gain"] is None or p["general_retention"] is None:
            continue
        ax.scatter(p["domain_gain"], p["general_retention"], color="#d94801" if p["pareto"] else "#6baed6",
                   s=50, zorder=3)
        ax.annotate(p["point"], (p["domain_gain"], p["general_retention"]), fontsize=7, xytext=(4, 4),
                    textcoords="offset points")
    front = sorted((p for p in points if p["pareto"]), key=lambda p: p["domain_gain"])
    if front:
        ax.plot([p["domain_gain"] for p in front], [p["general_retention"] for p in front], "-", color="#d94801",
                lw=1.2, label="Pareto front")
    for k, g in enumerate((fit or {}).get("groups", [])):
        x, y = g["metrics"].get("domain_gain"), g["metrics"].get("general_retention")
        if not x or not y:
            continue
        from curate.train.grid_fit import GRID

        inside = (GRID >= g["ratios"][0] - 1e-9) & (GRID <= g["ratios"][-1] + 1e-9)
        fx, fy = np.asarray(x["curve"]["fit"], dtype=float), np.asarray(y["curve"]["fit"], dtype=float)
        color = ("#31a354", "#756bb1", "#636363", "#e6550d")[k % 4]
        label = "fitted law" + (f" ({g['group']})" if len(fit["groups"]) > 1 else "")
        ax.plot(fx[inside], fy[inside], "-", color=color, lw=1.5, alpha=0.9, label=label)
        if "lo" in x["curve"] and "lo" in y["curve"]:
            for i in np.flatnonzero(inside & np.isclose((GRID * 10) % 1, 0, atol=1e-6)):
                ax.plot([x["curve"]["lo"][i], x["curve"]["hi"][i]], [fy[i], fy[i]], color=color, lw=0.8, alpha=0.5)
                ax.plot([fx[i], fx[i]], [y["curve"]["lo"][i], y["curve"]["hi"][i]], color=color, lw=0.8, alpha=0.5)
        rec = g.get("recommendation") or {}
        if rec.get("r") is not None:
            i = int(np.argmin(np.abs(GRID - rec["r"])))
            ax.scatter([fx[i]], [fy[i]], marker="*", s=160, color=color, zorder=4, label=f"recommended r = {rec['r']:g}")
    if front or fit:
        ax.legend(fontsize=7)
    ax.axhline(0, color="grey", lw=0.8, ls=":")
    ax.axvline(0, color="grey", lw=0.8, ls=":")
    ax.set_xlabel(x_label)
    ax.set_ylabel(y_label)
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def fit_plot(doc: dict, result: dict, path: Path) -> Path:
    """One row per group of the fit, one panel per metric of the decision (domain gain, each constrained general
    metric) and general retention: every run (dots), the fitted law (solid over the trained ratios, dashed beyond),
    its 95% band, the retention bound (dotted) and the recommended ratio with its interval."""
    import numpy as np

    from curate.train.grid_fit import GRID, point_values

    plt = _plt()
    groups = doc["groups"] or [{"group": "no fit", "metrics": {}, "ratios": []}]
    bounds = {c["metric"]: c["bound"] for c in doc["constraints"]}
    names = ["domain_gain"] + [m for m in bounds if m != "domain_gain"] + ["general_retention"]
    names = list(dict.fromkeys(names))
    fig, axes = plt.subplots(len(groups), len(names), figsize=(3.6 * len(names), 3.0 * len(groups)), dpi=100, squeeze=False)
    for gi, g in enumerate(groups):
        rec = g.get("recommendation") or {}
        for mi, m in enumerate(names):
            ax = axes[gi][mi]
            for r, vals in point_values(result, g.get("changes"), m):
                ax.scatter([r] * len(vals), vals, s=14, color="#6baed6", zorder=3)
            e = g["metrics"].get(m)
            if e and g["ratios"]:
                fitted = np.asarray(e["curve"]["fit"], dtype=float)
                inside = (GRID >= g["ratios"][0] - 1e-9) & (GRID <= g["ratios"][-1] + 1e-9)
                ax.plot(GRID[inside], fitted[inside], color="#08519c", lw=1.5)
                ax.plot(GRID, np.where(inside, np.nan, fitted), color="#08519c", lw=1, ls="--")
                if "lo" in e["curve"]:
                    ax.fill_between(GRID, np.asarray(e["curve"]["lo"], dtype=float), np.asarray(e["curve"]["hi"], dtype=float),
                                    color="#6baed6", alpha=0.25, lw=0)
            if bounds.get(m) is not None:
                ax.axhline(bounds[m], color="#d94801", ls=":", lw=1, label="retention bound")
                ax.legend(fontsize=6)
            if rec.get("r") is not None:
                ax.axvline(rec["r"], color="#31a354", lw=1)
                if rec.get("interval"):
                    ax.axvspan(*rec["interval"], color="#31a354", alpha=0.12, lw=0)
            ax.set_xlim(-0.02, 1.02)
            ax.set_xlabel("general share r", fontsize=8)
            ax.set_title(m + (f" ({g['group']})" if len(groups) > 1 else ""), fontsize=8)
            ax.tick_params(labelsize=7)
    fig.suptitle(f"{result.get('recipe')}: fitted mixing law " + doc["law"], fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
