"""The shipped configs. Each task's configs start from one reference config's
`base_config()`, which holds every key of the task with its default; a config of
a user's, written before a key existed, is named by `missing_keys`."""

REFERENCE = {"classifier": "default", "diffusion": "digits_diffusion"}


def missing_keys(config) -> list[str]:
    """The keys (as `config.a.b`) of its task's reference config that `config`
    lacks; none for an unknown task, which the run itself names."""
    import importlib

    name = REFERENCE.get(config.get("task", "classifier"))
    if name is None:
        return []
    reference = importlib.import_module(f"configs.{name}").base_config()
    return _missing(reference, config, "config")


def _missing(reference, config, prefix: str) -> list[str]:
    out = []
    for key, value in reference.items():
        if key not in config:
            out.append(f"{prefix}.{key}")
        elif hasattr(value, "items") and hasattr(config[key], "items"):
            out += _missing(value, config[key], f"{prefix}.{key}")
    return out
