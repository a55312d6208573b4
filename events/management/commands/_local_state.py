"""Files under var/ that the launcher commands keep between runs (Django skips this module).

``admin-password`` and ``demo-source-secret`` are generated once and reused, so rerunning
`make demo` logs in with the same password and signs with the same secret.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.base_user import AbstractBaseUser
from django.urls import reverse

from events import conf

# File names under var/, not secrets.
ADMIN_PASSWORD_FILE = "admin-password"  # noqa: S105
DEMO_SECRET_FILE = "demo-source-secret"  # noqa: S105


def var_path(name: str) -> Path:
    return Path(settings.VAR_DIR) / name


def read_secret_file(path: Path) -> str | None:
    """The file's first line, or None when it is missing or empty."""
    try:
        value = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    return value or None


def write_secret_file(path: Path, value: str) -> None:
    """Write ``value`` readable by the owner only (0600), replacing the file atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")  # created 0600
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(value + "\n")
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def display_path(path: Path) -> str:
    """``path`` relative to the project when it is inside it (shorter to read and copy)."""
    try:
        return str(path.relative_to(settings.BASE_DIR))
    except ValueError:
        return str(path)


def admin_url(base_url: str | None = None) -> str:
    return (base_url or conf.public_url()).rstrip("/") + reverse("admin:index")


def find_user(username: str) -> AbstractBaseUser | None:
    model = get_user_model()
    return model._default_manager.filter(**{model.USERNAME_FIELD: username}).first()


def login_lines(username: str) -> list[str]:
    """How to log in as ``username``: the saved demo password if it still works."""
    user = find_user(username)
    if user is None:
        return [f"no user {username!r} yet: run manage.py ensure_admin"]
    path = var_path(ADMIN_PASSWORD_FILE)
    saved = read_secret_file(path)
    if saved is not None and user.check_password(saved):
        return [f"username: {username}", f"password: {saved}   (saved in {display_path(path)})"]
    if os.environ.get("DJANGO_ADMIN_PASSWORD") and user.check_password(
        os.environ["DJANGO_ADMIN_PASSWORD"]
    ):
        return [f"username: {username}", "password: the value of DJANGO_ADMIN_PASSWORD"]
    hint = f"manage.py changepassword {username}"
    if saved is not None:
        return [
            f"username: {username}",
            f"password: changed since it was saved in {display_path(path)}; reset: {hint}",
        ]
    return [f"username: {username}", f"password: set earlier; to reset it: {hint}"]
