"""E-mail through a real Celery worker and a real Redis: delivered with the file, not lost
while Redis is down, and sent exactly once when the worker dies mid-delivery."""

import time
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

import tmslicense
from licensing import outbox, services
from licensing.models import OutboxMessage
from tests.factories import LicenseFactory, OrganizationFactory, UserFactory
from tests.integration.conftest import wait_for
from tests.licensing.wizard import step1, step2

pytestmark = pytest.mark.services


@pytest.fixture
def customer(postgres_db):
    return UserFactory(organization=OrganizationFactory(name="Northwind Bottling"))


def _license(customer, kind="mirrored"):
    return LicenseFactory(organization=customer.membership.organization, kind=kind)


def _attachment(message):
    part = next(p for p in message.walk() if p.get_filename())
    return part.get_filename(), part.get_payload(decode=True).decode()


def test_worker_delivers_the_activation_email_with_the_file(
    make_worker, smtp_sink, customer, keyring
):
    make_worker()
    lic = _license(customer)
    ids = tmslicense.new_installation_id(), tmslicense.new_installation_id()
    activation, _ = services.activate(
        license=lic, installation_id=ids[0], mirrored_installation_id=ids[1], actor=customer
    )
    wait_for(lambda: smtp_sink.messages, 30, "the activation e-mail")
    (message,) = smtp_sink.messages
    assert message["To"] == customer.email
    body = next(p for p in message.walk() if p.get_content_type() == "text/plain")
    text = body.get_payload(decode=True).decode()
    assert ids[0] in text and ids[1] in text and "mirror" in text
    name, content = _attachment(message)
    assert name == f"{lic.number}.lic"
    for installation_id in ids:
        assert tmslicense.verify_license(content, keyring, installation_id).serial == (
            activation.serial
        )
    wait_for(lambda: OutboxMessage.objects.get().status == "sent", 10, "the row marked sent")


def test_redis_down_activation_still_works_and_the_email_goes_out_once_later(
    make_worker, smtp_sink, broker, customer
):
    make_worker()
    client = Client()
    client.force_login(customer)
    health = client.get("/healthz").json()
    assert health == {
        "status": "ok",
        "database": "ok",
        "signing": "ok",
        "keyring": "ok",
        "broker": "ok",
    }
    broker.stop()
    lic = _license(customer)
    ids = tmslicense.new_installation_id(), tmslicense.new_installation_id()
    step1(client, lic.number, ids[0])
    assert step2(client, ids[1]).status_code == 302
    download = client.get(f"/licenses/{lic.number}/download/")
    assert download.status_code == 200
    message = OutboxMessage.objects.get()
    assert message.status == "pending" and message.queued_at is None
    health = client.get("/healthz").json()
    assert health["status"] == "degraded" and health["broker"].startswith("error")

    broker.start()
    assert outbox.sweep() == 1
    wait_for(lambda: smtp_sink.messages, 60, "the e-mail after Redis is back")
    # Further sweeps (the row is sent) and a duplicate task change nothing.
    outbox.sweep(now=timezone.now() + timedelta(hours=1))
    outbox.enqueue(message.pk)
    wait_for(lambda: OutboxMessage.objects.get().status == "sent", 10, "the row marked sent")
    time.sleep(2)
    assert len(smtp_sink.messages) == 1


def test_worker_killed_mid_delivery_sends_exactly_once_after_restart(
    make_worker, smtp_sink, customer
):
    worker = make_worker()
    smtp_sink.stall.set()
    services.activate(
        license=_license(customer, "standard"),
        installation_id=tmslicense.new_installation_id(),
        actor=customer,
    )
    wait_for(smtp_sink.stalled.is_set, 30, "the worker to be in the middle of sending")
    worker.kill()
    smtp_sink.release.set()
    smtp_sink.stall.clear()
    message = OutboxMessage.objects.get()
    assert message.status == "pending" and not smtp_sink.messages

    make_worker()
    # The beat sweep finds the row pending after REQUEUE_AFTER; run it as if that had passed.
    outbox.sweep(now=timezone.now() + outbox.REQUEUE_AFTER + timedelta(seconds=1))
    wait_for(lambda: smtp_sink.messages, 60, "the e-mail after the restart")
    wait_for(lambda: OutboxMessage.objects.get().status == "sent", 10, "the row marked sent")
    outbox.sweep(now=timezone.now() + timedelta(hours=1))
    time.sleep(2)
    assert len(smtp_sink.messages) == 1
