"""The portal's URLs plus the floor: an authenticated POST that inserts one row."""

from django.contrib.auth.decorators import login_required
from django.http import HttpResponseRedirect
from django.urls import include, path
from django.views.decorators.http import require_POST

from licensing.models import AuditEvent


@login_required
@require_POST
def floor(request):
    AuditEvent.objects.create(actor=request.user, action="bench", object_repr="floor")
    return HttpResponseRedirect("/licenses/")


urlpatterns = [path("bench/floor/", floor), path("", include("portal.urls"))]
