"""``python -m mlops.training``: the training entrypoint, identical in the GPU pod and in a local subprocess.

It reads a :class:`~mlops.training.request.TrainingRequest` from its arguments, resolves the snapshot when
none is given, trains, and logs everything to MLflow. The last line on stdout is the result as JSON; with
the kubernetes backend the DAG finds the run in MLflow instead.

Exit codes (:mod:`mlops.training.request`): 0 trained; 2 bad request or config (as argparse does for bad
flags); 4 no usable training data yet (the DAG's task ends skipped); 1 any crash (retried).
"""

from __future__ import annotations

import json
import logging
import signal
import sys

from mlops.config import ConfigError, load_settings
from mlops.redact import install_log_redaction, redact_text
from mlops.training.request import EXIT_BAD_REQUEST, EXIT_NO_TRAINING_DATA, BadTrainingRequest, TrainingRequest


def main(argv: list[str] | None = None) -> int:
    # As PID 1 in a pod Python ignores SIGTERM; exit promptly (and cleanly for MLflow) when the pod is deleted.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    install_log_redaction()  # the pod's and the subprocess's log go to the task log: no secret in them

    try:
        request = TrainingRequest.from_argv(argv)
        # The same allow-list as the DAG: a request can never point the trainer (and the credentials in its
        # environment) at another MLflow, nor relax the gates.
        settings = load_settings(run_overrides=request.overrides)
    except (ConfigError, BadTrainingRequest) as exc:
        print(f"mlops.training: {redact_text(str(exc))}", file=sys.stderr)
        return EXIT_BAD_REQUEST

    from mlops.training.snapshot import NoTrainingData, TrainingSnapshot, resolve_snapshot
    from mlops.training.train import train

    try:
        snapshot = (
            TrainingSnapshot.from_dict(request.snapshot)
            if request.snapshot is not None
            else resolve_snapshot(settings, request.day)
        )
        result = train(settings, snapshot, request.trigger, device=request.device, overrides=request.overrides)
    except NoTrainingData as exc:
        print(f"mlops.training: no usable training data: {redact_text(str(exc))}", file=sys.stderr)
        return EXIT_NO_TRAINING_DATA
    print(json.dumps(result.to_dict()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
