"""Training: one entrypoint (`python -m mlops.training`) that runs the same in a GPU pod and locally."""
