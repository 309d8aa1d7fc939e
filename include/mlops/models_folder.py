"""The models folder as a whole: every model file loaded, and the broken ones named.

Kept free of Airflow imports: ``dags/mlops_model_check.py`` calls :func:`check_model_files` at every parse of
the DAG folder, so its import cost is paid by the dag-processor once per parse.
"""

from __future__ import annotations

from mlops.config import ConfigError, Settings, load_settings, model_files


def load_models() -> tuple[dict[str, Settings], dict[str, str]]:
    """Every model file loaded: ``({name: settings}, {file: why it cannot be loaded})``.

    Two models may not share a ``dataset.name``: the data registry keeps each dataset's days in one folder
    (``data/<dataset>/dt=D``), so the second would train on the first one's snapshots. The later file (by
    name) is refused, naming the earlier one.
    """
    loaded: dict[str, Settings] = {}
    broken: dict[str, str] = {}
    owners: dict[str, str] = {}
    for name, path in model_files().items():
        try:
            settings = load_settings(model=name)
        except ConfigError as exc:
            broken[str(path)] = str(exc)
            continue
        owner = owners.setdefault(settings.dataset.name, name)
        if owner != name:
            broken[str(path)] = (
                f"{path}: dataset.name {settings.dataset.name!r} is already model {owner!r}'s: each model needs "
                "its own dataset name (its folder in the data registry)"
            )
            continue
        loaded[name] = settings
    return loaded, broken


def check_model_files() -> None:
    """Raise one :class:`ConfigError` naming every broken model file and key (Airflow shows it as an import error)."""
    _, broken = load_models()
    if broken:
        details = "\n".join(f"- {path}: {why}" for path, why in broken.items())
        raise ConfigError(f"{len(broken)} model file(s) cannot be loaded; their DAGs are not generated:\n{details}")
