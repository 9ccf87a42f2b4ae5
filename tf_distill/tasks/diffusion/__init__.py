"""Diffusion samplers and their progressive distillation (Salimans & Ho, ICLR 2022).

`schedule.py` holds the continuous-time process and its parametrisations,
`progressive.py` the DDIM sampler and the two-steps-into-one distillation target,
`unet.py` the network, `trainers.py` the two train steps; `task.py` trains and
measures a run's models (`quality.py`, `sampler.py`), `modes.py` is what
`main.py --model=...` runs for a config with `task = "diffusion"`, `report.py`
the comparison it writes, `settings.py` the config read and validated.
"""
