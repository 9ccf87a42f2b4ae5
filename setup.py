"""Package metadata for tf-distill: `pip install -e ".[test]"` is the whole set-up."""

from setuptools import find_packages, setup

setup(
    name="tf-distill",
    version="0.1.0",
    description="Knowledge distillation for TensorFlow/Keras: teacher, student, "
    "distilled student, compared and exported for serving.",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    # The shipped configs (configs/ in the checkout) go into the wheel as
    # tf_distill/configs/, where the command finds them from any folder.
    packages=[
        *find_packages(include=["tf_distill", "tf_distill.*"]),
        "tf_distill.configs",
    ],
    package_dir={"tf_distill.configs": "configs"},
    # Capacity curves measured by benchmarks/capacity.py --publish, which the
    # report of --model=all places its student on.
    package_data={"tf_distill.reports": ["curves/*.json"]},
    entry_points={"console_scripts": ["tf-distill = tf_distill.cli:run"]},
    install_requires=[
        "tensorflow>=2.16",
        # TensorFlow 2.21 no longer installs it; the TensorBoard callback needs it.
        "tensorboard",
        "tensorflow-datasets>=4.9",
        # tensorflow-datasets 4.9.10 imports it but does not declare it on 3.11.
        "importlib-resources",
        "numpy",
        "absl-py",
        "ml-collections",
        "scikit-learn",
        "matplotlib",
        # The terminal's progress bars (training/progress.py); tensorflow-datasets
        # and ai-edge-litert already depend on it.
        "tqdm",
        # The LiteRT interpreter that runs the exported .tflite files (TensorFlow's
        # own tf.lite.Interpreter is deprecated in its favour); the converter is
        # still TensorFlow's.
        "ai-edge-litert",
    ],
    extras_require={"test": ["pytest", "pytest-xdist", "ruff"]},
)
