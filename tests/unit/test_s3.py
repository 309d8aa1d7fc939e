"""The S3 path end to end, through boto3/s3fs against moto's server over HTTP: land, validate, quarantine, DVC."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from pathlib import Path

import boto3
import pytest

from mlops.config import load_settings
from mlops.data.faults import inject_fault
from mlops.data.lake import Lake
from mlops.data.landing import land_days
from mlops.validation import ValidationFailed, check_partition, validate_and_version


def _keys(s3, bucket: str, prefix: str) -> list[str]:  # type: ignore[no-untyped-def]
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return [item["Key"] for page in pages for item in page.get("Contents", [])]


def test_s3_lake_validates_quarantines_and_versions(s3_env: dict[str, str], tmp_path: Path) -> None:
    s3 = boto3.client("s3", endpoint_url=s3_env["AWS_ENDPOINT_URL"])
    lake_bucket, dvc_bucket = f"lake-{uuid.uuid4().hex[:8]}", f"dvc-{uuid.uuid4().hex[:8]}"
    for bucket in (lake_bucket, dvc_bucket):
        s3.create_bucket(Bucket=bucket)
    settings = load_settings(
        env={
            "MLOPS_HOME": str(tmp_path),
            "MLOPS__DATASET__LAKE_URI": f"s3://{lake_bucket}/card",
            "MLOPS__VERSIONING__REMOTE_URL": f"s3://{dvc_bucket}/card",
            "MLOPS__STORAGE__S3_ENDPOINT_URL": s3_env["AWS_ENDPOINT_URL"],
        }
    )
    good, bad = dt.date(2026, 11, 1), dt.date(2026, 11, 2)
    land_days(settings, good, days=2, rows_per_day=2_000, seed=11)
    assert "card/raw/dt=2026-11-01/_SUCCESS" in _keys(s3, lake_bucket, "card/raw/")

    marker = validate_and_version(settings, good)
    stored = json.loads(s3.get_object(Bucket=lake_bucket, Key="card/raw/dt=2026-11-01/_VALIDATED.json")["Body"].read())
    assert stored["dvc"]["revision"] == marker["dvc"]["revision"] and stored["rows"] == 2_000
    assert _keys(s3, dvc_bucket, "card/"), "the DVC remote on S3 holds the snapshot"
    assert marker["data_docs"].startswith(f"s3://{lake_bucket}/card/reports/data_docs/validations/")
    assert any(key.endswith(".html") for key in _keys(s3, lake_bucket, "card/reports/data_docs/validations/"))

    inject_fault(Lake.from_settings(settings), bad, "unknown_category")
    with pytest.raises(ValidationFailed, match=r"\[allowed_values\] column 'channel'"):
        check_partition(settings, bad)
    assert _keys(s3, lake_bucket, "card/raw/dt=2026-11-02/") == []
    quarantined = _keys(s3, lake_bucket, "card/quarantine/dt=2026-11-02/")
    assert "card/quarantine/dt=2026-11-02/reason.json" in quarantined
    assert "card/quarantine/dt=2026-11-02/part-00000.parquet" in quarantined
    reason = json.loads(
        s3.get_object(Bucket=lake_bucket, Key="card/quarantine/dt=2026-11-02/reason.json")["Body"].read()
    )
    assert (
        reason["failures"][0]["column"] == "channel"
        and reason["moved_from"] == f"s3://{lake_bucket}/card/raw/dt=2026-11-02"
    )
