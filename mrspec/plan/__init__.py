"""The job plan: the concrete work a spec describes, as pure data."""

from mrspec.plan.model import JobPlan, MapTask, ReduceTask, Split
from mrspec.plan.planner import list_input, make_plan, plan_job

__all__ = ["JobPlan", "MapTask", "ReduceTask", "Split", "list_input", "make_plan", "plan_job"]
