from django.contrib import admin
from django.urls import path, re_path
from django.views.generic import RedirectView

from events.views import api, health, hooks

urlpatterns = [
    re_path(r"^hooks/(?P<slug>[^/]+)/?$", hooks.receive, name="hook"),
    re_path(r"^api/events/?$", api.events, name="api-events"),
    re_path(r"^api/events/(?P<event_id>[^/]+)/?$", api.event_detail, name="api-event"),
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("metrics", health.metrics, name="metrics"),
    path("admin/", admin.site.urls),
    path("", RedirectView.as_view(url="/admin/", permanent=False)),
]

handler404 = "events.views.health.not_found"
handler500 = "events.views.health.server_error"
