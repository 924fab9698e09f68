"""The job spec: format v1 (``schema.json``), the frozen model, loading and validation."""

from mrspec.spec.model import (
    AwsSpec,
    CodeSpec,
    InputSpec,
    JobSpec,
    Limits,
    MapSpec,
    OutputSpec,
    ReduceSpec,
)

__all__ = [
    "AwsSpec",
    "CodeSpec",
    "InputSpec",
    "JobSpec",
    "Limits",
    "MapSpec",
    "OutputSpec",
    "ReduceSpec",
]
