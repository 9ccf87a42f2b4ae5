"""The run directory's layout (rundir.py) and how files are written into it
(files.py)."""
