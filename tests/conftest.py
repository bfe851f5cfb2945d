"""Shared fixtures: tiny randomly initialised models built in-process, the real default model, the shared data."""

from __future__ import annotations

import copy
import os
from pathlib import Path

import pytest
import torch
from transformers import BertConfig, BertTokenizerFast, MPNetConfig

from labor_encoders.modeling.configuration_contextmatch import ConTeXTMatchConfig
from labor_encoders.modeling.modeling_contextmatch import ConTeXTMatchModel

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # also when pytest runs without run.sh

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"

WORDS = (  # noqa: SIM905 (a readable sentence of the vocabulary)
    "we offer a bike python sql java team work skills data analysis great manage project communication "
    "strong knowledge of databases such as postgresql and experience with spark airflow in english dutch "
    "is plus you will design build maintain pipelines cloud aws machine learning models agile mentoring"
).split()
TINY_SKILLS = ["python", "sql", "team work", "data analysis", "manage project", "communication", "machine learning"]
TINY_IDS = [f"urn:skill:{i}" for i in range(len(TINY_SKILLS))]


@pytest.fixture(scope="session")
def tiny_tokenizer(tmp_path_factory: pytest.TempPathFactory) -> BertTokenizerFast:
    """A WordPiece tokenizer over a small hand-made vocabulary (whole words plus their '##' pieces)."""
    folder = tmp_path_factory.mktemp("tiny-tokenizer")
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *".,;:!?()-/+", *"abcdefghijklmnopqrstuvwxyz0123456789"]
    vocab += [f"##{c}" for c in "abcdefghijklmnopqrstuvwxyz0123456789"] + WORDS
    (folder / "vocab.txt").write_text("\n".join(dict.fromkeys(vocab)) + "\n")
    tokenizer = BertTokenizerFast(vocab=str(folder / "vocab.txt"))  # transformers 5 ignores vocab_file=
    assert tokenizer.tokenize("python sql") == ["python", "sql"], "the tiny vocabulary was not loaded"
    return tokenizer


def tiny_encoder_config(kind: str, vocab_size: int) -> dict:
    sizes = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64)
    if kind == "bert":
        return BertConfig(vocab_size=vocab_size, **sizes).to_dict()
    return MPNetConfig(vocab_size=vocab_size, pad_token_id=0, **sizes).to_dict()


def make_tiny_model(tokenizer, kind: str = "bert", seed: int = 0, **config_kwargs) -> ConTeXTMatchModel:
    """A ConTeXT-match model on a randomly initialised 2-layer encoder, with the tiny skill index."""
    torch.manual_seed(seed)
    config_kwargs.setdefault("threshold", 0.0)
    config = ConTeXTMatchConfig(encoder_config=tiny_encoder_config(kind, len(tokenizer)), **config_kwargs)
    model = ConTeXTMatchModel(config).eval()
    model.tokenizer = tokenizer
    model.set_skill_index(TINY_SKILLS, TINY_IDS, taxonomy="tiny skills")
    return model


@pytest.fixture(scope="session", params=["bert", "mpnet"])
def _tiny_model_session(request, tiny_tokenizer) -> ConTeXTMatchModel:
    return make_tiny_model(tiny_tokenizer, request.param)


@pytest.fixture
def tiny_model(_tiny_model_session) -> ConTeXTMatchModel:
    """A fresh copy (per test) of a tiny model, once with a BERT and once with an MPNet encoder."""
    return copy.deepcopy(_tiny_model_session)


@pytest.fixture(scope="session")
def tiny_encoder_dir(tmp_path_factory, tiny_tokenizer) -> Path:
    """A tiny BERT encoder with its tokenizer, saved as a plain transformers folder (a backbone to build from)."""
    from transformers import BertModel

    folder = tmp_path_factory.mktemp("tiny-bert")
    torch.manual_seed(0)
    BertModel(BertConfig(**tiny_encoder_config("bert", len(tiny_tokenizer)))).save_pretrained(folder)
    tiny_tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def default_model_dir() -> Path:
    """The embedded default model (all-mpnet-base-v2 trained on the offline ESCO set + ESCO v1.2), built by the
    setup."""
    from labor_encoders.build import ensure_default_contextmatch

    return ensure_default_contextmatch()


@pytest.fixture(scope="session")
def default_model(default_model_dir):
    from labor_encoders.build import load_contextmatch

    return load_contextmatch(default_model_dir)


@pytest.fixture(scope="session")
def zero_shot_model_dir() -> Path:
    """The zero-shot model (all-mpnet-base-v2 untrained + ESCO v1.2): DESIGN.md's reference, built by the setup."""
    from labor_encoders.build import ensure_zero_shot_contextmatch

    return ensure_zero_shot_contextmatch()


@pytest.fixture(scope="session")
def zero_shot_model(zero_shot_model_dir):
    from labor_encoders.build import load_contextmatch

    return load_contextmatch(zero_shot_model_dir)


@pytest.fixture(scope="session")
def default_jobbert_dir() -> Path:
    """The embedded default JobBERT model (all-mpnet-base-v2 with identity heads + ESCO v1.2 occupations)."""
    from labor_encoders.jobbert import ensure_default_jobbert

    return ensure_default_jobbert()


@pytest.fixture(scope="session")
def default_jobbert(default_jobbert_dir):
    from labor_encoders.jobbert import load_jobbert

    return load_jobbert(default_jobbert_dir)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.fail(f"the benchmark data is expected at {SHARED_DATA} (../shared/data beside the repository)")
    return SHARED_DATA
