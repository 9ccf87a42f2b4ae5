"""Diffusion samplers and their progressive distillation (Salimans & Ho, ICLR 2022).

`schedule.py` holds the continuous-time process and its parametrisations,
`progressive.py` the DDIM sampler and the two-steps-into-one distillation target.
"""
