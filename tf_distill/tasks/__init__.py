"""Tasks: what a config distils (config.task), each a package with one `TASK`."""
