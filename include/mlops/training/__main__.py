"""``python -m mlops.training``: the training entrypoint, identical in the GPU pod and in a local subprocess.

It resolves (or receives) the snapshot, trains, and logs everything to MLflow. The last line on
stdout is the result as JSON; with the kubernetes backend the DAG finds the run in MLflow instead.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import signal
import sys

from mlops.config import ConfigError, load_settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mlops.training", description=__doc__.splitlines()[0])
    parser.add_argument("--as-of", type=dt.date.fromisoformat, required=True, help="train on data known by this day")
    parser.add_argument("--snapshot-json", help="a resolved TrainingSnapshot (default: resolve from the lake)")
    parser.add_argument("--trigger-json", default="{}", help="why this run: reason, drift evidence, Airflow ids")
    parser.add_argument("--conf-json", default="{}", help="config overrides (the DAG run's conf)")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu", help="XGBoost device")
    args = parser.parse_args(argv)
    # As PID 1 in a pod Python ignores SIGTERM; exit promptly (and cleanly for MLflow) when the pod is deleted.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    from mlops.training.snapshot import NoTrainingData, TrainingSnapshot, resolve_snapshot
    from mlops.training.train import train

    try:
        settings = load_settings(conf=json.loads(args.conf_json))
        snapshot = (
            TrainingSnapshot.from_dict(json.loads(args.snapshot_json))
            if args.snapshot_json
            else resolve_snapshot(settings, args.as_of)
        )
        result = train(settings, snapshot, json.loads(args.trigger_json), device=args.device)
    except ConfigError as exc:
        print(f"mlops.training: {exc}", file=sys.stderr)
        return 2
    except NoTrainingData as exc:
        print(f"mlops.training: no usable training data: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(result.to_dict()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
