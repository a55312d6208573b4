"""Admin forms that check what the database constraints and the pipeline would refuse later,
and say so next to the field."""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.text import slugify

from events import conf
from handlers import registry

from ..models import Route, Source
from ..models.routes import MAX_DEPTH
from ..webhooks import all_kind_names, get_kind

# Newest first; the webhook kinds accept the two newest while a sender switches over
# (events.webhooks.hmac.ROTATION_SECRETS).
MAX_SECRETS = 2


def mask_secret(secret: str) -> str:
    """Enough to tell secrets apart, never enough to use one: the last four characters of a
    long secret, nothing of a short one."""
    return "•" * 8 + (secret[-4:] if len(secret) >= 16 else "")


class SourceForm(forms.ModelForm):
    """Secrets are write-only: a new one is added in front, the stored ones are never sent to
    the browser."""

    kind = forms.ChoiceField(choices=())
    new_secret = forms.CharField(
        required=False,
        label="New secret",
        max_length=500,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text=(
            "Becomes the current signing secret; the previous one stays accepted until you "
            "drop it, so senders can switch over without failed deliveries."
        ),
    )
    drop_old_secrets = forms.BooleanField(
        required=False,
        label="Drop old secrets",
        help_text="Keep only the newest secret (finish a rotation).",
    )

    class Meta:
        model = Source
        fields = ("slug", "kind", "enabled", "description", "settings", "max_deliveries_per_event")
        widgets = {"description": forms.TextInput(attrs={"class": "vLargeTextField"})}
        labels = {"max_deliveries_per_event": "Max deliveries per event"}
        help_texts = {
            "max_deliveries_per_event": (
                "Most deliveries one event from this source gets. An event matching more "
                "routes runs the first by route name; each other route gets a delivery stored "
                "dead-lettered with the reason, which an operator may requeue. Empty: the "
                "SWITCHYARD_MAX_DELIVERIES_PER_EVENT setting. Applies to events published a "
                "few seconds after saving (SWITCHYARD_LOOKUP_CACHE_SECONDS)."
            ),
            "settings": (
                "A JSON object of options for this source's kind, "
                'e.g. {"header": "X-Signature"}. Leave {} when the kind takes none.'
            ),
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        kind_field = self.fields["kind"]
        assert isinstance(kind_field, forms.ChoiceField)
        kind_field.choices = [(name, name) for name in all_kind_names()]

    def clean_slug(self) -> str:
        slug: str = self.cleaned_data["slug"]
        if slugify(slug) != slug:
            raise forms.ValidationError("Use lowercase letters, digits, dashes and underscores.")
        return slug

    def clean_max_deliveries_per_event(self) -> int | None:
        value: int | None = self.cleaned_data.get("max_deliveries_per_event")
        if value is not None and value < 1:
            raise forms.ValidationError("Must be at least 1 (or empty for the setting).")
        return value

    def clean_settings(self) -> dict[str, Any]:
        value = self.cleaned_data.get("settings")
        if value in (None, ""):
            return {}
        if not isinstance(value, dict):
            raise forms.ValidationError('Must be a JSON object, e.g. {"header": "X-Signature"}.')
        return value

    def clean(self) -> dict[str, Any] | None:
        cleaned = super().clean()
        kind = self.cleaned_data.get("kind")
        verifier = get_kind(kind) if kind else None
        if verifier is not None and not self.rotated_secrets():
            self.add_error("new_secret", f"A {kind} source needs a signing secret.")
        new = self.cleaned_data.get("new_secret") or ""
        if verifier is not None and new:
            problem = verifier.secret_problem(new)
            if problem:
                self.add_error("new_secret", problem)
        # Each key the kind declares as an option is checked as create_source checks it.
        kind_settings = self.cleaned_data.get("settings")
        if verifier is not None and isinstance(kind_settings, dict):
            problem = verifier.settings_problem(kind_settings)
            if problem:
                self.add_error("settings", problem)
        return cleaned

    def rotated_secrets(self) -> list[str]:
        """The secrets to store: the new one first, then the newest old one, unless dropped."""
        secrets = list(self.instance.secrets or [])
        new = self.cleaned_data.get("new_secret") or ""
        if new:
            secrets = [new, *(s for s in secrets if s != new)]
        if self.cleaned_data.get("drop_old_secrets"):
            secrets = secrets[:1]
        return secrets[:MAX_SECRETS]

    def save(self, commit: bool = True) -> Source:
        self.instance.secrets = self.rotated_secrets()
        source: Source = super().save(commit=commit)
        return source


class RouteForm(forms.ModelForm):
    handler = forms.ChoiceField(choices=())
    source_kinds = forms.MultipleChoiceField(
        choices=(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label="Source kinds",
        help_text="Take events only from sources of these kinds. None ticked, and no source "
        "below: events from any source (within what the handler accepts).",
    )
    source_slugs = forms.MultipleChoiceField(
        choices=(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label="Sources",
        help_text="Take events from these sources too, whatever their kind.",
    )

    class Meta:
        model = Route
        fields = (
            "name",
            "event_type",
            "payload_filter",
            "handler",
            "source_kinds",
            "source_slugs",
            "enabled",
            "max_attempts",
            "backoff_base",
            "backoff_max",
            "backoff_jitter",
            "time_limit",
            "queue",
            "stale_after",
            "max_emits",
            "max_depth",
            "rate_limit",
            "rate_burst",
            "resources",
            "max_concurrency",
            "ordered_by_key",
            "on_dead_letter",
        )
        help_texts = {
            "max_emits": (
                "Follow-up events one delivery of this route may emit (ctx.emit). Over it the "
                "delivery is dead-lettered and none is published. Empty: the "
                "SWITCHYARD_MAX_EMITS_PER_DELIVERY setting. Applies from the next attempt."
            ),
            "max_depth": (
                "How deep a chain of follow-ups this route's deliveries may extend: an event "
                "from outside is depth 0, its follow-ups 1, theirs 2. A delivery whose "
                "follow-ups would be deeper is dead-lettered and none is published; 0: its "
                "deliveries may emit none. Empty: the SWITCHYARD_MAX_EMIT_DEPTH setting. "
                "Applies from the next attempt."
            ),
            "queue": (
                "The Celery queue this route's deliveries are sent to. A worker must consume "
                "it (celery worker -Q default,maintenance,<queue>), or its deliveries wait and "
                "the sweeper keeps re-sending them."
            ),
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        handler_field = self.fields["handler"]
        assert isinstance(handler_field, forms.ChoiceField)
        handler_field.choices = [("", "---------")] + [
            (spec.name, f"{spec.name}: {spec.description}" if spec.description else spec.name)
            for spec in registry.all_handlers()
        ]
        kinds_field = self.fields["source_kinds"]
        assert isinstance(kinds_field, forms.MultipleChoiceField)
        kinds_field.choices = [(name, name) for name in all_kind_names()]
        slugs_field = self.fields["source_slugs"]
        assert isinstance(slugs_field, forms.MultipleChoiceField)
        # Every source, and any slug the route names whose source is gone, so it can be unticked.
        slugs = set(Source.objects.values_list("slug", flat=True))
        slugs.update(self.instance.source_slugs or ())
        slugs_field.choices = [(slug, slug) for slug in sorted(slugs)]
        # Only an ordered route reads it: a form without it keeps the default.
        self.fields["on_dead_letter"].required = False

    def clean_payload_filter(self) -> dict[str, Any]:
        value = self.cleaned_data.get("payload_filter")
        if value in (None, ""):
            return {}
        if not isinstance(value, dict):
            raise forms.ValidationError(
                'Must be a JSON object, e.g. {"action": ["opened", "reopened"]}.'
            )
        return value

    def clean_time_limit(self) -> int:
        value: int = self.cleaned_data["time_limit"]
        limit = conf.MAX_TIME_LIMIT.get()
        if value < 1:
            raise forms.ValidationError("Must be at least 1 second.")
        if value > limit:
            raise forms.ValidationError(
                f"At most {limit} seconds (SWITCHYARD_MAX_TIME_LIMIT); the broker's visibility "
                "timeout is sized for it."
            )
        return value

    def clean_max_depth(self) -> int | None:
        value: int | None = self.cleaned_data.get("max_depth")
        if value is not None and not 0 <= value <= MAX_DEPTH:
            raise forms.ValidationError(
                f"Must be from 0 to {MAX_DEPTH} (an event's depth is a small integer), or empty "
                "for the setting."
            )
        return value

    def clean_backoff_base(self) -> float:
        value: float = self.cleaned_data["backoff_base"]
        if value < 0:
            raise forms.ValidationError("Must not be negative.")
        return value

    def clean_backoff_max(self) -> float:
        value: float = self.cleaned_data["backoff_max"]
        limit = conf.MAX_BACKOFF.get()
        if value > limit:
            raise forms.ValidationError(
                f"At most {limit} seconds (SWITCHYARD_MAX_BACKOFF); the broker's visibility "
                "timeout is sized for it."
            )
        return value

    def clean_backoff_jitter(self) -> float:
        value: float = self.cleaned_data["backoff_jitter"]
        if not 0 <= value <= 1:
            raise forms.ValidationError("Must be between 0 and 1.")
        return value

    def clean_rate_limit(self) -> float | None:
        value: float | None = self.cleaned_data.get("rate_limit")
        if value is not None and value <= 0:
            raise forms.ValidationError("Must be more than 0 (or empty for no limit).")
        return value

    def clean_on_dead_letter(self) -> str:
        return str(self.cleaned_data.get("on_dead_letter") or "block")

    def clean_resources(self) -> list[str]:
        value = self.cleaned_data.get("resources")
        if value in (None, ""):
            return []
        if not isinstance(value, list) or not all(
            isinstance(name, str) and registry.RESOURCE_RE.fullmatch(name) for name in value
        ):
            raise forms.ValidationError('Must be a JSON list of resource names, e.g. ["github"].')
        return value

    def clean(self) -> dict[str, Any] | None:
        cleaned = super().clean()
        self._check_sources_against_handler()
        base = self.cleaned_data.get("backoff_base")
        cap = self.cleaned_data.get("backoff_max")
        if base is not None and cap is not None and cap < base:
            self.add_error("backoff_max", "Must not be less than the backoff base.")
        return cleaned

    def _check_sources_against_handler(self) -> None:
        """A handler that names its source kinds is held to them on every route: say so here
        rather than save a route whose other sources would silently get nothing."""
        spec = registry.get(self.cleaned_data.get("handler") or "")
        if spec is None or not spec.sources:
            return
        allowed = ", ".join(spec.sources)
        foreign = [k for k in self.cleaned_data.get("source_kinds") or () if k not in spec.sources]
        if foreign:
            self.add_error(
                "source_kinds",
                f"{spec.name} takes events only from {allowed} sources; untick "
                f"{', '.join(foreign)}.",
            )
        slugs = self.cleaned_data.get("source_slugs") or ()
        kinds = dict(Source.objects.filter(slug__in=slugs).values_list("slug", "kind"))
        foreign = [slug for slug in slugs if kinds.get(slug) not in spec.sources]
        if foreign:
            self.add_error(
                "source_slugs",
                f"{spec.name} takes events only from {allowed} sources; "
                f"{', '.join(foreign)} {'is' if len(foreign) == 1 else 'are'} not one.",
            )
