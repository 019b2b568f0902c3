from django.apps import AppConfig
from django.core import signals


class LicensingConfig(AppConfig):
    name = "licensing"
    verbose_name = "Licensing"

    def ready(self):
        from . import outbox

        signals.request_started.connect(outbox.request_started, dispatch_uid="outbox")
        signals.request_finished.connect(outbox.request_finished, dispatch_uid="outbox")
