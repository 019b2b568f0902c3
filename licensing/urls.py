from django.urls import path

from . import views

app_name = "licensing"

urlpatterns = [
    path("licenses/", views.license_list, name="license_list"),
    path("licenses/export/", views.license_export, name="license_export"),
    path("licenses/<str:number>/", views.license_detail, name="license_detail"),
    path("licenses/<str:number>/download/", views.download, name="download"),
    path("licenses/<str:number>/update-file/", views.update_file, name="update_file"),
    path("activate/", views.ActivateLicenseView.as_view(), name="activate"),
    path("members/", views.members, name="members"),
]
