"""`python -m tf_distill --model=...`: the command line (tf_distill/cli.py)."""

from tf_distill import cli

cli.run()
