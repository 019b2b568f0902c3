from django.conf import settings


def site(request):
    # Not "site_name": Django's auth views put the request's host name under that name.
    return {"site_title": settings.SITE_NAME, "support_email": settings.SUPPORT_EMAIL}
