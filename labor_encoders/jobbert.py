"""Build, convert and export JobBERT V2 model folders.

A JobBERT folder comes from one of two sentence-transformers layouts:

* a plain backbone (Transformer -> mean Pooling, e.g. all-mpnet-base-v2): the heads start as identities, so the
  untrained model ranks titles exactly like its backbone;
* the ``TechWolf/JobBERT-v2`` layout (Transformer -> mean Pooling -> ``2_Asym`` with one ``Dense`` per branch,
  keyed ``"anchor"`` for titles and ``"positive"`` for skill lists): the heads, their bias and activation are read
  from the Dense modules.

:func:`export_sentence_transformers` writes a folder in that same layout, which ``SentenceTransformer`` loads
(``model.encode(titles, task="anchor")``).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .build import (
    BuildError,
    copy_encoder_weights,
    ensure_default_model,
    load_backbone,
    load_model_folder,
    read_sentence_transformer,
    save_model,
    write_atomically,
)
from .taxonomy import Taxonomy

if TYPE_CHECKING:
    import torch

    from labor_encoders.modeling.modeling_jobbert import JobBERTModel

logger = logging.getLogger(__name__)

DEFAULT_JOBBERT_NAME = "jobbert-default"
BRANCHES = {"title": ("anchor", "query"), "skills": ("positive", "document")}
_ACTIVATIONS = {
    "torch.nn.modules.linear.Identity": "identity",
    "torch.nn.modules.activation.Tanh": "tanh",
    "torch.nn.modules.activation.ReLU": "relu",
    "torch.nn.modules.activation.GELU": "gelu",
    "torch.nn.modules.activation.Sigmoid": "sigmoid",
}
_ST_NAMES = {short: long for long, short in _ACTIVATIONS.items()}


@dataclass(frozen=True)
class DenseHead:
    """One ``Dense`` module of an Asym branch: weight (out, in), optional bias, activation short name."""

    weight: torch.Tensor
    bias: torch.Tensor | None
    activation: str


def read_asym_heads(folder: str | Path) -> dict[str, DenseHead] | None:
    """The title and skills heads of a JobBERT-v2 style folder, or None when it has no Asym/Router module."""
    folder = Path(folder)
    modules = json.loads((folder / "modules.json").read_text()) if (folder / "modules.json").is_file() else []
    routers = [m for m in modules if m["type"].rsplit(".", 1)[-1] in ("Asym", "Router")]
    if not routers:
        return None
    asym_dir = folder / routers[0]["path"]
    config_file = next((asym_dir / n for n in ("router_config.json", "config.json") if (asym_dir / n).is_file()), None)
    if config_file is None:
        raise BuildError(f"{asym_dir} has no config.json (nor router_config.json): the Asym module is incomplete")
    config = json.loads(config_file.read_text())
    structure, types = config.get("structure", {}), config.get("types", {})
    heads = {}
    for side, keys in BRANCHES.items():
        key = next((k for k in keys if k in structure), None)
        if key is None:
            raise BuildError(
                f"{asym_dir}: no {' or '.join(map(repr, keys))} branch for {side}s (branches: {sorted(structure)})"
            )
        module_ids = structure[key]
        kinds = [types.get(m, "").rsplit(".", 1)[-1] for m in module_ids]
        if kinds != ["Dense"]:
            raise BuildError(f"{asym_dir}: branch {key!r} holds {kinds}; JobBERT needs exactly one Dense module")
        heads[side] = _read_dense(asym_dir / module_ids[0])
    return heads


def _read_dense(folder: Path) -> DenseHead:
    import torch

    try:
        config = json.loads((folder / "config.json").read_text())
    except (OSError, ValueError) as error:
        raise BuildError(f"cannot read the Dense config in {folder} ({error})") from error
    if config.get("use_residual") or config.get("module_input_name", "sentence_embedding") != "sentence_embedding":
        raise BuildError(f"{folder}: a Dense with a residual or a custom input is not a JobBERT head ({config})")
    activation = _ACTIVATIONS.get(config.get("activation_function", "torch.nn.modules.activation.Tanh"))
    if activation is None:
        raise BuildError(f"{folder}: activation {config['activation_function']!r} is not supported")
    if (folder / "model.safetensors").is_file():
        from safetensors.torch import load_file

        state = load_file(folder / "model.safetensors")
    elif (folder / "pytorch_model.bin").is_file():
        state = torch.load(folder / "pytorch_model.bin", map_location="cpu", weights_only=True)
    else:
        raise BuildError(f"{folder} has no weights (model.safetensors or pytorch_model.bin)")
    weight = state.get("linear.weight")
    bias = state.get("linear.bias")
    if weight is None or tuple(weight.shape) != (config["out_features"], config["in_features"]):
        raise BuildError(f"{folder}: linear.weight is missing or does not match {config}")
    if bool(config.get("bias", True)) != (bias is not None):
        raise BuildError(f"{folder}: the config says bias={config.get('bias')} but the weights disagree")
    return DenseHead(weight=weight.float(), bias=None if bias is None else bias.float(), activation=activation)


def build_jobbert(
    backbone: str | Path,
    titles: Taxonomy | None = None,
    *,
    projection_dim: int = 1024,
    max_seq_length: int | None = None,
    batch_size: int = 64,
    heads: str | Path | None = None,
) -> JobBERTModel:
    """A JobBERT model from a sentence-transformers folder (a plain backbone or the JobBERT-v2 layout).

    A plain backbone gets identity heads (``projection_dim`` wide, ``trained=False``), or the trained heads of
    ``heads`` (a folder written by ``python -m labor_encoders.training.train_jobbert_heads``, checked against its
    record); a
    JobBERT-v2 folder keeps its heads (``trained=True``). ``titles`` (preferred and alternative labels per concept)
    becomes the title index, encoded with the final heads.
    """
    import torch

    from labor_encoders.modeling.configuration_jobbert import JobBERTConfig
    from labor_encoders.modeling.modeling_jobbert import JobBERTModel

    layout = read_sentence_transformer(backbone, allow=("Asym", "Router"))
    trained_heads = heads
    heads = read_asym_heads(backbone)
    if trained_heads is not None:
        if heads is not None:
            raise BuildError(f"{backbone} has its own heads; trained heads go on a plain backbone")
        projection_dim = int(read_heads_config(trained_heads).get("projection_dim", projection_dim))
    layout, encoder, tokenizer = load_backbone(backbone, layout)
    hidden = encoder.config.hidden_size
    if heads is not None:
        shapes = {tuple(head.weight.shape) for head in heads.values()}
        if len(shapes) != 1 or next(iter(shapes))[1] != hidden:
            raise BuildError(f"{backbone}: the heads' shapes {sorted(shapes)} do not fit a {hidden}-wide encoder")
        projection_dim = next(iter(shapes))[0]
    source = Path(backbone).name
    head_config: dict[str, Any] = {}
    if heads is not None:
        for side, head in heads.items():
            head_config[f"{side}_head_bias"] = head.bias is not None
            head_config[f"{side}_head_activation"] = head.activation
    config = JobBERTConfig(
        encoder_config=encoder.config.to_dict() | {"_name_or_path": source},
        projection_dim=projection_dim,
        max_seq_length=max_seq_length or layout.max_seq_length or min(tokenizer.model_max_length, 512),
        trained=heads is not None,
        name_or_path=source,
        **head_config,
    )
    model = JobBERTModel(config)
    copy_encoder_weights(encoder, model.encoder, backbone)
    if heads is not None:
        with torch.no_grad():
            for side, head in heads.items():
                linear = model.title_head if side == "title" else model.skills_head
                linear.weight.copy_(head.weight)
                if head.bias is not None:
                    linear.bias.copy_(head.bias)
    if trained_heads is not None:
        load_heads(model, trained_heads)
    model.tokenizer = tokenizer
    model.eval()
    if titles is not None:
        set_title_taxonomy(model, titles, batch_size=batch_size)
    return model


HEADS_FILE, HEADS_CONFIG = "heads.safetensors", "heads_config.json"
HEAD_TENSORS = ("title_head.weight", "title_head.bias", "skills_head.weight", "skills_head.bias")


def read_heads_config(folder: str | Path) -> dict[str, Any]:
    """The ``heads_config.json`` of a heads folder, after checking every file against its ``record.json``."""
    from .adapter import AdapterError, verify

    folder = Path(folder)
    verify(folder)
    try:
        return json.loads((folder / HEADS_CONFIG).read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise AdapterError(f"{folder}: cannot read {HEADS_CONFIG} ({error})") from None


def load_heads(model: JobBERTModel, folder: str | Path) -> dict[str, Any]:
    """Put the trained heads of ``folder`` on ``model`` (checked against the record first); returns the record.

    Strict: a missing or unexpected tensor, or a shape that does not fit the model, raises ``AdapterError``.
    """
    import torch
    from safetensors.torch import load_file

    from .adapter import AdapterError, read_record

    folder = Path(folder)
    config = read_heads_config(folder)
    state = load_file(folder / HEADS_FILE)
    if sorted(state) != sorted(HEAD_TENSORS):
        raise AdapterError(f"{folder / HEADS_FILE} holds {sorted(state)}; expected exactly {sorted(HEAD_TENSORS)}")
    for side in ("title", "skills"):
        linear = model.title_head if side == "title" else model.skills_head
        weight, bias = state[f"{side}_head.weight"], state[f"{side}_head.bias"]
        if tuple(weight.shape) != tuple(linear.weight.shape) or linear.bias is None:
            raise AdapterError(
                f"{folder}: the {side} head is {tuple(weight.shape)}, the model's {tuple(linear.weight.shape)}"
                f" (heads for a {config.get('hidden_size')}-wide {config.get('backbone')})"
            )
        if config.get(f"{side}_head_activation", "identity") != getattr(model.config, f"{side}_head_activation"):
            raise AdapterError(f"{folder}: the {side} head's activation differs from the model's")
        with torch.no_grad():
            linear.weight.copy_(weight)
            linear.bias.copy_(bias)
    model.config.trained = True
    return read_record(folder)


def load_esco_titles(path: str | Path) -> Taxonomy:
    """The occupations of an official ESCO download (a zip, a folder or its ``occupations_en.csv``) as a title
    taxonomy: preferred label, newline-separated alternative labels, concept URI and description, as ESCO ships
    them."""
    from .insights.esco import read_esco_table
    from .taxonomy import TaxonomyError

    table = read_esco_table([path], "occupations_en.csv")[0]
    missing = [c for c in ("preferredLabel", "conceptUri", "altLabels") if c not in table.columns]
    if missing:
        raise TaxonomyError(f"{path}: occupations_en.csv lacks the column(s) {', '.join(missing)}")
    labels, ids, alts, descriptions, seen = [], [], [], [], set()
    for _, row in table.iterrows():
        label = " ".join(str(row["preferredLabel"]).split())
        if not label or label in seen:
            continue
        seen.add(label)
        labels.append(label)
        ids.append(str(row["conceptUri"]).strip() or label)
        alts.append([a.strip() for a in str(row["altLabels"]).split("\n") if a.strip() and a.strip() != label])
        descriptions.append(str(row.get("description", "") or ""))
    if not labels:
        raise TaxonomyError(f"{path}: occupations_en.csv has no occupation")
    return Taxonomy(labels, ids, alts, descriptions, name=f"ESCO occupations ({Path(path).name})")


def is_esco_download(path: str | Path) -> bool:
    """Whether ``path`` is an ESCO download (a zip or a folder) rather than one taxonomy file."""
    path = Path(path)
    return path.is_dir() or path.suffix.lower() == ".zip"


def title_index_rows(titles: Taxonomy) -> tuple[list[str], list[str], dict[str, str]]:
    """Rows of a title index: every preferred and alternative label with its concept id, and the concept names."""
    labels, ids, names, seen = [], [], {}, set()
    for label, concept, alternatives in zip(titles.labels, titles.ids, titles.alt_labels, strict=True):
        names.setdefault(concept, label)
        for text in [label, *alternatives]:
            if (text, concept) not in seen:
                seen.add((text, concept))
                labels.append(text)
                ids.append(concept)
    return labels, ids, names


def set_title_taxonomy(model: JobBERTModel, titles: Taxonomy, batch_size: int = 64) -> None:
    """Encode a taxonomy of titles (preferred and alternative labels) as the model's title index."""
    labels, ids, names = title_index_rows(titles)
    logger.info("encoding %d title labels of %d concepts (%s)", len(labels), len(names), titles.name)
    model.set_title_index(labels, ids, names=names, taxonomy=titles.name, batch_size=batch_size)


def load_jobbert(path: str | Path, device: str | None = None) -> JobBERTModel:
    """Load a JobBERT folder (or Hub repo id), turning the usual failures into messages that say what to do."""
    from labor_encoders.modeling.modeling_jobbert import JobBERTModel

    return load_model_folder(path, JobBERTModel, "JobBERT", "labor-encoders build-jobbert", device)


def export_sentence_transformers(model: JobBERTModel, output: str | Path) -> Path:
    """Write ``model`` as a sentence-transformers folder in the JobBERT-v2 layout (Transformer -> mean Pooling ->
    ``2_Asym`` with Dense branches "anchor" and "positive"), atomically. The title index is not part of it."""
    import torch
    from safetensors.torch import save_file

    if model.tokenizer is None:
        raise BuildError("the model has no tokenizer to export; load it with load_jobbert or from_pretrained")
    config = model.config

    def write(folder: Path) -> None:
        model.encoder.save_pretrained(folder)
        model.tokenizer.save_pretrained(folder)
        _write_json(
            folder / "sentence_bert_config.json", {"max_seq_length": config.max_seq_length, "do_lower_case": False}
        )
        _write_json(folder / "config_sentence_transformers.json", {"similarity_fn_name": "cosine", "prompts": {}})
        modules = [("", "Transformer"), ("1_Pooling", "Pooling"), ("2_Asym", "Asym")]
        _write_json(
            folder / "modules.json",
            [
                {"idx": i, "name": str(i), "path": path, "type": f"sentence_transformers.models.{kind}"}
                for i, (path, kind) in enumerate(modules)
            ],
        )
        pooling = {"word_embedding_dimension": config.hidden_size, "pooling_mode_mean_tokens": True}
        pooling |= {f"pooling_mode_{m}": False for m in ("cls_token", "max_tokens", "mean_sqrt_len_tokens")}
        _write_json(folder / "1_Pooling" / "config.json", pooling)
        asym = {"types": {}, "structure": {}, "parameters": {"allow_empty_key": True}}
        for side, branch in (("title", "anchor"), ("skills", "positive")):
            module_id = f"{branch}_0_Dense"
            linear = model.title_head if side == "title" else model.skills_head
            activation = getattr(config, f"{side}_head_activation")
            dense_config = {
                "in_features": linear.in_features,
                "out_features": linear.out_features,
                "bias": linear.bias is not None,
                "activation_function": _ST_NAMES[activation],
            }
            _write_json(folder / "2_Asym" / module_id / "config.json", dense_config)
            state = {"linear.weight": linear.weight.detach().to("cpu", torch.float32).contiguous()}
            if linear.bias is not None:
                state["linear.bias"] = linear.bias.detach().to("cpu", torch.float32).contiguous()
            save_file(state, folder / "2_Asym" / module_id / "model.safetensors")
            asym["types"][module_id] = "sentence_transformers.models.Dense"
            asym["structure"][branch] = [module_id]
        _write_json(folder / "2_Asym" / "config.json", asym)

    return write_atomically(output, write)


def _write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def default_jobbert_dir() -> Path:
    """Where the setup builds the embedded default JobBERT model (inside the user cache)."""
    from .assets import default_model_dir

    return default_model_dir(DEFAULT_JOBBERT_NAME)


def default_heads_dir() -> Path:
    """The trained heads shipped in the package (``labor_encoders/weights/jobbert-default``)."""
    from .adapter import shipped_dir

    return shipped_dir(DEFAULT_JOBBERT_NAME)


def heads_fingerprint(folder: str | Path) -> str:
    """The sha256 of the heads file, after checking the folder against its record (a changed file is an error)."""
    from .adapter import verify

    return verify(folder)["files"][HEADS_FILE]


def default_jobbert_recipe() -> dict[str, str]:
    """What the default build depends on besides its assets: the shipped heads (a new file means a rebuild)."""
    return {"jobbert-heads": heads_fingerprint(default_heads_dir())}


def ensure_default_jobbert(force: bool = False) -> Path:
    """Build the embedded default unless it is there: all-mpnet-base-v2 with the shipped trained heads (checked
    against their record, never trained here) and the ESCO v1.2 occupations as the title index."""
    from .assets import ESCO_OCCUPATIONS, MPNET, ensure_esco_occupations, ensure_mpnet
    from .taxonomy import load_esco_occupations

    heads = default_heads_dir()
    recipe = default_jobbert_recipe()

    def build(output: Path) -> dict:
        backbone = ensure_mpnet()
        titles = load_esco_occupations(ensure_esco_occupations())
        logger.info("building the default JobBERT model into %s (encodes the ESCO occupations once)", output)
        model = build_jobbert(backbone, titles, heads=heads)
        save_model(model, output)
        # the heads' record travels with the model as its training record (the model card reads it)
        record = json.loads((heads / "record.json").read_text(encoding="utf-8"))
        _write_json(output / "training_args.json", record)
        info = {"backbone": MPNET, "taxonomy": titles.name, "concepts": len(titles), "labels": model.config.num_titles}
        return info | {"heads": recipe["jobbert-heads"]}

    return ensure_default_model(default_jobbert_dir(), (MPNET, ESCO_OCCUPATIONS), build, force, recipe)


def resolve_jobbert_dir(path: str | Path | None) -> Path:
    """``path`` if given, else the embedded default JobBERT model (built on first use)."""
    return Path(path) if path is not None else ensure_default_jobbert()
