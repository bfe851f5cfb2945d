"""The analyst's questions as DuckDB SQL, one function per question, each over two views that
:func:`labor_encoders.insights.analyze.analyze` creates:

- ``facts``: one row per ad: ``ad`` (a key), ``skill_ids``, ``skill_labels``, ``occupation_id``, ``occupation``
  and every grouping column (kept input columns, ``month``/``quarter``/``year`` from the date column, ``isco1`` ..
  ``isco4`` from the ESCO occupation); grouping values are text, a missing one is ``(missing)``;
- ``skill_rows``: one row per (ad, skill id) with the same grouping columns;
- ``skill_names``: each skill id's label.

A share is the fraction of a group's ads that ask for a skill (or for at least one skill of a group or collection),
with a 95 % Wilson score interval. Groups with fewer than ``min_ads`` ads are left out of every grouped table.
"""

from __future__ import annotations

import math

import pandas as pd

Z95 = 1.959963984540054
MACROS = f"""
CREATE OR REPLACE MACRO wilson_low(k, n) AS
    ((k / n + {Z95}^2 / (2 * n)) - {Z95} * sqrt((k / n) * (1 - k / n) / n + {Z95}^2 / (4 * n * n)))
    / (1 + {Z95}^2 / n);
CREATE OR REPLACE MACRO wilson_high(k, n) AS
    ((k / n + {Z95}^2 / (2 * n)) + {Z95} * sqrt((k / n) * (1 - k / n) / n + {Z95}^2 / (4 * n * n)))
    / (1 + {Z95}^2 / n);
"""


def quote(name: str) -> str:
    """A column name as a DuckDB identifier.

    >>> print(quote('date posted'), quote('a "b" c'))
    "date posted" "a ""b"" c"
    """
    return '"' + name.replace('"', '""') + '"'


def _cols(grouping: list[str]) -> str:
    return "".join(f"{quote(c)}, " for c in grouping)


def _groups(grouping: list[str], min_ads: int) -> str:
    """The groups of ``grouping`` with at least ``min_ads`` ads (all ads as one group when ``grouping`` is empty)."""
    return f"SELECT {_cols(grouping)}count(*) AS group_ads FROM facts GROUP BY ALL HAVING count(*) >= {int(min_ads)}"


def _join(grouping: list[str]) -> str:
    return f"USING ({', '.join(map(quote, grouping))})" if grouping else "ON TRUE"


def skill_demand(grouping: list[str], min_ads: int) -> str:
    """Which skills, how often: the share of ads asking for each skill, per group, best first."""
    cols = _cols(grouping)
    return f"""
    WITH groups AS ({_groups(grouping, min_ads)}),
    counts AS (
        SELECT {cols}skill_id, count(*) AS ads FROM skill_rows GROUP BY ALL
    )
    SELECT {cols}group_ads, skill_id, skill, ads, ads / group_ads AS share,
           wilson_low(ads, group_ads) AS ci_low, wilson_high(ads, group_ads) AS ci_high
    FROM counts JOIN groups {_join(grouping)} JOIN skill_names USING (skill_id)
    ORDER BY {cols}ads DESC, skill
    """


def group_sizes(grouping: list[str]) -> str:
    """Every group's number of ads, small ones included (to say which groups were left out)."""
    return f"SELECT {_cols(grouping)}count(*) AS ads FROM facts GROUP BY ALL ORDER BY ads DESC"


def rollup_demand(grouping: list[str], min_ads: int, table: str, key: list[str]) -> str:
    """The share of ads asking for at least one skill of each ``key`` (a skill group, a collection), per group."""
    cols, keys = _cols(grouping), ", ".join(key)
    return f"""
    WITH groups AS ({_groups(grouping, min_ads)}),
    counts AS (
        SELECT {cols}{keys}, count(DISTINCT ad) AS ads
        FROM skill_rows JOIN {table} USING (skill_id) GROUP BY ALL
    )
    SELECT {cols}group_ads, {keys}, ads, ads / group_ads AS share,
           wilson_low(ads, group_ads) AS ci_low, wilson_high(ads, group_ads) AS ci_high
    FROM counts JOIN groups {_join(grouping)}
    ORDER BY {cols}share DESC
    """


def two_sides(column: str, a: str, b: str) -> str:
    """Each skill's ads in group ``a`` and in group ``b`` of ``column``, with the two groups' sizes."""
    col = quote(column)
    return f"""
    WITH sizes AS (
        SELECT count(*) FILTER ({col} = $a) AS ads_a, count(*) FILTER ({col} = $b) AS ads_b FROM facts
    ),
    counts AS (
        SELECT skill_id, count(*) FILTER ({col} = $a) AS with_a, count(*) FILTER ({col} = $b) AS with_b
        FROM skill_rows WHERE {col} IN ($a, $b) GROUP BY skill_id
    )
    SELECT skill_id, skill, with_a, ads_a, with_b, ads_b FROM counts JOIN skill_names USING (skill_id), sizes
    """


def movers(counts: pd.DataFrame) -> pd.DataFrame:
    """Shares in the two groups, their change, and a two-sided two-proportion z-test with Benjamini-Hochberg
    q-values (false discovery rate over all skills compared), largest changes first.

    >>> t = pd.DataFrame({"skill_id": ["x", "y"], "skill": ["x", "y"], "with_a": [10, 50], "ads_a": [100, 100],
    ...                   "with_b": [40, 50], "ads_b": [100, 100]})
    >>> movers(t)[["skill", "change", "significant"]].to_dict("records")
    [{'skill': 'x', 'change': 0.3, 'significant': True}, {'skill': 'y', 'change': 0.0, 'significant': False}]
    """
    table = counts.copy()
    table["share_a"] = table["with_a"] / table["ads_a"]
    table["share_b"] = table["with_b"] / table["ads_b"]
    table["change"] = (table["share_b"] - table["share_a"]).round(12)
    pooled = (table["with_a"] + table["with_b"]) / (table["ads_a"] + table["ads_b"])
    se = (pooled * (1 - pooled) * (1 / table["ads_a"] + 1 / table["ads_b"])) ** 0.5
    table["z"] = (table["change"] / se).where(se > 0, 0.0)
    table["p_value"] = [math.erfc(abs(z) / math.sqrt(2)) for z in table["z"]]
    table["q_value"] = benjamini_hochberg(table["p_value"].tolist())
    table["significant"] = table["q_value"] < 0.05
    table = table.reindex(table["change"].abs().sort_values(ascending=False, kind="stable").index)
    return table.reset_index(drop=True)


def benjamini_hochberg(p_values: list[float]) -> list[float]:
    """Benjamini-Hochberg adjusted p-values (q-values), in the input order.

    >>> [round(q, 3) for q in benjamini_hochberg([0.01, 0.04, 0.03, 0.5])]
    [0.04, 0.053, 0.053, 0.5]
    """
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted, running = [0.0] * m, 1.0
    for rank in range(m, 0, -1):
        i = order[rank - 1]
        running = min(running, p_values[i] * m / rank)
        adjusted[i] = running
    return adjusted


def occupation_profiles(min_ads: int, with_relations: bool) -> str:
    """Each occupation's skills in the ads beside ESCO's essential and optional skills for it: ``esco_relation``
    is ``essential``, ``optional`` or ``not in ESCO`` (asked for beyond the taxonomy); ESCO's skills that no ad of
    the occupation asks for are listed with 0 ads."""
    occupations = f"""
        SELECT occupation_id, any_value(occupation) AS occupation, count(*) AS occupation_ads
        FROM facts WHERE occupation_id IS NOT NULL GROUP BY occupation_id HAVING count(*) >= {int(min_ads)}
    """
    market = """
        SELECT occupation_id, skill_id, skill, ads FROM (
            SELECT occupation_id, skill_id, count(*) AS ads FROM skill_rows
            WHERE occupation_id IN (SELECT occupation_id FROM occupations) GROUP BY ALL
        ) JOIN skill_names USING (skill_id)
    """
    if not with_relations:
        return f"""
        WITH occupations AS ({occupations}), market AS ({market})
        SELECT o.occupation_id, o.occupation, o.occupation_ads, m.skill_id, m.skill, m.ads,
               m.ads / o.occupation_ads AS share
        FROM market m JOIN occupations o USING (occupation_id)
        ORDER BY o.occupation_ads DESC, o.occupation, m.ads DESC
        """
    return f"""
    WITH occupations AS ({occupations}), market AS ({market}),
    esco AS (
        SELECT occupation_id, skill_id, min(relation) AS relation FROM esco_occupation_skills
        WHERE occupation_id IN (SELECT occupation_id FROM occupations) GROUP BY ALL
    )
    SELECT o.occupation_id, o.occupation, o.occupation_ads, skill_id,
           coalesce(m.skill, s.skill) AS skill, coalesce(m.ads, 0) AS ads,
           coalesce(m.ads, 0) / o.occupation_ads AS share, coalesce(e.relation, 'not in ESCO') AS esco_relation
    FROM market m FULL JOIN esco e USING (occupation_id, skill_id)
    JOIN occupations o USING (occupation_id)
    LEFT JOIN esco_skills s USING (skill_id)
    ORDER BY o.occupation_ads DESC, o.occupation, ads DESC, skill
    """


def beyond_taxonomy(per_occupation: int) -> str:
    """From ``occupation_profiles``: each occupation's most asked-for skills that ESCO does not list for it."""
    return f"""
    SELECT * EXCLUDE (rank) FROM (
        SELECT *, row_number() OVER (PARTITION BY occupation_id ORDER BY ads DESC, skill) AS rank
        FROM occupation_profiles WHERE esco_relation = 'not in ESCO'
    ) WHERE rank <= {int(per_occupation)}
    ORDER BY occupation_ads DESC, occupation, ads DESC, skill
    """


def rarely_mentioned_essentials(below: float) -> str:
    """From ``occupation_profiles``: ESCO's essential skills of an occupation that few of its ads ask for."""
    return f"""
    SELECT * FROM occupation_profiles WHERE esco_relation = 'essential' AND share < {float(below)}
    ORDER BY occupation_ads DESC, occupation, share, skill
    """
