"""S3 access: dagster-aws's resource built from the settings, and the core object store around it."""

import dagster as dg
from dagster_aws.s3 import S3Resource

from shed_pipeline.core.objectstore import ObjectStore
from shed_pipeline.settings import Settings


def object_store(s3: S3Resource, log=None, attempts: int = 5) -> ObjectStore:
    """The pure-core S3 wrapper (retries with backoff, clear errors) around dagster-aws's client."""
    return ObjectStore(s3.get_client(), attempts=attempts, log=log)


def s3_resource(settings: Settings) -> S3Resource:
    """dagster-aws's S3Resource for `settings.s3`. Credentials are passed as `EnvVar`s (the UI shows
    the variable's name, never its value); without AWS_ACCESS_KEY_ID, boto3's default chain applies
    (profile, IAM role for service accounts on EKS, instance role)."""
    keys = {}
    if settings.s3.access_key_in_env:
        keys = {
            "aws_access_key_id": dg.EnvVar("AWS_ACCESS_KEY_ID"),
            "aws_secret_access_key": dg.EnvVar("AWS_SECRET_ACCESS_KEY"),
        }
        if settings.s3.session_token_in_env:
            keys["aws_session_token"] = dg.EnvVar("AWS_SESSION_TOKEN")
    return S3Resource(
        endpoint_url=settings.s3.endpoint_url,
        region_name=settings.s3.region,
        # One retry layer: ObjectStore retries with logged backoff and classifies errors; botocore
        # retrying inside each of its attempts as well would multiply the wait (5 x 5 tries).
        # (botocore counts retries here: 0 = one send per ObjectStore attempt.)
        max_attempts=0,
        **keys,
    )
