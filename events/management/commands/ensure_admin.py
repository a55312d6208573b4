"""manage.py ensure_admin: make sure a superuser exists and say how to log in. Idempotent.

A new user gets DJANGO_ADMIN_PASSWORD when it is set, else a random password saved in
var/admin-password (mode 0600) and reused on later runs, even against a fresh database.
"""

from __future__ import annotations

import os
import secrets
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandParser
from django.db import transaction

from ._local_state import (
    ADMIN_PASSWORD_FILE,
    admin_url,
    display_path,
    find_user,
    login_lines,
    read_secret_file,
    var_path,
    write_secret_file,
)

PASSWORD_ENV = "DJANGO_ADMIN_PASSWORD"  # noqa: S105 (the variable's name)


class Command(BaseCommand):
    help = (
        "Create the admin superuser if it does not exist (password from DJANGO_ADMIN_PASSWORD, "
        "or generated and saved in var/admin-password), then print how to log in."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--username", default="admin")
        parser.add_argument(
            "--base-url", default=None, help="printed admin URL base (default: public URL)"
        )

    def handle(self, *args: Any, **opts: Any) -> None:
        username: str = opts["username"]
        from_env = os.environ.get(PASSWORD_ENV) or None
        with transaction.atomic():
            user = find_user(username)
            if user is None:
                self._create(username, from_env)
                verb = "created"
            elif from_env is not None and not user.check_password(from_env):
                user.set_password(from_env)
                user.save(update_fields=["password"])
                verb = f"exists; password reset to {PASSWORD_ENV}"
            else:
                verb = "exists"
        url = admin_url(opts["base_url"])
        self.stdout.write(f"admin user {username!r} {verb}. Log in at {url}")
        for line in login_lines(username):
            self.stdout.write(f"  {line}")

    def _create(self, username: str, from_env: str | None) -> None:
        path = var_path(ADMIN_PASSWORD_FILE)
        if from_env is not None:
            password = from_env
        else:
            # Reuse a saved password (say the database was reset) so it never changes under
            # someone who wrote it down.
            saved = read_secret_file(path)
            password = saved or secrets.token_urlsafe(15)
            if saved is None:
                write_secret_file(path, password)
                self.stdout.write(f"generated an admin password in {display_path(path)}")
        model = get_user_model()
        model._default_manager.create_superuser(
            **{model.USERNAME_FIELD: username, "email": "", "password": password}
        )
