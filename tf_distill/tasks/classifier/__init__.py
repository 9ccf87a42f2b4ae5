"""The classifier task: teacher logits into a smaller classifier.

`modes.py` holds what `main.py --model=...` runs, `session.py` what a mode works
with, `trainer.py` one model's life (build, fit, keep, save, export),
`settings.py` and `checks.py` / `distill_checks.py` the config read and checked.
"""

from tf_distill.tasks import Task
from tf_distill.tasks.classifier import checks, modes

TASK = Task(
    name="classifier",
    modes=modes.MODES,
    validate=checks.validate,
    summary=modes.summary,
)
