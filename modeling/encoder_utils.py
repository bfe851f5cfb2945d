"""Pieces shared by the ConTeXT-match and JobBERT model files: pooling, encoder construction, tokenizer and label
index loading, length-bucketed batching.

This file is copied verbatim into every model repository on the Hugging Face Hub beside ``modeling_*.py``: it imports
only ``torch``, ``transformers`` and the standard library.
"""

from __future__ import annotations

import inspect
import json
import os
from collections.abc import Iterator, Sequence
from typing import Any

import torch
from torch import nn
from transformers import AutoModel, AutoTokenizer, PretrainedConfig
from transformers.utils import cached_file

HUB_KWARGS = ("cache_dir", "force_download", "local_files_only", "token", "revision", "subfolder", "proxies")
_EPS = 1e-8


def mean_pool(token_embeddings: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Average of the token vectors where ``mask`` is true: (B, L, H), (B, L) -> (B, H).

    >>> mean_pool(torch.tensor([[[1.0, 0.0], [3.0, 2.0], [9.0, 9.0]]]), torch.tensor([[1, 1, 0]]))
    tensor([[2., 1.]])
    """
    weights = mask.to(token_embeddings.dtype).unsqueeze(-1)
    return (token_embeddings * weights).sum(1) / weights.sum(1).clamp_min(_EPS)


def build_encoder(encoder_config: PretrainedConfig) -> nn.Module:
    """A randomly initialised ``AutoModel`` encoder for ``encoder_config``, without a pooling head where it has one."""
    encoder_class = AutoModel._model_mapping[type(encoder_config)]
    parameters = inspect.signature(encoder_class.__init__).parameters
    kwargs = {"add_pooling_layer": False} if "add_pooling_layer" in parameters else {}
    return AutoModel.from_config(encoder_config, **kwargs)


def hub_kwargs(kwargs: dict[str, Any]) -> dict[str, Any]:
    """The ``from_pretrained`` keyword arguments that also apply to the extra files of a model folder."""
    return {k: kwargs[k] for k in HUB_KWARGS if k in kwargs}


def load_weights(cls: type, name_or_path: str | os.PathLike, *args: Any, **kwargs: Any):
    """``PreTrainedModel.from_pretrained`` of ``cls``'s parent, with corrupt weights reported as an ``OSError``."""
    try:
        return super(cls, cls).from_pretrained(name_or_path, *args, **kwargs)
    except Exception as error:
        if "safetensor" in f"{type(error).__name__} {error}".lower():
            raise OSError(
                f"the weights in {name_or_path} are corrupt or truncated ({error}); download or rebuild the model "
                "folder"
            ) from error
        raise


def load_tokenizer(name_or_path: str | os.PathLike, config: PretrainedConfig, extra: dict[str, Any], what: str):
    """The tokenizer saved beside a model's ``config.json`` (``config`` is passed on so no remote-code prompt shows)."""
    try:
        return AutoTokenizer.from_pretrained(name_or_path, config=config, **extra)
    except (OSError, ValueError) as error:
        raise OSError(
            f"no usable tokenizer in {name_or_path} ({error}); a {what} folder needs its tokenizer files beside "
            "config.json"
        ) from error


def save_label_index(folder: str | os.PathLike, filename: str, index: dict[str, Any]) -> None:
    """Write the labels (and ids) of a vector index as JSON beside the weights that hold its vectors."""
    with open(os.path.join(folder, filename), "w", encoding="utf-8") as f:
        json.dump({"format": 1, **index}, f, ensure_ascii=False)


def load_label_index(
    name_or_path: str, filename: str, rows: int, keys: Sequence[str], extra: dict[str, Any]
) -> dict[str, Any]:
    """Read a label index written by :func:`save_label_index`, checking that each of ``keys`` lists ``rows`` items."""
    path = cached_file(name_or_path, filename, _raise_exceptions_for_missing_entries=False, **extra)
    if path is None:
        raise OSError(
            f"{name_or_path} has {rows} index vectors but no {filename} with their labels; copy that file back or "
            "rebuild the index"
        )
    try:
        with open(path, encoding="utf-8") as f:
            index = json.load(f)
        lengths = {key: len(index[key]) for key in keys}
    except (ValueError, KeyError, TypeError) as error:
        raise OSError(
            f"{filename} in {name_or_path} is corrupt ({error}); download the folder again or rebuild its index"
        ) from error
    if any(length != rows for length in lengths.values()):
        raise OSError(
            f"{filename} lists {max(lengths.values())} entries, the weights hold {rows} vectors; the folder is "
            "inconsistent, rebuild its index"
        )
    return index


def length_buckets(lengths: list[int], batch_size: int, growth: float = 1.3) -> Iterator[list[int]]:
    """Indices in batches of similar length (shortest first): a batch closes when full or when the next item is
    more than ``growth`` times longer than its first, so padding stays small.

    >>> list(length_buckets([5, 50, 6, 7, 40, 5], batch_size=3))
    [[0, 5, 2], [3], [4, 1]]
    """
    batch: list[int] = []
    for i in sorted(range(len(lengths)), key=lengths.__getitem__):
        if batch and (len(batch) == batch_size or lengths[i] > growth * lengths[batch[0]] + 2):
            yield batch
            batch = []
        batch.append(i)
    if batch:
        yield batch


def require_fast_tokenizer(tokenizer: Any, why: str):
    """``tokenizer`` itself, or a ``RuntimeError`` that says how to attach one."""
    if tokenizer is None:
        raise RuntimeError(
            "this model has no tokenizer: load it with from_pretrained, or set model.tokenizer = "
            "AutoTokenizer.from_pretrained(...)"
        )
    if not getattr(tokenizer, "is_fast", False):
        raise RuntimeError(f"a fast (Rust) tokenizer is needed {why}")
    return tokenizer
