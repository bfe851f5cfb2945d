"""Corpus-scale runs: ``runner`` (one job: items in, Parquet/CSV parts and a rejects file out, exact resume),
``inputs`` (streaming readers of job ads and their per-record rejects) and ``ray_data`` (the same job on Ray Data
actors). ``labor-encoders batch`` drives them; docs/batch.md describes formats, resume and the output."""
