"""The shell commands of the README and docs/ still fit the code: every `main.py`
command names a mode that exists, a config file that exists and config keys that
file has (a value of the key's kind), and every script a command runs exists.

The commands themselves train models for minutes (the main job, the MNIST
configs) or name the reader's own paths, so they are checked, not run; what runs
them end to end is the rest of the suite (tests/test_main.py runs the main job's
command on a tiny config)."""

import ast
import importlib
import os
import pathlib
import re
import shlex

import pytest

from tests.conftest import REPO

PAGES = [
    pathlib.Path(REPO, "README.md"),
    *sorted(pathlib.Path(REPO, "docs").glob("*.md")),
]


def _commands():
    """(page, command) for every command line of every fenced bash block."""
    found = []
    for page in PAGES:
        for block in re.findall(r"```bash\n(.*?)```", page.read_text(), re.S):
            for line in re.sub(r"\\\n\s*", " ", block).splitlines():
                line = line.split(" # ")[0].strip()
                if line and not line.startswith("#"):
                    found.append((page.name, line))
    return found


COMMANDS = _commands()
MAIN = [(p, c) for p, c in COMMANDS if re.search(r"(^|\s)(main\.py|tf-distill)\s", c)]


def test_the_pages_hold_the_commands_they_show():
    assert len(PAGES) >= 10 and len(MAIN) >= 30
    pages = {p for p, _ in MAIN}
    assert {"README.md", "data.md", "diffusion.md", "methods.md"} <= pages


def _words(command: str) -> list[str]:
    try:
        return shlex.split(command)
    except ValueError:  # a quote that spans lines (a python -c program)
        return command.split()


def _config(path: str | None):
    """The config a command's --config names: a file, or a shipped name (cli.py)."""
    path = path or "configs/default.py"
    file = os.path.join(REPO, path)
    if not os.path.isfile(file):
        file = os.path.join(REPO, "configs", f"{path.removesuffix('.py')}.py")
    assert os.path.isfile(file), f"no config file {path}"
    spec = importlib.util.spec_from_file_location("doc_config", file)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_config()


@pytest.mark.parametrize("page, command", MAIN, ids=[c[:60] for _, c in MAIN])
def test_a_main_py_command_names_a_mode_a_config_and_keys_that_exist(page, command):
    from tf_distill import experiment

    words = [w for w in _words(command) if w.startswith("--")]
    options = dict(w[2:].split("=", 1) for w in words if "=" in w)
    assert options.get("model") in experiment.MODES, f"{page}: {command}"
    config = _config(options.get("config"))
    for key, value in options.items():
        if not key.startswith("config."):
            continue
        node, *path = key.split(".")[1:]
        current = config
        for part in [node, *path][:-1]:
            assert part in current, f"{page}: {command}: no config section {part}"
            current = current[part]
        field = [node, *path][-1]
        assert field in current, f"{page}: {command}: no config key {key}"
        default = current[field]
        if isinstance(default, (tuple, list)):
            assert isinstance(ast.literal_eval(value), (tuple, list)), key
        elif isinstance(default, bool):
            assert value in ("True", "False"), key
        elif isinstance(default, (int, float)) and not isinstance(default, bool):
            float(value)  # raises on a value of the wrong kind


def test_every_script_a_command_runs_exists():
    scripts = []
    for page, command in COMMANDS:
        for word in _words(command):
            if re.fullmatch(r"[\w./-]+\.(py|sh)", word) or word == ".ci/run":
                scripts.append((page, word))
    assert scripts
    for page, script in scripts:
        if script.startswith(("/", "$")) or "request" in script:
            continue
        assert os.path.exists(os.path.join(REPO, script)), f"{page}: {script}"


def test_the_links_between_pages_lead_somewhere():
    for page in [*PAGES, pathlib.Path(REPO, "benchmarks", "README.md")]:
        for target in re.findall(r"\]\(([^)#\s]+\.md)(?:#[^)]*)?\)", page.read_text()):
            if target.startswith("http"):
                continue
            assert (page.parent / target).is_file(), f"{page.name} links {target}"
