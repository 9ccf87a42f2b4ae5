"""Fitting a model: the optimiser, callbacks, backups a crashed run resumes from,
and the distribution strategy."""
