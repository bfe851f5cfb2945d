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


def load_tokenizer(name_or_path: str | os.PathLike, config: PretrainedConfig, extra: dict[str, Any], what: str):
    """The tokenizer saved beside a model's ``config.json`` (``config`` is passed on so no remote-code prompt shows)."""
    try:
        return AutoTokenizer.from_pretrained(name_or_path, config=config, **extra)
    except (OSError, ValueError) as error:
        raise OSError(
            f"no usable tokenizer in {name_or_path} ({error}); a {what} folder needs its tokenizer files beside "
            "config.json"
        ) from error


class LabelIndexMixin:
    """``save_pretrained``/``from_pretrained`` for a model that carries a label index (its vectors are a buffer in the
    weights, its labels and ids a JSON file beside them) and its tokenizer.

    A subclass names ``index_file``, the config attribute counting the rows (``index_rows``) and itself
    (``model_name``, for messages), and implements ``_index_state`` and ``_load_index_state``.
    """

    index_file: str
    index_rows: str
    model_name: str

    def _index_state(self) -> dict[str, Any]:
        raise NotImplementedError

    def _load_index_state(self, index: dict[str, Any]) -> None:
        raise NotImplementedError

    def save_pretrained(self, save_directory: str | os.PathLike, *args: Any, **kwargs: Any) -> None:
        """Save weights (with the index vectors), config, code, tokenizer and the index labels.

        The model and config classes are registered for ``AutoModel``/``AutoConfig`` first, so every save (and so
        ``push_to_hub``, which saves then uploads) writes the code files and ``auto_map`` a Hub user needs.
        """
        if type(self)._auto_class is None:
            type(self.config).register_for_auto_class()
            type(self).register_for_auto_class("AutoModel")
        super().save_pretrained(save_directory, *args, **kwargs)
        if not kwargs.get("is_main_process", True):
            return
        save_label_index(save_directory, self.index_file, self._index_state())
        if self.tokenizer is not None:
            self.tokenizer.save_pretrained(save_directory)

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str | os.PathLike, *args: Any, **kwargs: Any):
        """Load weights, tokenizer and index from a local folder or a Hub repository. A tampered or damaged folder
        raises ``OSError`` with the fix, before any text is processed: another ``model_type`` or an ``auto_map``
        naming other code in ``config.json``, corrupt or truncated weights, NaN or Inf in them, index vectors that
        do not fit the config, missing or inconsistent index files."""
        extra = hub_kwargs(kwargs)
        if kwargs.get("config") is None:
            config_dict, _ = cls.config_class.get_config_dict(pretrained_model_name_or_path, **extra)
            check_config_dict(config_dict, cls, pretrained_model_name_or_path)
        try:
            model = super().from_pretrained(pretrained_model_name_or_path, *args, **kwargs)
        except Exception as error:
            text = f"{type(error).__name__} {error}".lower()
            if "safetensor" in text:
                raise OSError(
                    f"the weights in {pretrained_model_name_or_path} are corrupt or truncated ({error}); download or "
                    "rebuild the model folder"
                ) from error
            if "mismatch" in text:
                raise OSError(
                    f"the weights in {pretrained_model_name_or_path} do not fit its config.json (a tensor of another "
                    "shape, e.g. index vectors of another count); the folder is inconsistent, rebuild it"
                ) from error
            raise
        check_finite(model, pretrained_model_name_or_path)
        rows = getattr(model.config, cls.index_rows)
        if rows:
            name = str(pretrained_model_name_or_path)
            model._load_index_state(load_label_index(name, cls.index_file, rows, ("labels", "ids"), extra))
        model.tokenizer = load_tokenizer(pretrained_model_name_or_path, model.config, extra, cls.model_name)
        return model


def check_config_dict(config: dict[str, Any], model_class: type, name: str | os.PathLike) -> None:
    """Refuse a ``config.json`` of another ``model_type``, or whose ``auto_map`` names code other than this model's
    own files (another repository's code would run where this model's is expected)."""
    config_class = model_class.config_class
    if config.get("model_type") != config_class.model_type:
        raise OSError(
            f"{name} holds a model of type {config.get('model_type')!r}, not {config_class.model_type!r}: load it "
            "with its own class, or check that config.json was not edited"
        )
    own = {
        "AutoConfig": f"{config_class.__module__.rsplit('.', 1)[-1]}.{config_class.__name__}",
        "AutoModel": f"{model_class.__module__.rsplit('.', 1)[-1]}.{model_class.__name__}",
    }
    for auto_class, target in (config.get("auto_map") or {}).items():
        repo, _, code = str(target).rpartition("--")  # "org/name--module.Class": code of a repository
        if code != own.get(auto_class) or repo not in ("", str(name)):
            raise OSError(
                f"config.json of {name} maps {auto_class} to {target!r}, not to this model's own code "
                f"({own.get(auto_class, 'no such entry')}); the folder was edited or is not what it claims to be: "
                "download it again from its repository or rebuild it"
            )


def check_finite(model: nn.Module, name: str | os.PathLike) -> None:
    """Refuse weights (or index vectors) holding NaN or Inf: they would turn every score into NaN. One pass."""
    for tensor_name, tensor in [*model.named_parameters(), *model.named_buffers()]:
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise OSError(
                f"the weights in {name} hold NaN or Inf values (in {tensor_name}); download or rebuild the model folder"
            )


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
