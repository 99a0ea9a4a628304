"""Policy: YAML files validated by pydantic; evaluation turns facts into one Verdict."""

from leakguard.policy.engine import evaluate
from leakguard.policy.loader import Policy, PolicyError, Problem, default_policy_path, load_policy

__all__ = ["Policy", "PolicyError", "Problem", "default_policy_path", "evaluate", "load_policy"]
