"""Charts (PNG with matplotlib, interactive with plotly) and the self-contained HTML report of an analysis.

Each chart is described once as a :class:`Chart` (a kind and a small aggregate table) and drawn by both renderers.
The report embeds plotly.js once, inline, so it opens without a network connection; it shows aggregates only
(the top rows of each table), never ads, so its size does not grow with the corpus.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from .sources import ISCO_LEVELS, MISSING, PERIODS

if TYPE_CHECKING:
    from .analyze import Analysis

MAX_GROUPS = 12  # groups shown in a heat map or bar chart (the largest); the tables have them all
MAX_LINES = 8


@dataclass
class Chart:
    """``kind``: ``bars`` (``data``: label, value, optional low/high and sign), ``heatmap`` (``data``: rows ×
    columns of shares) or ``lines`` (``data``: index = period, one column per series)."""

    name: str
    title: str
    kind: str
    data: pd.DataFrame
    note: str = ""
    value_label: str = "share of ads"
    meta: dict = field(default_factory=dict)


def charts_of(analysis: Analysis, top: int = 20) -> list[Chart]:
    """The charts an analysis calls for, from the top rows of its tables (read with DuckDB, never whole)."""
    have, charts = analysis.rows, []

    def read(name: str, where: str = "", limit: int | None = None) -> pd.DataFrame | None:
        if not have.get(name):
            return None
        return analysis.query(f"SELECT * FROM {name} {where}" + (f" LIMIT {int(limit)}" if limit else ""))

    overall = read("skill_demand", "ORDER BY ads DESC, skill", max(top, 15))
    if overall is not None:
        head = overall.head(top)
        charts.append(
            Chart(
                "top_skills",
                f"Top {len(head)} skills: share of all {int(head['group_ads'].iloc[0]):,} ads",
                "bars",
                pd.DataFrame(
                    {"label": head["skill"], "value": head["share"], "low": head["ci_low"], "high": head["ci_high"]}
                ),
            )
        )
    top_skills = [] if overall is None else overall["skill"].head(15).tolist()
    in_top = "WHERE skill IN (SELECT skill FROM skill_demand ORDER BY ads DESC, skill LIMIT 15)"
    for grouping in analysis.summary.get("groupings", []):
        columns = grouping.split(",")
        suffix = "_by_" + "_".join(columns)
        demand = read(f"skill_demand{suffix}", in_top)
        if demand is None or not len(demand):
            continue
        demand = _label_groups(demand, columns)
        groups = _largest_groups(demand)
        is_period = len(columns) == 1 and columns[0] in PERIODS
        if is_period:
            series = top_skills[:MAX_LINES]
            data = demand[demand["skill"].isin(series)].pivot_table(index="group", columns="skill", values="share")
            data = data.reindex(sorted(g for g in data.index if g != MISSING))
            data = data.reindex(columns=series).fillna(0.0)
            title = f"Share of ads asking for the top skills, by {grouping}"
            charts.append(Chart(f"skills_over{suffix[3:]}", title, "lines", data))
        else:
            data = demand[demand["group"].isin(groups)]
            data = data.pivot_table(index="group", columns="skill", values="share").reindex(groups)
            title = f"Top skills by {grouping}: share of the group's ads"
            charts.append(Chart(f"top_skills{suffix}", title, "heatmap", data.reindex(columns=top_skills).fillna(0.0)))

        def order(index, groups=groups, is_period=is_period) -> list[str]:
            return sorted(index) if is_period else [g for g in groups if g in index]

        skill_groups = read(f"skill_groups{suffix}", "WHERE level = 1")
        if skill_groups is not None and len(skill_groups):
            data = _label_groups(skill_groups, columns).pivot_table(
                index="group", columns="skill_group", values="share"
            )
            data = data.reindex(order(data.index))
            data = data[data.mean().sort_values(ascending=False).index].fillna(0.0)
            title = f"ESCO skill groups by {grouping}: share of ads asking for at least one skill of the group"
            charts.append(Chart(f"skill_groups{suffix}", title, "heatmap", data))
        collections = read(f"collections{suffix}")
        if collections is not None and len(collections):
            data = _label_groups(collections, columns).pivot_table(index="group", columns="collection", values="share")
            data = data.reindex(order(data.index)).fillna(0.0)
            title = f"ESCO collections by {grouping}: share of ads asking for at least one skill of the collection"
            charts.append(Chart(f"collections{suffix}", title, "lines" if is_period else "heatmap", data))
    overall_collections = read("collections")
    if overall_collections is not None and len(overall_collections):
        data = pd.DataFrame(
            {
                "label": overall_collections["collection"],
                "value": overall_collections["share"],
                "low": overall_collections["ci_low"],
                "high": overall_collections["ci_high"],
            }
        )
        title = "ESCO collections: share of all ads asking for at least one of their skills"
        charts.append(Chart("collections", title, "bars", data))
    half = max(top // 2, 1)
    movers = read(
        "movers",
        f"WHERE skill_id IN (SELECT skill_id FROM (FROM movers WHERE change > 0 ORDER BY change DESC LIMIT {half}) "
        f"UNION ALL SELECT skill_id FROM (FROM movers WHERE change < 0 ORDER BY change LIMIT {half})) ORDER BY change",
    )
    if movers is not None and len(movers):
        labels = [
            f"{label}{' *' if s else ''}" for label, s in zip(movers["skill"], movers["significant"], strict=True)
        ]
        title = f"Movers ({movers['compared'].iloc[0]}): change in the share of ads, percentage points (* q < 0.05)"
        data = pd.DataFrame(
            {
                "label": labels,
                "value": movers["change"] * 100,
                "sign": ["rises" if c > 0 else "falls" for c in movers["change"]],
            }
        )
        charts.append(Chart("movers", title, "bars", data, value_label="change (percentage points)"))
    return charts


def _label_groups(table: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """``group``: the grouping's values as one label (``"London | 2020-Q4"``)."""
    table = table.copy()
    label = table[columns[0]].astype(str)
    for column in columns[1:]:
        label = label + " | " + table[column].astype(str)
    table["group"] = label
    return table


def _largest_groups(demand: pd.DataFrame) -> list[str]:
    sizes = demand.groupby("group")["group_ads"].first().sort_values(ascending=False)
    return sizes.index[:MAX_GROUPS].tolist()


# ---------------------------------------------------------------------------------------------------------------
# PNG
# ---------------------------------------------------------------------------------------------------------------


def write_charts(analysis: Analysis, top: int = 20) -> dict[str, Path]:
    """Every chart as ``OUT/charts/<name>.png``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = {}
    for chart in charts_of(analysis, top):
        fig = _draw_png(plt, chart)
        path = analysis.output / "charts" / f"{chart.name}.png"
        fig.savefig(path, dpi=110, bbox_inches="tight")
        plt.close(fig)
        paths[chart.name] = path
    return paths


def _short(label: str, width: int = 45) -> str:
    return label if len(label) <= width else label[: width - 1] + "…"


def _draw_png(plt, chart: Chart):
    data = chart.data
    if chart.kind == "bars":
        fig, ax = plt.subplots(figsize=(9, 0.32 * len(data) + 1.2))
        labels = [_short(str(label)) for label in data["label"]][::-1]
        values = data["value"].to_numpy()[::-1]
        colors = ["#2a9d8f" if s == "rises" else "#e76f51" for s in data["sign"][::-1]] if "sign" in data else "#4c72b0"
        errors = None
        if "low" in data:
            errors = [values - data["low"].to_numpy()[::-1], data["high"].to_numpy()[::-1] - values]
        ax.barh(labels, values, color=colors, xerr=errors, error_kw={"elinewidth": 0.8, "ecolor": "#555"})
        ax.set_xlabel(chart.value_label)
        if "sign" in data:
            ax.axvline(0, color="#333", linewidth=0.8)
    elif chart.kind == "heatmap":
        fig, ax = plt.subplots(figsize=(max(6, 0.45 * data.shape[1] + 3), 0.4 * data.shape[0] + 2.5))
        image = ax.imshow(data.to_numpy(dtype=float), aspect="auto", cmap="viridis")
        ax.set_xticks(range(data.shape[1]), [_short(str(c), 30) for c in data.columns], rotation=60, ha="right")
        ax.set_yticks(range(data.shape[0]), [_short(str(i), 35) for i in data.index])
        fig.colorbar(image, ax=ax, label=chart.value_label)
    else:
        fig, ax = plt.subplots(figsize=(9, 5))
        positions = range(len(data.index))  # periods as categories ("2020-10" is no number to plot)
        for column in data.columns:
            ax.plot(positions, data[column], marker="o", label=_short(str(column), 40))
        ax.set_xticks(positions, [str(i) for i in data.index])
        ax.set_ylabel(chart.value_label)
        ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1, 0.5))
        ax.tick_params(axis="x", rotation=45)
    ax.set_title(chart.title, fontsize=10, loc="left")
    return fig


# ---------------------------------------------------------------------------------------------------------------
# HTML
# ---------------------------------------------------------------------------------------------------------------


def _plotly_figure(chart: Chart):
    import plotly.graph_objects as go

    data = chart.data
    if chart.kind == "bars":
        error = None
        if "low" in data:
            error = {
                "type": "data",
                "symmetric": False,
                "array": data["high"] - data["value"],
                "arrayminus": data["value"] - data["low"],
            }
        colors = ["#2a9d8f" if s == "rises" else "#e76f51" for s in data["sign"]] if "sign" in data else None
        figure = go.Figure(
            go.Bar(x=data["value"], y=data["label"].astype(str), orientation="h", error_x=error, marker_color=colors)
        )
        figure.update_yaxes(autorange="reversed" if "sign" not in data else True)
        figure.update_layout(height=max(300, 24 * len(data) + 120), xaxis_title=chart.value_label)
    elif chart.kind == "heatmap":
        figure = go.Figure(
            go.Heatmap(
                z=data.to_numpy(dtype=float),
                x=[str(c) for c in data.columns],
                y=[str(i) for i in data.index],
                colorscale="Viridis",
                colorbar={"title": {"text": chart.value_label}},
            )
        )
        figure.update_yaxes(autorange="reversed")
        figure.update_layout(height=max(350, 30 * len(data) + 250))
    else:
        figure = go.Figure(
            [go.Scatter(x=data.index.astype(str), y=data[c], mode="lines+markers", name=str(c)) for c in data.columns]
        )
        figure.update_layout(height=450, yaxis_title=chart.value_label)
    figure.update_layout(title={"text": chart.title, "font": {"size": 14}}, margin={"l": 10, "r": 10, "t": 50})
    return figure


def write_report(analysis: Analysis, top: int = 20) -> Path:
    """``OUT/report.html``: the summary, every chart (interactive) and the top rows of the tables."""
    import plotly.io as pio

    summary = analysis.summary
    parts = []
    for i, chart in enumerate(charts_of(analysis, top)):
        figure = _plotly_figure(chart)
        parts.append(pio.to_html(figure, full_html=False, include_plotlyjs=i == 0, config={"displaylogo": False}))
    status = (
        "<p class='complete'>Complete: every ad of the inputs was analysed.</p>"
        if summary["complete"]
        else "<p class='partial'><strong>PARTIAL ANALYSIS</strong>: the batch run was not finished; only its "
        "committed ads were analysed, and the figures will change when it is.</p>"
    )
    facts = [
        f"{summary['ads']:,} ads from {summary['parts']:,} Parquet part(s)",
        f"groups with fewer than {summary['min_ads']} ads are left out (--min-ads)",
    ]
    if summary.get("dates"):
        dates = summary["dates"]
        facts.append(f"dates from {html.escape(dates['column'])}: {dates['parsed']:,} of {dates['with_date']:,} read")
    coverage = (summary.get("esco") or {}).get("coverage") or {}
    for what, known in coverage.items():
        facts.append(f"ESCO {what}: {known['in_esco']:,} of {known['distinct_in_ads']:,} found in the reference")
    notes = "".join(f"<li>{html.escape(n)}</li>" for n in summary["notes"])
    skipped = "".join(f"<li><b>{html.escape(k)}</b>: {html.escape(v)}</li>" for k, v in summary["skipped"].items())
    tables = "".join(
        _table_html(name, analysis.query(f"SELECT * FROM {name} LIMIT {int(top)}"), rows, top)
        for name, rows in analysis.rows.items()
        if rows
    )
    page = _PAGE.format(
        title="Labour-market insights" + ("" if summary["complete"] else " (PARTIAL)"),
        status=status,
        facts="".join(f"<li>{html.escape(f)}</li>" for f in facts),
        notes=f"<h3>Notes</h3><ul>{notes}</ul>" if notes else "",
        skipped=f"<h3>Not computed</h3><ul>{skipped}</ul>" if skipped else "",
        charts="".join(f"<section class='chart'>{part}</section>" for part in parts),
        tables=tables,
        summary=html.escape(json.dumps({k: summary[k] for k in ("groupings", "tables")}, indent=1)),
    )
    analysis.report.write_text(page, encoding="utf-8")
    return analysis.report


def _table_html(name: str, shown: pd.DataFrame, rows: int, top: int) -> str:
    for column in shown.columns:
        if column in ("share", "ci_low", "ci_high", "share_a", "share_b", "change"):
            shown[column] = shown[column].map(lambda v: f"{100 * v:.1f}%")
        elif column in ("p_value", "q_value", "z"):
            shown[column] = shown[column].map(lambda v: f"{v:.3g}")
    shown = shown.drop(columns=[c for c in ("skill_id", "occupation_id", "group_code") if c in shown])
    body = shown.to_html(index=False, escape=True, border=0, classes="table")
    more = f" (first {top} of {rows:,} rows; all in tables/{name}.csv)" if rows > top else ""
    return f"<details><summary><code>{html.escape(name)}</code>{html.escape(more)}</summary>{body}</details>"


_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 1100px; color: #222; }}
.partial {{ background: #fde2e2; padding: .6rem; border-left: 4px solid #c0392b; }}
.complete {{ color: #2a6f4e; }}
table.table {{ border-collapse: collapse; font-size: .85rem; margin: .5rem 0 1rem; }}
table.table td, table.table th {{ padding: .2rem .5rem; border-bottom: 1px solid #ddd; text-align: left; }}
section.chart {{ margin: 1.5rem 0; }}
details {{ margin: .4rem 0; }}
</style></head><body>
<h1>{title}</h1>
{status}
<ul>{facts}</ul>
{notes}{skipped}
<h2>Charts</h2>
{charts}
<h2>Tables</h2>
<p>The top rows of each table; the whole tables are in <code>tables/</code> as Parquet and CSV.</p>
{tables}
<h2>Groupings and tables</h2><pre>{summary}</pre>
<p><small>Made by labor-encoders analyze. Skills and occupations: ESCO, European Union, reuse with
attribution.</small></p>
</body></html>
"""

__all__ = ["Chart", "charts_of", "write_charts", "write_report", "ISCO_LEVELS"]
