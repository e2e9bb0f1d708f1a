"""`curate report`: one self-contained HTML page about a run.

The page holds everything inline (CSS, JavaScript, the plots as base64 PNG, the rows as JSON) and a
Content-Security-Policy that forbids every network request, so it opens offline and shows the same
thing anywhere. Sections: the funnel, the rows each step dropped with their reasons (with examples),
score and length histograms, a searchable and sortable table of the kept rows, and duplicate clusters
with the kept row beside the rows dropped as its duplicates.
"""

from __future__ import annotations

import base64
import html
import json
import os
from collections import defaultdict
from pathlib import Path

from curate.card import plots
from curate.card import stats as S
from curate.numbers import fmt
from curate.ledger import reason_group

PAGE_SIZE = 100  # kept rows rendered at a time ("show more" renders the next page)
DEFAULT_MAX_ROWS = 20000  # kept rows embedded in the page
EXAMPLES_PER_REASON = 5
MAX_CLUSTERS = 30  # duplicate clusters shown per step
SNIPPET = 600


def write_report(run_dir: str | os.PathLike, out: str | os.PathLike | None = None,
                 max_rows: int = DEFAULT_MAX_ROWS) -> Path:
    """Write the report (default RUN_DIR/report.html); returns its path."""
    from curate.card.writer import require_card_extra
    from curate.io import write_text_atomic

    require_card_extra()
    run = S.load_run(run_dir)
    path = Path(out) if out is not None else Path(run_dir) / "report.html"
    write_text_atomic(path, [build_report(run, max_rows)])
    return path


def e(text) -> str:
    return html.escape("" if text is None else str(text), quote=True)


def clip(text: str, limit: int = SNIPPET) -> str:
    text = text or ""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _img(png: bytes | None, alt: str) -> str:
    if not png:
        return ""
    return f'<img alt="{e(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode()}">'


def _script_json(obj) -> str:
    """JSON that is safe inside <script type="application/json">."""
    text = json.dumps(obj, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026") \
        .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def _num(v):
    n = S.number(v)
    return None if n is None else (int(n) if n == int(n) and abs(n) < 2 ** 53 else round(n, 6))


# -- sections --------------------------------------------------------------------------------------------


def _funnel(run: S.Run, stages: list[dict]) -> str:
    total = max(run.manifest["totals"]["rows_in"], 1)
    rows = []
    for s in stages:
        keep_w = 100 * s["rows_out"] / total
        drop_w = 100 * s["dropped"] / total
        rows.append(
            f'<div class="frow"><span class="flabel"><code>{e(s["label"])}</code> <small>{e(s["role"])}</small></span>'
            f'<span class="fbar"><span class="keep" style="width:{keep_w:.3f}%"></span>'
            f'<span class="drop" style="width:{drop_w:.3f}%"></span></span>'
            f'<span class="fnum">{s["rows_out"]:,}' + (f' <span class="minus">−{s["dropped"]:,}</span>' if s["dropped"] else "")
            + "</span></div>")
    t = run.manifest["totals"]
    return (f'<section id="funnel"><h2>Funnel</h2><div class="funnel">{"".join(rows)}</div>'
            f'<p class="check">rows in {t["rows_in"]:,} = rows out {t["rows_out"]:,} + dropped {t["dropped"]:,}</p></section>')


def _row_brief(row: dict) -> str:
    p, r = S.prompt_of(row), S.response_of(row)
    if not row.get("messages"):
        return f'<div class="msg"><b>raw</b> {e(clip(row.get("raw", ""), SNIPPET))}</div>'
    return (f'<div class="msg"><b>prompt</b> {e(clip(p))}</div>'
            f'<div class="msg"><b>response</b> {e(clip(r))}</div>')


def _dropped(run: S.Run, stages: list[dict]) -> str:
    by_step: dict[str, dict[str, list[dict]]] = defaultdict(lambda: defaultdict(list))
    for entry in run.rejects:
        by_step[entry["step"]][reason_group(entry["reason"])].append(entry)
    parts = ['<section id="dropped"><h2>Dropped rows by step</h2>']
    any_drops = False
    for s in stages:
        if not s["dropped"]:
            continue
        any_drops = True
        parts.append(f'<details class="step" open><summary><code>{e(s["label"])}</code> dropped '
                     f'{s["dropped"]:,} of {s["rows_in"]:,} rows</summary><table class="reasons"><thead><tr>'
                     '<th>reason</th><th class="n">rows</th><th>examples</th></tr></thead><tbody>')
        reasons = s["reasons"] if s["label"] != "load" else {
            r: len(xs) for r, xs in sorted(by_step["load"].items(), key=lambda kv: (-len(kv[1]), kv[0]))}
        for reason, n in reasons.items():
            examples = by_step[s["label"]].get(reason, [])[:EXAMPLES_PER_REASON]
            ex_html = "".join(
                f'<details class="ex"><summary><code>{e(x.get("row", {}).get("id") or x.get("where", "?"))}</code> '
                f'{e(x.get("row", {}).get("source", ""))}: {e(x["reason"])}</summary>{_row_brief(x.get("row") or {})}'
                + (f'<div class="detail">{e(json.dumps(x["detail"], ensure_ascii=False))}</div>' if x.get("detail") else "")
                + (f'<div class="detail">duplicate of <code>{e(x["duplicate_of"])}</code></div>' if x.get("duplicate_of") else "")
                + "</details>" for x in examples)
            parts.append(f'<tr><td>{e(reason)}</td><td class="n">{n:,}</td><td>{ex_html}</td></tr>')
        parts.append("</tbody></table></details>")
    if not any_drops:
        parts.append("<p>No step dropped a row.</p>")
    parts.append("</section>")
    return "".join(parts)


def _scores(run: S.Run) -> str:
    summary = S.score_summary(run)
    rows = "".join(
        f'<tr><td><code>{e(s["column"])}</code></td>' + "".join(
            f'<td class="n">{e(fmt(s[k]))}</td>' for k in ("rows", "missing", "mean", "min", "p25", "median", "p75", "max"))
        + "</tr>" for s in summary)
    table = ('<table class="summary"><thead><tr><th>column</th><th class="n">rows</th><th class="n">missing</th>'
             '<th class="n">mean</th><th class="n">min</th><th class="n">25%</th><th class="n">median</th>'
             f'<th class="n">75%</th><th class="n">max</th></tr></thead><tbody>{rows}</tbody></table>') if summary else \
        "<p>No score columns (no scorer ran).</p>"
    mix = S.language_mix(run)
    lang = ""
    if mix:
        lang = "<h3>Language mix (kept rows)</h3><p>" + ", ".join(
            f"<code>{e(k)}</code> {v:,}" for k, v in mix["kept"].items()) + "</p>"
    return ('<section id="scores"><h2>Scores and lengths</h2><p>Histograms: every scored row (grey) and the kept rows (blue).</p>'
            + _img(plots.plot_scores(run), "score histograms") + table + "<h3>Lengths of the kept rows</h3>"
            + _img(plots.plot_lengths(run), "prompt and response words per kept row") + lang + "</section>")


def _rows_payload(run: S.Run, max_rows: int) -> dict:
    scores = S.score_columns(run)
    labels = [c for c in run.columns if c not in S.CORE_COLUMNS and not c.endswith("_why") and c not in scores]
    rows = []
    for r in run.kept[:max_rows]:
        item = {"id": r.get("id"), "source": r.get("source"),
                "m": [[m.get("role", ""), m.get("content", "")] for m in r.get("messages") or []]}
        for c in labels:
            v = r.get(c)
            item[c] = v if isinstance(v, (str, int, float)) or v is None else json.dumps(v, ensure_ascii=False)
        for c in scores:
            item[c] = _num(r.get(c))
        rows.append(item)
    columns = ([{"key": "id", "label": "id", "type": "text"}, {"key": "source", "label": "source", "type": "text"},
                {"key": "prompt", "label": "prompt", "type": "text"}, {"key": "response", "label": "response", "type": "text"}]
               + [{"key": c, "label": c, "type": "text"} for c in labels]
               + [{"key": c, "label": c, "type": "num"} for c in scores])
    return {"columns": columns, "rows": rows, "total": len(run.kept), "page": PAGE_SIZE}


def _kept(run: S.Run, max_rows: int) -> str:
    payload = _rows_payload(run, max_rows)
    note = (f'<p class="note">The page holds the first {len(payload["rows"]):,} of {payload["total"]:,} kept rows '
            f"(<code>--max-rows</code>).</p>" if len(payload["rows"]) < payload["total"] else "")
    return ('<section id="kept"><h2>Kept rows</h2>' + note
            + '<div class="controls"><input id="search" type="search" placeholder="Search prompts, responses, ids, sources…" '
              'autocomplete="off" aria-label="search the kept rows"> <span id="count" aria-live="polite"></span></div>'
              '<div class="tablewrap"><table id="rows"><thead><tr></tr></thead><tbody></tbody></table></div>'
              '<button id="more" type="button">show more</button>'
              '<p class="note">Click a column to sort (again to reverse); click a row for the whole conversation.</p>'
            + f'<script id="rows-data" type="application/json">{_script_json(payload)}</script></section>')


def _card(brief: dict | None, cls: str, title: str, extra: str = "") -> str:
    if brief is None:
        return f'<div class="dup {cls}"><div class="dhead">{e(title)}</div><p>(row not found)</p></div>'
    return (f'<div class="dup {cls}"><div class="dhead">{e(title)} <code>{e(brief["id"])}</code> {e(brief["source"])}'
            f'{extra}</div><div class="msg"><b>prompt</b> {e(clip(brief["prompt"]))}</div>'
            f'<div class="msg"><b>response</b> {e(clip(brief["response"]))}</div></div>')


def _clusters(run: S.Run) -> str:
    dups = S.duplicates(run, n_examples=0, max_clusters=MAX_CLUSTERS)
    parts = ['<section id="duplicates"><h2>Duplicate clusters</h2>']
    if not dups:
        parts.append("<p>No deduplication step ran.</p>")
    for d in dups:
        parts.append(f'<h3><code>{e(d["step"])}</code>: {d["dropped"]:,} rows dropped in {d["clusters"]:,} clusters'
                     + (f" (the {len(d['clusters_shown'])} largest shown)" if d["clusters"] > len(d["clusters_shown"]) else "")
                     + "</h3>")
        for cl in d["clusters_shown"]:
            cards = [_card(cl["kept"], "kept", f"kept ({cl['kept_fate']})")]
            for x in cl["dropped"]:
                sim = x["detail"].get("jaccard")
                extra = f" · jaccard {sim:.2f}" if isinstance(sim, (int, float)) else ""
                cards.append(_card(x, "gone", "dropped", extra))
            parts.append(f'<div class="cluster">{"".join(cards)}</div>')
    parts.append("</section>")
    return "".join(parts)


# -- the page --------------------------------------------------------------------------------------------


CSS = """
:root{--fg:#1d2330;--mut:#5b6475;--bg:#fff;--line:#e3e6ec;--keep:#4C72B0;--drop:#e39a9d;--soft:#f5f7fa}
*{box-sizing:border-box}body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);
background:var(--bg);margin:0 auto;max-width:1200px;padding:0 20px 60px}
h1{margin:24px 0 4px}h2{margin-top:36px;border-bottom:1px solid var(--line);padding-bottom:4px}
nav a{margin-right:14px}code{font:12px ui-monospace,Menlo,Consolas,monospace;background:var(--soft);padding:0 3px;border-radius:3px}
.note,.check,small{color:var(--mut)}img{max-width:100%;display:block;margin:8px 0}
.funnel{display:grid;gap:4px}.frow{display:grid;grid-template-columns:230px 1fr 150px;align-items:center;gap:8px}
.fbar{display:flex;height:16px;background:var(--soft)}.keep{background:var(--keep)}.drop{background:var(--drop)}
.fnum{font-variant-numeric:tabular-nums}.minus{color:#b23a3f}
table{border-collapse:collapse;margin:8px 0}th,td{border-bottom:1px solid var(--line);padding:4px 8px;text-align:left;vertical-align:top}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}details.step{margin:10px 0}details.step>summary{font-weight:600;cursor:pointer}
details.ex summary{cursor:pointer;color:var(--mut)}.msg{white-space:pre-wrap;word-break:break-word;margin:4px 0}
.detail{color:var(--mut);font-size:12px;word-break:break-all}
.controls{display:flex;gap:12px;align-items:center;margin:8px 0}#search{flex:1;max-width:520px;padding:6px 10px;font-size:14px}
.tablewrap{overflow-x:auto}#rows{font-size:13px;width:100%}#rows th{cursor:pointer;user-select:none;white-space:nowrap;background:var(--soft);position:sticky;top:0}
#rows th[aria-sort=ascending]::after{content:" ▲"}#rows th[aria-sort=descending]::after{content:" ▼"}
#rows td.t{max-width:360px}#rows td.wide{min-width:260px}#rows tr.row{cursor:pointer}#rows tr.row:hover{background:var(--soft)}
#rows tr.conv td{background:#fbfcfe}.turn{margin:6px 0;white-space:pre-wrap;word-break:break-word}.turn b{color:var(--keep)}
#more{margin:8px 0;padding:4px 14px}
.cluster{display:flex;gap:10px;overflow-x:auto;margin:10px 0;padding-bottom:4px}
.dup{flex:0 0 340px;border:1px solid var(--line);border-radius:6px;padding:8px;font-size:13px;max-height:320px;overflow:auto}
.dup.kept{border-color:var(--keep);border-width:2px}.dup.gone{background:#fff8f8}.dhead{font-weight:600;margin-bottom:4px}
"""

JS = r"""
(function(){
"use strict";
var data=JSON.parse(document.getElementById("rows-data").textContent);
var cols=data.columns,rows=data.rows,page=data.page;
function lastAssistant(m){for(var i=m.length-1;i>=0;i--){if(m[i][0]==="assistant")return i;}return m.length;}
rows.forEach(function(r,i){
  var k=lastAssistant(r.m);
  r.prompt=r.m.slice(0,k).map(function(t){return t[1];}).join("\n");
  r.response=k<r.m.length?r.m[k][1]:"";
  r._i=i;
  r._hay=[r.id,r.source].concat(r.m.map(function(t){return t[1];})).join("\n").toLowerCase();
});
var state={q:"",key:null,dir:1,shown:page,matches:rows};
var thead=document.querySelector("#rows thead tr"),tbody=document.querySelector("#rows tbody");
var count=document.getElementById("count"),more=document.getElementById("more"),search=document.getElementById("search");
function clip(s,n){s=s==null?"":String(s);return s.length>n?s.slice(0,n-1)+"\u2026":s;}
function fmt(v){if(v==null)return"";if(typeof v==="number"){return Number.isInteger(v)?String(v):v.toPrecision(3);}return String(v);}
cols.forEach(function(c){
  var th=document.createElement("th");th.textContent=c.label;th.dataset.key=c.key;th.title="sort by "+c.label;
  th.addEventListener("click",function(){
    if(state.key===c.key){state.dir=-state.dir;}else{state.key=c.key;state.dir=c.type==="num"?-1:1;}
    Array.prototype.forEach.call(thead.children,function(h){h.removeAttribute("aria-sort");});
    th.setAttribute("aria-sort",state.dir>0?"ascending":"descending");
    apply(false);
  });
  thead.appendChild(th);
});
function compare(a,b){
  var c=cols.find(function(x){return x.key===state.key;}),va=a[state.key],vb=b[state.key];
  var na=va==null||va==="",nb=vb==null||vb==="";
  if(na||nb){return na&&nb?a._i-b._i:(na?1:-1);}
  var d=c.type==="num"?va-vb:String(va).localeCompare(String(vb));
  return d?d*state.dir:a._i-b._i;
}
function apply(resetPage){
  var q=state.q.trim().toLowerCase();
  var m=q?rows.filter(function(r){return r._hay.indexOf(q)>=0;}):rows.slice();
  if(state.key){m.sort(compare);}
  state.matches=m;if(resetPage)state.shown=page;
  render();
}
function render(){
  var m=state.matches,n=Math.min(state.shown,m.length),frag=document.createDocumentFragment();
  tbody.textContent="";
  for(var i=0;i<n;i++){
    var r=m[i],tr=document.createElement("tr");tr.className="row";tr.dataset.id=r.id;
    cols.forEach(function(c){
      var td=document.createElement("td"),v=r[c.key];
      if(c.type==="num"){td.className="n";td.textContent=fmt(v);}
      else{var wide=c.key==="prompt"||c.key==="response";td.className=wide?"t wide":"t";td.textContent=clip(v,wide?200:60);}
      tr.appendChild(td);
    });
    tr.addEventListener("click",toggle.bind(null,tr,r));
    frag.appendChild(tr);
  }
  tbody.appendChild(frag);
  count.textContent=m.length+" of "+data.total+" rows match"+(n<m.length?" \u00b7 showing "+n:"");
  more.hidden=n>=m.length;
}
function toggle(tr,r){
  var next=tr.nextSibling;
  if(next&&next.classList&&next.classList.contains("conv")){next.remove();return;}
  var row=document.createElement("tr");row.className="conv";
  var td=document.createElement("td");td.colSpan=cols.length;
  r.m.forEach(function(t){var d=document.createElement("div");d.className="turn";
    var b=document.createElement("b");b.textContent=t[0]+": ";d.appendChild(b);
    d.appendChild(document.createTextNode(t[1]));td.appendChild(d);});
  row.appendChild(td);tr.parentNode.insertBefore(row,tr.nextSibling);
}
var timer=null;
search.addEventListener("input",function(){
  clearTimeout(timer);
  timer=setTimeout(function(){state.q=search.value;apply(true);},rows.length>5000?150:0);
});
more.addEventListener("click",function(){state.shown+=page;render();});
apply(true);
document.body.dataset.ready="1";
})();
"""


def build_report(run: S.Run, max_rows: int = DEFAULT_MAX_ROWS) -> str:
    from curate.card.licenses import decide

    m = run.manifest
    stages = S.funnel(run)
    lic = decide(S.card_licenses(run)[0])
    desc = " ".join(((m.get("recipe") or {}).get("description") or "").split())
    t = m["totals"]
    base = m.get("random_baseline")
    sources = ", ".join(f"<code>{e(n)}</code> ({e(i.get('license') or 'unknown')})" for n, i in m["sources"].items())
    head = (f"<h1>{e(run.name)}</h1><p>{e(desc)}</p>"
            f'<p><b>{t["rows_in"]:,}</b> rows in, <b>{t["rows_out"]:,}</b> kept, <b>{t["dropped"]:,}</b> dropped · '
            f"sources: {sources}"
            f" · license <code>{e(lic.license)}</code>" + (" <b>(non-commercial)</b>" if lic.non_commercial else "")
            + (f" · random baseline: {base['rows']:,} rows from the {base['pool_rows']:,}-row pool of "
               f"<code>{e(base['selector'])}</code>" if base else "")
            + f' · curate {e(m.get("curate_version"))}, recipe hash <code>{e(m.get("recipe_hash"))}</code></p>'
            '<nav><a href="#funnel">funnel</a><a href="#dropped">dropped rows</a><a href="#scores">scores</a>'
            '<a href="#kept">kept rows</a><a href="#duplicates">duplicates</a></nav>')
    csp = ("default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'; "
           "connect-src 'none'; font-src 'none'; form-action 'none'; base-uri 'none'")
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f'<meta http-equiv="Content-Security-Policy" content="{csp}">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>curate report: {e(run.name)}</title><style>{CSS}</style></head><body>"
            + head + _funnel(run, stages) + _dropped(run, stages) + _scores(run) + _kept(run, max_rows)
            + _clusters(run) + f"<script>{JS}</script></body></html>\n")
