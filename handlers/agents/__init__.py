"""Built-in handlers and agents. Each lives in its own module or package here."""

from . import (
    alert_triage,  # noqa: F401
    daily_briefing,  # noqa: F401
    demo,  # noqa: F401
    github_pr_review,  # noqa: F401
    metrics_check,  # noqa: F401
    payment_recovery,  # noqa: F401
    support_triage,  # noqa: F401
)
