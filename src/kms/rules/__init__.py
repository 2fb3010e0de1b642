"""Rules and alerting: Prometheus-format rule files (PromQL and LogQL metric rules), evaluation
like Prometheus's ruler, the rules/alerts and ruler configuration APIs, and notification to
Alertmanager (API v2) or a webhook.

Modules: ``load`` (rule files -> specs, validation), ``template`` and ``humanize`` (Go-template
labels and annotations), ``alerting`` (alert states), ``group`` (evaluating one group),
``manager`` (the ruler: groups per tenant, threads, reload), ``store`` (groups set through the
API), ``notify`` (Alertmanager and webhook senders), ``api`` (HTTP routes).
"""

from kms.rules.api import rules_routes
from kms.rules.group import EvalContext, Group
from kms.rules.load import GroupSpec, RuleFileError, RuleSpec, load_files, parse_groups
from kms.rules.manager import Ruler, RulerSettings
from kms.rules.notify import Notifier
from kms.rules.store import RuleStore

__all__ = [
    "Ruler", "RulerSettings", "EvalContext", "Group", "GroupSpec", "RuleSpec", "RuleFileError", "load_files",
    "parse_groups", "Notifier", "RuleStore", "rules_routes",
]
