"""The package's layout: layers that import only downwards, no import cycle, and a
diffusion task that loads none of the classifier's code."""

import ast
import pathlib
import subprocess
import sys

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parent.parent / "tf_distill"

# Lowest first: a module may import its own layer and the layers before it. The
# two tasks share a layer and import nothing of each other (checked below).
LAYERS = (
    ("tf_distill.checker", "tf_distill.imports", "tf_distill.quiet"),
    ("tf_distill.outputs",),
    ("tf_distill.training",),
    ("tf_distill.data",),
    ("tf_distill.distillation",),
    ("tf_distill.models",),
    ("tf_distill.teacher",),
    ("tf_distill.shipping", "tf_distill.reports"),
    ("tf_distill.tasks",),
    ("tf_distill.experiment", "tf_distill.api", "tf_distill"),
)


def _modules() -> dict[str, pathlib.Path]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


MODULES = _modules()


def _imports(name: str) -> set[str]:
    """The tf_distill modules `name` imports, at any depth of its code."""
    path = MODULES[name]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("tf_distill.")}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if not node.module.startswith("tf_distill"):
                continue
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                found.add(full if full in MODULES else node.module)
    return found - {name, "tf_distill"}


def _layer(name: str) -> int:
    best = None
    for i, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            if name == prefix or name.startswith(prefix + "."):
                if best is None or len(prefix) > best[1]:
                    best = (i, len(prefix))
    assert best is not None, f"{name} is in no layer of LAYERS"
    return best[0]


@pytest.mark.parametrize("name", sorted(MODULES))
def test_a_module_imports_only_its_layer_and_those_below(name):
    upward = [m for m in sorted(_imports(name)) if _layer(m) > _layer(name)]
    assert not upward, f"{name} (layer {_layer(name)}) imports {upward}"


def test_the_two_tasks_import_nothing_of_each_other():
    for own, other in (("classifier", "diffusion"), ("diffusion", "classifier")):
        for name in MODULES:
            if name.startswith(f"tf_distill.tasks.{own}"):
                prefix = f"tf_distill.tasks.{other}"
                wrong = [m for m in _imports(name) if m.startswith(prefix)]
                assert not wrong, f"{name} imports {wrong}"


def test_no_import_cycle():
    graph = {name: _imports(name) for name in MODULES}

    def reaches(start):
        seen, todo = set(), list(graph[start])
        while todo:
            m = todo.pop()
            if m not in seen:
                seen.add(m)
                todo.extend(graph.get(m, ()))
        return seen

    cycles = [name for name in MODULES if name in reaches(name)]
    assert not cycles, f"modules in an import cycle: {cycles}"


def test_the_diffusion_task_loads_none_of_the_classifier_code():
    code = (
        "import sys, tf_distill.tasks.diffusion as d; d.TASK; "
        "print('\\n'.join(m for m in sys.modules if m.startswith('tf_distill')))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=PACKAGE.parent,
    ).stdout.split()
    assert "tf_distill.tasks.diffusion.modes" in loaded
    classifier_only = (
        "tf_distill.tasks.classifier",
        "tf_distill.distillation",
        "tf_distill.teacher",
        "tf_distill.shipping",
        "tf_distill.reports.report",
        "tf_distill.reports.sweep_report",
        "tf_distill.reports.metrics_file",
        "tf_distill.data.unlabelled",
        "tf_distill.data.augment",
    )
    wrong = [m for m in loaded if m.startswith(classifier_only)]
    assert not wrong, f"importing the diffusion task loaded {wrong}"


def _code_lines(lines) -> int:
    return sum(1 for line in lines if line.strip() and not line.strip().startswith("#"))


@pytest.mark.parametrize("name", sorted(MODULES))
def test_modules_and_functions_stay_readable_in_one_sitting(name):
    """A module past ~300 lines or a function past ~60 lines of code (its
    docstring aside) is a seam waiting to be cut (issue 23)."""
    text = MODULES[name].read_text()
    lines = text.splitlines()
    assert len(lines) <= 310, f"{name} has {len(lines)} lines"
    for node in ast.walk(ast.parse(text)):
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        body = node.body
        first = body[0]
        docstring = isinstance(first, ast.Expr) and isinstance(
            getattr(first, "value", None), ast.Constant
        )
        start = first.end_lineno if docstring else first.lineno - 1
        size = _code_lines(lines[start : node.end_lineno])
        assert size <= 60, f"{name}.{node.name} has {size} lines of code"
