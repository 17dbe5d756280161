"""Privacy: an offline Moroccan PII scanner and anonymizer (Presidio with a blank spaCy
pipeline and policy-driven recognizers), the consent register, retention, the audit log,
and the gate the suite loader applies.

Policy data (patterns, context words in Arabic, French and Darija, gazetteers) lives in the
top-level ``anonymize/`` folder; see ``anonymize/policy.yaml``.
"""

from __future__ import annotations

from .policy import Policy, load_policy
from .scanner import Finding, Scanner

__all__ = ["Finding", "Policy", "Scanner", "load_policy"]
