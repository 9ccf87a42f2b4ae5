"""The package as a user installs it: a wheel (not -e), its command run from a
folder outside the checkout, with a shipped config named and a config file of
the user's own that starts from a shipped one."""

import os
import subprocess
import sys

import pytest

from tests.conftest import REPO, tiny_flags


@pytest.mark.slow
def test_the_wheel_installs_a_command_that_runs_from_any_folder(tmp_path):
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path / "dist"),
            REPO,
        ],
        check=True,
        capture_output=True,
    )
    [wheel] = (tmp_path / "dist").glob("tf_distill-*.whl")
    venv = tmp_path / "venv"
    # The installed dependencies are reused; only the wheel goes in the venv.
    subprocess.run(
        [sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True
    )
    python = venv / "bin" / "python"
    subprocess.run(
        [python, "-m", "pip", "install", "--no-deps", "--no-index", "-q", str(wheel)],
        check=True,
        capture_output=True,
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
    env.pop("PYTHONPATH", None)
    where = subprocess.run(
        [
            python,
            "-c",
            "import tf_distill; print(tf_distill.__file__)\n"
            "from tf_distill.reports import capacity\n"  # the published curves
            "assert capacity.published('fashion_mnist')['sizes']",
        ],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert where.startswith(str(venv)), where  # the wheel's, not the checkout's

    (elsewhere / "mine.py").write_text(
        "from configs import default\n\n\n"
        "def get_config():\n"
        "    config = default.base_config()\n"
        "    config.name = 'mine'\n"
        "    return config\n"
    )
    for command, config in (
        ([str(venv / "bin" / "tf-distill")], "digits_all_labels"),  # a shipped name
        ([str(python), "-m", "tf_distill"], "mine.py"),  # the user's own file
    ):
        workdir = elsewhere / config.removesuffix(".py")
        proc = subprocess.run(
            [
                *command,
                "--model=teacher",
                f"--config={config}",
                f"--workdir={workdir}",
                *tiny_flags(),
            ],
            cwd=elsewhere,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert (workdir / "teacher" / "model.keras").is_file()
        assert f"--model=teacher done. Run directory: {workdir}" in proc.stdout
