"""Build ConTeXT-match model folders from sentence-transformers backbones, and load them with clear errors.

A sentence-transformers folder (``modules.json``: Transformer -> mean Pooling [-> Normalize]) is what both
all-mpnet-base-v2 and ``TechWolf/ConTeXT-Skill-Extraction-base`` look like. Its Transformer becomes the encoder of a
:class:`~labor_encoders.modeling.modeling_contextmatch.ConTeXTMatchModel`, a taxonomy becomes its skill index, and the
result is
saved as a ``trust_remote_code`` folder that ``AutoModel.from_pretrained`` opens.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .atomic import write_file
from .atomic import write_folder as write_atomically
from .errors import LaborEncodersError
from .taxonomy import Taxonomy

if TYPE_CHECKING:  # transformers is imported where a model is built or loaded, so the CLI starts fast
    from labor_encoders.modeling.modeling_contextmatch import ConTeXTMatchModel

logger = logging.getLogger(__name__)

DEFAULT_MODEL_NAME = "contextmatch-default"  # the embedded default: all-mpnet-base-v2 + the shipped LoRA adapter
ZERO_SHOT_MODEL_NAME = "contextmatch-zero-shot"  # the same backbone untrained, the reference of DESIGN.md
LIGHT_MODEL_NAME = "contextmatch-light"  # all-MiniLM-L6-v2 + its shipped LoRA adapter: the light default for CPUs
# Each default's tau: `labor-encoders calibrate` on the HOUSE + TECH validation splits (best F1 after the redundancy
# filter, 0.01 steps); see the README.
ZERO_SHOT_MODEL_THRESHOLD = 0.54
# The recipe that made the default's shipped adapter (training/configs/; the setup never trains).
DEFAULT_RECIPE = "contextmatch_default.yaml"


class BuildError(LaborEncodersError):
    """A backbone folder or model folder that cannot be used, with the reason and the fix."""


@dataclass(frozen=True)
class SentenceTransformerLayout:
    """What a sentence-transformers folder holds: where its Transformer lives and how it pools."""

    transformer_dir: Path
    max_seq_length: int | None
    normalize: bool


def read_sentence_transformer(folder: str | Path, allow: tuple[str, ...] = ()) -> SentenceTransformerLayout:
    """Check that ``folder`` is a Transformer -> mean Pooling sentence-transformers model and locate its parts.

    Modules named in ``allow`` may follow the pooling (JobBERT reads its ``Asym`` heads itself).
    """
    folder = Path(folder)
    modules_file = folder / "modules.json"
    if not modules_file.is_file():
        if (folder / "config.json").is_file():  # a bare transformers encoder folder: mean pooling is implied
            return SentenceTransformerLayout(folder, None, normalize=False)
        raise BuildError(f"{folder} is not a sentence-transformers or transformers model folder (no modules.json)")
    modules = json.loads(modules_file.read_text())
    kinds = [m["type"].rsplit(".", 1)[-1] for m in modules]
    if not kinds or kinds[0] != "Transformer":
        raise BuildError(f"{folder}: the first module must be a Transformer, found {kinds}")
    transformer_dir = folder / modules[0].get("path", "")
    unsupported = [k for k in kinds[1:] if k not in ("Pooling", "Normalize", *allow)]
    if unsupported:
        raise BuildError(
            f"{folder}: modules {unsupported} after pooling are not supported: ConTeXT-match compares token "
            "vectors with skill vectors, so both must come straight from the Transformer and mean pooling"
        )
    if "Pooling" in kinds:
        pooling = json.loads((folder / modules[kinds.index("Pooling")]["path"] / "config.json").read_text())
        modes = _pooling_modes(pooling)
        if modes != ["mean"]:
            raise BuildError(f"{folder} pools with {modes}; ConTeXT-match needs mean pooling of the token vectors")
    st_config = transformer_dir / "sentence_bert_config.json"
    max_len = json.loads(st_config.read_text()).get("max_seq_length") if st_config.is_file() else None
    return SentenceTransformerLayout(transformer_dir, max_len, normalize="Normalize" in kinds)


def _pooling_modes(pooling: dict) -> list[str]:
    """Pooling modes of a Pooling config, in the sentence-transformers 6 format or the older flag format."""
    if "pooling_mode" in pooling:
        mode = pooling["pooling_mode"]
        return [mode] if isinstance(mode, str) else list(mode)
    legacy = {"pooling_mode_mean_tokens": "mean", "pooling_mode_cls_token": "cls", "pooling_mode_max_tokens": "max"}
    modes = [name for flag, name in legacy.items() if pooling.get(flag)]
    return modes + [
        k.removeprefix("pooling_mode_")
        for k, v in pooling.items()
        if v and k not in legacy and k.startswith("pooling_mode")
    ]


def build_contextmatch(
    backbone: str | Path,
    taxonomy: Taxonomy | None,
    *,
    threshold: float | None = None,
    max_seq_length: int | None = None,
    trained: bool = False,
    batch_size: int = 128,
) -> ConTeXTMatchModel:
    """A ConTeXT-match model around the encoder of ``backbone`` with ``taxonomy`` encoded as its skill index
    (no index with ``taxonomy=None``: a starting point for training, which encodes one at the end).

    ``max_seq_length`` defaults to the backbone's own (384 for all-mpnet-base-v2), so a sentence is truncated where
    sentence-transformers would truncate it and benchmark rankings match a plain ``SentenceTransformer``.
    ``threshold`` defaults to the config's (the paper's τ 0.48, the one place that default is written).
    """
    from labor_encoders.modeling.configuration_contextmatch import ConTeXTMatchConfig
    from labor_encoders.modeling.modeling_contextmatch import ConTeXTMatchModel

    layout, encoder, tokenizer = load_backbone(backbone)
    source = Path(backbone).name  # the backbone's name, never a path of this machine
    config = ConTeXTMatchConfig(
        encoder_config=encoder.config.to_dict() | {"_name_or_path": source},
        max_seq_length=max_seq_length or layout.max_seq_length or min(tokenizer.model_max_length, 512),
        trained=trained,
        name_or_path=source,
        **({} if threshold is None else {"threshold": threshold}),
    )
    model = ConTeXTMatchModel(config)
    copy_encoder_weights(encoder, model.encoder, backbone)
    model.tokenizer = tokenizer
    model.eval()
    if taxonomy is None:
        return model
    logger.info("encoding %d skill labels of %s", len(taxonomy.labels), taxonomy.name)
    model.set_skill_index(taxonomy.labels, taxonomy.ids, taxonomy=taxonomy.name, batch_size=batch_size)
    return model


def load_backbone(backbone: str | Path, layout: SentenceTransformerLayout | None = None):
    """The layout, encoder (``AutoModel``) and fast tokenizer of a sentence-transformers or transformers folder."""
    from transformers import AutoModel, AutoTokenizer

    layout = layout or read_sentence_transformer(backbone)
    encoder = AutoModel.from_pretrained(layout.transformer_dir)
    tokenizer = AutoTokenizer.from_pretrained(layout.transformer_dir)
    if not tokenizer.is_fast:
        raise BuildError(f"{backbone}: a fast tokenizer (tokenizer.json) is needed, for character offsets")
    return layout, encoder, tokenizer


def copy_encoder_weights(source, target, backbone: str | Path) -> None:
    """Load the encoder weights of ``source`` into ``target`` strictly (an unused BERT-style pooler may be left)."""
    missing, unexpected = target.load_state_dict(source.state_dict(), strict=False)
    unexpected = [k for k in unexpected if not k.startswith("pooler.")]
    if missing or unexpected:
        raise BuildError(f"{backbone}: encoder weights do not fit (missing {missing[:5]}, unexpected {unexpected[:5]})")


def save_model(model: ConTeXTMatchModel, output: str | Path) -> Path:
    """Save ``model`` as a remote-code folder, atomically: a crash never leaves a half-written folder behind."""
    type(model.config).register_for_auto_class()
    type(model).register_for_auto_class("AutoModel")
    return write_atomically(output, model.save_pretrained)


def copy_model(source: Path, output: str | Path) -> Path:
    """Copy a model folder (without its build marker), atomically."""
    ignore = shutil.ignore_patterns(".complete.json")
    return write_atomically(output, lambda staging: shutil.copytree(source, staging, dirs_exist_ok=True, ignore=ignore))


def load_contextmatch(path: str | Path, device: str | None = None) -> ConTeXTMatchModel:
    """Load a ConTeXT-match folder, turning the usual failures into messages that say what to do."""
    from labor_encoders.modeling.modeling_contextmatch import ConTeXTMatchModel

    return load_model_folder(path, ConTeXTMatchModel, "ConTeXT-match", "labor-encoders build", device)


def set_threshold(folder: str | Path, threshold: float) -> None:
    """Write a calibrated τ into a model folder's ``config.json`` (atomically; nothing else changes)."""
    if not 0.0 <= threshold <= 1.0:
        raise BuildError(f"a threshold must be in [0, 1], got {threshold}")
    config_file = Path(folder) / "config.json"
    try:
        config = json.loads(config_file.read_text())
    except (OSError, ValueError) as error:
        raise BuildError(f"cannot read {config_file} ({error})") from error
    config["threshold"] = threshold
    text = json.dumps(config, indent=2, sort_keys=True) + "\n"
    write_file(config_file, lambda tmp: tmp.write_text(text))


def load_model_folder(path: str | Path, model_class: type, what: str, rebuild: str, device: str | None = None):
    """Load a model folder (or a Hub repo id) of ``model_class``, with messages that say what to do."""
    folder = Path(path)
    if not folder.exists():
        from .hub import is_hub_id

        if is_hub_id(path):
            return _load_from_hub(str(path), model_class, what, device)
        raise BuildError(f"model folder {folder} does not exist; build one with `{rebuild} --output DIR`")
    config_file = folder / "config.json"
    if not config_file.is_file():
        raise BuildError(f"{folder} has no config.json: it is not a model folder (rebuild it with `{rebuild}`)")
    model_type = json.loads(config_file.read_text()).get("model_type")
    if model_type != model_class.config_class.model_type:
        raise BuildError(f"{folder} holds a {model_type!r} model, not a {what} model")
    if not any(folder.glob("*.safetensors")):
        raise BuildError(f"{folder} has no weights (model.safetensors is missing); rebuild it with `{rebuild}`")
    try:
        model = model_class.from_pretrained(folder)
    except OSError as error:
        raise BuildError(str(error)) from error
    return model.to(device).eval() if device else model.eval()


def default_contextmatch_dir() -> Path:
    """Where the setup builds the embedded default ConTeXT-match model (inside the user cache)."""
    from .assets import default_model_dir

    return default_model_dir(DEFAULT_MODEL_NAME)


def zero_shot_contextmatch_dir() -> Path:
    """Where the setup builds the zero-shot ConTeXT-match model (inside the user cache)."""
    from .assets import default_model_dir

    return default_model_dir(ZERO_SHOT_MODEL_NAME)


def ensure_zero_shot_contextmatch(force: bool = False) -> Path:
    """Build the zero-shot model (all-mpnet-base-v2 + ESCO v1.2 skills, untrained) unless it is already there."""
    from .assets import ESCO_SKILLS, MPNET, ensure_esco_skills, ensure_mpnet
    from .taxonomy import load_esco_skills

    def build(output: Path) -> dict:
        backbone = ensure_mpnet()
        taxonomy = load_esco_skills(ensure_esco_skills())
        logger.info(
            "building the zero-shot ConTeXT-match model into %s (encodes %d skills once)", output, len(taxonomy)
        )
        save_model(build_contextmatch(backbone, taxonomy, threshold=ZERO_SHOT_MODEL_THRESHOLD), output)
        return {"backbone": MPNET, "taxonomy": taxonomy.name, "skills": len(taxonomy)}

    return ensure_default_model(zero_shot_contextmatch_dir(), (MPNET, ESCO_SKILLS), build, force)


def _adapter_fingerprint(name: str = DEFAULT_MODEL_NAME) -> dict[str, str]:
    from .adapter import read_record, shipped_dir

    record = read_record(shipped_dir(name))
    files = record.get("files", {})
    return {
        "adapter": files.get("adapter_model.safetensors", "missing")[:16],
        "threshold": str(record.get("threshold")),
    }


def _backbone_of(name: str) -> tuple[str, str]:
    """The asset a shipped adapter goes onto and the name of its ``assets`` function (looked up when called)."""
    from .assets import MINILM, MPNET

    return {DEFAULT_MODEL_NAME: (MPNET, "ensure_mpnet"), LIGHT_MODEL_NAME: (MINILM, "ensure_minilm")}[name]


def _ensure_shipped_contextmatch(name: str, force: bool) -> Path:
    """Build the embedded model ``name`` from its shipped adapter unless a build from the same assets, adapter and
    τ is already there (see :func:`ensure_default_contextmatch`)."""
    from . import assets
    from .adapter import shipped_dir
    from .taxonomy import load_esco_skills

    backbone, ensure_backbone = _backbone_of(name)

    def build(output: Path) -> dict:
        taxonomy = load_esco_skills(assets.ensure_esco_skills())
        record = build_from_adapter(getattr(assets, ensure_backbone)(), shipped_dir(name), taxonomy, output)
        return {"backbone": backbone, "taxonomy": record["taxonomy"], "skills": record["skills"]}

    folder = default_contextmatch_dir() if name == DEFAULT_MODEL_NAME else assets.default_model_dir(name)
    return ensure_default_model(folder, (backbone, assets.ESCO_SKILLS), build, force, extra=_adapter_fingerprint(name))


def ensure_default_contextmatch(force: bool = False) -> Path:
    """Build the embedded default unless it is already there: all-mpnet-base-v2 with the shipped LoRA adapter
    (``labor_encoders/weights/contextmatch-default``, its sha256 checked) merged in, and the ESCO v1.2 skill index.

    Nothing trains here: the adapter was made by :data:`DEFAULT_RECIPE` (its ``record.json`` says how, on what data,
    in how long and with which validation scores), and ``labor-encoders build --adapter`` does the same for others.
    """
    return _ensure_shipped_contextmatch(DEFAULT_MODEL_NAME, force)


def ensure_light_contextmatch(force: bool = False) -> Path:
    """The light default (``--model light``): all-MiniLM-L6-v2 with its shipped adapter
    (``labor_encoders/weights/contextmatch-light``) and the ESCO v1.2 index, built like the default."""
    return _ensure_shipped_contextmatch(LIGHT_MODEL_NAME, force)


def build_from_adapter(backbone: str | Path, adapter: str | Path, taxonomy: Taxonomy, output: str | Path) -> dict:
    """Merge the LoRA adapter folder ``adapter`` (checked against its ``record.json``) onto ``backbone``, encode
    ``taxonomy`` as the index and save a remote-code folder; returns the adapter's record with the index's size.

    The record's ``threshold`` (τ calibrated on validation) becomes the model's; its training record is kept in the
    folder as ``training_args.json`` for the model card.
    """
    from .adapter import merge_lora, verify

    record = verify(adapter)
    model = build_contextmatch(backbone, None, threshold=record.get("threshold"), trained=True)
    logger.info("merging the adapter %s onto %s", adapter, Path(backbone).name)
    model.encoder = merge_lora(model.encoder, adapter)
    logger.info("encoding %d skill labels of %s with the merged weights", len(taxonomy.labels), taxonomy.name)
    model.set_skill_index(taxonomy.labels, taxonomy.ids, taxonomy=taxonomy.name)

    def write(staging: Path) -> None:
        type(model.config).register_for_auto_class()
        type(model).register_for_auto_class("AutoModel")
        model.save_pretrained(staging)
        training = {k: v for k, v in record.items() if k not in ("files", "bytes")}
        (staging / "training_args.json").write_text(json.dumps(training, indent=2), encoding="utf-8")

    write_atomically(output, write)
    return record | {"taxonomy": taxonomy.name, "skills": len(taxonomy.labels)}


def ensure_default_model(
    output: Path, asset_names: tuple[str, ...], build, force: bool = False, extra: dict[str, str] | None = None
) -> Path:
    """Build an embedded default model with ``build(output) -> info`` unless a finished build from the same asset
    versions (and ``extra`` fingerprints, such as a training recipe) is there (its ``.complete.json`` records them);
    a finished one only gets its code files refreshed."""
    expected = _expected(asset_names, extra)
    built_from = _built_from(output)
    if built_from == expected and not force:
        sync_model_code(output)
        return output
    if built_from is not None and built_from != expected:
        logger.info("rebuilding %s: it was built from other versions of its assets or recipe", output)
    info = build(output)
    (output / ".complete.json").write_text(json.dumps(info | {"assets": expected}))
    return output


def _expected(asset_names: tuple[str, ...], extra: dict[str, str] | None) -> dict[str, str]:
    from .assets import asset_fingerprint

    return {name: asset_fingerprint(name) for name in asset_names} | (extra or {})


def default_model_state(output: Path, asset_names: tuple[str, ...], extra: dict[str, str] | None = None) -> str:
    """``built``, ``outdated`` (built from other asset versions or recipe: the next setup rebuilds it) or
    ``missing``."""
    built_from = _built_from(output)
    if built_from is None:
        return "missing"
    return "built" if built_from == _expected(asset_names, extra) else "outdated"


def _built_from(output: Path) -> dict | None:
    """The asset versions a finished default build records, or None when there is no finished build."""
    try:
        built_from = json.loads((output / ".complete.json").read_text()).get("assets")
    except (OSError, ValueError, AttributeError):
        return None
    return built_from if isinstance(built_from, dict) else {}


def sync_model_code(folder: str | Path) -> list[str]:
    """Refresh the remote-code files a model folder carries (``modeling_*.py``, ``configuration_*.py`` and the files
    they import, such as ``encoder_utils.py``) from this project's ``modeling/``, so a folder built by an older
    version runs the current code. Returns what changed."""
    from labor_encoders import modeling

    source = Path(modeling.__file__).parent
    wanted = {path.name for path in Path(folder).glob("*.py") if (source / path.name).is_file()}
    todo = list(wanted)
    while todo:  # the sibling files imported as ``from .name import ...``, recursively
        text = (source / todo.pop()).read_text(encoding="utf-8")
        for name in re.findall(r"^\s*from\s+\.(\w+)\s+import", text, flags=re.MULTILINE):
            if f"{name}.py" not in wanted:
                wanted.add(f"{name}.py")
                todo.append(f"{name}.py")
    changed = []
    for name in sorted(wanted):
        current, copy = source / name, Path(folder) / name
        if not copy.is_file() or current.read_bytes() != copy.read_bytes():
            shutil.copyfile(current, copy)
            changed.append(name)
    if changed:
        logger.info("updated the model code in %s: %s", folder, ", ".join(changed))
    return changed


def resolve_model_dir(path: str | Path | None) -> Path:
    """``path`` if given, else the embedded default (built on first use). The names ``default``, ``light`` and
    ``zero-shot`` stand for the embedded models unless a folder of that name exists here."""
    if path is None:
        return ensure_default_contextmatch()
    embedded = {"default": ensure_default_contextmatch, "light": ensure_light_contextmatch}
    embedded["zero-shot"] = ensure_zero_shot_contextmatch
    if str(path) in embedded and not Path(path).exists():
        return embedded[str(path)]()
    return Path(path)


def _load_from_hub(repo_id: str, model_class: type, what: str, device: str | None):
    """Download (or reuse the Hub cache of) a model repository; offline, say so plainly."""
    try:
        model = model_class.from_pretrained(repo_id)
    except OSError as error:
        raise BuildError(
            f"could not load {what} model {repo_id!r} from the Hugging Face Hub ({str(error).splitlines()[0]}). "
            "Check the repo id and your connection; offline (HF_HUB_OFFLINE=1) only repositories already in the "
            "Hub cache load. A local folder path works everywhere."
        ) from error
    return model.to(device).eval() if device else model.eval()
