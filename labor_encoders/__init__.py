"""labor-encoders: ConTeXT-match skill extraction and JobBERT V2 title embeddings.

The Hub model code lives in the flat ``modeling`` package; this package holds everything around it:
asset setup, taxonomy loading, model building and the ``labor-encoders`` command line.
"""

__version__ = "0.1.0"
