"""Time and peak memory of ``labor-encoders analyze`` over a synthetic batch output of millions of ads.

The synthetic output has the batch output's columns that the analyses read (``skill_ids``, ``skill_labels``,
``occupation``, ``occupation_id``) with real ESCO skill and occupation URIs, plus ``region`` and ``date_posted``
kept columns: each ad asks for 5 to 34 skills drawn with a skewed (Zipf-like) popularity, has one of 400
occupations, one of 12 regions and a date in 2020. DuckDB writes it in parts, as ``labor-encoders batch`` does,
with a ``state.json`` that marks the run complete.

    python -m labor_encoders.evaluation.benchmark_analyze --ads 10000000 --esco ../shared/data/esco-official \\
        --work /tmp/bench-analyze

prints one JSON object: sizes of the input, wall seconds, CPU seconds and peak RSS of the analysis (a separate
process, measured by the kernel), and the size of the report. A second run with the same ``--ads`` and ``--work``
reuses the synthetic input.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

REGIONS = [
    "London", "South East", "South West", "East", "West Midlands", "East Midlands", "North West", "North East",
    "Yorkshire", "Wales", "Scotland", "Northern Ireland",
]  # fmt: skip


def write_synthetic_output(folder: Path, ads: int, esco, part_size: int = 1_000_000, seed: int = 0) -> dict:
    """A complete batch output of ``ads`` synthetic ads in ``folder`` (see the module docstring); returns sizes."""
    import duckdb

    from labor_encoders.batch.runner import STATE_VERSION

    (folder / "parquet").mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    con.execute(f"SELECT setseed({(seed % 1000) / 1000})").fetchall()
    skills = esco.skills.sample(frac=1.0, random_state=seed).reset_index(drop=True)
    occupations = esco.occupations.sample(n=400, random_state=seed).reset_index(drop=True)
    con.register("skills_df", skills)
    con.register("occupations_df", occupations)
    con.execute("CREATE TABLE skill AS SELECT row_number() OVER () - 1 AS i, skill_id, skill FROM skills_df")
    con.execute(
        "CREATE TABLE occ AS SELECT row_number() OVER () - 1 AS i, occupation_id, esco_occupation FROM occupations_df"
    )
    regions = "[" + ", ".join(f"'{r}'" for r in REGIONS) + "]"
    parts = []
    for part, start in enumerate(range(0, ads, part_size)):
        rows = min(part_size, ads - start)
        path = folder / "parquet" / f"part-{part:05d}.parquet"
        con.execute(
            f"""
            COPY (
                WITH ads AS (
                    SELECT {start} + range AS n, 5 + CAST(floor(random() * 30) AS INTEGER) AS k,
                           CAST(floor(pow(random(), 2) * 400) AS INTEGER) AS o,
                           {regions}[1 + CAST(floor(random() * 12) AS INTEGER)] AS region,
                           DATE '2020-01-01' + CAST(floor(random() * 366) AS INTEGER) AS day
                    FROM range({rows})
                ),
                picks AS (
                    SELECT DISTINCT n, CAST(floor(pow(random(), 3) * {len(skills)}) AS INTEGER) AS i
                    FROM ads, range(k)
                ),
                lists AS (
                    SELECT n, list(skill.skill ORDER BY picks.i) AS skill_labels,
                           list(skill.skill_id ORDER BY picks.i) AS skill_ids
                    FROM picks JOIN skill USING (i) GROUP BY n
                )
                SELECT CAST(n AS VARCHAR) AS id, 'synthetic.parquet' AS source, n + 1 AS row,
                       occ.esco_occupation AS title, skill_labels, skill_ids,
                       occ.esco_occupation AS occupation, occ.occupation_id, 0.9 AS occupation_score,
                       region, strftime(day, '%d/%m/%Y') AS date_posted
                FROM ads JOIN lists USING (n) JOIN occ ON occ.i = ads.o
                ORDER BY n
            ) TO '{path}' (FORMAT parquet)
            """
        )
        parts.append(path.stem)
    skill_rows = con.execute(
        f"SELECT sum(len(skill_ids)) FROM read_parquet('{folder / 'parquet'}/*.parquet')"
    ).fetchone()[0]
    state = {"version": STATE_VERSION, "parts": parts, "ads": ads, "rejected": 0, "complete": True}
    state |= {"records": ads, "position": {"file": 0, "row": ads}, "rejects_bytes": 0, "signature": {}}
    (folder / "state.json").write_text(json.dumps(state, indent=2) + "\n")
    size = sum(p.stat().st_size for p in (folder / "parquet").glob("*.parquet"))
    return {"ads": ads, "skill_rows": int(skill_rows), "parts": len(parts), "parquet_bytes": size}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ads", type=int, default=10_000_000)
    parser.add_argument("--esco", nargs="+", required=True, help="the ESCO CSV download (zips or folder)")
    parser.add_argument("--work", type=Path, required=True, help="a folder for the synthetic input and the output")
    parser.add_argument("--memory-limit", help="DuckDB memory limit for the analysis (e.g. 4GB)")
    args = parser.parse_args(argv)

    from labor_encoders.insights import load_esco

    data = args.work / "batch"
    started = time.perf_counter()
    state = data / "state.json"
    if state.is_file() and json.loads(state.read_text()).get("ads") == args.ads:  # made by an earlier run
        sizes = {"ads": args.ads, "reused_input": True}
    else:
        shutil.rmtree(data, ignore_errors=True)
        sizes = write_synthetic_output(data, args.ads, load_esco(args.esco))
    made = time.perf_counter() - started
    command = [sys.executable, "-m", "labor_encoders.cli", "analyze", str(data), "--output", str(args.work / "out")]
    command += ["--by", "region", "--by", "quarter", "--by", "isco1", "--date-column", "date_posted"]
    command += ["--esco", *args.esco] + (["--memory-limit", args.memory_limit] if args.memory_limit else [])
    started = time.perf_counter()
    subprocess.run(command, check=True)
    seconds = time.perf_counter() - started
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)  # the analysis process (the only child)
    peak = usage.ru_maxrss / 1024  # KiB on Linux
    report = (args.work / "out" / "report.html").stat().st_size
    result = sizes | {"seconds_to_make_input": round(made, 1), "analyze_seconds": round(seconds, 1)}
    result |= {"analyze_cpu_seconds": round(usage.ru_utime + usage.ru_stime, 1), "analyze_peak_rss_mb": round(peak)}
    result |= {"report_bytes": report, "command": " ".join(command[1:])}
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
