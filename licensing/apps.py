from django.apps import AppConfig
from django.core import signals


class LicensingConfig(AppConfig):
    name = "licensing"
    verbose_name = "Licensing"

    def ready(self):
        from django.contrib.auth.signals import user_logged_in, user_login_failed

        from . import auth, checks, outbox  # noqa: F401 - checks registers them

        user_logged_in.disconnect(dispatch_uid="update_last_login")  # audit_log_in saves it
        user_logged_in.connect(auth.audit_log_in, dispatch_uid="audit-log-in")
        user_logged_in.connect(auth.start_session, dispatch_uid="start-session")
        user_login_failed.connect(auth.log_failed_log_in, dispatch_uid="log-failed-log-in")
        signals.request_started.connect(outbox.request_started, dispatch_uid="outbox")
        signals.request_finished.connect(outbox.request_finished, dispatch_uid="outbox")
