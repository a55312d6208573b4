import os

from django.core.wsgi import get_wsgi_application

from agents_project.appsettings import refuse_bad_settings

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "agents_project.settings")

application = get_wsgi_application()

# A web process with a bad setting does not start: the same checks as `manage.py check`.
refuse_bad_settings()
