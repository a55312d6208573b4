"""Agent models: which model each agent handler calls, overriding the agent's own choice.
A change applies from the next run (handlers.overrides)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin

from handlers import conf

from .. import registry
from ..llm import get_agent
from ..models import AgentConfig
from ..overrides import known_models, model_problem


def agent_choices(current: str | None) -> list[tuple[str, str]]:
    """The agent handlers registered here, for a form's handler field; ``current`` stays listed
    when its agent is no longer deployed, so its row can still be edited."""
    agents = [spec.name for spec in registry.all_handlers() if get_agent(spec.name)]
    if current and current not in agents:
        agents.append(current)
    return [(name, name) for name in sorted(agents)]


class AgentConfigForm(forms.ModelForm):
    handler = forms.ChoiceField(choices=(), help_text="An agent handler registered here.")

    class Meta:
        model = AgentConfig
        fields = ("handler", "model")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        handler_field = self.fields["handler"]
        assert isinstance(handler_field, forms.ChoiceField)
        handler_field.choices = agent_choices(self.instance.handler if self.instance.pk else None)
        self.fields["model"].help_text = (
            "Empty for the agent's default. Current models of the installed SDK: "
            + ", ".join(known_models()[:12])
        )

    def clean_model(self) -> str:
        model = str(self.cleaned_data.get("model") or "").strip()
        if model and (problem := model_problem(model)):
            raise forms.ValidationError(problem)
        return model


@admin.register(AgentConfig)
class AgentConfigAdmin(admin.ModelAdmin):
    form = AgentConfigForm
    list_display = ("handler", "override", "agent_default", "updated_at")
    search_fields = ("handler", "model")

    @admin.display(description="model override")
    def override(self, obj: AgentConfig) -> str:
        return obj.model or "- (agent's default)"

    @admin.display(description="agent's default")
    def agent_default(self, obj: AgentConfig) -> str:
        agent = get_agent(obj.handler)
        if agent is None:
            return "not deployed here"
        return agent.model or f"{conf.AGENT_MODEL.get()} (setting)"
