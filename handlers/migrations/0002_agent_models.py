"""The agents' models move from the events app to this one (issue: the pipeline knows nothing
of agents). Their rows stay: the state moves here, each table is renamed from events_* to
handlers_*, and their content types (with the permissions and admin log entries that point at
them) follow, so a group's permissions on approvals or budgets are kept."""

import django.core.validators
import django.db.models.deletion
import django.utils.timezone
from decimal import Decimal
from django.db import migrations, models

MOVED = ("step", "agentusage", "agentbudget", "approval", "agentconfig")


def content_types_to(app_label, other):
    def move(apps, schema_editor):
        ContentType = apps.get_model("contenttypes", "ContentType")
        taken = set(
            ContentType.objects.filter(app_label=app_label, model__in=MOVED).values_list(
                "model", flat=True
            )
        )
        ContentType.objects.filter(app_label=other, model__in=set(MOVED) - taken).update(
            app_label=app_label
        )

    return move


class Migration(migrations.Migration):
    dependencies = [
        ("contenttypes", "0002_remove_content_type_name"),
        ("events", "0010_lease_holder"),
        ("handlers", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[
                migrations.CreateModel(
                    name="AgentBudget",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True,
                                primary_key=True,
                                serialize=False,
                                verbose_name="ID",
                            ),
                        ),
                        (
                            "handler",
                            models.CharField(
                                help_text="The handler's name.", max_length=100, unique=True
                            ),
                        ),
                        (
                            "daily_token_limit",
                            models.PositiveBigIntegerField(
                                blank=True,
                                help_text="Input + output tokens per day; empty for no token limit.",
                                null=True,
                                validators=[django.core.validators.MinValueValidator(0)],
                            ),
                        ),
                        (
                            "daily_cost_limit_usd",
                            models.DecimalField(
                                blank=True,
                                decimal_places=2,
                                help_text="USD per day; empty for no cost limit.",
                                max_digits=12,
                                null=True,
                                validators=[django.core.validators.MinValueValidator(Decimal("0"))],
                            ),
                        ),
                        ("enabled", models.BooleanField(default=True)),
                    ],
                    options={
                        "db_table": "events_agentbudget",
                        "verbose_name": "agent budget",
                        "ordering": ["handler"],
                    },
                ),
                migrations.CreateModel(
                    name="AgentConfig",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True,
                                primary_key=True,
                                serialize=False,
                                verbose_name="ID",
                            ),
                        ),
                        (
                            "handler",
                            models.CharField(
                                help_text="The handler's name.", max_length=100, unique=True
                            ),
                        ),
                        (
                            "model",
                            models.CharField(
                                blank=True,
                                default="",
                                help_text="Model for this agent's calls; empty for the agent's default.",
                                max_length=100,
                            ),
                        ),
                        ("updated_at", models.DateTimeField(auto_now=True)),
                    ],
                    options={
                        "db_table": "events_agentconfig",
                        "verbose_name": "agent model",
                        "ordering": ["handler"],
                    },
                ),
                migrations.CreateModel(
                    name="Step",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True,
                                primary_key=True,
                                serialize=False,
                                verbose_name="ID",
                            ),
                        ),
                        ("number", models.PositiveIntegerField()),
                        (
                            "kind",
                            models.CharField(
                                choices=[("llm", "LLM call"), ("tool", "tool call")], max_length=8
                            ),
                        ),
                        ("name", models.CharField(max_length=200)),
                        ("tool_kind", models.CharField(blank=True, default="", max_length=16)),
                        ("input", models.JSONField(blank=True, null=True)),
                        ("output", models.JSONField(blank=True, null=True)),
                        ("error", models.TextField(blank=True, default="")),
                        ("input_tokens", models.PositiveIntegerField(default=0)),
                        ("output_tokens", models.PositiveIntegerField(default=0)),
                        ("cache_creation_tokens", models.PositiveIntegerField(default=0)),
                        ("cache_read_tokens", models.PositiveIntegerField(default=0)),
                        (
                            "cost_usd",
                            models.DecimalField(
                                decimal_places=6, default=Decimal("0"), max_digits=12
                            ),
                        ),
                        ("latency_ms", models.PositiveIntegerField(blank=True, null=True)),
                        ("stop_reason", models.CharField(blank=True, default="", max_length=64)),
                        ("created_at", models.DateTimeField(default=django.utils.timezone.now)),
                        (
                            "attempt",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="step_set",
                                to="events.attempt",
                            ),
                        ),
                    ],
                    options={
                        "db_table": "events_step",
                        "ordering": ["attempt", "number"],
                    },
                ),
                migrations.CreateModel(
                    name="AgentUsage",
                    fields=[],
                    options={
                        "verbose_name": "agent usage",
                        "verbose_name_plural": "agent usage",
                        "proxy": True,
                        "indexes": [],
                        "constraints": [],
                    },
                    bases=("handlers.step",),
                ),
                migrations.CreateModel(
                    name="Approval",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True,
                                primary_key=True,
                                serialize=False,
                                verbose_name="ID",
                            ),
                        ),
                        (
                            "agent",
                            models.CharField(help_text="The agent that asked.", max_length=100),
                        ),
                        ("tool", models.CharField(max_length=64)),
                        ("input", models.JSONField()),
                        ("idempotency_key", models.CharField(max_length=200, unique=True)),
                        (
                            "status",
                            models.CharField(
                                choices=[
                                    ("pending", "pending"),
                                    ("approved", "approved (running)"),
                                    ("executed", "executed"),
                                    ("rejected", "rejected"),
                                    ("failed", "failed"),
                                ],
                                default="pending",
                                max_length=16,
                            ),
                        ),
                        ("created_at", models.DateTimeField(default=django.utils.timezone.now)),
                        ("decided_at", models.DateTimeField(blank=True, null=True)),
                        ("decided_by", models.CharField(blank=True, default="", max_length=150)),
                        (
                            "reason",
                            models.TextField(
                                blank=True, default="", help_text="Why it was rejected or failed."
                            ),
                        ),
                        ("executed_at", models.DateTimeField(blank=True, null=True)),
                        ("result", models.JSONField(blank=True, null=True)),
                        (
                            "delivery",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="approvals",
                                to="events.delivery",
                            ),
                        ),
                        (
                            "follow_up",
                            models.ForeignKey(
                                blank=True,
                                null=True,
                                on_delete=django.db.models.deletion.SET_NULL,
                                related_name="+",
                                to="events.event",
                            ),
                        ),
                    ],
                    options={
                        "db_table": "events_approval",
                        "ordering": ["-created_at", "-id"],
                        "indexes": [
                            models.Index(
                                condition=models.Q(("status", "pending")),
                                fields=["created_at"],
                                name="approval_pending",
                            )
                        ],
                    },
                ),
                migrations.AddIndex(
                    model_name="step",
                    index=models.Index(
                        condition=models.Q(("kind", "llm")),
                        fields=["created_at"],
                        name="step_llm_created",
                    ),
                ),
                migrations.AddConstraint(
                    model_name="step",
                    constraint=models.UniqueConstraint(
                        fields=("attempt", "number"), name="step_attempt_number"
                    ),
                ),
            ],
        ),
        migrations.AlterModelTable(name="agentbudget", table=None),
        migrations.AlterModelTable(name="agentconfig", table=None),
        migrations.AlterModelTable(name="step", table=None),
        migrations.AlterModelTable(name="approval", table=None),
        migrations.RunPython(
            content_types_to("handlers", "events"), content_types_to("events", "handlers")
        ),
    ]
