"""The AWS target: lowering a job to a ``StackModel``, the state machine, IAM, the Lambda
package and handlers, and the Pulumi component that emits the model.

Only ``handlers`` (and what it imports) runs inside Lambda; keep this ``__init__`` empty
so importing ``mrspec.aws.handlers`` pulls in nothing else.
"""
