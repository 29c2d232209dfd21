"""The benchmark's results as the seed's page shows them: each dataset, and side by side
(configuration, accuracy mean and spread on each dataset, training time), beside the published
figures; as a self-contained HTML page (sortable, nothing loaded from the network), a markdown
table and an SVG chart of each classifier's best configuration. Needs no scikit-learn."""

from __future__ import annotations

import html as _html
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .grid import classifiers, published_for
from .runner import read_results

#: The colours of the datasets, in order (bars, legend).
PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b"]


def latest(path: Path | str, skipped: list[tuple[int, str]] | None = None) -> list[dict[str, Any]]:
    """The records of a results file, the last one of each (dataset, subset, classifier,
    parameters) only: a configuration run again (another scikit-learn, a retried failure)
    supersedes the earlier record. Lines that are no readable record go to ``skipped``."""
    by_key: dict[str, dict[str, Any]] = {}
    for r in read_results(Path(path), skipped):
        key = json.dumps([r["dataset"], r.get("subset"), r["name"], r["parameter"]], sort_keys=True)
        by_key.pop(key, None)
        by_key[key] = r
    return list(by_key.values())


def parameters(parameter: dict[str, Any]) -> str:
    """``{"C": 1.0, "kernel": "rbf"}`` as the seed's page writes it: ``C=1.0 kernel=rbf``."""
    return " ".join(f"{k}={v}" for k, v in sorted(parameter.items()))


def datasets(records: Iterable[dict[str, Any]]) -> list[str]:
    """The datasets of ``records`` in the order they first appear."""
    return list(dict.fromkeys(r["dataset"] for r in records))


def _ok(r: dict[str, Any] | None) -> bool:
    return bool(r) and r.get("status") == "ok"  # type: ignore[union-attr]


def _side(records: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any], Any, dict[str, dict[str, Any]]]]:
    """Rows of the side-by-side view: (classifier, parameter, subset, {dataset: record}), in the
    seed's classifier order, the best on the first dataset first."""
    order = {name: i for i, name in enumerate(classifiers())}
    rows: dict[str, tuple[str, dict[str, Any], Any, dict[str, dict[str, Any]]]] = {}
    for r in records:
        key = json.dumps([r["name"], r["parameter"], r.get("subset")], sort_keys=True)
        rows.setdefault(key, (r["name"], r["parameter"], r.get("subset"), {}))[3][r["dataset"]] = r
    first = datasets(records)[0]

    def rank(row: tuple[str, dict[str, Any], Any, dict[str, dict[str, Any]]]) -> tuple[Any, ...]:
        r = row[3].get(first)
        accuracy = r["mean_accuracy"] if r is not None and _ok(r) else -1
        return (order.get(row[0], len(order)), row[0], -accuracy, parameters(row[1]))

    return sorted(rows.values(), key=rank)


def _status(r: dict[str, Any] | None) -> str:
    if r is None:
        return "not run"
    return "ok" if _ok(r) else f"{r['status']}: {r.get('reason', '')}"


def _summary(records: list[dict[str, Any]]) -> list[str]:
    counts: dict[str, int] = {}
    for r in records:
        counts[r["status"]] = counts.get(r["status"], 0) + 1
    versions = sorted({f"scikit-learn {r.get('scikit_learn')}" for r in records if r.get("scikit_learn")})
    hosts = sorted({str(r["host"]) for r in records if r.get("host")})
    subsets = sorted({"all" if r.get("subset") is None else str(r["subset"]) for r in records})
    return [
        f"{len(records)} results: " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items())),
        f"datasets: {', '.join(datasets(records))}; examples per split: {', '.join(subsets)}",
        f"run with {', '.join(versions)} on {', '.join(hosts) or 'unknown hosts'}",
    ]


# --- markdown -----------------------------------------------------------------------------------


def markdown(records: list[dict[str, Any]]) -> str:
    """The side-by-side table as markdown, the published figures beside each dataset's."""
    names = datasets(records)
    head = ["Classifier", "Parameters", "Subset"]
    for d in names:
        head += [f"{d} accuracy", f"{d} s/fit", f"{d} published"]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] * 3 + ["---:"] * 3 * len(names)) + "|"]
    for name, parameter, subset, by in _side(records):
        cells = [name, parameters(parameter), "all" if subset is None else str(subset)]
        published = published_for(name, parameter)
        for d in names:
            r = by.get(d)
            if _ok(r):
                cells += [f"{r['mean_accuracy']:.3f} ± {r['std_accuracy']:.3f}", f"{r['time_per_repeat']:.1f}"]  # type: ignore[index]
            else:
                cells += [_status(r).split(":")[0], ""]
            cells.append(f"{published[d]:.3f}" if d in published else "")
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join([*(f"{s}  " for s in _summary(records)), "", *lines]) + "\n"


# --- HTML ---------------------------------------------------------------------------------------


def _cell(value: Any, text: str, *, title: str = "") -> str:
    sort = "" if value is None else f' data-value="{_html.escape(str(value))}"'
    tip = f' title="{_html.escape(title)}"' if title else ""
    return f"<td{sort}{tip}>{_html.escape(text)}</td>"


def _header(columns: list[tuple[str, str, str]]) -> str:
    return "".join(
        f'<th data-key="{_html.escape(k)}" data-type="{t}" tabindex="0">{_html.escape(label)}</th>'
        for k, label, t in columns
    )


def _table(view: str, columns: list[tuple[str, str, str]], rows: list[str]) -> str:
    return (
        f'<table class="sortable" data-view="{_html.escape(view)}"><thead><tr>{_header(columns)}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def _dataset_view(d: str, records: list[dict[str, Any]]) -> str:
    columns = [
        ("classifier", "Classifier", "text"),
        ("parameters", "Parameters", "text"),
        ("subset", "Subset", "num"),
        ("accuracy", "Accuracy", "num"),
        ("spread", "± (2 sd)", "num"),
        ("repeats", "Repeats", "num"),
        ("time", "s per fit", "num"),
        ("published", "Published", "num"),
        ("status", "Status", "text"),
    ]
    rows = []
    for name, parameter, subset, by in _side(records):
        r = by.get(d)
        if r is None:
            continue
        ok = _ok(r)
        published = published_for(name, parameter).get(d)
        rows.append(
            "<tr>"
            + _cell(name, name)
            + _cell(parameters(parameter), parameters(parameter))
            + _cell(subset if subset is not None else "", "all" if subset is None else str(subset))
            + (_cell(r["mean_accuracy"], f"{r['mean_accuracy']:.3f}") if ok else _cell(None, ""))
            + (_cell(r["std_accuracy"], f"{r['std_accuracy']:.3f}") if ok else _cell(None, ""))
            + (_cell(r["num_repeat"], str(r["num_repeat"])) if ok else _cell(None, ""))
            + (_cell(r["time_per_repeat"], f"{r['time_per_repeat']:.1f}") if ok else _cell(None, ""))
            + (_cell(published, f"{published:.3f}") if published is not None else _cell(None, ""))
            + _cell(r["status"], r["status"], title=r.get("reason", ""))
            + "</tr>"
        )
    return _table(d, columns, rows)


def _side_view(records: list[dict[str, Any]]) -> str:
    names = datasets(records)
    columns = [("classifier", "Classifier", "text"), ("parameters", "Parameters", "text"), ("subset", "Subset", "num")]
    for d in names:
        columns += [
            (f"{d}:accuracy", f"{d}", "num"),
            (f"{d}:spread", "±", "num"),
            (f"{d}:time", "s/fit", "num"),
            (f"{d}:published", "published", "num"),
        ]
    rows = []
    for name, parameter, subset, by in _side(records):
        published = published_for(name, parameter)
        cells = (
            _cell(name, name)
            + _cell(parameters(parameter), parameters(parameter))
            + _cell(subset if subset is not None else "", "all" if subset is None else str(subset))
        )
        for d in names:
            r = by.get(d)
            if _ok(r):
                cells += _cell(r["mean_accuracy"], f"{r['mean_accuracy']:.3f}")  # type: ignore[index]
                cells += _cell(r["std_accuracy"], f"{r['std_accuracy']:.3f}")  # type: ignore[index]
                cells += _cell(r["time_per_repeat"], f"{r['time_per_repeat']:.1f}")  # type: ignore[index]
            else:
                cells += _cell(None, _status(r).split(":")[0], title=_status(r)) + _cell(None, "") + _cell(None, "")
            cells += _cell(published[d], f"{published[d]:.3f}") if d in published else _cell(None, "")
        rows.append(f"<tr>{cells}</tr>")
    return _table("side by side", columns, rows)


_STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222}
nav button{font:inherit;margin-right:.4em;padding:.3em .8em;border:1px solid #888;background:#f4f4f4;cursor:pointer}
nav button[aria-pressed=true]{background:#222;color:#fff}
table{border-collapse:collapse;margin:1em 0}
th,td{padding:.2em .6em;border-bottom:1px solid #ddd;text-align:right;white-space:nowrap}
th:nth-child(-n+2),td:nth-child(-n+2){text-align:left}
th{cursor:pointer;background:#f4f4f4;position:sticky;top:0}
th[aria-sort=ascending]::after{content:" \\25B2"}
th[aria-sort=descending]::after{content:" \\25BC"}
td[title]{color:#a00}
.summary{color:#555}
"""

# Sorting and the views, by the page's own script; the address's fragment chooses both
# (#view=<name>&sort=<column key>&order=asc|desc), so a link shows what its sender saw.
_SCRIPT = """
(function () {
  function sortBy(table, key, order) {
    var th = table.querySelector('th[data-key="' + CSS.escape(key) + '"]');
    if (!th) return;
    var col = Array.prototype.indexOf.call(th.parentNode.children, th);
    var num = th.dataset.type === 'num';
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = a.cells[col].dataset.value, y = b.cells[col].dataset.value;
      if (x === undefined || x === '') return (y === undefined || y === '') ? 0 : 1;  // blanks last
      if (y === undefined || y === '') return -1;
      var c = num ? parseFloat(x) - parseFloat(y) : x.localeCompare(y);
      return order === 'desc' ? -c : c;
    });
    rows.forEach(function (r) { body.appendChild(r); });
    table.querySelectorAll('th').forEach(function (h) { h.removeAttribute('aria-sort'); });
    th.setAttribute('aria-sort', order === 'desc' ? 'descending' : 'ascending');
  }
  function show(view) {
    var found = false;
    document.querySelectorAll('section.view').forEach(function (s) {
      var on = s.dataset.view === view; s.hidden = !on; found = found || on;
    });
    if (!found) { var first = document.querySelector('section.view'); first.hidden = false; view = first.dataset.view; }
    document.querySelectorAll('nav button').forEach(function (b) {
      b.setAttribute('aria-pressed', String(b.dataset.view === view));
    });
    return view;
  }
  function state() {
    var s = {};
    location.hash.replace(/^#/, '').split('&').forEach(function (kv) {
      var i = kv.indexOf('='); if (i > 0) s[decodeURIComponent(kv.slice(0, i))] = decodeURIComponent(kv.slice(i + 1));
    });
    return s;
  }
  function remember(s) {
    var parts = Object.keys(s).map(function (k) { return encodeURIComponent(k) + '=' + encodeURIComponent(s[k]); });
    history.replaceState(null, '', '#' + parts.join('&'));
  }
  var s = state();
  s.view = show(s.view);
  if (s.sort) {
    var table = document.querySelector('section.view[data-view="' + CSS.escape(s.view) + '"] table');
    if (table) sortBy(table, s.sort, s.order);
  }
  document.querySelectorAll('nav button').forEach(function (b) {
    b.addEventListener('click', function () { s = {view: show(b.dataset.view)}; remember(s); });
  });
  document.querySelectorAll('th[data-key]').forEach(function (th) {
    function go() {
      var order = th.getAttribute('aria-sort') === 'descending' ? 'asc' : 'desc';
      sortBy(th.closest('table'), th.dataset.key, order);
      s.sort = th.dataset.key; s.order = order; remember(s);
    }
    th.addEventListener('click', go);
    th.addEventListener('keydown', function (e) { if (e.key === 'Enter') go(); });
  });
  document.body.dataset.ready = 'true';
})();
"""


def html(records: list[dict[str, Any]]) -> str:
    """A self-contained page: each dataset's view and the side-by-side one (buttons switch them,
    a column's header sorts by it), the summary and the chart. Nothing is loaded from anywhere."""
    names = datasets(records)
    views = [*names, "side by side"] if len(names) > 1 else names
    sections = []
    for i, view in enumerate(views):
        body = _side_view(records) if view == "side by side" else _dataset_view(view, records)
        hidden = "" if i == 0 else " hidden"
        name = _html.escape(view)
        sections.append(f'<section class="view" data-view="{name}"{hidden}><h2>{name}</h2>{body}</section>')
    buttons = "".join(
        f'<button type="button" data-view="{_html.escape(v)}" aria-pressed="{str(i == 0).lower()}">'
        f"{_html.escape(v)}</button>"
        for i, v in enumerate(views)
    )
    summary = "".join(f"<p>{_html.escape(s)}</p>" for s in _summary(records))
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        "<title>fmnist benchmark</title>"
        f"<style>{_STYLE}</style></head><body>"
        "<h1>The seed's scikit-learn benchmark</h1>"
        f'<div class="summary">{summary}<p>Published: the Fashion-MNIST paper, arXiv:1708.07747, Table 3 '
        "(scikit-learn 0.19). Accuracy: the mean test accuracy over the repeats; ± twice their standard "
        "deviation. A column's header sorts by it.</p></div>"
        f"<nav>{buttons}</nav>{''.join(sections)}"
        f"<h2>Each classifier's best configuration</h2>{svg(records)}"
        f"<script>{_SCRIPT}</script></body></html>\n"
    )


# --- SVG ----------------------------------------------------------------------------------------


def best(records: list[dict[str, Any]]) -> list[tuple[str, dict[str, dict[str, Any]]]]:
    """Per classifier (the seed's order), its best configuration's record on each dataset."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for r in records:
        if _ok(r):
            top = out.setdefault(r["name"], {}).get(r["dataset"])
            if top is None or r["mean_accuracy"] > top["mean_accuracy"]:
                out[r["name"]][r["dataset"]] = r
    order = {name: i for i, name in enumerate(classifiers())}
    return sorted(out.items(), key=lambda kv: order.get(kv[0], len(order)))


def svg(records: list[dict[str, Any]]) -> str:
    """Horizontal bars: each classifier's best mean accuracy on each dataset, labelled with the
    value; a black tick marks the published figure for that same configuration."""
    names = datasets(records)
    rows = best(records)
    bar, gap, left, width, top = 14, 10, 220, 440, 40
    group = bar * len(names) + gap
    height = top + group * max(len(rows), 1) + 40
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{left + width + 70}" height="{height}" '
        f'viewBox="0 0 {left + width + 70} {height}" font-family="sans-serif" font-size="12" role="img">',
        "<title>Each classifier's best mean test accuracy</title>",
        f'<rect width="{left + width + 70}" height="{height}" fill="#fff"/>',
    ]
    for i, d in enumerate(names):  # the legend
        x = left + i * 150
        out.append(f'<rect x="{x}" y="12" width="12" height="12" fill="{PALETTE[i % len(PALETTE)]}"/>')
        out.append(f'<text x="{x + 16}" y="22">{_html.escape(d)}</text>')
    out.append(f'<line x1="{left + width - 150}" y1="18" x2="{left + width - 150}" y2="30" stroke="#000" '
               'stroke-width="2"/>')  # fmt: skip
    out.append(f'<text x="{left + width - 144}" y="28">published (same configuration)</text>')
    axis = top + group * max(len(rows), 1)
    for t in range(0, 11, 2):
        tick = left + width * t / 10
        out.append(f'<line x1="{tick}" y1="{top - 4}" x2="{tick}" y2="{axis}" stroke="#ddd"/>')
        out.append(f'<text x="{tick}" y="{axis + 16}" text-anchor="middle">{t / 10:.1f}</text>')
    out.append(f'<text x="{left + width / 2}" y="{axis + 32}" text-anchor="middle">mean test accuracy</text>')
    for k, (name, by) in enumerate(rows):
        y0 = top + k * group
        out.append(f'<text x="{left - 8}" y="{y0 + group / 2}" text-anchor="end">{_html.escape(name)}</text>')
        for i, d in enumerate(names):
            r = by.get(d)
            if r is None:
                continue
            y = y0 + i * bar
            w = width * r["mean_accuracy"]
            tip = f"{d}: {parameters(r['parameter'])}: {r['mean_accuracy']:.3f}"
            out.append(
                f'<rect x="{left}" y="{y}" width="{w:.1f}" height="{bar - 2}" fill="{PALETTE[i % len(PALETTE)]}">'
                f"<title>{_html.escape(tip)}</title></rect>"
            )
            published = published_for(name, r["parameter"]).get(d)
            at = None if published is None else left + width * published
            if at is not None:
                ends = f'x1="{at:.1f}" y1="{y - 1}" x2="{at:.1f}" y2="{y + bar - 1}"'
                out.append(f'<line {ends} stroke="#000" stroke-width="2"/>')
            # The label past the bar's end and past the tick, whichever is further: never under it.
            label = max(left + w, at if at is not None else 0) + 5
            out.append(f'<text x="{label:.1f}" y="{y + bar - 4}">{r["mean_accuracy"]:.3f}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"
