from django.contrib import admin
from django.urls import include, path

from licensing import health, views

admin.site.site_header = "TMS licensing support"
admin.site.site_title = "TMS licensing support"

urlpatterns = [
    path("", views.home, name="home"),
    path("keyring.json", views.keyring_json, name="keyring"),
    path("healthz", health.healthz, name="healthz"),
    path("accounts/", include("django.contrib.auth.urls")),
    path("admin/", admin.site.urls),
    path("", include("licensing.urls")),
]
