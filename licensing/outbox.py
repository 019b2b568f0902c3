"""The transactional outbox: e-mails are rows first, sent by a worker after commit.

- ``queue()`` writes the row inside the caller's transaction and, after commit, asks Celery
  to deliver it; in a web request, once the response is sent, so that the response does not
  wait for the broker (nor, when it is down, for its connect timeout). If the broker is down
  then, nothing is lost: ``sweep()`` (Celery beat, every two minutes) re-queues every pending
  row that is due.
- ``deliver()`` sends a message at least once, and once in all but one case: it locks the
  row, skips it unless it is still pending, sends, and marks it sent in the same
  transaction. A worker killed mid-send leaves the row pending (its transaction rolls back)
  for the next attempt; if the mail server had accepted the message already, it goes out
  twice, with the same Message-ID (mail systems that keep track drop the copy).
- A send is given up on after ``SEND_LIMIT`` times ``EMAIL_TIMEOUT`` in all, as a failed
  attempt: the timeout bounds each wait for the mail server, and one that answers a line at a
  time would otherwise hold the worker and the rows it locked for ever.
- A message that keeps failing is marked failed after ``MAX_ATTEMPTS`` and shown to support.
"""

from __future__ import annotations

import contextlib
import logging
import smtplib
import socket
import threading
from datetime import timedelta
from urllib.parse import urlsplit

from django.conf import settings
from django.core.mail import EmailMessage, get_connection
from django.core.mail.message import sanitize_address
from django.db import OperationalError, close_old_connections, connection, transaction
from django.db.models import Q
from django.template.loader import render_to_string
from django.utils import timezone

from .models import Activation, Membership, OutboxMessage

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 6
SEND_LIMIT = 4  # times EMAIL_TIMEOUT, for a whole send
# A pending row queued longer ago than this is presumed lost by the broker and re-queued.
REQUEUE_AFTER = timedelta(minutes=3)
# A retry scheduled by the broker may arrive slightly before its row's next_attempt_at.
EARLY = timedelta(seconds=5)


def backoff(attempts: int) -> timedelta:
    """Wait before attempt ``attempts + 1``: 1, 2, 4, 8 ... minutes, at most an hour."""
    return timedelta(minutes=min(60, 2 ** max(0, attempts - 1)))


def queue(
    *,
    key: str,
    recipients,
    subject: str,
    template: str,
    context: dict,
    license=None,
    organization=None,
    activation=None,
    attachment_name: str = "",
    attachment: str = "",
    secret: bool = False,
) -> OutboxMessage | None:
    """Write a message in the current transaction; it is handed to Celery after commit.

    ``key`` names the event; the database refuses a second message for it. ``organization``
    (a license's, by default): its recipients are its members, and when it is sent, only those
    still active members are sent it. ``activation``:
    the license file attached, or revoked (a file revoked before its message went out is not
    sent: the message is cancelled). ``secret``: the body holds a secret (a password reset
    link), shown to nobody and erased once sent.
    """
    recipients = sorted({r for r in recipients if r})
    if not recipients:
        return None
    # A subject naming a long address and a long organization name is cut short to fit.
    longest = OutboxMessage._meta.get_field("subject").max_length
    if len(subject) > longest:
        subject = subject[: longest - 1].rstrip() + "…"
    organization_id = organization.pk if organization else None
    if license is not None:
        organization_id = license.organization_id  # its people are its organization's
    message = OutboxMessage.objects.create(
        key=key,
        license=license,
        organization_id=organization_id,
        activation=activation,
        recipients=recipients,
        subject=subject,
        body=render_to_string(template, context),
        attachment_name=attachment_name,
        attachment=attachment,
        secret=secret,
        # Handed to the broker after commit (in a web request, once the response is sent);
        # enqueue() clears this if that fails.
        queued_at=timezone.now(),
    )
    _enqueue_after_commit(message.pk)
    return message


# What a web request leaves until its response is sent (None outside a request): the
# messages it committed, handed to the broker then. Django sends request_finished when the
# server closes the response.
_request = threading.local()


def after_response(work, what: str) -> None:
    """Run ``work()`` once this request's response is sent (outside a request: now), so that
    the customer does not wait for it, nor see by how long it took what it did. ``what``
    names it in the log if it fails then (the customer was answered already)."""
    pending = getattr(_request, "pending", None)
    if pending is None:
        work()
    else:
        pending.append((work, what))


def _enqueue_after_commit(message_id: int) -> None:
    transaction.on_commit(
        lambda: after_response(
            lambda: enqueue(message_id),
            f"handing outbox message {message_id} to the broker (it waits for the sweep)",
        )
    )


def request_started(**kwargs) -> None:
    # Anything a response that was never closed left behind goes after this one.
    if getattr(_request, "pending", None) is None:
        _request.pending = []


def request_finished(**kwargs) -> None:
    pending, _request.pending = getattr(_request, "pending", None), None
    if not pending:
        return
    for work, what in pending:
        try:
            work()
        except Exception:  # noqa: BLE001 - the database is down, say: the next one still runs
            log.exception("after a response: %s failed", what)
    # Django closed the request's database connection before this ran; close again, as Django
    # would, whatever the work opened (not inside a transaction: a test's, which Django's test
    # client keeps open the same way).
    if not connection.in_atomic_block:
        close_old_connections()


def enqueue(message_id: int) -> bool:
    """Hand a message to the broker; False (and logged) when the broker is unreachable."""
    from .tasks import deliver_message

    try:
        deliver_message.delay(message_id)
    except Exception:  # noqa: BLE001 - broker down: the sweep will queue it again
        log.warning(
            "broker unreachable; outbox message %s waits for the sweep", message_id, exc_info=True
        )
        OutboxMessage.objects.filter(pk=message_id).update(queued_at=None)
        return False
    return True


class DeliveryFailed(Exception):
    def __init__(self, message_id: int, retry_in: timedelta | None):
        super().__init__(f"outbox message {message_id} not delivered")
        self.retry_in = retry_in


def deliver(message_id: int) -> bool:
    """Send one message if it is still pending; True when this call sent it.

    Raises :class:`DeliveryFailed` (with the back-off) when sending failed.
    """
    error = None
    with transaction.atomic():
        message = (
            OutboxMessage.objects.select_for_update(skip_locked=True)
            .filter(
                pk=message_id,
                status=OutboxMessage.Status.PENDING,
                next_attempt_at__lte=timezone.now() + EARLY,
            )
            .first()
        )
        if message is None:
            # Sent already, failed for good, backing off, or being sent by another worker.
            return False
        if message.attachment and message.activation_id:
            # A file goes out holding its activation's row: a revocation (which locks it)
            # waits for a send under way, and a send waits out a revocation under way (the
            # sweep brings the message back, to be cancelled), so no file is e-mailed once
            # its revocation committed. Read again under the lock.
            message.activation = (
                Activation.objects.select_for_update(skip_locked=True)
                .filter(pk=message.activation_id)
                .first()
            )
            if message.activation is None:
                return False
        if why := message.outdated:
            if message.delivered_to:  # before the file was revoked
                why = f"Sent to {', '.join(message.delivered_to)} only. {why}"
            message.status, message.last_error = OutboxMessage.Status.CANCELLED, why
            message.save(update_fields=["status", "last_error"])
            _remind_anew(message)
            return False
        _leave_out_former_members(message)
        to = message.to_send
        if to:
            try:
                refused = _send(_email(message, to))
            except Exception as exc:  # noqa: BLE001 - any transport error counts as an attempt
                error = exc
            else:
                error = _sorted_out(message, to, refused)
        retry_in = _record(message, attempted=bool(to), error=error)
    if error is None:
        if message.refused_for_good:
            # Refused for good (5xx): ended, failed or sent to the others; said as an attempt
            # that failed is, for whoever watches the log.
            log.warning("outbox message %s: %s; %s", message_id, message.status, message.last_error)
        return any(address in message.delivered_to for address in to)
    log.warning(
        "outbox message %s: attempt %s failed: %s", message_id, message.attempts, message.last_error
    )
    raise DeliveryFailed(message_id, retry_in)


class RefusedForNow(Exception):
    """The mail server refused some recipients for now (4xx: a full mailbox, greylisting)."""


def _leave_out_former_members(message: OutboxMessage) -> None:
    """A message for an organization's members goes only to who is still an active member
    when it is sent: not to one who left the organization or was deactivated since it was
    written (they would get its license file, or its news, and their former colleagues'
    addresses)."""
    if message.organization_id is None:
        return
    members = Membership.objects.filter(
        organization_id=message.organization_id, user__is_active=True
    ).values_list("user__email", flat=True)
    allowed = {address.casefold() for address in members}
    for address in message.to_send:
        if address.casefold() not in allowed:
            message.undelivered[address] = (
                "no longer a member of the organization (left it or deactivated)"
            )


def _sorted_out(message: OutboxMessage, to: list[str], refused: dict) -> RefusedForNow | None:
    """Record whom the mail server took the message for and whom it refused for good (5xx);
    a RefusedForNow naming those it refused for now, to be tried again, if any."""
    later = []
    for address in to:
        if address not in refused:
            message.delivered_to.append(address)
        elif refused[address].startswith("5"):
            message.undelivered[address] = f"refused by the mail server: {refused[address]}"
        else:
            later.append(f"{address} ({refused[address]})")
    if later:
        return RefusedForNow(f"refused for now by the mail server: {'; '.join(later)}")
    return None


def _record(message: OutboxMessage, *, attempted: bool, error=None) -> timedelta | None:
    """Record an attempt (``attempted``: none was made when nobody was left to send it to),
    under the row's lock: whom the server took it for is not sent it again, nor one left out.
    Once nobody is left, or after ``error`` the last of ``MAX_ATTEMPTS``, the message ends:
    sent when someone got it, else failed (support may send it again) or cancelled (none may
    receive it now). Returns the wait before the next attempt; None once ended."""
    message.attempts += attempted
    notes = [f"Not sent to {address}: {why}" for address, why in message.undelivered.items()]
    if error is not None:
        notes.insert(0, f"{type(error).__name__}: {error}")
    message.last_error = "; ".join(notes)[:2000]
    retry_in = None
    if error is not None and message.attempts < MAX_ATTEMPTS:
        retry_in = backoff(message.attempts)
        message.next_attempt_at = timezone.now() + retry_in
    elif message.delivered_to:
        message.status, message.sent_at = OutboxMessage.Status.SENT, timezone.now()
    elif error or message.refused_for_good:
        message.status = OutboxMessage.Status.FAILED
    else:
        message.status = OutboxMessage.Status.CANCELLED
    if message.secret and message.status != OutboxMessage.Status.PENDING:
        message.body = ""  # sent, or never sent again: see the admin's "send again"
    message.save(
        update_fields=[
            "status",
            "sent_at",
            "attempts",
            "last_error",
            "next_attempt_at",
            "body",
            "delivered_to",
            "undelivered",
        ]
    )
    return retry_in


def sweep(*, now=None) -> int:
    """Re-queue every pending message that is due and not recently queued; returns how many."""
    now = now or timezone.now()
    with transaction.atomic():
        # A message being sent (its row locked by the worker for as long as the mail server
        # takes) is being handled: passed over, not waited for past the statement timeout.
        due = list(
            OutboxMessage.objects.select_for_update(skip_locked=True)
            .filter(status=OutboxMessage.Status.PENDING, next_attempt_at__lte=now)
            .exclude(queued_at__gt=now - REQUEUE_AFTER)
            .values_list("pk", flat=True)
        )
        # Marked before they are handed over (enqueue() unmarks one the broker refuses): a
        # worker that takes a message at once must not meet this update's row lock, or it
        # would skip the message as being sent by another worker, and the mark hide it from
        # the next sweep.
        OutboxMessage.objects.filter(pk__in=due).update(queued_at=now)
    return sum(enqueue(pk) for pk in due)


def purge(*, now=None, batch: int = 1000) -> int:
    """Delete the messages sent, failed for good or cancelled more than ``OUTBOX_KEEP_DAYS``
    ago (a failed or cancelled one: since about its last attempt); never a pending one.
    Returns how many, in batches so that no statement holds many rows at once."""
    cutoff = (now or timezone.now()) - timedelta(days=settings.OUTBOX_KEEP_DAYS)
    ended = [OutboxMessage.Status.FAILED, OutboxMessage.Status.CANCELLED]
    old = OutboxMessage.objects.filter(
        Q(status=OutboxMessage.Status.SENT, sent_at__lt=cutoff)
        | Q(status__in=ended, next_attempt_at__lt=cutoff)
    ).order_by()
    deleted = 0
    while ids := list(old.values_list("pk", flat=True)[:batch]):
        # Checked again as it deletes: one sent again meanwhile is pending, and stays. Counted
        # alone, not with the rows deleted along (the licenses a reminder lists).
        deleted += old.filter(pk__in=ids).delete()[1].get(OutboxMessage._meta.label, 0)
    if deleted:
        log.info(
            "outbox: %s messages older than %s days deleted", deleted, settings.OUTBOX_KEEP_DAYS
        )
    return deleted


def _remind_anew(message: OutboxMessage) -> None:
    """A reminder cancelled as out of date: the reminders due now (its other licenses, the
    day's count) are written at once, once this transaction is committed, not at the next
    day's run (a last day's reminder would be lost)."""
    if message.is_reminder:
        from .services import queue_reminders  # services queues through this module

        transaction.on_commit(queue_reminders, robust=True)


CHANGED_MEANWHILE = "It changed meanwhile: look at it again."


def lock_not_available(error: OperationalError) -> bool:
    """Whether PostgreSQL refused to wait for a row another transaction holds (NOWAIT, or
    past ``lock_timeout``)."""
    return getattr(error.__cause__, "sqlstate", None) == "55P03"


def retry_now(message: OutboxMessage) -> str | None:
    """Support's "send again": a failed or waiting message becomes due at once. None when it
    is queued again, else why not: one that was sent, or cancelled (its file was revoked), or
    a secret one (its link to choose a password may have expired: a new one is asked for)."""
    if message.secret:
        return (
            "A message with a link to choose a password is not sent again (the link may have "
            "expired): the customer asks for a new one (Forgot your password?), or support "
            "invites the member again."
        )
    try:
        with transaction.atomic():  # a savepoint: a refusal leaves the caller's transaction
            # Its row locked (until the caller's transaction ends) and read again, or said to
            # be sent right now: a worker holds it for as long as the mail server takes.
            message = (
                OutboxMessage.objects.select_for_update(nowait=True).filter(pk=message.pk).first()
            )
    except OperationalError as error:
        if not lock_not_available(error):
            raise
        return "It is being sent right now: look at it again in a moment."
    if message is None:  # deleted meanwhile (an old one, by the purge)
        return CHANGED_MEANWHILE
    if message.status == OutboxMessage.Status.SENT:
        activation = message.activation
        if activation and activation.is_live and activation.license.is_activatable():
            return (
                "It was sent already. A customer who did not get it downloads the file from "
                "the license's page on the site (My licenses); or Reissue e-mails a new file."
            )
        return "It was sent already."
    if message.status == OutboxMessage.Status.CANCELLED:
        return message.last_error or "It was cancelled."
    if why := message.outdated:
        OutboxMessage.objects.filter(pk=message.pk).exclude(
            status=OutboxMessage.Status.SENT
        ).update(status=OutboxMessage.Status.CANCELLED, last_error=why)
        _remind_anew(message)
        return why
    queued = OutboxMessage.objects.filter(
        pk=message.pk,
        secret=False,
        status__in=[OutboxMessage.Status.PENDING, OutboxMessage.Status.FAILED],
    ).update(
        status=OutboxMessage.Status.PENDING,
        undelivered={},  # each one not sent it is tried again (a member who left is not)
        attempts=0,
        next_attempt_at=timezone.now(),
        queued_at=None,
    )
    if not queued:
        return CHANGED_MEANWHILE
    _enqueue_after_commit(message.pk)
    return None


def _send(email: EmailMessage) -> dict[str, str]:
    """Send ``email``; the recipients the mail server refused, with its reply ("550 5.1.1 No
    such user"). Past ``SEND_LIMIT`` times ``EMAIL_TIMEOUT`` the mail server's connection is
    cut, and the send fails with a TimeoutError that says so."""
    backend = get_connection()
    limit = settings.EMAIL_TIMEOUT * SEND_LIMIT
    cut = threading.Event()

    def cut_off():
        # The site's SMTP back-end's (licensing.mail) from the greeting on; the TLS socket
        # once TLS is started. (Another back-end is left to the task's time limit.)
        sock = getattr(getattr(backend, "smtp", None), "sock", None)
        if sock is not None:
            cut.set()  # first: the sending thread may fail as soon as the socket is shut
            with contextlib.suppress(OSError):  # closed meanwhile
                # The socket itself, under any TLS: a read waiting in the sending thread ends.
                socket.socket.shutdown(sock, socket.SHUT_RDWR)

    timer = threading.Timer(limit, cut_off)
    timer.daemon = True
    timer.start()
    email.connection = backend
    try:
        email.send()
    except smtplib.SMTPRecipientsRefused as error:
        refused = error.recipients  # every one of them
    except Exception as error:
        if cut.is_set():
            raise TimeoutError(f"the mail server took more than {limit} s; cut off") from error
        raise
    else:
        # Some of them: the site's SMTP back-end keeps them (licensing.mail).
        refused = getattr(backend, "refused", {})
    finally:
        timer.cancel()
    answers = {}
    encoding = email.encoding or settings.DEFAULT_CHARSET
    for address in email.to:
        # Keyed by the address as it was sent (an international domain in its ASCII form).
        if answer := refused.get(sanitize_address(address, encoding)):
            code, reply = answer
            answers[address] = f"{code} {reply.decode(errors='replace')}"
    return answers


def _message_id(message: OutboxMessage) -> str:
    """The message's Message-ID, the same on every attempt, so that mail systems drop a copy
    should one ever be sent twice; the row and when it was written, so that a copy of the
    database (a restored backup, a staging site) never reuses one; on the site's host."""
    written = int(message.created_at.timestamp() * 1e6)
    return f"<outbox.{message.pk}.{written}@{urlsplit(settings.SITE_URL).hostname}>"


def _email(message: OutboxMessage, to: list[str]) -> EmailMessage:
    email = EmailMessage(
        subject=message.subject,
        body=message.body,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=to,
        reply_to=[settings.SUPPORT_EMAIL],  # a reply reaches people, not the sending mailbox
        headers={
            "Message-ID": _message_id(message),
            # No out-of-office replies to it (RFC 3834): nobody reads the sending mailbox;
            # also as Exchange and vacation programs read it, which send theirs to Reply-To.
            "Auto-Submitted": "auto-generated",
            "X-Auto-Response-Suppress": "OOF, AutoReply",
            "Precedence": "bulk",
        },
    )
    if message.attachment_name:
        email.attach(message.attachment_name, message.attachment, "application/x-tms-license")
    return email
