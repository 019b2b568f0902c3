from django.conf import settings
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from django.views.generic import RedirectView

from licensing import views
from licensing.forms import AdminLoginForm, ResetForm

admin.site.site_header = "TMS licensing support"
admin.site.site_title = "TMS licensing support"
admin.site.login_form = AdminLoginForm
# Five models: the home page lists them; the sidebar would take the width that the lists'
# Installation IDs need on a laptop's screen.
admin.site.enable_nav_sidebar = False

handler500 = views.server_error

urlpatterns = [
    path("", views.home, name="home"),
    path("keyring.json", views.keyring_json, name="keyring"),
    path("revoked.txt", views.revoked_txt, name="revoked"),
    path("accounts/login/", views.LoginView.as_view(), name="login"),
    path("accounts/logout/", views.LogoutView.as_view(), name="logout"),
    # Named so that the admin's log-in offers it too ("Forgotten your password?").
    path(
        "admin/password_reset/",
        RedirectView.as_view(pattern_name="password_reset"),
        name="admin_password_reset",
    ),
    path(
        "accounts/password_reset/",
        # The e-mail names the site, not the host it was requested on.
        auth_views.PasswordResetView.as_view(
            form_class=ResetForm,
            extra_email_context={
                "site_name": settings.SITE_NAME,
                "support_email": settings.SUPPORT_EMAIL,
            },
        ),
        name="password_reset",
    ),
    path(
        "accounts/reset/<uidb64>/<token>/",
        views.PasswordResetConfirmView.as_view(),
        name="password_reset_confirm",
    ),
    path("accounts/password_change/", views.PasswordChangeView.as_view(), name="password_change"),
    # The admin's is the site's (its page and its limits), as its log-out is.
    path("admin/password_change/", RedirectView.as_view(pattern_name="password_change")),
    path("accounts/", include("django.contrib.auth.urls")),
    # Support logs out of the admin back to the admin's log-in.
    path("admin/logout/", views.LogoutView.as_view(next_page="admin:login")),
    path("admin/", admin.site.urls),
    path("", include("licensing.urls")),
]
