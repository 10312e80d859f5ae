"""The tutorial-sized function that ``make runtime-bench`` (bench/runtime.py) deploys beside
ours: what an S3-triggered Lambda tutorial writes. One GET, ``json.loads`` (floats), ``sum``,
one PUT; the client is created in the handler, as ours does (docs/behaviour.md, Entry point)."""

from __future__ import annotations

import json
import urllib.parse
from typing import Any

import boto3


def lambda_handler(event: dict[str, Any], context: object) -> dict[str, Any]:
    s3 = boto3.client("s3")
    record = event["Records"][0]["s3"]
    bucket = record["bucket"]["name"]
    key = urllib.parse.unquote_plus(record["object"]["key"])
    data = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    total = sum(product["price"] for product in data["products"])
    s3.put_object(Bucket=bucket, Key="tutorial/total_price.json", Body=json.dumps({"total": total}))
    return {"total": total}
