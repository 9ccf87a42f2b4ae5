"""Diffusion samplers and their progressive distillation (Salimans & Ho, ICLR 2022).

`schedule.py` holds the continuous-time process and its parametrisations,
`progressive.py` the DDIM sampler and the two-steps-into-one distillation target,
`unet.py` the network, `train_steps.py` the two train steps; `trainer.py` trains
and measures a run's samplers (`quality.py`, `sampler.py`), `modes.py` is what
`main.py --model=...` runs for a config with `task = "diffusion"`, `report.py`
the comparison it writes, `settings.py` the config read and validated.
"""

from tf_distill.tasks import Task
from tf_distill.tasks.diffusion import modes, report, settings

TASK = Task(
    name="diffusion",
    modes=modes.MODES,
    validate=settings.validate,
    summary=report.summary,
)
