"""The outbox in-process: written with the activation, sent once, retried, failed visibly."""

import io
import socket
import sys
import threading
import time as clock
from datetime import UTC, date, datetime, time, timedelta
from unittest import mock
from urllib.parse import urlencode

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core import mail, signals
from django.core.handlers.wsgi import WSGIHandler
from django.db import DatabaseError, connection
from django.db.models.query import QuerySet
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

import tmslicense
from licensing import outbox, services
from licensing.models import License, OutboxMessage
from tests.factories import LicenseFactory, OrganizationFactory, UserFactory


@pytest.fixture
def activate(make_license, customer):
    def run(kind="mirrored", **kwargs):
        lic = make_license(kind, **kwargs)
        ids = [tmslicense.new_installation_id() for _ in range(2 if kind != "standard" else 1)]
        activation, _ = services.activate(
            license=lic,
            installation_id=ids[0],
            mirrored_installation_id=ids[1] if len(ids) > 1 else "",
            actor=customer,
        )
        return activation

    return run


def test_activation_writes_its_email_in_the_same_transaction(
    activate, customer, organization, settings
):
    colleague = UserFactory(organization=organization)
    activation = activate()
    message = OutboxMessage.objects.get()
    assert message.key == f"activation:{activation.serial}"
    # The file goes to the customer who activated; colleagues see it in "My licenses".
    assert message.recipients == [customer.email] != [colleague.email]
    assert activation.installation_id in message.body
    assert activation.mirrored_installation_id in message.body
    assert message.attachment == activation.license_file
    # A server that has not the site's keyring (a key rotated since it was set up) is told
    # where it is.
    assert f"needs the license site's keyring: {settings.SITE_URL}/keyring.json\n" in message.body
    # Where to get it again and whom to ask, months later.
    assert message.body.rstrip().endswith(
        f"Its page, to download the file again: "
        f"{settings.SITE_URL}/licenses/{activation.license.number}/\n"
        f"Questions: {settings.SUPPORT_EMAIL}, with the license number."
    )


def test_a_file_reissued_by_support_is_mailed_to_the_organization(activate, customer, organization):
    colleague = UserFactory(organization=organization)
    support = UserFactory(organization=None, is_staff=True)
    new = services.reissue(activation=activate(), actor=support)
    message = OutboxMessage.objects.get(key=f"activation:{new.serial}")
    assert message.recipients == sorted([customer.email, colleague.email])


def test_a_revoked_files_email_is_never_sent(activate):
    """Its file revoked before it went out (by support, or replaced by a reissue), a license
    file's e-mail is cancelled when the worker comes to it, or when support sends it again."""
    support = UserFactory(organization=None, is_staff=True)
    waiting, failed, sent = activate(), activate(), activate()
    OutboxMessage.objects.filter(activation=failed).update(status="failed", attempts=6)
    OutboxMessage.objects.filter(activation=sent).update(status="sent", sent_at=timezone.now())
    new = services.reissue(activation=waiting, actor=support)  # revokes the old file
    for activation in (failed, sent):
        services.revoke(activation=activation, reason="Server retired", actor=support)

    def message(activation, prefix="activation"):
        return OutboxMessage.objects.get(key=f"{prefix}:{activation.serial}")

    why = f"Not sent: license file {waiting.serial} was revoked before it went out."
    assert outbox.deliver(message(waiting).pk) is False
    assert (message(waiting).status, message(waiting).last_error) == ("cancelled", why)
    assert outbox.retry_now(message(waiting)) == why  # and support cannot send it again
    assert outbox.retry_now(message(failed)) == why.replace(waiting.serial, failed.serial)
    assert message(failed).status == "cancelled"
    assert outbox.retry_now(message(sent)) == "It was sent already."
    assert message(sent).status == "sent"
    assert not mail.outbox
    # The file that replaces it goes out, and so does the notice of a revocation.
    assert outbox.deliver(message(new).pk) is True
    assert outbox.deliver(message(failed, "revoked").pk) is True
    assert len(mail.outbox) == 2


def test_email_is_queued_only_after_commit(activate, django_capture_on_commit_callbacks):
    # Outside a web request (a task, a command): handed to the broker at commit.
    with mock.patch("licensing.tasks.deliver_message.delay") as delay:
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            activate()
        delay.assert_not_called()
        for callback in callbacks:
            callback()
        delay.assert_called_once_with(OutboxMessage.objects.get().pk)


@pytest.mark.django_db(transaction=True)  # real commits, as in production
def test_a_web_requests_email_goes_to_the_broker_once_its_response_is_sent(
    client, customer, make_license
):
    """The activation's response is whole before the broker is asked: a WSGI server (gunicorn)
    sends it, then closes it, and only then is the message handed over."""
    lic = make_license("standard")
    client.force_login(customer)
    token = "t" * 32  # the CSRF cookie's secret, sent back as the form's token
    body = urlencode(
        {
            "csrfmiddlewaretoken": token,
            "activate_license_view-current_step": "license",
            "license-license_number": lic.number,
            "license-installation_id": tmslicense.new_installation_id(),
        }
    ).encode()
    environ = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/activate/",
        "SCRIPT_NAME": "",
        "SERVER_NAME": "testserver",
        "SERVER_PORT": "80",
        "REMOTE_ADDR": "127.0.0.1",
        "HTTP_COOKIE": f"{settings.SESSION_COOKIE_NAME}="
        f"{client.cookies[settings.SESSION_COOKIE_NAME].value}; csrftoken={token}",
        "CONTENT_TYPE": "application/x-www-form-urlencoded",
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": sys.stderr,
        "wsgi.url_scheme": "http",
    }
    status = []
    with mock.patch("licensing.tasks.deliver_message.delay") as delay:
        response = WSGIHandler()(environ, lambda *args: status.append(args[0]))
        b"".join(response)  # the server sends the response ...
        assert status == ["302 Found"] and response["Location"] == f"/licenses/{lic.number}/"
        delay.assert_not_called()
        response.close()  # ... and then closes it
    delay.assert_called_once_with(OutboxMessage.objects.get(license=lic).pk)


@pytest.mark.django_db(transaction=True)
def test_after_a_response_one_message_failing_to_be_handed_over_stops_no_other(activate, caplog):
    """With the database down as well as the broker, enqueue() itself fails: logged, naming
    the message, the next message is still handed over, and nothing is raised into the
    server's close()."""
    signals.request_started.send(sender=None)
    activate(), activate()
    with mock.patch.object(outbox, "enqueue", side_effect=[DatabaseError("down"), True]) as sent:
        signals.request_finished.send(sender=None)
    messages = OutboxMessage.objects.order_by("pk").values_list("pk", flat=True)
    assert [c.args[0] for c in sent.call_args_list] == list(messages)
    (failed,) = [r for r in caplog.records if r.levelname == "ERROR"]
    assert failed.getMessage() == (
        f"after a response: handing outbox message {messages[0]} to the broker (it waits for "
        "the sweep) failed"
    )


def test_delivery_sends_once_with_the_file_attached(activate, keyring):
    activation = activate()
    message = OutboxMessage.objects.get()
    assert outbox.deliver(message.pk) is True
    assert outbox.deliver(message.pk) is False  # the task ran twice: still one e-mail
    assert len(mail.outbox) == 1
    sent = mail.outbox[0]
    lic = activation.license
    assert sent.subject == f"License file for {lic.number}, {lic.kind} license"
    name, content, mimetype = sent.attachments[0]
    assert name == f"{activation.license.number}.lic"
    tmslicense.verify_license(content, keyring, activation.mirrored_installation_id)
    message.refresh_from_db()
    assert message.status == "sent" and message.sent_at and message.attempts == 1


def test_headers_say_where_replies_go_and_that_nobody_answers_automatically(activate, settings):
    settings.SITE_URL = "https://licenses.example.com"
    activate()
    message = OutboxMessage.objects.get()
    with (
        mock.patch("licensing.outbox._send", side_effect=OSError("down")),
        pytest.raises(outbox.DeliveryFailed),
    ):
        outbox.deliver(message.pk)
    message.next_attempt_at = timezone.now()
    message.save()
    assert outbox.deliver(message.pk) is True
    sent = mail.outbox[0].message()
    assert sent["Reply-To"] == settings.SUPPORT_EMAIL
    assert sent["Auto-Submitted"] == "auto-generated"
    # As mail servers that take no RFC 3834 header (Exchange, vacation programs) read it.
    assert sent["X-Auto-Response-Suppress"] == "OOF, AutoReply"
    assert sent["Precedence"] == "bulk"
    # On the site's host; the same on every attempt, but not for the same row of another
    # database (a restored copy) written at another time.
    assert sent["Message-ID"] == outbox._message_id(message)
    assert sent["Message-ID"].endswith("@licenses.example.com>")
    copy = OutboxMessage(pk=message.pk, created_at=message.created_at + timedelta(seconds=1))
    assert outbox._message_id(copy) != sent["Message-ID"]


@pytest.mark.parametrize("secret", [False, True])
def test_failures_back_off_then_mark_the_message_failed(activate, secret):
    activate()
    message = OutboxMessage.objects.get()
    OutboxMessage.objects.filter(pk=message.pk).update(secret=secret)  # as a reset link's
    with mock.patch("django.core.mail.EmailMessage.send", side_effect=OSError("SMTP down")):
        for attempt in range(1, outbox.MAX_ATTEMPTS + 1):
            OutboxMessage.objects.filter(pk=message.pk).update(next_attempt_at=timezone.now())
            with pytest.raises(outbox.DeliveryFailed) as failure:
                outbox.deliver(message.pk)
            message.refresh_from_db()
            assert message.attempts == attempt
            assert "SMTP down" in message.last_error
    assert failure.value.retry_in is None
    assert message.status == "failed"
    assert not mail.outbox
    # A secret is not kept for a message that will never be sent.
    assert (message.body == "") == secret


class DrippingSmtpServer:
    """Answers one line every 0.2 s, never ending its answer (a tarpit, a broken middlebox):
    its greeting, or (``greets``) the answer to EHLO. Each wait is short. Gives up after a
    minute."""

    def __init__(self, greets: bool):
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.greets = greets
        self.cut_off = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        conn, _ = self.sock.accept()
        with conn:
            if self.greets:
                conn.sendall(b"220 drip ESMTP\r\n")
                conn.recv(1024)  # EHLO
            line = b"250-still answering\r\n" if self.greets else b"220-still greeting\r\n"
            for _ in range(300):
                try:
                    conn.sendall(line)
                except OSError:
                    self.cut_off.set()
                    return
                clock.sleep(0.2)


@pytest.mark.parametrize(
    ("greets", "logs_in"),
    [
        (False, False),  # the greeting never ends
        (True, False),  # EHLO's answer never ends, as the message is sent
        (True, True),  # EHLO's answer never ends, before the log-in (production's settings)
    ],
)
def test_a_mail_server_answering_a_line_at_a_time_is_cut_off(activate, settings, greets, logs_in):
    activate("standard")
    message = OutboxMessage.objects.get()
    server = DrippingSmtpServer(greets)
    settings.EMAIL_BACKEND = "licensing.mail.SMTPBackend"  # as with EMAIL_HOST set
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", server.port, 1
    if logs_in:
        settings.EMAIL_HOST_USER, settings.EMAIL_HOST_PASSWORD = "licensing", "secret"
    with pytest.raises(outbox.DeliveryFailed):
        outbox.deliver(message.pk)
    message.refresh_from_db()
    assert message.status == "pending" and message.attempts == 1
    limit = outbox.SEND_LIMIT * settings.EMAIL_TIMEOUT
    assert message.last_error == f"TimeoutError: the mail server took more than {limit} s; cut off"
    assert server.cut_off.wait(5)  # by the sender, not the server's own giving up


def test_a_send_cut_off_is_said_so_however_soon_the_sender_sees_it(activate, settings, monkeypatch):
    """The sending thread may fail the moment its socket is shut, before the cutting thread
    runs on: the failure is still the cut-off's, not "connection unexpectedly closed"."""
    import socket as sockets
    from types import SimpleNamespace

    def shut_then_pause(sock, how):
        sockets.socket.shutdown(sock, how)
        clock.sleep(0.5)  # the sender fails meanwhile

    monkeypatch.setattr(
        outbox,
        "socket",
        SimpleNamespace(socket=SimpleNamespace(shutdown=shut_then_pause), SHUT_RDWR=2),
    )
    activate("standard")
    message = OutboxMessage.objects.get()
    server = DrippingSmtpServer(greets=False)
    settings.EMAIL_BACKEND = "licensing.mail.SMTPBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", server.port, 1
    with pytest.raises(outbox.DeliveryFailed):
        outbox.deliver(message.pk)
    message.refresh_from_db()
    limit = outbox.SEND_LIMIT * settings.EMAIL_TIMEOUT
    assert message.last_error == f"TimeoutError: the mail server took more than {limit} s; cut off"


def test_a_backing_off_message_is_not_sent_early(activate):
    activate()
    message = OutboxMessage.objects.get()
    OutboxMessage.objects.filter(pk=message.pk).update(
        next_attempt_at=timezone.now() + timedelta(minutes=5)
    )
    assert outbox.deliver(message.pk) is False
    assert not mail.outbox


def test_sweep_requeues_due_messages_not_recently_queued(db):
    now = timezone.now()

    def make(key, **kwargs):
        return OutboxMessage.objects.create(
            key=key, recipients=["a@example.com"], subject=key, body="x", **kwargs
        )

    lost = make("lost", queued_at=now - timedelta(minutes=10))
    never = make("never")
    fresh = make("fresh", queued_at=now - timedelta(seconds=30))
    later = make("later", next_attempt_at=now + timedelta(minutes=5))
    make("sent", status="sent", sent_at=now)
    with mock.patch("licensing.tasks.deliver_message.delay") as delay:
        assert outbox.sweep(now=timezone.now()) == 2
    assert sorted(c.args[0] for c in delay.call_args_list) == sorted([lost.pk, never.pk])
    assert {fresh.pk, later.pk}.isdisjoint(c.args[0] for c in delay.call_args_list)


def test_sweep_marks_a_message_queued_before_a_worker_can_take_it(db):
    message = OutboxMessage.objects.create(
        key="lost", recipients=["a@example.com"], subject="lost", body="x"
    )
    now = timezone.now()
    seen = []

    def publish(message_id):  # what a worker taking it at once would find
        seen.append(OutboxMessage.objects.values_list("queued_at", flat=True).get(pk=message_id))

    with mock.patch("licensing.tasks.deliver_message.delay", side_effect=publish):
        assert outbox.sweep(now=now) == 1
    assert seen == [now] and OutboxMessage.objects.get(pk=message.pk).queued_at == now


def test_sweep_with_the_broker_down_keeps_the_messages(activate):
    activate()
    with mock.patch("licensing.tasks.deliver_message.delay", side_effect=ConnectionError):
        assert outbox.sweep(now=timezone.now() + timedelta(hours=1)) == 0
    assert OutboxMessage.objects.get().status == "pending"


@pytest.mark.parametrize(
    ("days", "threshold"), [(45, None), (30, 30), (20, 30), (7, 7), (1, 7), (-1, None)]
)
def test_maintenance_reminders_at_30_and_7_days(make_license, customer, days, threshold):
    today = date(2027, 3, 1)
    end = today + timedelta(days=days)
    lic = make_license("standard", maintenance_end=end)
    assert services.queue_reminders(today=today) == (1 if threshold else 0)
    if threshold:
        message = OutboxMessage.objects.get()
        assert message.key == f"reminder:org:{lic.organization_id}:{threshold}:{end}"
        assert message.recipients == [customer.email]
        # One license: the reminder is its own, as its subject says.
        assert message.license == lic
        assert message.subject == f"Maintenance for license {lic.number} ends on {end}"
    # The next daily run within the same threshold writes nothing more.
    assert services.queue_reminders(today=today + timedelta(days=1)) == 0


def test_a_reminder_says_what_stops_and_when_and_whom_to_ask(make_license, settings):
    today = timezone.localdate()
    end = today + timedelta(days=20)
    at = datetime.combine(end, time(), tzinfo=UTC)

    def alone(**kwargs):  # in an organization of its own: a reminder of its own
        organization = OrganizationFactory()
        UserFactory(organization=organization)
        return make_license("standard", organization=organization, maintenance_end=end, **kwargs)

    cases = {
        "never": alone(),
        "later": alone(expires_at=at + timedelta(days=90)),
        "first": alone(expires_at=at + timedelta(days=1)),  # through its maintenance end
        "expired": alone(expires_at=timezone.now()),
        "suspended": alone(status="suspended"),
    }
    assert services.queue_reminders(today=today) == 3
    body = {
        name: OutboxMessage.objects.filter(license=lic).values_list("body", flat=True).first()
        for name, lic in cases.items()
    }
    assert body["expired"] is None and body["suspended"] is None  # nothing left to renew
    keep = "Your ThinManager Servers keep working after that date"
    assert keep in body["never"] and "expires" not in body["never"]
    assert f"{keep}, until the license expires on {cases['later'].expiry_shown}" in body["later"]
    assert keep not in body["first"]
    assert f"The license itself expires on {cases['first'].expiry_shown}" in body["first"]
    assert all(
        f"To renew, write to {settings.SUPPORT_EMAIL}" in body[name] for name in body if body[name]
    )
    later = cases["later"]
    assert f"Its page: {settings.SITE_URL}/licenses/{later.number}/" in body["later"]


def test_a_license_expiring_is_reminded_30_and_7_days_before_its_servers_stop(
    activate, make_license, customer, settings
):
    """A term license may expire months before its maintenance ends: its servers stop serving
    thin clients then. Its members are told 30 and 7 days before, once each, with what to
    do; one expiring on its maintenance end is told so by the maintenance reminder alone."""
    today = date(2027, 3, 1)
    expiry = datetime(2027, 3, 21, 12, 0, tzinfo=UTC)
    lic = activate("standard", maintenance_end=date(2027, 12, 31), expires_at=expiry).license
    OutboxMessage.objects.all().delete()  # its file's e-mail
    on_its_end = make_license(  # its maintenance reminder says it expires then
        "standard",
        maintenance_end=date(2027, 3, 24),
        expires_at=datetime(2027, 3, 25, tzinfo=UTC),  # the next midnight: through the day
    )
    make_license("standard", expires_at=datetime(2027, 5, 1, tzinfo=UTC))  # not due yet
    assert services.queue_reminders(today=today) == 2
    message = OutboxMessage.objects.get(key__startswith="expiry:")
    assert message.key == f"expiry:org:{lic.organization_id}:30:2027-03-21"
    assert (message.license, message.recipients) == (lic, [customer.email])
    assert message.subject == f"License {lic.number} expires on 2027-03-21 12:00 UTC"
    assert message.body.startswith(
        f"License {lic.number} ({lic.description}) expires on 2027-03-21 12:00 UTC, in 20 days."
    )
    assert "no longer serves thin clients" in message.body
    assert f"write to {settings.SUPPORT_EMAIL}" in message.body
    assert f"{settings.SITE_URL}/licenses/{lic.number}/" in message.body
    reminder = OutboxMessage.objects.get(key__startswith="reminder:")
    assert reminder.license == on_its_end
    assert "The license itself expires on 2027-03-25 00:00 UTC" in reminder.body
    assert services.queue_reminders(today=today + timedelta(days=1)) == 0

    assert services.queue_reminders(today=date(2027, 3, 21)) == 2  # 7 days: both
    last = OutboxMessage.objects.get(key=f"expiry:org:{lic.organization_id}:7:2027-03-21")
    assert "expires on 2027-03-21 12:00 UTC, today." in last.body
    # Expired: nothing more to remind of.
    assert services.queue_reminders(today=date(2027, 3, 22)) == 0


def test_an_expiry_reminder_follows_the_file_on_the_servers(activate, make_license, customer):
    """Support extended the license but its servers hold the file issued before: they stop on
    the file's expiry, which the reminders follow (and say to add the updated file). A
    license not activated cannot be activated once it has expired: said so."""
    today = date(2027, 3, 1)
    old_expiry = datetime(2027, 3, 11, tzinfo=UTC)  # midnight: the 10th is its last day
    lic = activate("standard", expires_at=old_expiry).license
    OutboxMessage.objects.all().delete()
    License.objects.filter(pk=lic.pk).update(expires_at=datetime(2027, 9, 1, tzinfo=UTC))
    waiting = make_license("standard", organization=OrganizationFactory(), expires_at=old_expiry)
    UserFactory(organization=waiting.organization)
    assert services.queue_reminders(today=today) == 2
    extended = OutboxMessage.objects.get(license=lic)
    assert extended.key == f"expiry:org:{lic.organization_id}:30:2027-03-10"
    assert extended.subject == f"The license file of {lic.number} expires on 2027-03-11 00:00 UTC"
    assert "The license itself is extended to 2027-09-01 00:00 UTC" in extended.body
    assert "add its updated file on them before then" in extended.body
    unactivated = OutboxMessage.objects.get(license=waiting).body
    assert "It is not activated: from then on it can be activated no more." in unactivated
    assert "ThinManager Servers refuse" not in unactivated
    # Its last day: "at the end of today", not "today" (it works until midnight).
    assert services.queue_reminders(today=date(2027, 3, 10)) == 2
    assert "expires on 2027-03-11 00:00 UTC, at the end of today." in (
        OutboxMessage.objects.get(key=f"expiry:org:{lic.organization_id}:7:2027-03-10").body
    )
    # Its updated file added: nothing more to remind of before the license's own expiry.
    services.update_file(license=lic, actor=customer)
    assert services.queue_reminders(today=date(2027, 3, 10)) == 0


def test_a_reminder_says_a_file_that_expired_already_is_refused_now(
    activate, make_license, customer
):
    """The license extended after its file expired, the updated file not taken: the
    maintenance reminder says the servers refuse the file since its expiry, and to add the
    updated one now, not "before" a date gone."""
    end = date(2027, 3, 31)
    gone = datetime(2027, 2, 15, tzinfo=UTC)
    lic = activate("standard", expires_at=gone, maintenance_end=end).license
    License.objects.filter(pk=lic.pk).update(expires_at=datetime(2028, 1, 1, tzinfo=UTC))
    OutboxMessage.objects.all().delete()
    assert services.queue_reminders(today=date(2027, 3, 1)) == 1
    body = OutboxMessage.objects.get(key__startswith="reminder:").body
    assert (
        "Its file on your ThinManager Servers expired on 2027-02-15 00:00 UTC: they refuse it "
        "(the license is extended to 2028-01-01 00:00 UTC: add its updated file now; its page "
        "gives it)." in body
    )
    assert "before then" not in body and "from then on" not in body
    # In a reminder of several licenses too.
    other = activate("standard", expires_at=gone, maintenance_end=end).license
    License.objects.filter(pk=other.pk).update(expires_at=datetime(2028, 1, 1, tzinfo=UTC))
    OutboxMessage.objects.all().delete()
    assert services.queue_reminders(today=date(2027, 3, 1)) == 1
    body = OutboxMessage.objects.get(key__startswith="reminder:").body
    assert (
        body.count(
            "Its file on your ThinManager Servers expired on 2027-02-15 00:00 UTC: they refuse it."
        )
        == 2
    )


def test_an_expiry_on_the_maintenance_ends_day_is_said_by_one_reminder_that_says_it(
    activate, make_license, customer
):
    """A license expiring on its maintenance end's day (through it, or at its 00:00: one date
    typed for both) is reminded once, by the maintenance reminder, whose subject says it
    expires too; one not activated is told it can be activated no more (it has no file for
    servers to refuse). One expiring the day before has its own expiry reminder."""
    today = date(2027, 3, 1)
    end = date(2027, 3, 8)
    through = datetime(2027, 3, 9, tzinfo=UTC)  # the next midnight: through the 8th
    activated = activate("standard", maintenance_end=end, expires_at=through).license
    waiting = make_license(
        "standard", organization=OrganizationFactory(), maintenance_end=end, expires_at=through
    )
    UserFactory(organization=waiting.organization)
    OutboxMessage.objects.all().delete()
    assert services.queue_reminders(today=today) == 2
    assert not OutboxMessage.objects.filter(key__startswith="expiry:")
    mails = {m.license: m for m in OutboxMessage.objects.all()}
    for lic in (activated, waiting):
        assert (
            mails[lic].subject == f"License {lic.number} expires and its maintenance ends on {end}"
        )
        assert mails[lic].body.startswith(
            f"Maintenance for license {lic.number} ({lic.description}) ends on {end}, in 7 days."
        )
    assert "The license itself expires on 2027-03-09 00:00 UTC: from then on your ThinManager" in (
        mails[activated].body
    )
    assert (
        "The license itself expires on 2027-03-09 00:00 UTC. It is not activated: from then on "
        "it can be activated no more."
    ) in mails[waiting].body
    assert "refuse" not in mails[waiting].body

    # Listed with others, in the subject too: one who reads only subjects learns it.
    OutboxMessage.objects.all().delete()
    make_license("standard", organization=waiting.organization, maintenance_end=end)
    assert services.queue_reminders(today=today) == 2
    assert OutboxMessage.objects.get(organization=waiting.organization).subject == (
        f"Maintenance for 2 licenses ends on {end}; 1 of them expires then"
    )
    make_license(
        "standard", organization=waiting.organization, maintenance_end=end, expires_at=through
    )
    OutboxMessage.objects.all().delete()
    assert services.queue_reminders(today=today) == 2
    assert OutboxMessage.objects.get(organization=waiting.organization).subject == (
        f"Maintenance for 3 licenses ends on {end}; 2 of them expire then"
    )

    OutboxMessage.objects.all().delete()
    License.objects.filter(pk=activated.pk).update(maintenance_end=date(2027, 3, 9))
    assert services.queue_reminders(today=today) == 2  # at 00:00 of the day: one reminder
    assert not OutboxMessage.objects.filter(key__startswith="expiry:")
    assert OutboxMessage.objects.get(license=activated).subject == (
        f"License {activated.number} expires and its maintenance ends on 2027-03-09"
    )

    OutboxMessage.objects.all().delete()
    License.objects.filter(pk=activated.pk).update(maintenance_end=date(2027, 3, 10))
    assert services.queue_reminders(today=today) == 3  # the day before: its own expiry reminder
    expiry = OutboxMessage.objects.get(key__startswith="expiry:")
    assert expiry.license == activated and expiry.key.endswith(":7:2027-03-08")
    assert "expires on 2027-03-09 00:00 UTC, in 7 days." in expiry.body
    maintenance = OutboxMessage.objects.get(license=activated, key__startswith="reminder:")
    assert maintenance.subject == f"Maintenance for license {activated.number} ends on 2027-03-10"


DAY = timedelta(days=1)


def test_an_expiry_set_on_the_maintenance_ends_day_after_its_reminder_has_its_own(
    activate, make_license, customer, support
):
    """The maintenance reminder went out 7 days before the end, saying nothing of an expiry;
    support then set the license to expire on that day and the customer took its updated
    file: the servers stop then, and an expiry reminder says so (the maintenance reminder
    that would say both went out already). Once; and not when the maintenance reminder was
    written after the change (it says both)."""
    end = date(2027, 3, 8)
    through = datetime(2027, 3, 9, tzinfo=UTC)
    waiting = make_license("standard", organization=OrganizationFactory(), maintenance_end=end)
    UserFactory(organization=waiting.organization)
    lic = activate("standard", maintenance_end=end).license
    OutboxMessage.objects.all().delete()
    assert services.queue_reminders(today=date(2027, 3, 1)) == 2
    assert not OutboxMessage.objects.filter(key__startswith="expiry:")

    for changed in (lic, waiting):
        License.objects.filter(pk=changed.pk).update(expires_at=through)
        services.audit(
            actor=support,
            action="license_change",
            license=changed,
            obj=changed,
            details={"changed": {"expires at": ["never", "2027-03-09 00:00 UTC"]}},
        )
    services.update_file(license=License.objects.get(pk=lic.pk), actor=customer)
    assert services.queue_reminders(today=date(2027, 3, 3)) == 2
    for changed in (lic, waiting):
        expiry = OutboxMessage.objects.get(key=f"expiry:org:{changed.organization_id}:7:2027-03-08")
        assert expiry.subject == f"License {changed.number} expires on 2027-03-09 00:00 UTC"
    assert services.queue_reminders(today=date(2027, 3, 4)) == 0  # once

    # Set before the maintenance reminder: that reminder says both, and no other does, when
    # the license changed since otherwise (its seats) or its file was downloaded again.
    other = activate(
        "standard", maintenance_end=end + timedelta(days=1), expires_at=through + DAY
    ).license
    assert services.queue_reminders(today=date(2027, 3, 4)) == 1
    assert OutboxMessage.objects.get(key__endswith=":7:2027-03-09").subject == (
        f"License {other.number} expires and its maintenance ends on 2027-03-09"
    )
    for action, details in (
        ("license_change", {"changed": {"seats": [25, 30]}}),
        ("file_download", {}),
    ):
        services.audit(actor=customer, action=action, license=other, obj=other, details=details)
    assert services.queue_reminders(today=date(2027, 3, 5)) == 0


def test_a_license_reminded_of_its_expiry_is_still_reminded_of_its_maintenance_end(
    make_license, customer
):
    """Each kind of reminder counts its own: an expiry reminder of a date does not stand for a
    maintenance reminder of that date (support moved the maintenance end onto it since)."""
    today = date(2027, 3, 1)
    lic = make_license("standard", expires_at=datetime(2027, 3, 9, 12, tzinfo=UTC))
    assert services.queue_reminders(today=today) == 1
    License.objects.filter(pk=lic.pk).update(maintenance_end=date(2027, 3, 9))
    assert services.queue_reminders(today=today) == 1
    assert sorted(OutboxMessage.objects.values_list("key", flat=True)) == [
        f"expiry:org:{lic.organization_id}:30:2027-03-09",
        f"reminder:org:{lic.organization_id}:30:2027-03-09",
    ]


def test_a_license_shortened_since_its_file_is_reminded_of_the_file_and_of_itself(
    activate, customer
):
    """Support shortened the license (or it expired so) after its file was issued: its
    servers run on the file until the file's expiry, and are reminded of it, with the
    license's own expiry said beside it (no new file after it)."""
    lic = activate("standard", expires_at=datetime(2027, 6, 30, 12, tzinfo=UTC)).license
    OutboxMessage.objects.all().delete()
    License.objects.filter(pk=lic.pk).update(expires_at=datetime(2027, 5, 20, tzinfo=UTC))
    with mock.patch("django.utils.timezone.now", return_value=datetime(2027, 6, 2, 6, tzinfo=UTC)):
        assert services.queue_reminders(today=date(2027, 6, 2)) == 1  # the license expired
    message = OutboxMessage.objects.get()
    assert message.subject == f"The license file of {lic.number} expires on 2027-06-30 12:00 UTC"
    assert "The license itself expired on 2027-05-20 00:00 UTC" in message.body
    assert "no new file is issued" in message.body


def test_a_file_expired_this_morning_is_not_reminded_as_expiring_today(activate, customer):
    lic = activate("standard", expires_at=datetime(2027, 7, 10, 3, tzinfo=UTC)).license
    OutboxMessage.objects.all().delete()
    License.objects.filter(pk=lic.pk).update(expires_at=datetime(2027, 12, 31, tzinfo=UTC))
    with mock.patch("django.utils.timezone.now", return_value=datetime(2027, 7, 10, 6, tzinfo=UTC)):
        assert services.queue_reminders(today=date(2027, 7, 10)) == 0


def test_the_maintenance_reminder_says_when_the_servers_file_expires(activate, customer):
    """Extended since its file was issued, whose expiry comes before the maintenance end: the
    maintenance reminder does not promise the servers work until the license's expiry."""
    lic = activate(
        "standard",
        maintenance_end=date(2027, 6, 30),
        expires_at=datetime(2027, 6, 15, 12, tzinfo=UTC),
    ).license
    OutboxMessage.objects.all().delete()
    License.objects.filter(pk=lic.pk).update(expires_at=datetime(2027, 12, 31, tzinfo=UTC))
    services.queue_reminders(today=date(2027, 5, 31))
    body = OutboxMessage.objects.get(key__startswith="reminder:").body
    assert "keep working after that date" not in body
    assert "Its file on your ThinManager Servers expires on 2027-06-15 12:00 UTC" in body


def test_licenses_expiring_on_one_day_are_listed_in_one_email(make_license, customer):
    today = date(2027, 3, 1)
    expiry = datetime(2027, 3, 8, tzinfo=UTC)
    licenses = [make_license("standard", expires_at=expiry) for _ in range(3)]
    assert services.queue_reminders(today=today) == 1
    message = OutboxMessage.objects.get()
    assert _reminded(message) == sorted(lic.number for lic in licenses)
    assert message.subject == "3 licenses expire by the end of 2027-03-07 (UTC)"
    assert message.body.startswith(
        "3 of your licenses expire by the end of 2027-03-07 (UTC), in 6 days:"
    )
    assert all(
        f"{lic.number}: {lic.description}, 10 seats; expires 2027-03-08 00:00 UTC (not activated)."
        in message.body
        for lic in licenses
    )
    assert "can be activated no more once it has expired" in message.body
    later = make_license("standard", expires_at=expiry)
    assert services.queue_reminders(today=today + timedelta(days=1)) == 1
    again = OutboxMessage.objects.get(key__endswith=":2")
    assert again.license == later
    assert again.subject == f"License {later.number} expires on 2027-03-08 00:00 UTC"


def test_a_maintenance_reminder_on_its_last_day_says_today(make_license, customer):
    end = date(2027, 3, 1)
    make_license("standard", maintenance_end=end)
    make_license("standard", organization=OrganizationFactory(), maintenance_end=end)
    assert services.queue_reminders(today=end) == 1
    assert f"ends on {end}, today." in OutboxMessage.objects.get().body


def test_each_reminder_is_sent_once_per_license_and_threshold(make_license, customer):
    end = date(2027, 6, 30)
    make_license("standard", maintenance_end=end)
    sent = [services.queue_reminders(today=end - timedelta(days=d)) for d in range(40, -2, -1)]
    assert sum(sent) == 2
    keys = sorted(OutboxMessage.objects.values_list("key", flat=True))
    assert [k.split(":")[3] for k in keys] == ["30", "7"]


def _reminded(message) -> list[str]:
    return sorted(message.licenses.values_list("number", flat=True))


def test_licenses_ending_on_one_day_are_reminded_in_one_email_per_organization(
    make_license, customer, organization, other_customer
):
    """A customer with many licenses on one contract got one e-mail per license, each to all
    its members; now one per organization and end date lists them."""
    today = date(2027, 1, 1)
    first, second = date(2027, 1, 21), date(2027, 1, 26)
    colleague = UserFactory(organization=organization)
    ours = [make_license("standard", maintenance_end=first) for _ in range(3)]
    later = [make_license("mirrored", maintenance_end=second) for _ in range(2)]
    rival = other_customer.membership.organization
    theirs = [make_license("standard", organization=rival, maintenance_end=first) for _ in range(2)]
    make_license("standard", maintenance_end=date(2027, 3, 1))  # not due yet

    assert services.queue_reminders(today=today) == 3
    messages = {m.key: m for m in OutboxMessage.objects.all()}
    assert sorted(messages) == sorted(
        [
            f"reminder:org:{organization.pk}:30:2027-01-21",
            f"reminder:org:{organization.pk}:30:2027-01-26",
            f"reminder:org:{rival.pk}:30:2027-01-21",
        ]
    )
    ending = messages[f"reminder:org:{organization.pk}:30:2027-01-21"]
    assert _reminded(ending) == sorted(lic.number for lic in ours)
    assert ending.recipients == sorted([customer.email, colleague.email])
    assert (ending.license, ending.organization) == (None, organization)
    assert _reminded(messages[f"reminder:org:{organization.pk}:30:2027-01-26"]) == sorted(
        lic.number for lic in later
    )
    rivals = messages[f"reminder:org:{rival.pk}:30:2027-01-21"]
    assert _reminded(rivals) == sorted(lic.number for lic in theirs)
    assert rivals.recipients == [other_customer.email]


def test_reminders_read_the_members_once_per_organization(make_license, db):
    """The run's queries do not grow with the number of licenses: the members of an
    organization are read once, not once per license."""
    today = date(2027, 1, 1)

    def run(count: int, end: date):
        for _organization in range(2):
            organization = OrganizationFactory()
            UserFactory.create_batch(3, organization=organization)
            for _ in range(count):
                make_license("standard", organization=organization, maintenance_end=end)
        with CaptureQueriesContext(connection) as queries:
            assert services.queue_reminders(today=today) == 2
        return [q["sql"] for q in queries]

    few, many = run(3, date(2027, 1, 20)), run(30, date(2027, 1, 25))
    assert len(many) == len(few)
    assert sum("licensing_membership" in sql for sql in many) == 2


def test_a_digest_is_queued_once_and_a_license_due_since_in_one_more(
    make_license, customer, organization, other_customer
):
    """Missed days are caught up, a second run queues nothing, and a license that is due only
    since (added, its maintenance end or its organization changed) is reminded in one more
    e-mail, without those reminded already."""
    end = date(2027, 6, 30)
    first = [make_license("standard", maintenance_end=end) for _ in range(2)]
    # The scheduler missed the 30th day before the end and a few after it.
    assert services.queue_reminders(today=end - timedelta(days=25)) == 1
    assert services.queue_reminders(today=end - timedelta(days=25)) == 0
    assert services.queue_reminders(today=end - timedelta(days=24)) == 0

    added = make_license("standard", maintenance_end=end)
    moved_on = make_license("standard", maintenance_end=end + timedelta(days=3))
    moved_on.maintenance_end = end
    moved_on.save()
    moved_in = make_license("standard", organization=other_customer.membership.organization)
    moved_in.maintenance_end, moved_in.organization = end, organization
    moved_in.save()
    assert services.queue_reminders(today=end - timedelta(days=23)) == 1
    again = OutboxMessage.objects.get(key=f"reminder:org:{organization.pk}:30:{end}:2")
    assert _reminded(again) == sorted([added.number, moved_on.number, moved_in.number])
    # Said to come on top of the first, not to correct it.
    assert again.subject == f"Maintenance for 3 more licenses ends on {end}"
    assert again.body.startswith(f"Maintenance for 3 more of your licenses ends on {end}")
    assert services.queue_reminders(today=end - timedelta(days=22)) == 0

    # 7 days before the end, one e-mail names them all.
    assert services.queue_reminders(today=end - timedelta(days=7)) == 1
    last = OutboxMessage.objects.get(key=f"reminder:org:{organization.pk}:7:{end}")
    assert _reminded(last) == sorted(lic.number for lic in [*first, added, moved_on, moved_in])
    assert services.queue_reminders(today=end - timedelta(days=1)) == 0


def test_a_license_reminded_under_its_former_key_is_not_reminded_again(
    make_license, customer, organization
):
    """Reminders queued before they were grouped (one per license, keyed by its number)
    still count: such a license is left out of the organization's e-mail."""
    end = date(2027, 6, 30)
    reminded, *others = [make_license("standard", maintenance_end=end) for _ in range(3)]
    outbox.queue(
        key=f"reminder:{reminded.number}:30:{end}",
        license=reminded,
        recipients=[customer.email],
        subject=f"Maintenance for license {reminded.number} ends on {end}",
        template="email/maintenance_reminder.txt",
        context={"license": reminded, "days_left": 30},
    )
    assert services.queue_reminders(today=end - timedelta(days=29)) == 1
    digest = OutboxMessage.objects.get(key=f"reminder:org:{organization.pk}:30:{end}")
    assert _reminded(digest) == sorted(lic.number for lic in others)
    assert reminded.number not in digest.body
    assert digest.subject == f"Maintenance for 2 licenses ends on {end}"

    # Reminded alone before, the last one left is reminded alone again.
    OutboxMessage.objects.filter(pk=digest.pk).delete()
    OutboxMessage.objects.create(
        key=f"reminder:{others[0].number}:30:{end}",
        license=others[0],
        organization=organization,  # as each was written (or given by migration 0019)
        subject="s",
        body="b",
    )
    assert services.queue_reminders(today=end - timedelta(days=28)) == 1
    alone = OutboxMessage.objects.get(key=f"reminder:org:{organization.pk}:30:{end}")
    assert alone.license == others[1]
    assert alone.subject == f"Maintenance for license {others[1].number} ends on {end}"
    assert services.queue_reminders(today=end - timedelta(days=7)) == 1


def test_a_digest_lists_each_license_with_what_stops_and_when(make_license, customer, settings):
    today = timezone.localdate()
    end = today + timedelta(days=20)
    at = datetime.combine(end, time(), tzinfo=UTC)
    never = make_license("standard", maintenance_end=end, seats=25)
    later = make_license("mirrored", maintenance_end=end, expires_at=at + timedelta(days=90))
    # Through its maintenance end (a file's last day before it has a reminder of its own).
    first = make_license(
        "standard", maintenance_end=end, expires_at=at + timedelta(days=1), seats=1
    )
    assert services.queue_reminders(today=today) == 1
    message = OutboxMessage.objects.get()
    assert (
        message.subject
        == f"Maintenance for 3 licenses ends on {end:%Y-%m-%d}; 1 of them expires then"
    )
    body = message.body
    assert body.startswith(
        f"Maintenance for 3 of your licenses ends on {end:%Y-%m-%d}, in 20 days:"
    )
    numbers = sorted([never.number, later.number, first.number])
    assert [body.index(n) for n in numbers] == sorted(body.index(n) for n in numbers)
    assert f"{never.number}: {never.description}, 25 seats." in body
    assert f"{later.number}: {later.description}, 10 seats." in body
    assert f"{first.number}: {first.description}, 1 seat." in body
    assert (
        f"The license itself expires on {first.expiry_shown}. It is not activated: from then on "
        "it can be activated no more." in body
    )
    assert f"It keeps working until it expires on {later.expiry_shown}." in body
    assert body.count("expires on") == 2  # not a word of it for the one that never expires
    assert "With the other licenses, your ThinManager Servers keep working after that date" in body
    assert f"To renew, write to {settings.SUPPORT_EMAIL} with your license numbers." in body


def test_a_digest_of_a_very_large_customer_lists_one_license_a_line(organization, customer):
    """1,312 licenses on one contract: one e-mail, each license on a line of its own, sorted
    by number, and a subject that says how many."""
    end = date(2027, 1, 31)
    licenses = License.objects.bulk_create(
        LicenseFactory.build(organization=organization, maintenance_end=end, seats=5)
        for _ in range(1312)
    )
    licenses[0].expires_at = datetime(2027, 1, 15, tzinfo=UTC)
    licenses[0].save()
    licenses[1].expires_at = datetime(2027, 1, 31, 12, tzinfo=UTC)  # on its maintenance end
    licenses[1].save()
    # And the one expiring in 5 days its own reminder of that.
    assert services.queue_reminders(today=date(2027, 1, 10)) == 2
    assert OutboxMessage.objects.get(key__startswith="expiry:").license == licenses[0]
    message = OutboxMessage.objects.get(key__startswith="reminder:")
    assert (
        message.subject
        == "Maintenance for 1,312 licenses ends on 2027-01-31; 1 of them expires then"
    )
    assert message.license is None and message.organization == organization
    lines = message.body.splitlines()
    listed = [line for line in lines if line.startswith("TM-")]
    assert [line.split()[0] for line in listed] == sorted(lic.number for lic in licenses)
    assert len(lines) < len(listed) + 12  # one line each, a few around them
    expiring = next(line for line in listed if line.startswith(licenses[0].number))
    assert expiring.endswith("expires 2027-01-15 00:00 UTC, before its maintenance end")
    on_the_day = next(line for line in listed if line.startswith(licenses[1].number))
    assert on_the_day.endswith("expires 2027-01-31 12:00 UTC, on its maintenance end")


def test_healthz_reports_database_signing_key_and_broker(client, db, settings, tmp_path):
    # Tasks run in-process here; with Redis: tests/integration/test_outbox_worker.py.
    response = client.get("/healthz")
    assert response.status_code == 200
    healthy = {
        "status": "ok",
        "database": "ok",
        "signing": "ok",
        "keyring": "ok",
        "broker": "in-process",
    }
    assert response.json() == healthy
    # The keyring kept after a rotation does not load (an error page saved in its place): the
    # site signs and serves files, but not /keyring.json; the key is not blamed.
    kept = tmp_path / "old-keyring.json"
    kept.write_text("<html>502 Bad Gateway</html>")
    settings.LICENSE_EXTRA_KEYRING_FILE = kept
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {
        **healthy,
        "status": "degraded",
        "keyring": "error: the kept keyring does not load",
    }
    assert "old-keyring" not in response.content.decode()
    # A deployment without its key (not mounted, not readable) is down, not healthy, and the
    # public page does not name the file.
    settings.LICENSE_SIGNING_KEY_FILE = tmp_path / "not-mounted.pem"
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["status"] == "down"
    assert response.json()["signing"] == "error: no usable signing key"
    assert response.json()["keyring"] == "error: no usable signing key"
    assert "not-mounted" not in response.content.decode()


def test_purge_deletes_old_sent_and_failed_messages_never_pending(db, settings):
    settings.OUTBOX_KEEP_DAYS = 90
    now = timezone.now()
    old, recent = now - timedelta(days=91), now - timedelta(days=89)

    def make(key, **kwargs):
        return OutboxMessage.objects.create(
            key=key, recipients=["a@example.com"], subject=key, body="x", **kwargs
        )

    make("sent-old", status="sent", sent_at=old, created_at=old)
    make("failed-old", status="failed", next_attempt_at=old, created_at=old)
    make("sent-recent", status="sent", sent_at=recent, created_at=old)  # sent late
    make("failed-recent", status="failed", next_attempt_at=recent, created_at=old)
    make("pending-old", created_at=old - timedelta(days=400), next_attempt_at=old)
    assert outbox.purge(now=now, batch=1) == 2
    assert sorted(OutboxMessage.objects.values_list("key", flat=True)) == [
        "failed-recent",
        "pending-old",
        "sent-recent",
    ]
    assert outbox.purge(now=now) == 0


def test_purge_keeps_a_message_sent_again_while_it_runs(db, settings):
    old = timezone.now() - timedelta(days=settings.OUTBOX_KEEP_DAYS + 1)
    message = OutboxMessage.objects.create(
        key="k",
        recipients=["a@example.com"],
        subject="s",
        body="x",
        status="failed",
        next_attempt_at=old,
    )
    delete = QuerySet.delete

    def sent_again_first(queryset):  # support's "send again", between the look and the delete
        outbox.retry_now(message)
        return delete(queryset)

    with mock.patch.object(QuerySet, "delete", sent_again_first):
        assert outbox.purge() == 0
    assert OutboxMessage.objects.get().status == "pending"


def test_purging_sent_reminders_never_sends_them_twice(make_license, customer, settings):
    """A reminder's row keeps it from being queued twice; the shortest keeping allowed (31
    days) outlives its reminder window, purged every day as beat does. The purge counts
    messages (not the licenses a reminder lists)."""
    settings.OUTBOX_KEEP_DAYS = 31
    end = date(2027, 6, 30)
    make_license("standard", maintenance_end=end)
    make_license("standard", maintenance_end=end)
    queued = purged = 0
    for day in (end + timedelta(days=d) for d in range(-40, 40)):
        noon = timezone.make_aware(datetime.combine(day, time(12)))
        queued += services.queue_reminders(today=day)
        OutboxMessage.objects.filter(status="pending").update(status="sent", sent_at=noon)
        purged += outbox.purge(now=noon)
    assert queued == purged == 2
    assert not OutboxMessage.objects.exists()  # both purged in the end


def test_beat_schedules_only_tasks_the_worker_knows():
    from portal.celery import app

    app.loader.import_default_modules()  # as a worker does when it starts
    scheduled = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    purges = {"purge_outbox", "purge_audit", "purge_sessions"}
    assert {f"licensing.tasks.{name}" for name in purges} <= scheduled
    assert scheduled <= set(app.tasks)


def test_expired_sessions_are_purged(customer_client):
    from django.contrib.sessions.models import Session

    from licensing import tasks

    customer_client.get("/licenses/")
    Session.objects.create(
        session_key="x" * 32, session_data="", expire_date=timezone.now() - timedelta(seconds=1)
    )
    tasks.purge_sessions.delay()
    assert list(Session.objects.values_list("session_key", flat=True)) == [
        customer_client.session.session_key
    ]


def test_the_purge_of_expired_sessions_outlasts_no_statement_timeout(db, monkeypatch):
    """One DELETE of every expired session: not cut short by the web's statement timeout."""
    from django.db import connection

    from licensing import tasks
    from tests.conftest import require

    require(connection.vendor == "postgresql", "PostgreSQL is not configured: set DATABASE_URL")
    timeouts = []

    def clearsessions(name):
        with connection.cursor() as cursor:
            cursor.execute("SHOW statement_timeout")
            timeouts.append(cursor.fetchone()[0])

    monkeypatch.setattr(tasks, "call_command", clearsessions)
    tasks.purge_sessions.delay()
    assert timeouts == ["0"]


class RefusingSmtpServer:
    """A mail server on loopback that answers each recipient as ``replies`` says (by the
    address's local part; "250 OK" when not named) and keeps what it accepted."""

    def __init__(self, replies: dict[str, str]):
        from aiosmtpd.controller import Controller

        self.replies = replies
        self.received: list[list[str]] = []  # each message's accepted recipients
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802
        reply = self.replies.get(address.split("@")[0], "250 OK")
        if reply.startswith("250"):
            envelope.rcpt_tos.append(address)
        return reply

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's name
        self.received.append(list(envelope.rcpt_tos))
        return "250 OK"


@pytest.fixture
def smtp_server(settings):
    servers = []

    def start(**replies):
        server = RefusingSmtpServer(replies)
        servers.append(server)
        settings.EMAIL_BACKEND = "licensing.mail.SMTPBackend"  # as with EMAIL_HOST set
        settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", server.port
        return server

    yield start
    for server in servers:
        server.controller.stop()


@pytest.fixture
def reissued(activate, organization):
    """A file support reissued, to be e-mailed to the organization's three members."""
    for address in ("gone@plant.example", "later@plänt.example"):  # a domain's IDN form too
        UserFactory(organization=organization, username=address[:4], email=address)
    new = services.reissue(activation=activate(), actor=UserFactory(is_staff=True))
    OutboxMessage.objects.exclude(key=f"activation:{new.serial}").delete()
    return OutboxMessage.objects.get()


def _outbox_log(caplog) -> list[str]:
    return [
        f"{r.levelname} {r.getMessage()}" for r in caplog.records if r.name == "licensing.outbox"
    ]


def test_recipients_refused_for_good_are_recorded_and_not_tried_again(
    reissued, customer, smtp_server, caplog
):
    server = smtp_server(gone="550 5.1.1 No such user")
    assert outbox.deliver(reissued.pk) is True
    # In the worker's log, as every failed attempt is.
    assert _outbox_log(caplog) == [
        f"WARNING outbox message {reissued.pk}: sent; Not sent to gone@plant.example: refused "
        "by the mail server: 550 5.1.1 No such user"
    ]
    assert server.received == [sorted([customer.email, "later@xn--plnt-moa.example"])]
    reissued.refresh_from_db()
    assert reissued.status == "sent" and reissued.attempts == 1
    assert reissued.undelivered == {
        "gone@plant.example": "refused by the mail server: 550 5.1.1 No such user"
    }
    assert reissued.last_error == (
        "Not sent to gone@plant.example: refused by the mail server: 550 5.1.1 No such user"
    )


def test_recipients_refused_for_now_are_tried_again_alone(reissued, customer, smtp_server):
    server = smtp_server(later="452 4.2.2 Mailbox full", gone="550 5.1.1 No such user")
    with pytest.raises(outbox.DeliveryFailed) as failed:
        outbox.deliver(reissued.pk)
    assert failed.value.retry_in == outbox.backoff(1)
    assert server.received == [[customer.email]]
    reissued.refresh_from_db()
    assert reissued.status == "pending" and reissued.attempts == 1
    assert reissued.delivered_to == [customer.email]
    assert reissued.last_error == (
        "RefusedForNow: refused for now by the mail server: "
        "later@plänt.example (452 4.2.2 Mailbox full); "
        "Not sent to gone@plant.example: refused by the mail server: 550 5.1.1 No such user"
    )
    # The mailbox was emptied: the next attempt goes to that recipient alone.
    server.replies.pop("later")
    OutboxMessage.objects.filter(pk=reissued.pk).update(next_attempt_at=timezone.now())
    assert outbox.deliver(reissued.pk) is True
    assert server.received[1:] == [["later@xn--plnt-moa.example"]]
    reissued.refresh_from_db()
    assert reissued.status == "sent" and reissued.attempts == 2
    assert reissued.to_send == [] and "gone@plant.example" in reissued.last_error


def test_a_message_some_got_ends_sent_when_the_others_are_given_up_on(
    reissued, customer, smtp_server
):
    server = smtp_server(later="452 4.2.2 Mailbox full")
    for _attempt in range(outbox.MAX_ATTEMPTS):
        OutboxMessage.objects.filter(pk=reissued.pk).update(next_attempt_at=timezone.now())
        with pytest.raises(outbox.DeliveryFailed) as failed:
            outbox.deliver(reissued.pk)
    assert failed.value.retry_in is None  # given up on
    assert server.received[0] == sorted([customer.email, "gone@plant.example"])
    assert server.received[1:] == []  # the others were not sent it again
    reissued.refresh_from_db()
    assert reissued.status == "sent" and reissued.sent_at and reissued.attempts == 6
    assert reissued.last_error.startswith("RefusedForNow: refused for now by the mail server: ")


def test_a_file_revoked_after_some_got_it_says_who_did(reissued, customer, smtp_server):
    smtp_server(later="452 4.2.2 Mailbox full")
    with pytest.raises(outbox.DeliveryFailed):
        outbox.deliver(reissued.pk)
    services.revoke(activation=reissued.activation, reason="Sent by mistake", actor=customer)
    OutboxMessage.objects.filter(pk=reissued.pk).update(next_attempt_at=timezone.now())
    assert outbox.deliver(reissued.pk) is False
    reissued.refresh_from_db()
    assert reissued.status == "cancelled"
    got = ", ".join(sorted([customer.email, "gone@plant.example"]))
    assert reissued.last_error.startswith(f"Sent to {got} only. Not sent: license file ")


@pytest.mark.parametrize(
    "backend", ["licensing.mail.SMTPBackend", "django.core.mail.backends.smtp.EmailBackend"]
)
def test_a_message_refused_for_every_recipient_for_good_fails_at_once(
    activate, smtp_server, settings, backend, caplog
):
    activate("standard")
    message = OutboxMessage.objects.get()
    local_part = message.recipients[0].split("@")[0]
    server = smtp_server(**{local_part: "550 5.1.1 No such user"})
    settings.EMAIL_BACKEND = backend
    assert outbox.deliver(message.pk) is False
    assert server.received == []
    message.refresh_from_db()
    assert message.status == "failed" and message.attempts == 1 and message.sent_at is None
    assert "refused by the mail server: 550 5.1.1 No such user" in message.last_error
    assert _outbox_log(caplog) == [
        f"WARNING outbox message {message.pk}: failed; {message.last_error}"
    ]
    # Support sends it again once the mailbox exists: it is tried for that recipient again.
    server.replies.clear()
    assert outbox.retry_now(message) is None
    assert outbox.deliver(message.pk) is True
    assert server.received == [message.recipients]


def test_a_license_message_goes_only_to_who_is_still_a_member_when_sent(
    reissued, customer, organization
):
    gone = get_user_model().objects.get(email="gone@plant.example")
    gone.is_active = False
    gone.save()
    moved = get_user_model().objects.get(email="later@plänt.example")
    moved.membership.organization = OrganizationFactory()
    moved.membership.save()
    assert outbox.deliver(reissued.pk) is True
    (sent,) = mail.outbox
    assert sent.to == [customer.email]  # nor are the others' addresses shown to anyone
    reissued.refresh_from_db()
    assert reissued.status == "sent"
    left = "no longer a member of the organization (left it or deactivated)"
    assert reissued.undelivered == {"gone@plant.example": left, "later@plänt.example": left}


def test_the_members_news_goes_only_to_who_is_still_a_member_when_sent(
    customer, organization, monkeypatch
):
    colleague = UserFactory(organization=organization)
    monkeypatch.setattr(outbox, "enqueue", lambda message_id: True)  # the worker is away
    services.invite_member(
        organization=organization, email="new@plant.example", actor=UserFactory(is_staff=True)
    )
    notice = OutboxMessage.objects.get(key__startswith="member-added:")
    assert notice.organization == organization
    assert notice.recipients == sorted([customer.email, colleague.email])
    colleague.membership.organization = OrganizationFactory()  # moved to another customer
    colleague.membership.save()
    assert outbox.deliver(notice.pk) is True
    (sent,) = [m for m in mail.outbox if m.subject == notice.subject]
    assert sent.to == [customer.email]
    # The invitation itself goes to the member invited, who has no password yet.
    invitation = OutboxMessage.objects.get(key__startswith="invitation:")
    assert outbox.deliver(invitation.pk) is True


def test_a_license_message_nobody_may_receive_any_more_is_cancelled(activate, customer):
    activate("standard")
    message = OutboxMessage.objects.get()
    customer.is_active = False
    customer.save()
    assert outbox.deliver(message.pk) is False
    assert mail.outbox == []
    message.refresh_from_db()
    assert message.status == "cancelled" and message.attempts == 0
    assert message.last_error.startswith(f"Not sent to {customer.email}: no longer a member")


@pytest.mark.parametrize("prefix", ["reminder", "expiry"])
def test_a_reminder_goes_out_only_on_the_day_it_was_written(db, make_license, customer, prefix):
    """A reminder counts the days left from the day it was written ("in 7 days", "today"):
    sent a day later, it would be a day wrong, or name a date already past, of a license
    extended since. Support's Send again of one from an earlier day, and a delivery after the
    workers were down over midnight, cancel it with why; on its day it is sent again."""
    today = timezone.localdate()
    if prefix == "reminder":
        make_license("standard", maintenance_end=today + timedelta(days=7))
    else:
        # Its last day: the 7th from today.
        make_license("standard", expires_at=services._midnight(today + timedelta(days=8)))
    assert services.queue_reminders() == 1
    message = OutboxMessage.objects.get(key__startswith=f"{prefix}:")
    assert "in 7 days" in message.body
    OutboxMessage.objects.filter(pk=message.pk).update(status="failed", attempts=6)
    assert services.send_again(message=message, actor=UserFactory(is_staff=True)) is None
    mail.outbox.clear()

    yesterday = timezone.now() - timedelta(days=1)
    OutboxMessage.objects.filter(pk=message.pk).update(
        status="failed", attempts=6, created_at=yesterday
    )
    why = services.send_again(message=message, actor=UserFactory(is_staff=True))
    assert why == (
        f"Not sent: a reminder written on {yesterday:%Y-%m-%d} counts the days left from then. "
        "What is still due is written anew at once, counting from today."
    )
    message.refresh_from_db()
    assert (message.status, message.last_error) == ("cancelled", why)

    OutboxMessage.objects.filter(pk=message.pk).update(status="pending", attempts=0)
    assert outbox.deliver(message.pk) is False
    message.refresh_from_db()
    assert (message.status, message.last_error) == ("cancelled", why)
    assert not mail.outbox
    # Cancelled, it reached nobody: the day's run writes the reminder anew, counting from today
    # (the 7 days' is the last before the date: it is not lost), not as "more" licenses.
    assert services.queue_reminders() == 1
    again = OutboxMessage.objects.get(key=f"{message.key}:2")
    assert again.subject == message.subject and "in 7 days" in again.body
    assert services.queue_reminders() == 0


@pytest.mark.parametrize(
    ("prefix", "change"),
    [
        ("reminder", {"maintenance_end": timezone.localdate() + timedelta(days=372)}),
        ("reminder", {"status": "suspended"}),
        ("expiry", {"expires_at": timezone.now() + timedelta(days=400)}),
        ("expiry", {"status": "suspended"}),
    ],
)
def test_a_reminder_of_a_license_changed_since_it_was_written_is_written_anew(
    db, make_license, customer, support, prefix, change, django_capture_on_commit_callbacks
):
    """Written at the morning's run while the workers were down, then one of the licenses it
    lists renewed (or suspended) by support before it went out: not sent, saying why, and
    what is due now is written at once (the other license's reminder, on its last day too),
    not at the next day's run."""
    today = timezone.localdate()
    if prefix == "reminder":
        due = {"maintenance_end": today + timedelta(days=7)}
    else:
        due = {"expires_at": services._midnight(today + timedelta(days=8))}
    lic, other = make_license("standard", **due), make_license("standard", **due)
    assert services.queue_reminders() == 1
    message = OutboxMessage.objects.get(key__startswith=f"{prefix}:")
    assert set(message.licenses.all()) == {lic, other}
    License.objects.filter(pk=lic.pk).update(**change)  # as support's page saves it:
    services.audit(actor=support, action="license_change", license=lic, obj=lic)
    with django_capture_on_commit_callbacks(execute=True):
        assert outbox.deliver(message.pk) is False
    message.refresh_from_db()
    assert message.status == "cancelled"
    assert [m.subject for m in mail.outbox] == [
        anew.subject for anew in OutboxMessage.objects.filter(key=f"{message.key}:2")
    ]
    assert not any(lic.number in m.body for m in mail.outbox)  # only the one written anew
    assert message.last_error == (
        f"Not sent: license {lic.number} changed since this reminder was written (renewed, "
        "extended, suspended or its file replaced). The reminders due now are written anew at "
        "once."
    )
    anew = OutboxMessage.objects.get(key=f"{message.key}:2")
    assert anew.license == other and lic.number not in anew.body
    assert services.queue_reminders() == 0  # nothing more is due now


def test_a_maintenance_reminder_saying_an_expiry_is_not_sent_once_the_license_is_extended(
    activate, customer, support, django_capture_on_commit_callbacks
):
    """Its maintenance ends in 7 days, its file expires in 4: the maintenance reminder says
    the file expires, then support extends the license and the customer takes the new file
    before it went out. It is not sent saying an expiry that is no longer so."""
    today = timezone.localdate()
    live = activate(
        "standard",
        maintenance_end=today + timedelta(days=7),
        expires_at=services._midnight(today + timedelta(days=5)),
    )
    lic = live.license
    assert services.queue_reminders() == 2  # maintenance, expiry
    reminder = OutboxMessage.objects.get(key__startswith="reminder:")
    License.objects.filter(pk=lic.pk).update(expires_at=timezone.now() + timedelta(days=400))
    services.update_file(license=License.objects.get(pk=lic.pk), actor=customer)
    with django_capture_on_commit_callbacks(execute=True):
        assert outbox.deliver(reminder.pk) is False
    reminder.refresh_from_db()
    assert reminder.status == "cancelled"
    anew = OutboxMessage.objects.get(key=f"{reminder.key}:2")
    assert "keep working after that date" in anew.body
    assert f"{today + timedelta(days=5):%Y-%m-%d}" not in anew.body  # the expiry gone


def test_no_line_of_a_reminder_starts_with_from(activate, make_license):
    """A line beginning "From " reaches a mailbox kept in one file (mbox) as ">From ": the
    reminders' sentences do not begin so."""
    expiry = datetime(2027, 3, 9, tzinfo=UTC)
    activate("standard", expires_at=expiry)  # activated, alone in its organization's reminder
    for count in (1, 2):  # not activated: alone, and two in one reminder
        organization = OrganizationFactory()
        UserFactory(organization=organization)
        for _ in range(count):
            make_license("standard", organization=organization, expires_at=expiry)
    OutboxMessage.objects.all().delete()
    assert services.queue_reminders(today=date(2027, 3, 1)) == 3
    for body in OutboxMessage.objects.values_list("body", flat=True):
        assert not any(line.startswith("From ") for line in body.splitlines()), body


def test_a_reminder_from_an_earlier_day_is_written_anew_only_if_nobody_got_it(
    db, make_license, customer, organization, smtp_server
):
    """Cancelled after some members got it (one mailbox full until past midnight), a reminder
    is not written anew: they would get it twice. One still waiting from an earlier day when
    the day's run comes (the workers were down), sent to nobody, is written anew at once: the
    worker cancels it."""
    UserFactory(organization=organization, username="later", email="later@plant.example")
    server = smtp_server(later="452 4.2.2 Mailbox full")
    make_license("standard", maintenance_end=timezone.localdate() + timedelta(days=7))
    assert services.queue_reminders() == 1
    message = OutboxMessage.objects.get()
    with pytest.raises(outbox.DeliveryFailed):  # the customer got it
        outbox.deliver(message.pk)
    yesterday = timezone.now() - timedelta(days=1)
    OutboxMessage.objects.filter(pk=message.pk).update(
        created_at=yesterday, next_attempt_at=timezone.now()
    )
    assert outbox.deliver(message.pk) is False
    message.refresh_from_db()
    assert message.status == "cancelled" and message.delivered_to == [customer.email]
    assert services.queue_reminders() == 0
    assert server.received == [[customer.email]]

    OutboxMessage.objects.filter(pk=message.pk).update(
        status="pending", delivered_to=[], undelivered={}
    )
    assert services.queue_reminders() == 1  # yesterday's, waiting, reached nobody
    assert outbox.deliver(message.pk) is False  # and is cancelled
    assert OutboxMessage.objects.get(pk=message.pk).status == "cancelled"


def test_a_reminder_the_mail_server_failed_is_written_anew_at_the_next_days_run(
    make_license, customer
):
    """The mail relay was down for longer than the retries last (half an hour): the
    reminder failed, reaching nobody. The next day's run writes it anew (support's Send
    again would say it is out of date); one that reached a member is not."""
    make_license("standard", maintenance_end=timezone.localdate() + timedelta(days=7))
    assert services.queue_reminders() == 1
    message = OutboxMessage.objects.get()
    with mock.patch("django.core.mail.EmailMessage.send", side_effect=OSError("relay down")):
        for _ in range(outbox.MAX_ATTEMPTS):
            OutboxMessage.objects.filter(pk=message.pk).update(next_attempt_at=timezone.now())
            with pytest.raises(outbox.DeliveryFailed):
                outbox.deliver(message.pk)
    message.refresh_from_db()
    assert (message.status, message.delivered_to) == ("failed", [])
    assert services.queue_reminders() == 0  # the same day: support sees it failed
    OutboxMessage.objects.filter(pk=message.pk).update(
        created_at=timezone.now() - timedelta(days=1)
    )
    assert services.queue_reminders() == 1
    anew = OutboxMessage.objects.get(status="pending")
    assert anew.key == f"{message.key}:2" and anew.recipients == [customer.email]
    # Reached a member before failing: not written anew.
    OutboxMessage.objects.filter(pk=anew.pk).update(
        status="failed", delivered_to=[customer.email], created_at=message.created_at
    )
    assert services.queue_reminders() == 0


def test_a_reminder_written_anew_is_no_more_licenses(make_license, customer, settings):
    """Written anew after one that reached nobody, a reminder of several licenses says them as
    the first did, not as "more" licenses due since, and links the list of them."""
    end = timezone.localdate() + timedelta(days=7)
    for _ in range(2):
        make_license("standard", maintenance_end=end)
    assert services.queue_reminders() == 1
    OutboxMessage.objects.update(status="cancelled")
    assert services.queue_reminders() == 1
    again = OutboxMessage.objects.get(status="pending")
    assert again.subject == f"Maintenance for 2 licenses ends on {end}"
    assert f"Your licenses: {settings.SITE_URL}/licenses/" in again.body
