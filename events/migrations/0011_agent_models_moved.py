"""The agents' models move to the handlers app (handlers.0002_agent_models, which renames their
tables): only the state is removed here."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("events", "0010_lease_holder"),
        ("handlers", "0002_agent_models"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[
                migrations.DeleteModel(
                    name="AgentBudget",
                ),
                migrations.DeleteModel(
                    name="AgentConfig",
                ),
                migrations.RemoveField(
                    model_name="approval",
                    name="delivery",
                ),
                migrations.RemoveField(
                    model_name="approval",
                    name="follow_up",
                ),
                migrations.RemoveField(
                    model_name="step",
                    name="attempt",
                ),
                migrations.DeleteModel(
                    name="AgentUsage",
                ),
                migrations.DeleteModel(
                    name="Approval",
                ),
                migrations.DeleteModel(
                    name="Step",
                ),
            ],
        ),
    ]
