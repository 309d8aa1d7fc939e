"""What a training run is asked to do: one typed hand-off between the DAG and the trainer.

The DAG builds a :class:`TrainingRequest` once (``resolve_snapshot``), hands it on through XCom as
strings (:meth:`TrainingRequest.to_strings`), and the trainer rebuilds it from its command line
(:meth:`TrainingRequest.from_argv`). The local subprocess runs :meth:`TrainingRequest.to_argv`; the GPU
pod runs :meth:`TrainingRequest.templated_argv`, the same flags rendered by Airflow from that XCom. One
table of flags (:data:`FLAGS`) serves all three, so the pod and the local run cannot drift apart.

A request is safe to put on a command line or in a pod spec: its ``overrides`` pass the run allow-list
(:func:`mlops.config.check_run_overrides`, the trainer never accepts an MLflow URI or gates from a run)
and its ``trigger`` is redacted (:mod:`mlops.redact`).

Imported at DAG-parse time: standard library, :mod:`mlops.errors`, :mod:`mlops.config` and :mod:`mlops.redact`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from mlops.config import check_run_overrides
from mlops.errors import InputError
from mlops.redact import redact

Device = Literal["cpu", "cuda"]
DEVICES: tuple[Device, ...] = ("cpu", "cuda")

#: Field -> command-line flag of ``python -m mlops.training``, in argv order.
FLAGS: dict[str, str] = {
    "as_of": "--as-of",
    "snapshot": "--snapshot-json",
    "trigger": "--trigger-json",
    "overrides": "--conf-json",
    "device": "--device",
}
_JSON_FIELDS = ("snapshot", "trigger", "overrides")


#: Exit codes of ``python -m mlops.training`` (the contract with the local runner and the pod operator): 0 trained;
#: 2 bad request or config (as argparse does for bad flags), never retried; 4 no usable training data yet (too few
#: labelled days or positives, one class), the task ends skipped; anything else (1: a crash) is retried.
EXIT_BAD_REQUEST = 2
EXIT_NO_TRAINING_DATA = 4


class BadTrainingRequest(InputError):
    """The request cannot be run as given (malformed date, JSON or device)."""


@dataclass(frozen=True)
class TrainingRequest:
    """Train on data known by ``as_of``, on ``snapshot`` (None: resolve it from the lake), because of ``trigger``.

    ``overrides`` are the run's config overrides (applied on top of the deployment's config by the
    trainer, allow-listed: :class:`~mlops.config.RunOverrides`); ``trigger`` carries the reason, drift
    evidence and Airflow ids recorded as lineage (secrets masked).
    """

    as_of: str
    snapshot: dict[str, Any] | None = None
    trigger: dict[str, Any] = field(default_factory=dict)
    overrides: dict[str, Any] = field(default_factory=dict)
    device: Device = "cpu"

    def __post_init__(self) -> None:
        try:
            dt.date.fromisoformat(self.as_of)
        except (TypeError, ValueError):
            raise BadTrainingRequest(f"as_of must be a date YYYY-MM-DD, got {self.as_of!r}") from None
        if self.device not in DEVICES:
            raise BadTrainingRequest(f"device must be one of {', '.join(DEVICES)}, got {self.device!r}")
        for name in _JSON_FIELDS:
            value = getattr(self, name)
            if value is not None and not isinstance(value, dict):
                raise BadTrainingRequest(f"{name} must be a JSON object, got {type(value).__name__}")
        check_run_overrides(self.overrides)  # ConfigError names a refused key: the trainer never runs it
        object.__setattr__(self, "trigger", redact(self.trigger))

    @property
    def day(self) -> dt.date:
        return dt.date.fromisoformat(self.as_of)

    # -- strings: XCom and argv ----------------------------------------------------------------------------
    def to_strings(self) -> dict[str, str]:
        """Every field as a string (JSON for the mappings; an empty string for "no snapshot")."""
        out: dict[str, str] = {"as_of": self.as_of, "device": self.device}
        for name in _JSON_FIELDS:
            value = getattr(self, name)
            out[name] = "" if value is None else json.dumps(value, sort_keys=True)
        return out

    @classmethod
    def from_strings(cls, values: dict[str, str]) -> TrainingRequest:
        parsed: dict[str, Any] = {"as_of": values["as_of"], "device": values.get("device") or "cpu"}
        for name in _JSON_FIELDS:
            text = values.get(name) or ""
            try:
                parsed[name] = json.loads(text) if text else (None if name == "snapshot" else {})
            except json.JSONDecodeError as exc:
                raise BadTrainingRequest(f"{FLAGS[name]}: not valid JSON ({exc})") from None
        return cls(**parsed)

    def to_argv(self) -> list[str]:
        """The arguments of ``python -m mlops.training`` for this request."""
        strings = self.to_strings()
        return [item for name, flag in FLAGS.items() if strings[name] for item in (flag, strings[name])]

    @staticmethod
    def templated_argv(expression: str) -> list[str]:
        """The same arguments as Jinja templates reading ``expression`` (a dict from :meth:`to_strings`).

        For operators that render their arguments at run time (the GPU pod):
        ``templated_argv("ti.xcom_pull(task_ids='resolve_snapshot')")``.
        """
        return [item for name, flag in FLAGS.items() for item in (flag, f"{{{{ {expression}['{name}'] }}}}")]

    @classmethod
    def parser(cls) -> argparse.ArgumentParser:
        parser = argparse.ArgumentParser(
            prog="python -m mlops.training",
            description="Train XGBoost on a DVC-pinned snapshot and log everything to MLflow "
            "(the same entrypoint in the GPU pod and locally). Prints the result as JSON on the last line.",
        )
        helps = {
            "as_of": "train on data known by this day (YYYY-MM-DD)",
            "snapshot": "a resolved TrainingSnapshot (default: resolve it from the lake)",
            "trigger": "why this run: reason, drift evidence, Airflow ids (JSON object)",
            "overrides": "config overrides of this run (JSON object)",
        }
        for name, text in helps.items():
            parser.add_argument(FLAGS[name], dest=name, required=name == "as_of", default="", help=text)
        parser.add_argument(FLAGS["device"], dest="device", choices=DEVICES, default="cpu", help="XGBoost device")
        return parser

    @classmethod
    def from_argv(cls, argv: Sequence[str] | None = None) -> TrainingRequest:
        args = vars(cls.parser().parse_args(argv))
        return cls.from_strings({name: args[name] or "" for name in FLAGS})
