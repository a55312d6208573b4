"""The schedule form: a django-celery-beat periodic task with only what a schedule needs, its
overlap policy beside it, and input checked before beat ever sees it."""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.core.exceptions import NON_FIELD_ERRORS

from ..models import OverlapPolicy, Schedule, SchedulePolicy
from ..publish import PublishError, check_payload
from ..schedules import NAME_HELP, NAME_RE, SCHEDULE_TASK


def _refuse_constant(value: str) -> Any:
    raise ValueError(f"{value} is not valid JSON")


class ScheduleForm(forms.ModelForm):
    overlap = forms.ChoiceField(
        choices=OverlapPolicy.choices,
        initial=OverlapPolicy.SKIP,
        help_text=(
            "skip: a tick that comes while an earlier run of this schedule still has a "
            "delivery pending, running or retrying is recorded as skipped. allow: it runs anyway."
        ),
    )

    class Meta:
        model = Schedule
        fields = (
            "name",
            "enabled",
            "description",
            "crontab",
            "interval",
            "start_time",
            "kwargs",
            "expire_seconds",
            "queue",
        )
        # Switchyard's words, not django-celery-beat's (its help texts speak of tasks and
        # "Set to False"). The admin renders help texts as HTML: no angle brackets in them.
        labels = {
            "name": "Name",
            "enabled": "Enabled",
            "description": "Description",
            "crontab": "Crontab",
            "interval": "Interval",
            "start_time": "Not before",
            "kwargs": "Arguments",
            "expire_seconds": "Expire after (seconds)",
            "queue": "Queue",
        }
        help_texts = {
            "name": f"Each tick publishes an event of type schedule.NAME. {NAME_HELP}.",
            "enabled": "Untick to pause the schedule: no ticks until it is enabled again.",
            "description": "For the people who read this list; not part of the event.",
            "crontab": (
                "Set a crontab or an interval, not both. A crontab runs in its own time zone "
                "(daylight saving included). A crontab may be shared with other tasks, so it "
                "is never edited from here: pick another or add a new one."
            ),
            "interval": (
                "An interval runs on multiples of itself since 1970-01-01 UTC (every 5 "
                "minutes: :00, :05, ...)."
            ),
            "start_time": "No tick before this time; empty to start now.",
            "kwargs": 'The event\'s payload, a JSON object, e.g. {"report": "sales"}.',
            "expire_seconds": (
                "A tick that runs later than this after its due time (it waited for a worker, "
                "or beat was down) is recorded as expired instead of run. Empty: the "
                "SWITCHYARD_SCHEDULE_EXPIRES default."
            ),
            "queue": "The Celery queue for the tick itself; empty for the default queue.",
        }
        widgets = {"kwargs": forms.Textarea(attrs={"rows": 4, "cols": 60})}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not self.instance.task:
            self.instance.task = SCHEDULE_TASK
        if self.instance.pk:
            policy = SchedulePolicy.objects.filter(periodic_task_id=self.instance.pk).first()
            self.fields["overlap"].initial = policy.overlap if policy else OverlapPolicy.SKIP

    def clean_name(self) -> str:
        name = str(self.cleaned_data.get("name") or "")
        if not NAME_RE.fullmatch(name):
            raise forms.ValidationError(f"Use {NAME_HELP}: it becomes the event type.")
        return name

    def clean_kwargs(self) -> str:
        raw = str(self.cleaned_data.get("kwargs") or "").strip() or "{}"
        try:
            value = json.loads(raw, parse_constant=_refuse_constant)
        except ValueError as exc:
            raise forms.ValidationError(f"Not valid JSON: {exc}") from None
        if not isinstance(value, dict):
            raise forms.ValidationError("The arguments must be a JSON object: {...}.")
        try:
            check_payload(value)
        except PublishError as exc:
            raise forms.ValidationError(str(exc)) from None
        return json.dumps(value)

    def clean_expire_seconds(self) -> int | None:
        value = self.cleaned_data.get("expire_seconds")
        if value is not None and value < 1:
            raise forms.ValidationError("At least 1 second, or empty for the default.")
        return value

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        chosen = [field for field in ("crontab", "interval") if data.get(field)]
        if not chosen:
            raise forms.ValidationError("Set a crontab or an interval.")
        if len(chosen) > 1:
            raise forms.ValidationError("Set a crontab or an interval, not both.")
        return data

    def validate_unique(self) -> None:
        # django-celery-beat's own check repeats, less clearly, what clean() already said.
        if NON_FIELD_ERRORS in self.errors:
            return
        super().validate_unique()

    def save_policy(self) -> SchedulePolicy:
        policy, _ = SchedulePolicy.objects.update_or_create(
            periodic_task_id=self.instance.pk, defaults={"overlap": self.cleaned_data["overlap"]}
        )
        return policy
