"""``labor-encoders analyze``: from the per-ad output of ``labor-encoders batch`` to the tables, charts and report
an analyst asks for (which skills, for which jobs, where and when), with DuckDB over the Parquet parts.

DuckDB reads the parts in place (no copy into memory), spills to ``OUT/.duckdb-tmp`` when a query outgrows memory,
and answers each question with one query (:mod:`labor_encoders.insights.queries`). The output folder::

    OUT/tables/<name>.parquet, .csv   one table per question and grouping (see the README's "Market insights")
    OUT/charts/<name>.png             the charts as images
    OUT/report.html                   one self-contained page with interactive charts (no network needed)
    OUT/summary.json                  what was read, what was left out and why, and the tables written

``summary.json`` and ``report.html`` are written last and removed first, so a folder with a report always holds a
finished analysis; a partial one (``--partial``, an unfinished batch run) says so in both.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

try:
    from ..locking import output_lock
except ImportError:  # the copy beside a Space's app.py (see space/app.py): one fresh folder per request, no lock

    def output_lock(folder, what):
        return contextlib.nullcontext()


from . import queries
from .esco import Esco
from .sources import ISCO_LEVELS, MISSING, PERIODS, REQUIRED_COLUMNS, AnalysisError, Sources, find_sources

RARE_SHARE = 0.05  # an essential ESCO skill asked for by fewer of the occupation's ads is "rarely mentioned"
# tried in order on a date that is not ISO 8601; day before month, as in Europe (--date-format overrides)
DATE_FORMATS = [
    "%d/%m/%Y",
    "%d/%m/%y",
    "%d.%m.%Y",
    "%d-%m-%Y",
    "%d %B %Y",
    "%d %b %Y",
    "%B %d, %Y",
    "%b %d, %Y",
    "%Y/%m/%d",
    "%Y%m%d",
    "%m/%Y",
    "%Y-%m",
    "%Y",
]
Progress = Callable[[float, str], None]


@dataclass
class Analysis:
    """What :func:`analyze` wrote: the tables (``OUT/tables/<name>.parquet``), chart files, the report, the summary.

    ``tables`` maps each table's name to a pandas DataFrame read from its Parquet file when first asked for;
    :meth:`query` runs DuckDB SQL over them by name (``analysis.query("SELECT * FROM movers LIMIT 5")``).
    """

    output: Path
    rows: dict[str, int] = field(default_factory=dict)
    charts: dict[str, Path] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)

    @property
    def report(self) -> Path:
        return self.output / "report.html"

    def path(self, name: str) -> Path:
        return self.output / "tables" / f"{name}.parquet"

    @property
    def tables(self) -> Mapping[str, pd.DataFrame]:
        return _Tables(self)

    def query(self, sql: str, params: list[Any] | None = None) -> pd.DataFrame:
        """``sql`` over the tables, each a view of its Parquet file under its own name."""
        with duckdb.connect() as con:
            for name in self.rows:
                con.execute(f"CREATE VIEW {name} AS SELECT * FROM read_parquet('{_sql_text(str(self.path(name)))}')")
            return con.execute(sql, params or []).df()


class _Tables(Mapping):
    def __init__(self, analysis: Analysis) -> None:
        self.analysis = analysis

    def __getitem__(self, name: str) -> pd.DataFrame:
        if name not in self.analysis.rows:
            raise KeyError(f"no table {name!r}; the tables are {', '.join(self.analysis.rows)}")
        return pd.read_parquet(self.analysis.path(name))

    def __iter__(self) -> Iterator[str]:
        return iter(self.analysis.rows)

    def __len__(self) -> int:
        return len(self.analysis.rows)


def analyze(
    inputs: Sequence[str | Path],
    output: str | Path,
    by: Sequence[str] = (),
    date_column: str | None = None,
    date_format: str | None = None,
    compare: str | None = None,
    esco: Esco | None = None,
    min_ads: int = 30,
    top: int = 20,
    partial: bool = False,
    memory_limit: str | None = None,
    progress: Progress | None = None,
) -> Analysis:
    """Analyse the ads in ``inputs`` (batch output folders, Parquet files or globs) into ``output``.

    ``by``: groupings, each a column or several joined by commas (``"region"``, ``"isco1,month"``): kept input
    columns, ``occupation``, ``month``/``quarter``/``year`` (with ``date_column``), ``isco1`` .. ``isco4`` (with
    ``esco``). ``compare``: ``"COLUMN:A,B"`` for the movers from group A to group B (default with a date column:
    the first and the last month with ``min_ads`` ads). ``esco``: :func:`labor_encoders.insights.load_esco`'s
    tables, for ISCO groups, the skill hierarchy, the collections and the occupation profiles.
    """
    if min_ads < 1:
        raise AnalysisError("--min-ads must be at least 1")
    started = time.perf_counter()
    step = _Steps(progress)
    sources = find_sources(list(inputs), partial=partial)
    output = Path(output)
    with output_lock(output, "analyze"):
        _prepare_output(output)
        con = duckdb.connect()
        try:
            con.execute(f"SET temp_directory = '{_sql_text(str(output / '.duckdb-tmp'))}'")
            con.execute("SET enable_progress_bar = false")
            if memory_limit:
                con.execute(f"SET memory_limit = '{_sql_text(memory_limit)}'")
            con.execute(queries.MACROS)
            esco = esco or Esco()
            for name, table in esco.tables().items():
                con.register(f"esco_{name}", table)
            groupings = [_split(spec) for spec in by]
            sides = _parse_compare(compare)
            if sides and not any(sides[0] in g for g in groupings):
                groupings.append([sides[0]])  # its groups' demand is reported too
            context = _Context(con, sources, esco, groupings, date_column, date_format, min_ads)
            step(0.05, "reading the parts")
            context.create_views()
            analysis = Analysis(output)
            _run(context, analysis, sides, step)
            step(0.85, "drawing the charts")
            from .report import write_charts, write_report

            analysis.summary = context.summary(analysis, time.perf_counter() - started)
            analysis.charts = write_charts(analysis, top)
            analysis.summary["charts"] = {name: str(path.relative_to(output)) for name, path in analysis.charts.items()}
            (output / "summary.json").write_text(json.dumps(analysis.summary, indent=2, default=str) + "\n")
            step(0.95, "writing the report")
            write_report(analysis, top)
        finally:
            con.close()
            shutil.rmtree(output / ".duckdb-tmp", ignore_errors=True)
    step(1.0, "done")
    return analysis


class _Steps:
    def __init__(self, progress: Progress | None) -> None:
        self.progress = progress

    def __call__(self, fraction: float, text: str) -> None:
        if self.progress is not None:
            self.progress(fraction, text)


def _split(spec: str) -> list[str]:
    columns = [c.strip() for c in spec.split(",") if c.strip()]
    if not columns:
        raise AnalysisError(f"--by {spec!r} names no column")
    return columns


def _parse_compare(compare: str | None) -> tuple[str, str, str] | None:
    """``"COLUMN:A,B"`` as ``(column, a, b)``.

    >>> _parse_compare("month:2020-10, 2020-11")
    ('month', '2020-10', '2020-11')
    """
    if not compare:
        return None
    column, sep, sides = compare.partition(":")
    a, _, b = sides.partition(",")
    if not (sep and column.strip() and a.strip() and b.strip()):
        raise AnalysisError(f"--compare {compare!r}: write COLUMN:A,B (for example month:2020-10,2020-11)")
    return column.strip(), a.strip(), b.strip()


def _sql_text(value: str) -> str:
    return value.replace("'", "''")


def _prepare_output(output: Path) -> None:
    """An empty or new folder, or an earlier analysis (its report and summary are removed first)."""
    if output.exists() and not output.is_dir():
        raise AnalysisError(f"{output} is a file; choose a folder for --output")
    earlier = (output / "summary.json").is_file() or (output / "tables").is_dir()
    if output.is_dir() and any(output.iterdir()) and not earlier:
        raise AnalysisError(f"{output} is not empty and holds no earlier analysis; choose another --output")
    for name in ("report.html", "summary.json"):
        (output / name).unlink(missing_ok=True)
    for name in ("tables", "charts"):
        shutil.rmtree(output / name, ignore_errors=True)
        (output / name).mkdir(parents=True)


class _Context:
    """The connection with its views, and what the checks found (for the summary)."""

    def __init__(self, con, sources: Sources, esco: Esco, groupings, date_column, date_format, min_ads) -> None:
        self.con, self.sources, self.esco = con, sources, esco
        self.groupings, self.date_column, self.date_format = groupings, date_column, date_format
        self.min_ads = min_ads
        self.notes: list[str] = list(sources.notes)
        self.skipped: dict[str, str] = {}
        self.info: dict[str, Any] = {}
        self.columns: list[str] = []

    # -- views ----------------------------------------------------------------------------------------------------

    def create_views(self) -> None:
        files = ", ".join(f"'{_sql_text(str(p))}'" for p in self.sources.files)
        try:
            self.con.execute(
                f"CREATE VIEW raw AS SELECT * FROM read_parquet([{files}], filename = true, "
                "file_row_number = true, union_by_name = true)"
            )
            self.columns = [row[0] for row in self.con.execute("DESCRIBE raw").fetchall()]
        except duckdb.Error as error:
            raise AnalysisError(f"cannot read the Parquet parts ({str(error).splitlines()[0]})") from None
        missing = [c for c in REQUIRED_COLUMNS if c not in self.columns]
        if missing:
            raise AnalysisError(
                f"the inputs lack the column(s) {', '.join(missing)}: give the output of labor-encoders batch "
                f"(their columns are {', '.join(self._own_columns())})"
            )
        self.has_occupations = "occupation_id" in self.columns
        derived = self._check_groupings()
        select = ["hash(filename, file_row_number) AS ad", "skill_ids", "skill_labels"]
        if self.has_occupations:  # an ad without a title (or below JobBERT's floor) is in the group "(missing)"
            select += ["occupation_id", f"coalesce(nullif(trim(occupation), ''), '{MISSING}') AS occupation"]
        else:
            select += ["NULL AS occupation_id"]
        plain = sorted({c for g in self.groupings for c in g if c not in derived and c != "occupation"})
        select += [
            f"coalesce(nullif(trim(CAST(r.{queries.quote(c)} AS VARCHAR)), ''), '{MISSING}') AS {queries.quote(c)}"
            for c in plain
        ]
        joins, base = "", "raw"
        if self.date_column:  # parsed once per ad, in a view of its own
            text = f"nullif(trim(CAST({queries.quote(self.date_column)} AS VARCHAR)), '')"
            self.con.execute(
                f"CREATE VIEW dated AS SELECT *, {text} AS date_text, {self._date_expression()} AS ad_date FROM raw"
            )
            select += self._period_columns()
            base = "dated"
        if any(c in ISCO_LEVELS for g in self.groupings for c in g):
            select += [f"coalesce(o.{c}, '(no ISCO group)') AS {c}" for c in ISCO_LEVELS]
            joins = " LEFT JOIN esco_occupations o USING (occupation_id)"
        self.con.execute(f"CREATE VIEW facts AS SELECT {', '.join(select)} FROM {base} r{joins}")
        grouped = [c for g in self.groupings for c in g] + (["month"] if self.date_column else [])
        keys = ["ad", "occupation_id", *dict.fromkeys(c for c in grouped if c != "occupation_id")]
        self.con.execute(
            f"CREATE VIEW skill_rows AS SELECT {', '.join(map(queries.quote, keys))}, "
            "unnest(skill_ids) AS skill_id FROM facts"
        )
        # the label of each skill, once (the per-ad rows carry only ids: half the text to decode per query)
        self.con.execute(
            "CREATE TEMP TABLE skill_names AS SELECT skill_id, any_value(skill) AS skill FROM (SELECT "
            "unnest(skill_ids) AS skill_id, unnest(skill_labels) AS skill FROM raw) GROUP BY skill_id"
        )
        self.info["ads"] = self.con.execute("SELECT count(*) FROM raw").fetchone()[0]
        if self.info["ads"] == 0:
            raise AnalysisError("the inputs hold no ads (every part is empty)")
        if self.date_column:
            self._check_dates()
        self._coverage()

    def _own_columns(self) -> list[str]:
        return [c for c in self.columns if c not in ("filename", "file_row_number")]

    def _check_groupings(self) -> set[str]:
        """The derived grouping columns used; an unknown column is an error that lists what there is."""
        derived = set()
        for grouping in self.groupings:
            for column in grouping:
                if column in PERIODS:
                    if not self.date_column:
                        raise AnalysisError(f"--by {column} needs --date-column (the column with the ads' dates)")
                    derived.add(column)
                elif column in ISCO_LEVELS:
                    if self.esco.occupations is None:
                        raise AnalysisError(
                            f"--by {column} needs the ESCO occupations: pass --esco with the ESCO CSV download "
                            "(a zip or folder holding occupations_en.csv and ISCOGroups_en.csv)"
                        )
                    if not self.has_occupations:
                        raise AnalysisError(f"--by {column} needs occupations: run batch with a title column")
                    derived.add(column)
                elif column not in self.columns:
                    own = ", ".join(self._own_columns())
                    raise AnalysisError(
                        f"--by {column}: no such column. The ads have {own}; derived groupings are "
                        f"{', '.join(PERIODS)} (with --date-column) and {', '.join(ISCO_LEVELS)} (with --esco). "
                        "Input columns reach the batch output with `labor-encoders batch --keep-columns`"
                    )
        if self.date_column and self.date_column not in self.columns:
            raise AnalysisError(
                f"--date-column {self.date_column}: no such column (the ads have {', '.join(self._own_columns())}); "
                "run batch with --keep-columns to carry it through"
            )
        return derived

    def _date_expression(self) -> str:
        text = "date_text"
        formats = [self.date_format] if self.date_format else DATE_FORMATS
        listed = ", ".join(f"'{_sql_text(f)}'" for f in formats)
        parsed = f"CAST(try_strptime({text}, [{listed}]) AS DATE)"
        if self.date_format:
            return parsed
        return f"coalesce(try_cast({text} AS DATE), CAST(try_cast({text} AS TIMESTAMP) AS DATE), {parsed})"

    def _period_columns(self) -> list[str]:
        date = "r.ad_date"
        return [
            "r.ad_date",
            f"coalesce(strftime({date}, '%Y-%m'), '{MISSING}') AS month",
            f"coalesce(CAST(year({date}) AS VARCHAR) || '-Q' || CAST(quarter({date}) AS VARCHAR), '{MISSING}') "
            "AS quarter",
            f"coalesce(CAST(year({date}) AS VARCHAR), '{MISSING}') AS year",
            "r.date_text",
        ]

    def _check_dates(self) -> None:
        dated, parsed = self.con.execute("SELECT count(date_text), count(ad_date) FROM facts").fetchone()
        examples = [
            row[0]
            for row in self.con.execute(
                "SELECT DISTINCT date_text FROM facts WHERE date_text IS NOT NULL AND ad_date IS NULL LIMIT 3"
            ).fetchall()
        ]
        self.info["dates"] = {"column": self.date_column, "with_date": dated, "parsed": parsed}
        if dated and not parsed:
            raise AnalysisError(
                f"no date in --date-column {self.date_column} could be read (for example {', '.join(examples)}); "
                "give its format with --date-format (strftime codes, e.g. %d/%m/%Y)"
            )
        if dated > parsed:
            self.notes.append(
                f"{dated - parsed:,} of {dated:,} dates in {self.date_column} could not be read (for example "
                f"{', '.join(map(repr, examples))}) and count as {MISSING!r}; --date-format sets the format"
            )
        if dated < self.info["ads"]:
            self.notes.append(f"{self.info['ads'] - dated:,} ads have no {self.date_column} and count as {MISSING!r}")

    def _coverage(self) -> None:
        """How much of the ads the ESCO tables cover (skill and occupation URIs can change between versions)."""
        coverage = {}
        if self.esco.skills is not None:
            known = self.con.execute(
                "SELECT count(*), count(s.skill_id) FROM skill_names r LEFT JOIN esco_skills s USING (skill_id)"
            ).fetchone()
            coverage["skills"] = {"distinct_in_ads": known[0], "in_esco": known[1]}
        if self.esco.occupations is not None and self.has_occupations:
            known = self.con.execute(
                "SELECT count(DISTINCT r.occupation_id), count(DISTINCT o.occupation_id) FROM facts r "
                "LEFT JOIN esco_occupations o USING (occupation_id) WHERE r.occupation_id IS NOT NULL"
            ).fetchone()
            coverage["occupations"] = {"distinct_in_ads": known[0], "in_esco": known[1]}
        self.info["esco_coverage"] = coverage

    # -- tables ---------------------------------------------------------------------------------------------------

    def table(self, sql: str, params: dict[str, Any] | None = None) -> pd.DataFrame:
        return self.con.execute(sql, params or {}).df()

    def summary(self, analysis: Analysis, seconds: float) -> dict[str, Any]:
        sources = self.sources
        return {
            "complete": sources.complete,
            "inputs": [str(p) for p in sources.files[:20]]
            + ([f"... {len(sources.files) - 20} more"] if len(sources.files) > 20 else []),
            "parts": len(sources.files),
            "ads": self.info["ads"],
            "min_ads": self.min_ads,
            "groupings": [",".join(g) for g in self.groupings],
            "dates": self.info.get("dates"),
            "esco": {
                "sources": self.esco.sources,
                "missing_files": self.esco.missing,
                "coverage": self.info.get("esco_coverage"),
            },
            "tables": {
                name: {"rows": rows, "parquet": f"tables/{name}.parquet", "csv": f"tables/{name}.csv"}
                for name, rows in analysis.rows.items()
            },
            "skipped": self.skipped,
            "notes": self.notes,
            "seconds": round(seconds, 1),
        }


def _suffix(grouping: list[str]) -> str:
    return "_by_" + "_".join(grouping) if grouping else ""


def _run(context: _Context, analysis: Analysis, sides, step: Callable[[float, str], None]) -> None:
    """Every question for every grouping, each table written as Parquet and CSV as soon as it is known."""
    esco, min_ads = context.esco, context.min_ads
    groupings = [[], *context.groupings]

    def put(name: str, source: str | pd.DataFrame) -> None:
        """Run a query (or take a small DataFrame) into the table ``name``, written as Parquet and CSV by DuckDB."""
        con = context.con
        if isinstance(source, pd.DataFrame):
            con.register("frame", source)
            source = "SELECT * FROM frame"
        con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS {source}")
        for suffix, options in (("parquet", "FORMAT parquet"), ("csv", "FORMAT csv, HEADER")):
            path = _sql_text(str(analysis.output / "tables" / f"{name}.{suffix}"))
            con.execute(f"COPY {name} TO '{path}' ({options})")
        analysis.rows[name] = con.execute(f"SELECT count(*) FROM {name}").fetchone()[0]

    for i, grouping in enumerate(groupings):
        step(0.1 + 0.5 * i / len(groupings), f"skill demand{_suffix(grouping).replace('_', ' ')}")
        put(f"skill_demand{_suffix(grouping)}", queries.skill_demand(grouping, min_ads))
        if grouping:
            sizes = context.table(queries.group_sizes(grouping))
            small = sizes[sizes["ads"] < min_ads]
            if len(small):
                context.notes.append(
                    f"{len(small):,} of {len(sizes):,} groups of {','.join(grouping)} have fewer than {min_ads} ads "
                    f"({int(small['ads'].sum()):,} ads in all) and are left out of its tables (--min-ads)"
                )
            if len(small) == len(sizes):
                context.notes.append(
                    f"no group of {','.join(grouping)} has {min_ads} ads (the largest has {int(sizes['ads'].max())}):"
                    " its tables are empty"
                )
        if esco.skill_groups is not None:
            sql = queries.rollup_demand(grouping, min_ads, "esco_skill_groups", ["level", "group_code", "skill_group"])
            put(f"skill_groups{_suffix(grouping)}", sql)
        if esco.collections is not None:
            sql = queries.rollup_demand(grouping, min_ads, "esco_collections", ["collection"])
            put(f"collections{_suffix(grouping)}", sql)
    if esco.skill_groups is None:
        context.skipped["skill_groups"] = (
            "needs the ESCO skills hierarchy: --esco with skillsHierarchy_en.csv (classification download) and "
            "broaderRelationsSkillPillar.csv (relations download)"
        )
    if esco.collections is None:
        context.skipped["collections"] = "needs the ESCO collections: --esco with the classification download"
    step(0.65, "movers")
    _movers(context, sides, put)
    step(0.75, "occupation profiles")
    if not context.has_occupations:
        context.skipped["occupation_profiles"] = "the ads have no occupations (batch ran without titles)"
    else:
        with_relations = esco.occupation_skills is not None and esco.skills is not None
        if not with_relations:
            context.skipped["occupation_profiles.esco_relation"] = (
                "ESCO's essential and optional skills need --esco with occupationSkillRelations.csv (relations "
                "download) and skills_en.csv (classification download): the profiles list the market's skills only"
            )
        put("occupation_profiles", queries.occupation_profiles(min_ads, with_relations))
        if with_relations:
            put("beyond_taxonomy", queries.beyond_taxonomy(10))
            put("rarely_mentioned_essentials", queries.rarely_mentioned_essentials(RARE_SHARE))


def _movers(context: _Context, sides: tuple[str, str, str] | None, put) -> None:
    if sides:
        column, a, b = sides
    elif context.date_column:
        months = context.table(queries.group_sizes(["month"]))
        months = sorted(
            m for m, n in zip(months["month"], months["ads"], strict=True) if m != MISSING and n >= context.min_ads
        )
        if len(months) < 2:
            context.skipped["movers"] = f"fewer than two months with {context.min_ads} ads; --compare chooses groups"
            return
        column, a, b = "month", months[0], months[-1]
    else:
        context.skipped["movers"] = "no --compare COLUMN:A,B and no --date-column to compare the first and last month"
        return
    counts = context.table(queries.two_sides(column, a, b), {"a": a, "b": b})
    sizes = context.table(
        f"SELECT count(*) FILTER ({queries.quote(column)} = $a) AS a, "
        f"count(*) FILTER ({queries.quote(column)} = $b) AS b FROM facts",
        {"a": a, "b": b},
    ).iloc[0]
    for side, size in (("a", a), ("b", b)):
        n = int(sizes[side])
        if n < context.min_ads:
            raise AnalysisError(
                f"--compare: the group {column} = {size!r} has {n} ads, fewer than --min-ads {context.min_ads}"
            )
    table = queries.movers(counts)
    table.insert(0, "compared", f"{column}: {a} -> {b}")
    context.info["movers"] = {"column": column, "a": a, "b": b}
    put("movers", table)
