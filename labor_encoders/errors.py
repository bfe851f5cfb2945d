"""The one base class of the errors a user can fix: bad input, a missing asset, a locked output folder.

Every module raises its own subclass (``TaxonomyError``, ``BatchError``, ``DataError``, ...) with a message that says
what is wrong and how to fix it; ``labor-encoders`` prints any of them as ``error: ...`` and exits with status 2,
and Python callers can catch them all at once:

    >>> from labor_encoders.taxonomy import TaxonomyError
    >>> issubclass(TaxonomyError, LaborEncodersError) and issubclass(TaxonomyError, ValueError)
    True

The web demo (``space/app.py``) keeps its own ``InputError``: the Space runs on the Hub without this package.
"""

from __future__ import annotations


class LaborEncodersError(ValueError):
    """Bad input or state that the message tells the user how to fix (a ``ValueError``, as before)."""


class ExportError(LaborEncodersError):
    """An export that cannot be done or that does not reproduce PyTorch, with the reason (``onnx_export``,
    ``int8_split``)."""
