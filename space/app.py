"""Gradio Space: skill extraction (ConTeXT-match) and job-title normalisation (JobBERT V2) over ESCO.

The page has four tabs: a job ad with the words that triggered each skill highlighted, job titles mapped onto
occupations, a batch run over an uploaded CSV/JSONL/Parquet file, and market insights over a file of ads (skill
demand by region, period and occupation, movers, ESCO roll-ups: ``labor-encoders analyze`` on the page).
Everything the tabs compute is a plain function of this module; ``build_demo(contextmatch, jobbert)`` wires them
into a ``gr.Blocks`` page around models that are passed in, never loaded at import.

Run it with ``labor-encoders demo`` (the embedded default models), or ``python app.py`` on a Hugging Face Space,
where ``CONTEXTMATCH_MODEL`` and ``JOBBERT_MODEL`` name the model repositories (or local folders) to load.

Each tab's events form a queue group (:data:`QUEUE_LIMITS`): so many requests run at once, so many wait, and one
more is turned away at once with a message on the page ("the queue is full, try again in a minute") instead of
waiting without end. Waiting users see their place in the queue and the expected wait. ``labor-encoders demo
--max-queue N --concurrency extract=2`` sets the limits; on a Space, ``DEMO_MAX_QUEUE`` and ``DEMO_CONCURRENCY``.

This folder is self-contained: it imports gradio, pandas, matplotlib and, under ``__main__``, transformers; the
models bring their own code (``trust_remote_code``).
"""

from __future__ import annotations

import bisect
import csv
import functools
import io
import json
import os
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gradio as gr
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

HERE = Path(__file__).resolve().parent
EXAMPLES = {
    "Data engineer (short)": HERE / "examples" / "data_engineer.txt",
    "Nurse (long, several paragraphs)": HERE / "examples" / "nurse_long.txt",
    "Sous chef": HERE / "examples" / "chef.txt",
}
MAX_WORDS = 5_000  # per ad in the extraction tab: about 8 s on 2 CPU cores
MAX_TITLES = 200
MAX_BATCH_ADS = 1_000
MAX_FILE_MB = 20
BATCH_CHUNK = 16  # ads per model call in the batch tab (one progress step)
KEEP_FILES_S = 3600  # uploads and results are deleted from the server after about this long
NO_COLUMN = "(none)"
# queue group: (requests run at once, requests waiting at most); a new tab adds its row and passes **queued(...)
QUEUE_LIMITS: dict[str, tuple[int, int]] = {
    "extract": (2, 16),
    "titles": (4, 32),
    "ad_titles": (2, 16),
    "columns": (4, 32),
    "batch": (1, 4),
    "insights": (1, 4),
}
TEXT_COLUMNS = ("text", "description", "job_description", "ad", "body", "content")
TITLE_COLUMNS = ("title", "job_title", "jobtitle", "position", "occupation")
ID_COLUMNS = ("id", "ad_id", "job_id", "uid")
AD_FORMATS = (".csv", ".tsv", ".jsonl", ".json", ".parquet")
DATE_COLUMNS = ("date", "date_posted", "posted", "posting_date", "published", "created", "created_at")
DERIVED_GROUPINGS = ("occupation", "month", "quarter", "year", "isco1", "isco2")  # see labor-encoders analyze
CSS = """
#notice p { margin: 0; }
#skills-table, #titles-table { --font-mono: var(--font); }
#evidence { min-height: 120px; }
footer { display: none !important; }
"""


class InputError(ValueError):
    """Bad input from the page: the message says what is wrong and how to fix it."""


# ---------------------------------------------------------------------------------------------------------------
# Skill extraction tab
# ---------------------------------------------------------------------------------------------------------------


def limit_words(text: str, max_words: int) -> tuple[str, int]:
    """The text cut after its first ``max_words`` words (whitespace kept), and how many words it has in all.

    >>> limit_words("one two  three four", 2)
    ('one two', 4)
    >>> limit_words("short text", 10)
    ('short text', 2)
    """
    words = text.split()
    if len(words) <= max_words:
        return text, len(words)
    position = 0
    for word in words[:max_words]:
        position = text.index(word, position) + len(word)
    return text[:position], len(words)


def link(label: str, uri: str) -> str:
    """A Markdown link to a concept's page when its id is a web address (ESCO URIs are), else the label."""
    clean = label.replace("[", "(").replace("]", ")")
    return f"[{clean}]({uri})" if uri.startswith(("http://", "https://")) else clean


def highlight_segments(text: str, skills: Sequence[dict[str, Any]]) -> list[tuple[str, str | None]]:
    """The text cut into pieces for ``gr.HighlightedText``: each piece of evidence carries the best skill it triggered.

    ``skills`` is one ``extract()`` result's ``"skills"`` list, best first; where the evidence of several skills
    overlaps, the higher-scoring skill names the piece. Pieces without evidence carry ``None``.

    >>> skills = [{"label": "python", "evidence": [{"start": 9, "end": 15}]},
    ...           {"label": "programming", "evidence": [{"start": 9, "end": 20}]}]
    >>> highlight_segments("We write Python code.", skills)
    [('We write ', None), ('Python', 'python'), (' code', 'programming'), ('.', None)]
    """
    cuts = {0, len(text)}
    spans = []
    for rank, skill in enumerate(skills):
        for evidence in skill["evidence"]:
            start, end = max(0, evidence["start"]), min(len(text), evidence["end"])
            if start < end:
                spans.append((start, end, rank))
                cuts.update((start, end))
    cuts = sorted(cuts)
    best = [len(skills)] * (len(cuts) - 1)  # best (lowest) rank covering each piece
    for start, end, rank in spans:
        for piece in range(bisect.bisect_left(cuts, start), bisect.bisect_left(cuts, end)):
            best[piece] = min(best[piece], rank)
    segments: list[tuple[str, str | None]] = []
    for piece, rank in enumerate(best):
        label = skills[rank]["label"] if rank < len(skills) else None
        chunk = text[cuts[piece] : cuts[piece + 1]]
        if segments and segments[-1][1] == label:
            segments[-1] = (segments[-1][0] + chunk, label)
        else:
            segments.append((chunk, label))
    return [segment for segment in segments if segment[0]]


def skills_table(skills: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """One row per skill: a link to its taxonomy page, its score and the words that triggered it."""
    rows = [
        {
            "Skill": link(skill["label"], skill["id"]),
            "Score": round(float(skill["score"]), 3),
            "Evidence": " · ".join(dict.fromkeys(e["text"].strip() for e in skill["evidence"])),
        }
        for skill in skills
    ]
    return pd.DataFrame(rows, columns=["Skill", "Score", "Evidence"])


def bar_chart(counts: Sequence[tuple[str, float]], title: str, xlabel: str) -> Figure | None:
    """A horizontal bar chart, largest bar on top; None when there is nothing to draw."""
    if not counts:
        return None
    labels = [label if len(label) <= 48 else label[:47] + "…" for label, _ in counts][::-1]
    values = [value for _, value in counts][::-1]
    figure = Figure(figsize=(7, 0.8 + 0.28 * len(counts)), layout="constrained")
    axes = figure.subplots()
    axes.barh(labels, values, color="#f97316")
    axes.set_title(title, fontsize=11, loc="left")
    axes.set_xlabel(xlabel)
    axes.tick_params(axis="y", labelsize=9)
    if all(float(value).is_integer() for value in values):  # counts: whole-number ticks
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.spines[["top", "right"]].set_visible(False)
    return figure


def extract_skills(
    model,
    text: str,
    threshold: float | None = None,
    top_k: int | None = None,
    redundancy_filter: bool = True,
    max_words: int = MAX_WORDS,
) -> dict[str, Any]:
    """Run ``model.extract`` on one ad for the page: skills, highlighted pieces, table, chart and a one-line notice.

    Ads longer than ``max_words`` words are cut there, and the notice says so.
    """
    if not text or not text.strip():
        raise InputError("The job ad is empty: paste the text of an ad, or pick one of the examples below.")
    analysed, words = limit_words(text, max_words)
    started = time.perf_counter()
    result = model.extract(analysed, threshold=threshold, top_k=top_k, redundancy_filter=redundancy_filter)[0]
    seconds = time.perf_counter() - started
    skills = result["skills"]
    analysed_words = min(words, max_words)
    notice = f"**{len(skills)} skills** found in {analysed_words:,} words ({seconds:.1f} s)."
    if not skills:
        notice = f"No skill reached the threshold in {analysed_words:,} words ({seconds:.1f} s): try a lower threshold."
    if words > max_words:
        notice += (
            f" Only the first {max_words:,} of {words:,} words were analysed (this page's limit); run"
            " `labor-encoders extract --file ad.txt` for the whole ad."
        )
    chart = bar_chart([(s["label"], s["score"]) for s in skills[:20]], "Skills found (top 20)", "match score")
    return {
        "skills": skills,
        "highlighted": highlight_segments(analysed, skills),
        "table": skills_table(skills),
        "chart": chart,
        "notice": notice,
    }


# ---------------------------------------------------------------------------------------------------------------
# Job title tab
# ---------------------------------------------------------------------------------------------------------------


def parse_titles(text: str, max_titles: int = MAX_TITLES) -> list[str]:
    """Job titles, one a line; blank lines dropped.

    >>> parse_titles("  data engineer \\n\\nnurse\\n")
    ['data engineer', 'nurse']
    """
    titles = [line.strip() for line in (text or "").splitlines() if line.strip()]
    if not titles:
        raise InputError("No job title given: type one or more titles, one a line.")
    if len(titles) > max_titles:
        raise InputError(
            f"{len(titles):,} titles given; this page takes at most {max_titles:,} at once. Use the Batch tab or"
            " `labor-encoders normalize --file titles.txt` for more."
        )
    return titles


def titles_table(results: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """One row per (title, occupation): rank, linked occupation, score and the label of it that matched best."""
    rows = [
        {
            "Title": result["title"],
            "Rank": rank,
            "Occupation": link(match["label"], match["id"]),
            "Score": round(float(match["score"]), 3),
            "Matched label": match["matched_label"],
        }
        for result in results
        for rank, match in enumerate(result["matches"], 1)
    ]
    return pd.DataFrame(rows, columns=["Title", "Rank", "Occupation", "Score", "Matched label"])


def normalize_titles(model, text: str, top_k: int = 5, max_titles: int = MAX_TITLES) -> pd.DataFrame:
    """Map the titles of ``text`` (one a line) onto the model's occupations, ``top_k`` each."""
    return titles_table(model.normalize(parse_titles(text, max_titles), top_k=int(top_k)))


def occupations_from_skills(model, skills: Sequence[str], top_k: int = 5) -> list[dict[str, Any]]:
    """The closest concepts of ``model``'s title index to one skill list, through the skills head.

    JobBERT V2 learns to put a job title near the skills its ads ask for, so a skill list (typed, or extracted from
    an ad by ConTeXT-match) is compared with every title of the index; an occupation scores as its best label.
    """
    vector = model.encode_skills([list(skills)])[0]
    scores = (model.title_embeddings.float().cpu() @ vector).tolist()
    best: dict[str, tuple[float, int]] = {}
    for row, (concept, score) in enumerate(zip(model.title_ids, scores, strict=True)):
        if concept not in best or score > best[concept][0]:
            best[concept] = (score, row)
    ranked = sorted(best.items(), key=lambda item: -item[1][0])[: max(1, int(top_k))]
    return [
        {
            "label": model.title_names.get(concept, model.title_labels[row]),
            "id": concept,
            "score": round(score, 4),
            "matched_label": model.title_labels[row],
        }
        for concept, (score, row) in ranked
    ]


def occupations_from_ad(
    contextmatch,
    jobbert,
    text: str,
    top_k: int = 5,
    threshold: float | None = None,
    max_words: int = MAX_WORDS,
) -> dict[str, Any]:
    """Paste an ad: ConTeXT-match extracts its skills, JobBERT's skills head ranks the occupations by them.

    Returns the skills, the occupations table (as the job-title table, with the ad as its title) and a notice.
    """
    if not text or not text.strip():
        raise InputError("The job ad is empty: paste the text of an ad to find the occupations its skills point to.")
    analysed, words = limit_words(text, max_words)
    started = time.perf_counter()
    skills = [skill["label"] for skill in contextmatch.extract(analysed, threshold=threshold)[0]["skills"]]
    if not skills:
        table = titles_table([])
        return {"skills": [], "table": table, "notice": "No skill reached the threshold, so no occupation to show."}
    matches = occupations_from_skills(jobbert, skills, top_k)
    seconds = time.perf_counter() - started
    shown = ", ".join(skills[:12]) + (f" and {len(skills) - 12} more" if len(skills) > 12 else "")
    notice = f"**{len(skills)} skills** extracted from {min(words, max_words):,} words ({seconds:.1f} s): {shown}."
    return {"skills": skills, "table": titles_table([{"title": "(the ad)", "matches": matches}]), "notice": notice}


# ---------------------------------------------------------------------------------------------------------------
# Batch tab
# ---------------------------------------------------------------------------------------------------------------


@dataclass
class AdTable:
    """Rows of an uploaded file as dicts of strings; ``problems`` maps a row number (1-based) to what is wrong."""

    columns: list[str]
    rows: list[dict[str, str]]
    problems: dict[int, str] = field(default_factory=dict)


def read_ads(path: str | Path, max_ads: int = MAX_BATCH_ADS, max_mb: float = MAX_FILE_MB) -> AdTable:
    """Read job ads from a CSV, TSV, JSONL, JSON (a list of objects) or Parquet file.

    A row that cannot be read (a CSV line with the wrong number of cells, a JSONL line that is not an object) is
    kept as an empty row with its problem recorded, so the output has one row for every row of the input.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in AD_FORMATS:
        raise InputError(
            f"{path.name}: unsupported file type {suffix or '(none)'}; upload one of {', '.join(AD_FORMATS)}."
        )
    size_mb = path.stat().st_size / 2**20
    if size_mb > max_mb:
        raise InputError(f"{path.name} is {size_mb:.1f} MB; this page takes files up to {max_mb:g} MB.")
    if suffix == ".parquet":
        table = _read_parquet(path)
    else:
        try:
            content = path.read_text(encoding="utf-8-sig")
        except UnicodeDecodeError as error:
            raise InputError(
                f"{path.name} is not UTF-8 text ({error.reason} at byte {error.start}): save it again as UTF-8"
                " (in a spreadsheet: CSV UTF-8)."
            ) from None
        if not content.strip():
            raise InputError(f"{path.name} is empty: upload a file with a header line and one ad per row.")
        reader = _read_json if suffix in (".jsonl", ".json") else _read_csv
        table = reader(path.name, content, suffix)
    if not table.columns:
        if suffix in (".jsonl", ".json"):
            raise InputError(f'{path.name} has no ad with fields: each ad must be an object like {{"text": "..."}}.')
        raise InputError(f"{path.name} has no column names: its first line must name the columns.")
    if len(table.rows) > max_ads:
        raise InputError(
            f"{path.name} has {len(table.rows):,} ads; this page takes up to {max_ads:,}. Split the file, or run the"
            " command line on the whole file."
        )
    if not table.rows:
        raise InputError(f"{path.name} has a header but no ads: add one ad per row below the header.")
    return table


# The Space's own readers of uploaded tables. They repeat what labor_encoders.tables does for the rest of the project
# on purpose: the Space runs on the Hub from this folder alone, without the labor_encoders package.
def _read_csv(name: str, content: str, suffix: str) -> AdTable:
    delimiter = "\t" if suffix == ".tsv" else ","
    # newline="" keeps line breaks inside quoted cells, and only \r and \n end a record (not U+2028 and the like)
    reader = csv.reader(io.StringIO(content, newline=""), delimiter=delimiter)
    rows: list[dict[str, str]] = []
    problems: dict[int, str] = {}
    try:
        header = [cell.strip() for cell in next(reader)]
        for record in reader:
            if not record:  # a blank line
                continue
            if len(record) == len(header):
                rows.append(dict(zip(header, record, strict=True)))
            else:
                problems[len(rows) + 1] = (
                    f"line {reader.line_num} has {len(record)} cells, the header has {len(header)}"
                )
                rows.append(dict.fromkeys(header, ""))
    except csv.Error as error:
        raise InputError(
            f"{name} is not valid CSV near line {reader.line_num} ({error}): check its quotes, or save it again"
            " from a spreadsheet as CSV UTF-8."
        ) from None
    return AdTable([cell for cell in header if cell], rows, problems)


def _read_json(name: str, content: str, suffix: str) -> AdTable:
    problems: dict[int, str] = {}
    if suffix == ".json":
        try:
            records = json.loads(content)
        except json.JSONDecodeError as error:
            raise InputError(
                f"{name} is not valid JSON ({error}); for one ad per line use JSON Lines (.jsonl)."
            ) from None
        if not isinstance(records, list):
            raise InputError(f"{name} must hold a list of objects, one per ad (or use JSON Lines, .jsonl).")
    else:
        records = []
        for number, line in enumerate(content.split("\n"), 1):  # JSON may hold U+2028 unescaped: split on \n only
            if not line.strip():
                continue
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as error:
                problems[len(records) + 1] = f"line {number} is not valid JSON ({error.msg})"
                records.append(None)
    columns: dict[str, None] = {}
    for number, record in enumerate(records, 1):
        if isinstance(record, dict):
            columns.update(dict.fromkeys(record))
        elif number not in problems:
            problems[number] = f"row {number} is a JSON {type(record).__name__}, not an object"
    rows = [
        {column: _cell(record.get(column)) if isinstance(record, dict) else "" for column in columns}
        for record in records
    ]
    return AdTable(list(columns), rows, problems)


def _read_parquet(path: Path) -> AdTable:
    try:
        frame = pd.read_parquet(path)
    except Exception as error:  # pyarrow raises several unrelated types for a broken file
        raise InputError(
            f"{path.name} is not a readable Parquet file ({error}); write it again, or upload CSV or JSONL."
        ) from None
    columns = [str(column) for column in frame.columns]
    rows = [{c: _cell(v) for c, v in zip(columns, values, strict=True)} for values in frame.itertuples(index=False)]
    return AdTable(columns, rows)


def _cell(value: Any) -> str:
    """A cell as text: missing values empty, lists and objects as JSON.

    >>> [_cell(None), _cell(float("nan")), _cell(pd.NA), _cell(3), _cell(["a", "b"])]
    ['', '', '', '3', '["a", "b"]']
    """
    if hasattr(value, "tolist") and not isinstance(value, str):  # numpy arrays and scalars (Parquet list cells)
        value = value.tolist()
    if isinstance(value, dict | list | tuple):
        return json.dumps(value, ensure_ascii=False, default=str)
    if value is None or value is pd.NA or value is pd.NaT or (isinstance(value, float) and value != value):
        return ""
    return str(value)


def guess_column(columns: Sequence[str], names: Sequence[str]) -> str | None:
    """The column named like the first of ``names`` that the file has, ignoring case, spaces and dashes.

    >>> guess_column(["ID", "Job Title", "Description"], ("title", "job_title"))
    'Job Title'
    """
    normal = {column.lower().replace(" ", "_").replace("-", "_"): column for column in columns}
    return next((normal[name] for name in names if name in normal), None)


def column_choices(path: str | Path | None) -> dict[str, Any]:
    """The columns of an uploaded file and a first guess of the text, title and id columns."""
    if path is None:
        return {"columns": [], "text": None, "title": NO_COLUMN, "id": NO_COLUMN}
    columns = read_ads(path).columns
    return {
        "columns": columns,
        "text": guess_column(columns, TEXT_COLUMNS) or columns[-1],
        "title": guess_column(columns, TITLE_COLUMNS) or NO_COLUMN,
        "id": guess_column(columns, ID_COLUMNS) or NO_COLUMN,
    }


def annotate_ads(
    contextmatch,
    jobbert,
    table: AdTable,
    text_column: str,
    title_column: str | None = None,
    id_column: str | None = None,
    threshold: float | None = None,
    max_words: int = MAX_WORDS,
    progress: Callable[[int, int], None] | None = None,
) -> list[dict[str, Any]]:
    """Skills (and, with a title column, the closest occupation) for every row of ``table``, in input order.

    Every input row gives one output row; a row that could not be read, or whose text is empty, has no skills and
    its ``problem`` says why.
    """
    for flag, column in (("text", text_column), ("title", title_column), ("id", id_column)):
        if column and column not in table.columns:
            raise InputError(
                f"the file has no column {column!r} (chosen as the {flag} column); it has {table.columns}."
            )
    output = []
    for number, row in enumerate(table.rows, 1):
        text = row.get(text_column, "")
        problem = table.problems.get(number, "")
        if not problem and not text.strip():
            problem = f"empty text in column {text_column!r}"
        if not problem and len(text.split()) > max_words:
            problem = f"only the first {max_words:,} words analysed"
        output.append(
            {
                "row": number,
                "id": row.get(id_column, "") if id_column else "",
                "title": row.get(title_column, "") if title_column else "",
                "text": limit_words(text, max_words)[0],
                "problem": problem,
            }
        )
    for start in range(0, len(output), BATCH_CHUNK):
        chunk = output[start : start + BATCH_CHUNK]
        results = contextmatch.extract([row["text"] for row in chunk], threshold=threshold)
        for row, result in zip(chunk, results, strict=True):
            row["skills"] = [skill["label"] for skill in result["skills"]]
            row["skill_ids"] = [skill["id"] for skill in result["skills"]]
            row["skill_scores"] = [skill["score"] for skill in result["skills"]]
        if title_column:
            for row, result in zip(chunk, jobbert.normalize([row["title"] for row in chunk], top_k=1), strict=True):
                best = result["matches"][0] if result["matches"] else {"label": "", "id": "", "score": None}
                row.update(occupation=best["label"], occupation_id=best["id"], occupation_score=best["score"])
        if progress is not None:
            progress(min(start + BATCH_CHUNK, len(output)), len(output))
    for row in output:
        del row["text"]
    return output


def write_batch(rows: Sequence[dict[str, Any]], folder: str | Path, stem: str, file_format: str = "csv") -> Path:
    """Write the batch results as ``<stem>.skills.csv`` (lists joined by "; ") or ``.parquet`` (list columns)."""
    frame = pd.DataFrame(list(rows))
    path = Path(folder) / f"{stem}.skills.{file_format}"
    if file_format == "parquet":
        frame.to_parquet(path, index=False)
    elif file_format == "csv":
        for column in ("skills", "skill_ids", "skill_scores"):
            frame[column] = frame[column].map(lambda values: "; ".join(map(str, values)))
        frame.to_csv(path, index=False)
    else:
        raise InputError(f"unknown output format {file_format!r}: choose csv or parquet")
    return path


def batch_summary(rows: Sequence[dict[str, Any]], seconds: float) -> str:
    """A Markdown line: ads, skills, speed and the rows with a problem."""
    problems = [row for row in rows if row["problem"]]
    total = sum(len(row["skills"]) for row in rows)
    text = f"**{len(rows):,} ads**, {total:,} skills in {seconds:.1f} s ({len(rows) / max(seconds, 1e-9):.1f} ads/s)."
    if problems:
        listed = "; ".join(f"row {row['row']}: {row['problem']}" for row in problems[:5])
        more = f" and {len(problems) - 5} more" if len(problems) > 5 else ""
        text += f" {len(problems)} rows with a problem (kept in the file, see its `problem` column): {listed}{more}."
    return text


def run_batch(
    contextmatch,
    jobbert,
    path: str | Path,
    text_column: str,
    title_column: str | None,
    id_column: str | None,
    file_format: str,
    output_folder: str | Path,
    threshold: float | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """The whole batch tab: read, annotate, write the file, count the most frequent skills and occupations."""
    if not path:
        raise InputError("Upload a CSV, JSONL or Parquet file of job ads first.")
    if not text_column:
        raise InputError("Choose the column that holds the text of the ads.")
    title_column = None if title_column in (None, "", NO_COLUMN) else title_column
    id_column = None if id_column in (None, "", NO_COLUMN) else id_column
    table = read_ads(path)
    started = time.perf_counter()
    rows = annotate_ads(
        contextmatch, jobbert, table, text_column, title_column, id_column, threshold, progress=progress
    )
    seconds = time.perf_counter() - started
    output = write_batch(rows, output_folder, Path(path).stem, file_format)
    skills = Counter(label for row in rows for label in row["skills"]).most_common(15)
    occupations = Counter(row["occupation"] for row in rows if row.get("occupation")).most_common(15)
    return {
        "rows": rows,
        "file": output,
        "summary": batch_summary(rows, seconds),
        "skills_chart": bar_chart(skills, "Most frequent skills", "ads"),
        "occupations_chart": bar_chart(occupations, "Most frequent occupations", "ads"),
    }


def remove_old_runs(folder: Path, max_age_s: float) -> None:
    """Delete the run folders under ``folder`` that are older than ``max_age_s`` seconds."""
    for run in folder.iterdir():
        if run.is_dir() and time.time() - run.stat().st_mtime > max_age_s:
            shutil.rmtree(run, ignore_errors=True)


# ---------------------------------------------------------------------------------------------------------------
# Market insights tab
# ---------------------------------------------------------------------------------------------------------------


def insights_module():
    """The analysis engine: ``labor_encoders.insights`` where the project is installed (``labor-encoders demo``), else
    the copy of it that ``labor-encoders push space`` puts beside this file as ``insights/`` (it imports only duckdb,
    pandas, plotly and matplotlib), so the Space stays self-contained."""
    try:
        from labor_encoders import insights
    except ImportError:
        import insights
    return insights


def is_batch_output(path: str | Path) -> bool:
    """A Parquet file with the skill columns of ``labor-encoders batch`` (analysed as it is, no model run)."""
    if Path(path).suffix.lower() != ".parquet":
        return False
    import pyarrow.parquet as pq

    try:
        names = set(pq.read_schema(path).names)
    except Exception:  # pyarrow raises several types; read_ads reports an unreadable file properly
        return False
    return {"skill_ids", "skill_labels"} <= names


def insight_choices(path: str | Path | None) -> dict[str, Any]:
    """The columns of an uploaded file: the text and title guesses, the groupings and a date-column guess."""
    if path is None:
        return {"columns": [], "text": None, "title": NO_COLUMN, "groupings": [], "date": NO_COLUMN, "annotated": False}
    if is_batch_output(path):
        import pyarrow.parquet as pq

        columns = [c for c in pq.read_schema(path).names if not c.startswith("skill")]
        text = title = None
        annotated = True
    else:
        choices = column_choices(path)
        columns, text, title, annotated = choices["columns"], choices["text"], choices["title"], False
    kept = [c for c in columns if c not in (text, "id", "row", "source") and not c.startswith("occupation")]
    return {
        "columns": columns,
        "text": text,
        "title": title,
        "groupings": [*kept, *DERIVED_GROUPINGS],
        "date": guess_column(columns, DATE_COLUMNS) or NO_COLUMN,
        "annotated": annotated,
    }


def ads_with_skills(
    contextmatch,
    jobbert,
    path: str | Path,
    text_column: str | None,
    title_column: str | None,
    folder: Path,
    threshold: float | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[Path, int]:
    """The uploaded ads as a Parquet table with their skills, occupation and every other input column (kept as
    text), and how many rows could not be analysed (left out); a batch output is taken as it is."""
    if is_batch_output(path):
        return Path(path), 0
    if not text_column:
        raise InputError("Choose the column that holds the text of the ads.")
    title_column = None if title_column in (None, "", NO_COLUMN) else title_column
    table = read_ads(path)
    rows = annotate_ads(contextmatch, jobbert, table, text_column, title_column, progress=progress)
    kept, left_out = [], 0
    for source, row in zip(table.rows, rows, strict=True):
        if row["problem"] and not row["problem"].startswith("only the first"):
            left_out += 1  # unreadable or empty: not an ad
            continue
        record = {key: value for key, value in source.items() if key != text_column}
        record |= {"skill_labels": row["skills"], "skill_ids": row["skill_ids"]}
        record |= {"occupation": row.get("occupation") or None, "occupation_id": row.get("occupation_id") or None}
        kept.append(record)
    if not kept:
        raise InputError("No row of the file has an ad to analyse: check the text column.")
    output = folder / "ads.skills.parquet"
    pd.DataFrame(kept).to_parquet(output, index=False)
    return output, left_out


def run_insights(
    contextmatch,
    jobbert,
    path: str | Path | None,
    text_column: str | None,
    title_column: str | None,
    group_by: Sequence[str],
    date_column: str | None,
    min_ads: int,
    esco_files: Sequence[str | Path] | None,
    folder: str | Path,
    threshold: float | None = None,
    progress: Callable[[float, str], None] | None = None,
) -> dict[str, Any]:
    """The whole Market insights tab: annotate the ads (unless they are a batch output), then ``analyze`` them."""
    if not path:
        raise InputError("Upload job ads (CSV, JSONL, Parquet) or the Parquet output of labor-encoders batch first.")
    insights = insights_module()
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    date_column = None if date_column in (None, "", NO_COLUMN) else date_column
    say = progress or (lambda fraction, text: None)

    def annotated(done: int, total: int) -> None:
        say(0.7 * done / total, f"Annotating ads ({done:,} of {total:,})")

    table, left_out = ads_with_skills(contextmatch, jobbert, path, text_column, title_column, folder, threshold,
                                      annotated)  # fmt: skip
    try:
        esco = insights.load_esco(esco_files) if esco_files else None
        result = insights.analyze(
            [table], folder / "insights", by=list(group_by or []), date_column=date_column, esco=esco,
            min_ads=int(min_ads), progress=lambda fraction, text: say(0.7 + 0.3 * fraction, text.capitalize()),
        )  # fmt: skip
    except (insights.AnalysisError, insights.EscoError) as error:
        raise InputError(str(error)) from None
    archive = shutil.make_archive(str(folder / "insight-tables"), "zip", result.output / "tables")
    summary = result.summary
    lines = [f"**{summary['ads']:,} ads** analysed in {summary['seconds']:.1f} s; {len(summary['tables'])} tables."]
    if left_out:
        lines.append(f"{left_out:,} rows had no readable ad and were left out.")
    lines += [f"- {note}" for note in summary["notes"]]
    lines += [f"- not computed: **{name}**: {reason}" for name, reason in summary["skipped"].items()]
    top = result.query(
        'SELECT skill, ads, round(100 * share, 1) AS "% of ads" FROM skill_demand ORDER BY ads DESC, skill LIMIT 20'
    )
    return {
        "summary": "\n".join(lines),
        "charts": [(str(chart), name.replace("_", " ")) for name, chart in result.charts.items()],
        "top": top,
        "files": [str(result.report), archive],
        "result": result,
    }


# ---------------------------------------------------------------------------------------------------------------
# The page
# ---------------------------------------------------------------------------------------------------------------


def _page_errors(function: Callable) -> Callable:
    """Show an InputError in the page (a red toast) instead of a generic 'Error'."""

    @functools.wraps(function)  # keeps the signature, where gradio looks for a gr.Progress argument
    def wrapped(*args, **kwargs):
        try:
            return function(*args, **kwargs)
        except InputError as error:
            raise gr.Error(str(error)) from None

    return wrapped


def queue_limits(
    max_queue: int | None = None, concurrency: str | dict[str, int] | None = None
) -> dict[str, tuple[int, int]]:
    """:data:`QUEUE_LIMITS` with every group's waiting room set to ``max_queue`` and the runs at once of
    ``concurrency`` (``{"extract": 2}`` or the text ``"extract=2,batch=1"``); a bad value is an :class:`InputError`."""
    if isinstance(concurrency, str):
        pairs = [part.split("=", 1) for part in concurrency.replace(" ", "").split(",") if part]
        if any(len(pair) != 2 or not pair[1].isdigit() for pair in pairs):
            raise InputError(f"concurrency {concurrency!r}: write GROUP=N pairs, e.g. extract=2,batch=1")
        concurrency = {group: int(n) for group, n in pairs}
    limits = dict(QUEUE_LIMITS)
    for group, runs in (concurrency or {}).items():
        if group not in limits:
            raise InputError(f"no queue group {group!r}; the groups are {', '.join(limits)}")
        if runs < 1:
            raise InputError(f"{group}: at least 1 request must run at once")
        limits[group] = (runs, limits[group][1])
    if max_queue is not None:
        if max_queue < 1:
            raise InputError("the queue must hold at least 1 waiting request")
        limits = {group: (runs, max_queue) for group, (runs, _) in limits.items()}
    return limits


def waiting(demo: gr.Blocks, group: str) -> int:
    """Requests of ``group`` waiting in the demo's queue (not the running ones); 0 when gradio does not say."""
    queues = getattr(getattr(demo, "_queue", None), "event_queue_per_concurrency_id", None) or {}
    queue = queues.get(group)
    return len(getattr(queue, "queue", ())) if queue is not None else 0


def queue_guard(demo: gr.Blocks, group: str, max_waiting: int, inputs: int) -> Callable:
    """A gradio validator that turns a request away when ``max_waiting`` requests of ``group`` already wait: the
    message shows on the first input of the page, and an API client gets it as a ValidationError."""

    def guard(*args, **kwargs):
        if (count := waiting(demo, group)) >= max_waiting:
            message = f"This tab's queue is full ({count} requests waiting). Please try again in a minute."
            return [gr.validate(False, message)] + [gr.validate(True, "")] * (inputs - 1)
        return [gr.validate(True, "")] * inputs

    return guard


def _occupations_table(label: str, elem_id: str):
    """The occupations table of the Job titles tab (title or ad, occupation, score, matched label, id)."""
    return gr.Dataframe(
        label=label,
        interactive=False,
        wrap=True,
        datatype=["str", "number", "markdown", "number", "str"],
        column_widths=["22%", "7%", "36%", "9%", "26%"],
        elem_id=elem_id,
    )


def build_demo(
    contextmatch, jobbert, max_words: int = MAX_WORDS, limits: dict[str, tuple[int, int]] | None = None
) -> gr.Blocks:
    """The page around two loaded models: a ConTeXT-match model (``extract``) and a JobBERT model (``normalize``).

    Each tab's events run in their own queue group of ``limits`` (default :data:`QUEUE_LIMITS`), so a long batch
    run never holds up a title lookup, and a full group turns new requests away with a message.
    """
    limits = QUEUE_LIMITS if limits is None else limits
    tau = float(getattr(contextmatch.config, "threshold", 0.5))
    use_filter = bool(getattr(contextmatch.config, "redundancy_filter", True))
    skills_taxonomy = getattr(contextmatch.config, "taxonomy", "") or "the skill index"
    titles_taxonomy = getattr(jobbert.config, "taxonomy", "") or "the title index"
    output_folder = Path(tempfile.mkdtemp(prefix="labor-encoders-batch-"))

    @_page_errors
    def on_extract(text, threshold, top_k, redundancy_filter):
        found = extract_skills(contextmatch, text, threshold, int(top_k), redundancy_filter, max_words)
        return found["highlighted"], found["table"], found["chart"], found["notice"]

    @_page_errors
    def on_titles(text, top_k):
        return normalize_titles(jobbert, text, top_k)

    @_page_errors
    def on_ad_titles(text, top_k, threshold):
        result = occupations_from_ad(contextmatch, jobbert, text, top_k, threshold, max_words)
        return result["table"], result["notice"]

    def on_upload(path):
        try:  # a bad file is reported right here, beside the column choices
            choices = column_choices(path)
            note = f"{len(choices['columns'])} columns. Choose the text column (and a title column for occupations)."
        except InputError as error:
            choices, note = column_choices(None), f"⚠️ {error}"
        optional = [NO_COLUMN, *choices["columns"]]
        return (
            gr.Dropdown(choices=choices["columns"], value=choices["text"]),
            gr.Dropdown(choices=optional, value=choices["title"]),
            gr.Dropdown(choices=optional, value=choices["id"]),
            note if path else "",
        )

    @_page_errors
    def on_batch(path, text_column, title_column, id_column, file_format, threshold, progress=gr.Progress()):  # noqa: B008
        progress(0, desc="Reading the file")
        remove_old_runs(output_folder, KEEP_FILES_S)

        def report(done: int, total: int) -> None:
            progress((done, total), desc="Annotating ads", unit="ads")

        result = run_batch(
            contextmatch,
            jobbert,
            path,
            text_column,
            title_column,
            id_column,
            file_format,
            tempfile.mkdtemp(dir=output_folder),  # one folder per run: same-named uploads never collide
            threshold,
            report,
        )
        return str(result["file"]), result["skills_chart"], result["occupations_chart"], result["summary"]

    def on_insights_upload(path):
        try:
            choices = insight_choices(path)
            note = (
                "A batch output: its skills are analysed as they are."
                if choices["annotated"]
                else f"{len(choices['columns'])} columns. Choose the text column; a title column gives occupations."
            )
        except InputError as error:
            choices, note = insight_choices(None), f"⚠️ {error}"
        optional = [NO_COLUMN, *choices["columns"]]
        return (
            gr.Dropdown(choices=choices["columns"], value=choices["text"], interactive=not choices["annotated"]),
            gr.Dropdown(choices=optional, value=choices["title"], interactive=not choices["annotated"]),
            gr.Dropdown(choices=choices["groupings"], value=[]),
            gr.Dropdown(choices=optional, value=choices["date"]),
            note if path else "",
        )

    @_page_errors
    def on_insights(path, text_column, title_column, group_by, date_column, min_ads, esco_files, threshold,
                    progress=gr.Progress()):  # noqa: B008  # fmt: skip
        progress(0, desc="Reading the file")
        remove_old_runs(output_folder, KEEP_FILES_S)
        result = run_insights(
            contextmatch, jobbert, path, text_column, title_column, group_by, date_column, min_ads, esco_files,
            tempfile.mkdtemp(dir=output_folder), threshold, lambda fraction, text: progress(fraction, desc=text),
        )  # fmt: skip
        return result["summary"], result["charts"], result["top"], result["files"]

    examples = [[path.read_text(encoding="utf-8")] for path in EXAMPLES.values()]
    # Uploaded ads and results are deleted from the server after about an hour (job ads can be confidential).
    with gr.Blocks(title="Skills and occupations from job ads", delete_cache=(KEEP_FILES_S // 2, KEEP_FILES_S)) as demo:

        def queued(group: str, inputs: Sequence) -> dict[str, Any]:
            """The queue options of an event of ``group``: its runs at once and its bounded waiting room."""
            runs, max_waiting = limits[group]
            guard = queue_guard(demo, group, max_waiting, len(inputs))
            return {"concurrency_id": group, "concurrency_limit": runs, "validator": guard, "show_progress": "full"}

        gr.Markdown(
            "# Skills and occupations from job ads\n"
            f"**ConTeXT-match** finds the skills of a job ad ({skills_taxonomy}) and shows the words that triggered"
            f" each one; **JobBERT V2** maps job titles onto occupations ({titles_taxonomy}). English text only."
        )
        with gr.Tab("Skill extraction", id="extract"):
            with gr.Row():
                with gr.Column(scale=3):
                    ad = gr.Textbox(
                        label="Job ad", lines=12, max_lines=24, placeholder="Paste a job ad here", elem_id="ad"
                    )
                    gr.Examples(examples, inputs=[ad], example_labels=list(EXAMPLES), cache_examples=False)
                with gr.Column(scale=1, min_width=240):
                    threshold = gr.Slider(
                        0,
                        1,
                        value=tau,
                        step=0.01,
                        label="Threshold τ",
                        info="Minimum match score; the default is the model's calibrated τ.",
                    )
                    redundancy = gr.Checkbox(
                        value=use_filter,
                        label="Redundancy filter",
                        info="Keep a skill only when it wins at least one word.",
                    )
                    top_k = gr.Slider(1, 100, value=30, step=1, label="Top-k skills")
                    extract_button = gr.Button("Extract skills", variant="primary", elem_id="extract-button")
            notice = gr.Markdown(elem_id="notice")
            highlighted = gr.HighlightedText(
                label="Evidence: the words that triggered each skill",
                elem_id="evidence",
                show_legend=False,
                combine_adjacent=False,
            )
            with gr.Row():
                table = gr.Dataframe(
                    label="Skills",
                    datatype=["markdown", "number", "str"],
                    wrap=True,
                    column_widths=["35%", "10%", "55%"],
                    interactive=False,
                    elem_id="skills-table",
                    scale=3,
                )
                chart = gr.Plot(label="Skills found", show_label=False, format="png", scale=2)
        with gr.Tab("Job titles", id="titles"):
            with gr.Row():
                with gr.Column(scale=3):
                    titles = gr.Textbox(
                        label="Job titles, one a line",
                        lines=6,
                        elem_id="titles",
                        value="senior data engineer\nregistered nurse\nsous chef",
                    )
                with gr.Column(scale=1, min_width=240):
                    title_top_k = gr.Slider(1, 20, value=5, step=1, label="Occupations per title")
                    titles_button = gr.Button("Find occupations", variant="primary", elem_id="titles-button")
            occupations = _occupations_table("Closest occupations", "titles-table")
            gr.Markdown(
                "**From an ad's skills.** Paste a job ad: ConTeXT-match extracts its skills, and JobBERT's skills"
                " head ranks the occupations by how well their titles fit that skill list."
            )
            with gr.Row():
                with gr.Column(scale=3):
                    ad_for_titles = gr.Textbox(label="Job ad", lines=6, elem_id="ad-for-titles")
                with gr.Column(scale=1, min_width=240):
                    ad_top_k = gr.Slider(1, 20, value=5, step=1, label="Occupations")
                    ad_threshold = gr.Slider(0, 1, value=tau, step=0.01, label="Skill threshold τ")
                    ad_titles_button = gr.Button("Occupations from the ad", elem_id="ad-titles-button")
            ad_titles_notice = gr.Markdown(elem_id="ad-titles-notice")
            ad_occupations = _occupations_table("Closest occupations by the ad's skills", "ad-titles-table")
        with gr.Tab("Batch", id="batch"):
            gr.Markdown(
                "Upload job ads as CSV, TSV, JSONL, JSON or Parquet"
                f" (up to {MAX_BATCH_ADS:,} ads and {MAX_FILE_MB} MB)."
                " You get one row per ad: its skills (at the threshold set on the Skill extraction tab) and, with a"
                " title column, the closest occupation. Files are deleted from the server after about an hour."
            )
            with gr.Row():
                upload = gr.File(label="Job ads", file_types=list(AD_FORMATS), elem_id="upload", scale=2)
                with gr.Column(scale=2):
                    # custom values let API clients name a column without uploading first; run_batch checks them
                    text_column = gr.Dropdown(
                        label="Text column", choices=[], allow_custom_value=True, elem_id="text-column"
                    )
                    title_column = gr.Dropdown(
                        label="Title column", choices=[NO_COLUMN], value=NO_COLUMN, allow_custom_value=True
                    )
                    id_column = gr.Dropdown(
                        label="Id column", choices=[NO_COLUMN], value=NO_COLUMN, allow_custom_value=True
                    )
                with gr.Column(scale=1, min_width=200):
                    file_format = gr.Radio(["csv", "parquet"], value="csv", label="Output format")
                    batch_button = gr.Button("Annotate the file", variant="primary", elem_id="batch-button")
            columns_note = gr.Markdown(elem_id="columns-note")
            summary = gr.Markdown(elem_id="batch-summary")
            download = gr.File(label="Download the results", elem_id="download", height=120)
            with gr.Row():
                skills_chart = gr.Plot(label="Most frequent skills", show_label=False, format="png")
                occupations_chart = gr.Plot(label="Most frequent occupations", show_label=False, format="png")
        with gr.Tab("Market insights", id="insights"):
            gr.Markdown(
                "Which skills are asked for, for which jobs, where and when. Upload job ads (up to"
                f" {MAX_BATCH_ADS:,}; they are annotated first) or the Parquet output of `labor-encoders batch`, pick"
                " the columns to group by (a region, a date's month or quarter, the occupation, its ISCO group), and"
                " get the share of ads asking for each skill, the movers between the first and last month, and, with"
                " the official ESCO download, skill groups, the green/digital/transversal/language collections and"
                " each occupation's skills beside ESCO's. Groups with fewer ads than the minimum are left out."
            )
            with gr.Row():
                with gr.Column(scale=2):
                    insights_upload = gr.File(
                        label="Job ads or a batch output", file_types=list(AD_FORMATS), elem_id="insights-upload"
                    )
                    esco_upload = gr.File(
                        label="ESCO CSV download (optional): the classification and relations zips",
                        file_count="multiple",
                        file_types=[".zip", ".csv"],
                    )
                    insights_note = gr.Markdown(elem_id="insights-note")
                with gr.Column(scale=2):
                    insights_text = gr.Dropdown(label="Text column", choices=[], allow_custom_value=True)
                    insights_title = gr.Dropdown(
                        label="Title column", choices=[NO_COLUMN], value=NO_COLUMN, allow_custom_value=True
                    )
                    group_by = gr.Dropdown(
                        label="Group by", choices=[], multiselect=True, allow_custom_value=True, elem_id="group-by"
                    )
                    date_column = gr.Dropdown(
                        label="Date column", choices=[NO_COLUMN], value=NO_COLUMN, allow_custom_value=True
                    )
                    with gr.Row():
                        min_ads = gr.Number(value=30, precision=0, minimum=1, label="Minimum ads per group")
                        insights_button = gr.Button("Analyse", variant="primary", elem_id="insights-button")
            insights_summary = gr.Markdown(elem_id="insights-summary")
            insights_charts = gr.Gallery(label="Charts", columns=2, height="auto", elem_id="insights-charts")
            with gr.Row():
                insights_top = gr.Dataframe(label="Most demanded skills", interactive=False, scale=2)
                insights_files = gr.File(label="The report (HTML) and the tables (zip)", file_count="multiple", scale=1)

        extract_inputs = [ad, threshold, top_k, redundancy]
        outputs = [highlighted, table, chart, notice]
        extract_button.click(
            on_extract, extract_inputs, outputs, api_name="extract", **queued("extract", extract_inputs)
        )
        titles_inputs = [titles, title_top_k]
        titles_button.click(
            on_titles, titles_inputs, [occupations], api_name="normalize", **queued("titles", titles_inputs)
        )
        ad_titles_inputs = [ad_for_titles, ad_top_k, ad_threshold]
        ad_titles_button.click(
            on_ad_titles,
            ad_titles_inputs,
            [ad_occupations, ad_titles_notice],
            api_name="ad_occupations",
            **queued("ad_titles", ad_titles_inputs),
        )
        outputs = [text_column, title_column, id_column, columns_note]
        upload.upload(on_upload, [upload], outputs, api_name="columns", **queued("columns", [upload]))
        batch_inputs = [upload, text_column, title_column, id_column, file_format, threshold]
        outputs = [download, skills_chart, occupations_chart, summary]
        batch_button.click(on_batch, batch_inputs, outputs, api_name="batch", **queued("batch", batch_inputs))
        outputs = [insights_text, insights_title, group_by, date_column, insights_note]
        insights_upload.upload(
            on_insights_upload,
            [insights_upload],
            outputs,
            api_name="insight_columns",
            **queued("columns", [insights_upload]),
        )
        insights_inputs = [insights_upload, insights_text, insights_title, group_by, date_column, min_ads]
        insights_inputs += [esco_upload, threshold]
        outputs = [insights_summary, insights_charts, insights_top, insights_files]
        insights_button.click(
            on_insights, insights_inputs, outputs, api_name="insights", **queued("insights", insights_inputs)
        )
    demo.queue(max_size=sum(max_waiting for _, max_waiting in limits.values()))  # the groups' rooms together
    return demo


LAUNCH_OPTIONS = {
    "css": CSS,
    "theme": gr.themes.Soft(primary_hue="orange"),  # its fonts ship with gradio: no web-font requests
    "max_file_size": f"{MAX_FILE_MB}mb",
}


MODEL_CODE = {  # model_type: the auto_map of a genuine folder (the code files the Space trusts to run)
    "contextmatch": {
        "AutoConfig": "configuration_contextmatch.ConTeXTMatchConfig",
        "AutoModel": "modeling_contextmatch.ConTeXTMatchModel",
    },
    "jobbert": {"AutoConfig": "configuration_jobbert.JobBERTConfig", "AutoModel": "modeling_jobbert.JobBERTModel"},
}


def check_model_config(name: str, model_type: str) -> None:
    """Refuse, before any of its code runs, a model whose ``config.json`` has another ``model_type`` or an
    ``auto_map`` naming other code than the model's own files (``trust_remote_code`` would run that code)."""
    from transformers.utils import cached_file

    try:
        config = json.loads(Path(cached_file(name, "config.json")).read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise SystemExit(f"cannot load the model {name!r}: no readable config.json ({error})") from None
    if config.get("model_type") != model_type:
        raise SystemExit(f"{name!r} holds a model of type {config.get('model_type')!r}, not {model_type!r}")
    for auto_class, target in (config.get("auto_map") or {}).items():
        repo, _, code = str(target).rpartition("--")
        if code != MODEL_CODE[model_type].get(auto_class) or repo not in ("", name):
            raise SystemExit(
                f"the config.json of {name!r} maps {auto_class} to {target!r}, not to the model's own code: refusing "
                "to run it; download the model again from its repository"
            )


def load_models(contextmatch_id: str | None = None, jobbert_id: str | None = None):
    """The two models by Hub repo id or folder, from the arguments or ``CONTEXTMATCH_MODEL`` / ``JOBBERT_MODEL``.

    Without either, the embedded default models of the ``labor-encoders`` package when it is installed.
    """
    contextmatch_id = contextmatch_id or os.environ.get("CONTEXTMATCH_MODEL")
    jobbert_id = jobbert_id or os.environ.get("JOBBERT_MODEL")
    if not (contextmatch_id and jobbert_id):
        try:
            from labor_encoders.build import resolve_model_dir
            from labor_encoders.jobbert import resolve_jobbert_dir
        except ImportError:
            raise SystemExit(
                "Set CONTEXTMATCH_MODEL and JOBBERT_MODEL to the model repositories (or folders) to serve,"
                " e.g. in the Space's settings under 'Variables'."
            ) from None
        contextmatch_id = contextmatch_id or str(resolve_model_dir(None))
        jobbert_id = jobbert_id or str(resolve_jobbert_dir(None))
    from transformers import AutoModel

    models = []
    for name, model_type in ((contextmatch_id, "contextmatch"), (jobbert_id, "jobbert")):
        check_model_config(name, model_type)
        try:
            models.append(AutoModel.from_pretrained(name, trust_remote_code=True).eval())
        except OSError as error:
            raise SystemExit(f"cannot load the model {name!r}: {error}") from None
    return tuple(models)


if __name__ == "__main__":
    max_queue = os.environ.get("DEMO_MAX_QUEUE")
    limits = queue_limits(int(max_queue) if max_queue else None, os.environ.get("DEMO_CONCURRENCY"))
    build_demo(*load_models(), limits=limits).launch(ssr_mode=False, **LAUNCH_OPTIONS)
