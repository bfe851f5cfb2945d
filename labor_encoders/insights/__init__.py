"""The insight layer: skill demand, movers, occupation profiles and ESCO roll-ups over the output of
``labor-encoders batch``, computed with DuckDB, written as tables, charts and one HTML report.

>>> from labor_encoders.insights import analyze, load_esco  # doctest: +SKIP
>>> result = analyze(["skills/"], "insights/", by=["region", "month"], date_column="date_posted",
...                  esco=load_esco(["ESCO dataset - v1.1.1 - classification - en - csv.zip"]))  # doctest: +SKIP
>>> result.tables["skill_demand_by_region"].head()  # doctest: +SKIP
"""

from .analyze import Analysis, analyze
from .esco import Esco, EscoError, load_esco
from .sources import AnalysisError

__all__ = ["Analysis", "AnalysisError", "Esco", "EscoError", "analyze", "load_esco"]
