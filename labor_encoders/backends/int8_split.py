"""Int8 for BERT-style encoders: every linear layer in int8, its few outlier input channels in float32.

onnxruntime's dynamic quantisation gives each activation tensor one uint8 scale per batch. The inputs of an
encoder's linear layers (the LayerNorm outputs and the GELU outputs) carry a handful of outlier channels, up to 100
where the rest stay under 5 (Bondarenko et al. 2021, "Understanding and Overcoming the Challenges of Efficient
Transformer Quantization"), so that one scale crushes every other channel: quantising all layers as they are drops
the token vectors' cosine to the fp32 ones to about 0.81 on Skill-XL sentences.

The fix is LLM.int8()'s decomposition (Dettmers et al. 2022) with the outlier channels fixed in advance: for each
linear layer ``y = x W^T + b``, the ``k`` input channels with the largest magnitude on calibration text are
``C``, and

    y = (x * keep) W_keep^T + b  +  x[..., C] W[:, C]^T       keep = 1 outside C, 0 on C

The first product, the whole of the work, is what the quantiser turns into int8 (its range no longer holds the
outliers); the second is a (tokens, k) by (k, out) float32 product, a negligible cost. In float32 the split layer is
the original one (up to rounding). These outlier channels are a property of the trained weights, not of the text
(the same channels on ESCO descriptions and on job ads), so a small calibration set finds them; measured figures
are in the README.
"""

from __future__ import annotations

import copy
import random
from pathlib import Path

import torch

from ..errors import ExportError

OUTLIER_CHANNELS = 4  # per linear layer's input; chosen on token fidelity to fp32 (README, "ONNX int8")
OUTLIER_RATIO = 4.0  # a layer is split when its widest input channel exceeds this many times the median channel
CALIBRATION_TEXTS = 512


class OutlierSplitLinear(torch.nn.Module):
    """``linear`` as an int8-ready product over the ordinary channels plus a float32 product over ``channels``."""

    def __init__(self, linear: torch.nn.Linear, channels: torch.Tensor) -> None:
        super().__init__()
        weight = linear.weight.detach()
        keep = torch.ones(linear.in_features, dtype=weight.dtype)
        keep[channels] = 0
        self.register_buffer("keep", keep)
        self.register_buffer("channels", channels.to(torch.long))
        self.linear = torch.nn.Linear(linear.in_features, linear.out_features, bias=linear.bias is not None)
        with torch.no_grad():
            self.linear.weight.copy_(weight * keep)
            if linear.bias is not None:
                self.linear.bias.copy_(linear.bias.detach())
        self.register_buffer("outlier_weight", weight[:, channels].T.contiguous())  # (k, out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x * self.keep) + torch.matmul(x.index_select(-1, self.channels), self.outlier_weight)


def linear_layers(module: torch.nn.Module) -> list[tuple[str, torch.nn.Linear]]:
    return [(name, m) for name, m in module.named_modules() if isinstance(m, torch.nn.Linear)]


@torch.inference_mode()
def input_ranges(
    encoder: torch.nn.Module, tokenizer, texts: list[str], batch_size: int = 32
) -> dict[str, torch.Tensor]:
    """Largest absolute value of each input channel of each linear layer of ``encoder`` over ``texts`` (real tokens
    only, so padding does not count)."""
    ranges: dict[str, torch.Tensor] = {}
    mask: list[torch.Tensor] = []

    def record(name: str, inputs: tuple[torch.Tensor, ...]) -> None:
        x = inputs[0].detach().float()
        x = x[mask[0]] if x.dim() == 3 else x.reshape(-1, x.shape[-1])
        found = x.abs().amax(0)
        ranges[name] = torch.maximum(ranges[name], found) if name in ranges else found

    hooks = [
        layer.register_forward_pre_hook(lambda _, inputs, name=name: record(name, inputs))
        for name, layer in linear_layers(encoder)
    ]
    try:
        device = next(encoder.parameters()).device
        for start in range(0, len(texts), batch_size):
            batch = tokenizer(texts[start : start + batch_size], padding=True, truncation=True, return_tensors="pt")
            batch = {key: value.to(device) for key, value in batch.items()}
            mask[:] = [batch["attention_mask"].bool()]
            encoder(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
    finally:
        for hook in hooks:
            hook.remove()
    return {name: value.cpu() for name, value in ranges.items()}


def split_outliers(
    encoder: torch.nn.Module,
    ranges: dict[str, torch.Tensor],
    k: int = OUTLIER_CHANNELS,
    ratio: float = OUTLIER_RATIO,
):
    """A float32 copy of ``encoder`` whose linear layers with outliers (an input channel over ``ratio`` times the
    median channel in ``ranges``) are :class:`OutlierSplitLinear` with their ``k`` widest input channels split off;
    the others, and layers that saw no input, keep their form."""
    if k < 1:
        raise ValueError(f"the outlier channels per layer must be at least 1, got {k}")
    split = copy.deepcopy(encoder).float().cpu().eval()
    modules = dict(split.named_modules())
    for name, layer in linear_layers(split):
        found = ranges.get(name)
        if found is None or layer.in_features <= k or found.max() <= ratio * found.median():
            continue
        parent, _, child = name.rpartition(".")
        channels = torch.sort(found.topk(k).indices).values
        setattr(modules[parent] if parent else split, child, OutlierSplitLinear(layer, channels))
    return split


def calibration_texts(path: str | Path | None = None, limit: int = CALIBRATION_TEXTS, seed: int = 0) -> list[str]:
    """Texts that find the outlier channels: the non-empty lines of ``path``, or by default the first two sentences
    of ``limit`` ESCO skill descriptions (installed with the package; never benchmark data). At most ``limit``,
    drawn with ``random.Random(seed)``."""
    if path is not None:
        try:
            texts = [line.strip() for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]
        except (OSError, UnicodeDecodeError) as error:
            raise ExportError(
                f"cannot read the calibration texts {path}: {error}. Give a UTF-8 text file, one text a line."
            ) from error
        if not texts:
            raise ExportError(f"the calibration file {path} has no text; give one text (e.g. a job-ad sentence) a line")
    else:
        from labor_encoders.modeling.modeling_contextmatch import split_sentences

        from ..taxonomy import load_esco_skills

        texts = [
            " ".join(description[start:end] for start, end in split_sentences(description)[:2])
            for description in load_esco_skills().descriptions
            if description
        ]
    texts = list(dict.fromkeys(texts))
    if len(texts) > limit:
        texts = random.Random(seed).sample(texts, limit)
    return texts


def float32_products(graph) -> list[str]:
    """Names of the MatMul nodes of an exported split encoder that multiply the outlier channels (their first input
    is a Gather): the ones the quantiser must leave in float32."""
    producers = {output: node.op_type for node in graph.node for output in node.output}
    return [node.name for node in graph.node if node.op_type == "MatMul" and producers.get(node.input[0]) == "Gather"]
