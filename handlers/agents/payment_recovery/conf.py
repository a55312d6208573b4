"""Payment recovery's setting: the address its emails come from (else DEFAULT_FROM_EMAIL)."""

from __future__ import annotations

from agents_project.appsettings import Setting, register, text

RECOVERY_FROM = Setting("SWITCHYARD_RECOVERY_FROM", "", text)

register("the built-in agent payments.recovery", [RECOVERY_FROM])
