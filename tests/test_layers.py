"""Arrows one way: which part of the package may import which, checked on every import statement (also those
inside functions; only ``if TYPE_CHECKING:`` blocks are left out, as they never run).

    modeling  <-  core  <-  {training, evaluation, model_cards, insights, batch, backends, publishing}  <-  {cli, space}

``modeling`` imports nothing of the project (the Hub copies of its files run alone), the core (assets, taxonomy,
builds, ESCO parsing, adapters, atomic writes, ...) imports only ``modeling`` and itself, and no two modules import
each other, directly or through others.
"""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FOLDERS = {  # import name -> folder of the checkout (the wheel maps them the same way)
    "labor_encoders": "labor_encoders",
    "labor_encoders.modeling": "modeling",
    "labor_encoders.training": "training",
    "labor_encoders.evaluation": "evaluation",
    "labor_encoders.model_cards": "model_cards",
    "labor_encoders.space": "space",
}
# modules of labor_encoders/ above the core: they may use the analysis layers beside them
UPPER = {"cli": 3, "batch": 2, "backends": 2, "publish": 2, "workrb": 2}
LAYER_OF_PACKAGE = {"modeling": 0, "training": 2, "evaluation": 2, "model_cards": 2, "insights": 2, "space": 3}
LAYER_OF_MODULE = {
    # the reader of ESCO's official download: core data, kept in insights/ because the Space copies that folder whole
    "labor_encoders.insights.esco": 1,
    # benchmarks of the web demo drive the demo itself
    "labor_encoders.evaluation.benchmark_demo": 3,
    "labor_encoders.evaluation.load_demo": 3,
}


def modules() -> dict[str, Path]:
    found = {}
    for name, folder in FOLDERS.items():
        for path in (REPO / folder).rglob("*.py"):
            parts = list(path.relative_to(REPO / folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join([name, *parts])] = path
    return found


def layer(module: str) -> int:
    if module in LAYER_OF_MODULE:
        return LAYER_OF_MODULE[module]
    parts = module.split(".")
    if len(parts) == 1:
        return 1
    if parts[1] in LAYER_OF_PACKAGE:
        return LAYER_OF_PACKAGE[parts[1]]
    return UPPER.get(parts[1], 1)


def imports(module: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The project modules ``module`` imports (a name imported from a package counts as its submodule if it is
    one, else as the package)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skipped = {
        id(node)
        for block in ast.walk(tree)
        if isinstance(block, ast.If) and "TYPE_CHECKING" in ast.unparse(block.test)
        for statement in block.body
        for node in ast.walk(statement)
    }
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, *([base] if base else [])])
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
        else:
            continue
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != module:
                found.add(target)
    return found


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imports(name, path, known) for name, path in known.items()}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def test_the_graph_sees_the_imports_it_checks() -> None:
    edges = graph()
    assert "labor_encoders.modeling.modeling_contextmatch" in edges["labor_encoders.build"]
    assert "labor_encoders.training.loop" in edges["labor_encoders.training.train_contextmatch"]
    assert len(edges) > 60
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_module_imports_itself_through_others() -> None:
    assert cycles(graph()) == []


def test_imports_point_down_the_layers() -> None:
    upward = [
        f"{source} (layer {layer(source)}) imports {target} (layer {layer(target)})"
        for source, targets in sorted(graph().items())
        for target in sorted(targets)
        if layer(target) > layer(source) or (layer(source) == 0 and target.split(".")[1] != "modeling")
    ]
    assert upward == []


def test_the_command_line_starts_without_the_heavy_libraries() -> None:
    """Why some imports stay inside functions: `labor-encoders --help` (the whole parser) loads no model library."""
    import subprocess
    import sys

    code = (
        "import sys; from labor_encoders.cli import build_parser; build_parser(); "
        "print(sorted(m for m in ('torch', 'transformers', 'gradio', 'duckdb', 'pandas') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert done.stdout.strip() == "[]"
