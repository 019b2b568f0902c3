"""Celery tasks: thin wrappers around licensing.outbox and licensing.services."""

from celery import shared_task
from django.conf import settings
from django.core.management import call_command
from django.db import connection, transaction

from . import outbox, services


# time_limit: a backstop behind outbox's own limit for a send (which needs the site's SMTP
# back-end, licensing.mail): the worker process is replaced and the message is tried again.
@shared_task(
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    max_retries=None,
    time_limit=settings.EMAIL_TIMEOUT * outbox.SEND_LIMIT + 60,
)
def deliver_message(self, message_id: int) -> bool:
    try:
        return outbox.deliver(message_id)
    except outbox.DeliveryFailed as failure:
        if failure.retry_in is None or self.request.is_eager:
            return False  # failed for good, or in-process: the sweep retries
        raise self.retry(countdown=failure.retry_in.total_seconds()) from None


@shared_task
def sweep_outbox() -> int:
    return outbox.sweep()


@shared_task
def purge_outbox() -> int:
    return outbox.purge()


@shared_task
def purge_audit() -> tuple[int, int]:
    return services.purge_audit()


@shared_task
def purge_sessions() -> None:
    """Delete expired sessions (Django keeps them in the database until asked): one DELETE,
    without the statement timeout that web requests have (portal/settings.py)."""
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL statement_timeout = 0")
        call_command("clearsessions")


@shared_task
def send_reminders() -> int:
    """The day's maintenance and expiry reminders (services.queue_reminders)."""
    return services.queue_reminders()
