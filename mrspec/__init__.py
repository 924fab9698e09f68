"""mrspec: serverless MapReduce on AWS from a reviewed, declarative job spec."""

__version__ = "0.1.0"
