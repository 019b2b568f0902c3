"""Twenty people activate the same license at the same moment, on a real PostgreSQL; and
other things done at once: password resets, log-ins, look-ups, invitations."""

import re
import threading
import time
from contextlib import contextmanager

import pytest
from django.db import connection, transaction
from django.test import Client

import tmslicense
from licensing import services
from licensing.models import Activation, AuditEvent, OutboxMessage
from tests.conftest import require
from tests.licensing.wizard import step1

THREADS = 20


@pytest.fixture
def postgres(transactional_db):
    require(
        connection.vendor == "postgresql",
        "concurrency needs PostgreSQL row locks: set DATABASE_URL=postgresql://...",
    )


def at_once(count: int, request) -> None:
    """Run ``request`` in ``count`` threads released at the same moment, each on a database
    connection of its own."""
    barrier = threading.Barrier(count)

    def run():
        try:
            barrier.wait(timeout=30)
            request()
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)


@contextmanager
def held_elsewhere(work):
    """``work`` done in a transaction on a connection of its own, which holds what it locked
    until the block ends."""
    locked, release = threading.Event(), threading.Event()

    def hold():
        try:
            with transaction.atomic():
                work()
                locked.set()
                release.wait(timeout=30)
        finally:
            connection.close()

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert locked.wait(timeout=30)
        yield
    finally:
        release.set()
        holder.join(timeout=60)


def delete_when_called(monkeypatch, owner, name: str, user) -> None:
    """``owner.name``, once called, has an administrator delete ``user``'s account (committed
    on a connection of its own) before it does its work: the request under test goes on with
    an account that is gone."""
    from django.contrib.auth import get_user_model

    work = getattr(owner, name)

    def delete():
        get_user_model().objects.filter(pk=user.pk).delete()
        connection.close()

    def deleting_first(*args, **kwargs):
        thread = threading.Thread(target=delete)
        thread.start()
        thread.join(timeout=30)
        return work(*args, **kwargs)

    monkeypatch.setattr(owner, name, deleting_first)


def test_twenty_simultaneous_activations_give_exactly_one(postgres, customer, make_license):
    lic = make_license("standard")
    results: list[tuple[int, str]] = []
    errors: list[BaseException] = []

    def activate():
        client = Client()
        client.force_login(customer)
        try:
            response = step1(client, lic.number, tmslicense.new_installation_id())
            results.append((response.status_code, response.content.decode()))
        except BaseException as error:  # a 500 raises here: collect it, fail below
            errors.append(error)

    at_once(THREADS, activate)
    assert not errors, errors
    assert len(results) == THREADS
    statuses = sorted(status for status, _ in results)
    assert statuses == [200] * (THREADS - 1) + [302]
    refusals = [body for status, body in results if status == 200]
    odd = [b for b in refusals if not ("already activated" in b and "contact support" in b)]
    assert not odd, re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", odd[0].split("<main")[1]))[:1500]
    assert Activation.objects.filter(license=lic).count() == 1
    assert AuditEvent.objects.filter(license=lic, action="activate").count() == 1


def test_twenty_simultaneous_two_server_activations_give_one_and_the_clear_refusal(
    postgres, customer, make_license
):
    """Of a mirrored license, the same primary and each its own secondary: one is issued, the
    others are told it is activated (not that a server is paired with their own license's
    file, which the pair check would find once committed)."""
    lic = make_license("mirrored")
    primary = tmslicense.new_installation_id()
    outcomes: list[str] = []

    def activate():
        try:
            services.activate(
                license=lic,
                installation_id=primary,
                mirrored_installation_id=tmslicense.new_installation_id(),
                actor=customer,
            )
            outcomes.append("issued")
        except services.ActivationError as error:
            outcomes.append(type(error).__name__)

    at_once(THREADS, activate)
    assert sorted(outcomes) == ["AlreadyActivated"] * (THREADS - 1) + ["issued"]


def test_simultaneous_same_ids_all_get_the_one_file(postgres, customer, make_license):
    lic = make_license("standard")
    installation_id = tmslicense.new_installation_id()
    statuses: list[int] = []

    def activate():
        client = Client()
        client.force_login(customer)
        statuses.append(step1(client, lic.number, installation_id).status_code)

    at_once(8, activate)
    assert statuses == [302] * 8
    assert Activation.objects.filter(license=lic).count() == 1


def test_simultaneous_updated_file_requests_issue_one_file(postgres, customer, make_license):
    lic = make_license("mirrored")
    first, _ = services.activate(
        license=lic,
        installation_id=tmslicense.new_installation_id(),
        mirrored_installation_id=tmslicense.new_installation_id(),
        actor=customer,
    )
    type(lic).objects.filter(pk=lic.pk).update(seats=lic.seats + 10)
    statuses: list[int] = []

    def update():
        client = Client()
        client.force_login(customer)
        statuses.append(client.post(f"/licenses/{lic.number}/update-file/").status_code)

    at_once(8, update)
    assert statuses == [302] * 8  # each back to the license's page, with what was done
    live = Activation.objects.get(license=lic, revoked_at=None)
    assert Activation.objects.filter(license=lic).count() == 2  # one new file, not eight
    first.refresh_from_db()
    assert first.replaced_by == live
    assert AuditEvent.objects.filter(action="update_file").count() == 1


def test_a_redownload_waiting_for_an_update_gets_the_new_file(
    postgres, customer, make_license, monkeypatch
):
    lic = make_license("standard")
    first, _ = services.activate(
        license=lic, installation_id=tmslicense.new_installation_id(), actor=customer
    )
    type(lic).objects.filter(pk=lic.pk).update(seats=lic.seats + 10)
    replaced = threading.Event()
    replace = services._replace

    def slowly(*args, **kwargs):  # the update holds the license's lock a while
        new = replace(*args, **kwargs)
        replaced.set()
        time.sleep(1)
        return new

    monkeypatch.setattr(services, "_replace", slowly)
    results = {}

    def update():
        try:
            results["new"] = services.update_file(license=lic, actor=customer)
        finally:
            connection.close()

    def redownload():
        try:
            replaced.wait(timeout=30)
            results["again"] = services.activate(
                license=lic, installation_id=first.installation_id, actor=customer
            )
        finally:
            connection.close()

    threads = [threading.Thread(target=update), threading.Thread(target=redownload)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert results["again"] == (results["new"], False)  # the new file, not the revoked one
    assert results["again"][0].is_live


def test_a_locked_license_does_not_hold_up_the_customers_other_licenses(
    postgres, customer, make_license
):
    held, other = make_license("standard"), make_license("standard")

    def activate_held():  # the activation's row lock lasts until its transaction ends
        services.activate(
            license=held, installation_id=tmslicense.new_installation_id(), actor=customer
        )

    with held_elsewhere(activate_held):
        try:
            with connection.cursor() as cursor:
                cursor.execute("SET lock_timeout = '3s'")  # waiting on a lock fails the test
            activation, created = services.activate(
                license=other, installation_id=tmslicense.new_installation_id(), actor=customer
            )
            assert created and activation.license == other
        finally:
            with connection.cursor() as cursor:
                cursor.execute("RESET lock_timeout")


def test_simultaneous_password_resets_send_no_more_than_the_limit(postgres, customer, settings):
    """Ten reset requests for one address at the same moment: the count is raised before it is
    compared, so no more than the limit's e-mails are queued."""
    settings.PASSWORD_RESET_LIMIT = 3
    statuses: list[int] = []

    def ask():
        response = Client().post("/accounts/password_reset/", {"email": customer.email})
        statuses.append(response.status_code)

    at_once(10, ask)
    assert statuses == [302] * 10  # every one told "sent"
    assert OutboxMessage.objects.filter(key__startswith="password-reset:").count() == 3


def test_simultaneous_wrong_passwords_are_tried_no_more_than_the_limit(
    postgres, customer, settings
):
    """Ten guesses for one account at the same moment: each is counted before its password
    is tried, so only the limit's number are tried; the others are refused untried."""
    settings.LOGIN_FAILURE_LIMIT = 3
    pages: list[str] = []

    def guess():
        response = Client().post(
            "/accounts/login/", {"username": customer.username, "password": "wrong"}
        )
        pages.append(response.content.decode())

    at_once(10, guess)
    assert len(pages) == 10
    assert sum("Enter a correct username" in page for page in pages) == 3
    assert sum("Too many failed log-ins" in page for page in pages) == 7


def test_simultaneous_wrong_numbers_are_answered_no_more_than_the_limit(
    postgres, customer, settings
):
    """Ten numbers not found, typed at the same moment: each is counted before it is compared
    with the limit, so only the limit's number are answered "not found"."""
    settings.ACTIVATION_FAILURE_LIMIT = 3
    pages: list[str] = []

    def guess():
        client = Client()
        client.force_login(customer)
        pages.append(step1(client, tmslicense.new_license_number(), "").content.decode())

    at_once(10, guess)
    assert len(pages) == 10
    assert sum("No license" in page for page in pages) == 3
    assert sum("Too many license numbers" in page for page in pages) == 7


def test_simultaneous_invitations_of_one_address_make_one_account(postgres, organization):
    from django.contrib.auth import get_user_model

    from licensing.models import Membership
    from tests.factories import UserFactory

    support = UserFactory(is_staff=True)
    results: list[str] = []
    errors: list[BaseException] = []

    def invite():
        try:
            results.append(
                services.invite_member(
                    organization=organization,
                    email="eng@acme.example",
                    actor=support,
                )
            )
        except BaseException as error:
            errors.append(error)

    at_once(8, invite)
    assert not errors, errors
    assert get_user_model().objects.filter(email="eng@acme.example").count() == 1
    assert Membership.objects.filter(organization=organization).count() == 1
    # One made the account; the others found it waiting for its password: sent again.
    assert sorted(" to Acme Packaging" in r for r in results) == [False] * 7 + [True]
    assert all(" to Acme Packaging" in r or "again" in r for r in results)
    assert OutboxMessage.objects.filter(key__startswith="invitation:").count() == 8


def test_no_file_is_emailed_once_its_revocation_committed(
    postgres, customer, make_license, monkeypatch
):
    """The worker sends a file holding its activation's row: a revocation meanwhile waits
    for the send to end; a send that comes while a revocation is under way leaves the
    message to the sweep, and then the message is cancelled."""
    from unittest import mock

    from django.core import mail

    from licensing import outbox
    from tests.factories import UserFactory

    support = UserFactory(organization=None, is_staff=True)
    monkeypatch.setattr(outbox, "enqueue", lambda message_id: True)  # the test sends

    def activated():
        activation, _ = services.activate(
            license=make_license("standard"),
            installation_id=tmslicense.new_installation_id(),
            actor=customer,
        )
        return activation, OutboxMessage.objects.get(key=f"activation:{activation.serial}")

    def in_thread(run):
        def target():
            try:
                run()
            finally:
                connection.close()

        thread = threading.Thread(target=target)
        thread.start()
        return thread

    def revoke(activation):
        services.revoke(activation=activation, reason="Server retired", actor=support)

    # A send under way: the revocation waits for it, and comes after it.
    activation, message = activated()
    sending, release = threading.Event(), threading.Event()
    send = outbox.EmailMessage.send

    def slow_send(email, *args, **kwargs):
        sending.set()
        release.wait(timeout=30)
        return send(email, *args, **kwargs)

    with mock.patch.object(outbox.EmailMessage, "send", slow_send):
        worker = in_thread(lambda: outbox.deliver(message.pk))
        assert sending.wait(timeout=30)
        revoker = in_thread(lambda: revoke(activation))
        revoker.join(timeout=1)
        assert revoker.is_alive(), "the revocation did not wait for the send under way"
        release.set()
        worker.join(timeout=30)
        revoker.join(timeout=30)
    message.refresh_from_db()
    activation.refresh_from_db()
    assert message.status == "sent" and message.sent_at < activation.revoked_at
    assert len(mail.outbox) == 1

    # A send that hangs (a mail server that does not answer): the revocation waits a few
    # seconds at most, then is refused, writing nothing.
    activation, message = activated()
    sending.clear()
    release.clear()
    monkeypatch.setattr(services, "SENDING_LOCK_WAIT", "1s")
    with mock.patch.object(outbox.EmailMessage, "send", slow_send):
        worker = in_thread(lambda: outbox.deliver(message.pk))
        assert sending.wait(timeout=30)
        with pytest.raises(services.ActivationError, match="being e-mailed right now"):
            revoke(activation)
        release.set()
        worker.join(timeout=30)
    activation.refresh_from_db()
    assert activation.is_live
    assert not AuditEvent.objects.filter(action="revoke", details__serial=activation.serial)
    assert len(mail.outbox) == 2

    # A revocation under way: the send does not go out, and once it committed, is cancelled.
    activation, message = activated()
    locked, commit = threading.Event(), threading.Event()

    def revoke_slowly():
        with transaction.atomic():
            revoke(activation)
            locked.set()
            commit.wait(timeout=30)

    revoker = in_thread(revoke_slowly)
    assert locked.wait(timeout=30)
    assert outbox.deliver(message.pk) is False
    message.refresh_from_db()
    assert message.status == "pending" and len(mail.outbox) == 2
    commit.set()
    revoker.join(timeout=30)
    assert outbox.deliver(message.pk) is False
    message.refresh_from_db()
    assert message.status == "cancelled" and "was revoked before it went out" in message.last_error
    assert len(mail.outbox) == 2


def test_two_staff_saving_one_license_at_once_lose_no_change(postgres, customer, make_license):
    """Both opened the license's page; one suspends it, the other raises its seats; both save
    at the same moment. One is saved, the other refused (its page is out of date): never both
    accepted with one change undone."""
    from tests.factories import UserFactory
    from tests.licensing.test_admin import license_form

    staff = [UserFactory(is_staff=True, is_superuser=True) for _ in range(2)]
    for _ in range(5):
        lic = make_license("standard", seats=10)
        url = f"/admin/licensing/license/{lic.pk}/change/"
        forms = [license_form(lic, status="suspended", reason="Unpaid")]
        forms.append(license_form(lic, seats=17))
        pages = list(zip(staff, forms, strict=True))
        statuses: list[int] = []

        def save(pages=pages, url=url, statuses=statuses):
            user, form = pages.pop()  # each its own page, opened before either saved
            client = Client()
            client.force_login(user)
            statuses.append(client.post(url, form).status_code)

        at_once(2, save)
        assert sorted(statuses) == [200, 302]  # one refused, its page shown again
        lic.refresh_from_db()
        assert (lic.status, lic.seats) in {("suspended", 10), ("active", 17)}
        assert AuditEvent.objects.filter(license=lic, action="license_change").count() == 1


def test_inviting_again_while_the_invitation_is_withdrawn_leaves_no_link_to_send(
    postgres, organization, monkeypatch
):
    from licensing import outbox
    from tests.factories import UserFactory

    monkeypatch.setattr(outbox, "enqueue", lambda message_id: True)  # the worker is away
    support = UserFactory(is_staff=True)
    for n in range(8):
        email = f"eng{n}@acme.example"
        services.invite_member(organization=organization, email=email, actor=support)
        membership = organization.memberships.get(user__email=email)
        errors: list[BaseException] = []
        parties = [
            lambda membership=membership: services.withdraw_invitation(
                membership=membership, actor=support
            ),
            lambda email=email: services.invite_member(
                organization=organization, email=email, actor=support
            ),
        ]

        def act(parties=parties, errors=errors):
            try:
                parties.pop()()
            except services.InvitationRefused:
                pass  # withdrawn already: a clear refusal
            except BaseException as error:
                errors.append(error)

        at_once(2, act)
        assert not errors, errors
        # Each invitation e-mail still to be sent has its account, whose link works.
        waiting = OutboxMessage.objects.filter(key__startswith="invitation:", status="pending")
        accounts = {m.key.split(":")[1] for m in waiting}
        assert accounts <= {str(m.user_id) for m in organization.memberships.all()}


def added_at_once(model: str, forms: list[dict], field: str) -> list[list[str]]:
    """Support staff (a superuser each) send ``forms`` to the admin's add page of ``model``
    at the same moment: one is added, and the errors of ``field`` on each page sent back are
    returned; a 500 fails the test."""
    from tests.factories import UserFactory

    support = UserFactory(is_staff=True, is_superuser=True)
    statuses: list[int] = []
    refusals: list[list[str]] = []
    errors: list[BaseException] = []

    def add():
        client = Client()
        client.force_login(support)
        try:
            response = client.post(f"/admin/licensing/{model}/add/", forms.pop())
        except BaseException as error:  # a 500 raises here: collect it, fail below
            errors.append(error)
            return
        statuses.append(response.status_code)
        if response.status_code == 200:
            refusals.append(response.context["adminform"].form.errors[field])

    at_once(len(forms), add)
    assert not errors, errors
    assert sorted(statuses) == [200] * (len(statuses) - 1) + [302]
    assert AuditEvent.objects.filter(action=f"{model}_create").count() == 1
    return refusals


def test_staff_adding_one_customer_at_once_in_other_case_add_it_once(postgres):
    """Two (here eight) support staff add the same customer at the same moment, each typing
    its name in their own case: it is added once, the others are told it exists (not a 500)."""
    from licensing.models import Organization

    names = ["Acme Plastics", "ACME PLASTICS", "acme plastics", "Acme  Plastics"] * 2
    forms = [
        {"name": name, "memberships-TOTAL_FORMS": 0, "memberships-INITIAL_FORMS": 0}
        for name in names
    ]
    refusals = added_at_once("organization", forms, "name")
    added = Organization.objects.get()
    exists = f"The organization {added.name} exists already: a customer is added once."
    assert refusals == [[exists]] * 7


def test_staff_adding_one_license_number_at_once_add_it_once(postgres, organization):
    """Support staff add the license of one order at the same moment, the number typed each
    their own way: it is added once, the others are told it exists (not a 500)."""
    from licensing.models import License
    from tests.licensing.test_admin import new_license_form

    number = tmslicense.new_license_number()
    typed = [number, number.lower(), number.replace("-", " "), number.replace("-", "")] * 2
    forms = [new_license_form(organization, number=n) for n in typed]
    refusals = added_at_once("license", forms, "number")
    assert refusals == [["License with this Number already exists."]] * 7
    assert License.objects.get().number == number


@pytest.mark.parametrize("request_", ["activate", "update_file"])
def test_an_account_deleted_while_its_file_is_issued_is_refused_not_a_500(
    postgres, customer, make_license, monkeypatch, request_
):
    """An administrator deletes the customer's account while the site signs the customer's
    file: the file is not issued, and the customer is told why (the database refuses the
    file's record at its commit: it names an account that is gone)."""
    from django.contrib.auth import get_user_model

    from licensing import signing
    from licensing.models import Membership
    from tests.factories import UserFactory

    lic = make_license("standard", seats=10)
    if request_ == "update_file":
        # Its file in use activated by a colleague (one the customer issued would be locked
        # by the update, and the deletion would wait for it).
        colleague = UserFactory()
        Membership.objects.create(user=colleague, organization=lic.organization)
        services.activate(
            license=lic, installation_id=tmslicense.new_installation_id(), actor=colleague
        )
        lic.seats = 12
        lic.save()
    before = (Activation.objects.count(), AuditEvent.objects.count(), OutboxMessage.objects.count())
    delete_when_called(monkeypatch, signing, "sign", customer)
    with pytest.raises(services.LicenseNotFound, match="no longer belongs"):
        if request_ == "activate":
            services.activate(
                license=lic, installation_id=tmslicense.new_installation_id(), actor=customer
            )
        else:
            services.update_file(license=lic, actor=customer)
    assert not get_user_model().objects.filter(pk=customer.pk).exists()
    after = (Activation.objects.count(), AuditEvent.objects.count(), OutboxMessage.objects.count())
    assert after == before


@pytest.mark.parametrize("way", ["its page", "the list's action", "a group's list's action"])
def test_an_account_deleted_while_its_file_is_being_issued_is_deleted_not_a_500(
    postgres, customer, make_license, way
):
    """An administrator deletes an account in the instant its file is issued, the other way
    round: the file's records committed after the deletion had cleared what named the account
    and before it deleted it, and the deletion's commit failed (a 500). The deletion locks the
    account first: the file waits for it, then is refused, and the account is deleted."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    from tests.factories import UserFactory

    lic = make_license("standard")
    outcome, started = [], []

    def activate():
        try:
            services.activate(
                license=lic, installation_id=tmslicense.new_installation_id(), actor=customer
            )
            outcome.append("issued")
        except services.ActivationError as error:
            outcome.append(error.message)
        finally:
            connection.close()

    def activate_before_the_account_goes(execute, sql, params, many, context):
        if not started and sql.startswith('DELETE FROM "auth_user"'):
            started.append(threading.Thread(target=activate))
            started[0].start()
            started[0].join(timeout=3)  # committed meanwhile, unless it waits for the account
        return execute(sql, params, many, context)

    admin = Client()
    admin.force_login(UserFactory(is_staff=True, is_superuser=True))
    with connection.execute_wrapper(activate_before_the_account_goes):
        if way == "its page":
            response = admin.post(f"/admin/auth/user/{customer.pk}/delete/", {"post": "yes"})
        else:
            # A list filtered by group is DISTINCT: its accounts are locked by their keys.
            group = Group.objects.create(name="Plant engineers")
            customer.groups.add(group)
            url = "/admin/auth/user/" + (f"?groups__id__exact={group.pk}" if "group" in way else "")
            selected = {"action": "delete_selected", "_selected_action": [customer.pk]}
            response = admin.post(url, {**selected, "post": "yes"})
    started[0].join(timeout=30)
    assert response.status_code == 302
    assert not get_user_model().objects.filter(pk=customer.pk).exists()
    assert len(outcome) == 1 and "no longer belongs" in outcome[0]
    assert not Activation.objects.filter(license=lic).exists()


def test_an_account_deleted_while_it_gets_an_updated_file_waits_for_it(
    postgres, customer, make_license, monkeypatch
):
    """A superuser deletes an account while its customer gets an updated file: the deletion
    waits for the file (it locks the files naming the account before the account), then
    deletes the account. Locked the other way round, the two waited for each other and one
    of them got a 500 (a deadlock)."""
    import time

    from django.contrib.auth import get_user_model

    from tests.factories import UserFactory

    lic = make_license("standard", seats=10)
    services.activate(license=lic, installation_id=tmslicense.new_installation_id(), actor=customer)
    lic.seats = 12
    lic.save()
    locked_activation = services._locked_activation

    def held_a_while(pk):  # the file locked, the deletion comes meanwhile
        activation = locked_activation(pk)
        time.sleep(1.5)
        return activation

    monkeypatch.setattr(services, "_locked_activation", held_a_while)
    outcome = []

    def update():
        try:
            outcome.append(services.update_file(license=lic, actor=customer).serial)
        except BaseException as error:  # noqa: BLE001 - a 500 would be this: reported below
            outcome.append(error)
        finally:
            connection.close()

    customer_thread = threading.Thread(target=update)
    customer_thread.start()
    time.sleep(0.5)
    admin = Client()
    admin.force_login(UserFactory(is_staff=True, is_superuser=True))
    response = admin.post(f"/admin/auth/user/{customer.pk}/delete/", {"post": "yes"})
    customer_thread.join(timeout=30)
    assert response.status_code == 302
    assert not get_user_model().objects.filter(pk=customer.pk).exists()
    [serial] = outcome
    assert isinstance(serial, str), serial
    new = Activation.objects.get(serial=serial)
    assert new.is_live and new.issued_by is None and new.license.seats == 12


@pytest.mark.parametrize("way", ["its page", "the list's action"])
def test_deleting_an_account_while_its_file_is_e_mailed_is_refused_not_a_500(
    postgres, customer, make_license, monkeypatch, way
):
    """The worker holds a file's row while it e-mails it: a deletion of the account that
    issued it waits a few seconds at most, as support's actions do, then says why; it waited
    until the statement timeout's 500."""
    from django.contrib.auth import get_user_model

    from tests.factories import UserFactory

    live, _ = services.activate(
        license=make_license("standard"),
        installation_id=tmslicense.new_installation_id(),
        actor=customer,
    )
    monkeypatch.setattr(services, "SENDING_LOCK_WAIT", "1s")
    admin = Client()
    admin.force_login(UserFactory(is_staff=True, is_superuser=True))
    # The file's row held as outbox.deliver holds it during the send.
    with held_elsewhere(lambda: list(Activation.objects.select_for_update().filter(pk=live.pk))):
        if way == "its page":
            url = f"/admin/auth/user/{customer.pk}/delete/"
            response = admin.post(url, {"post": "yes"}, follow=True)
        else:
            selected = {"action": "delete_selected", "_selected_action": [customer.pk]}
            response = admin.post("/admin/auth/user/", {**selected, "post": "yes"}, follow=True)
    assert response.status_code == 200
    page = response.content.decode()
    assert "being e-mailed right now" in page and "Successfully deleted" not in page
    assert get_user_model().objects.filter(pk=customer.pk).exists()
    assert not AuditEvent.objects.filter(action="user_delete").exists()


def test_an_account_deleted_while_it_downloads_a_file_gets_no_file_and_no_500(
    postgres, customer, make_license, monkeypatch
):
    """The download's record names the account: deleted in the instant since the request
    began, the database refuses it; the answer is a refusal (403), not a 500, and no file."""

    from licensing import throttle

    lic = make_license("standard")
    services.activate(license=lic, installation_id=tmslicense.new_installation_id(), actor=customer)
    client = Client()
    client.force_login(customer)
    delete_when_called(monkeypatch, throttle, "client_ip", customer)
    response = client.get(f"/licenses/{lic.number}/download/")
    assert response.status_code == 403
    assert "Your account no longer exists: nothing was downloaded." in response.content.decode()
    assert "Content-Disposition" not in response
    assert not AuditEvent.objects.filter(action="file_download").exists()


def test_an_account_deleted_while_it_changes_its_password_stays_deleted(
    postgres, customer, monkeypatch
):
    """An administrator deletes the account in the instant its password is being changed: the
    change's save does not bring the account back (without its organization), and the answer
    is the log-in page with why, not a 500."""
    from django.contrib.auth import get_user_model

    from licensing.forms import ChangePasswordForm
    from tests.factories import PASSWORD

    client = Client()
    client.force_login(customer)
    delete_when_called(monkeypatch, ChangePasswordForm, "clean_old_password", customer)
    new = "Another-plant-password-9"
    data = {"old_password": PASSWORD, "new_password1": new, "new_password2": new}
    response = client.post("/accounts/password_change/", data, follow=True)
    assert response.redirect_chain[-1][0].startswith("/accounts/login/")
    assert "Your account was deleted" in response.content.decode()
    assert not get_user_model().objects.filter(pk=customer.pk).exists()
    assert not AuditEvent.objects.filter(action="password_change").exists()
    assert "_auth_user_id" not in client.session


def test_an_account_deactivated_while_it_changes_its_password_stays_deactivated(
    postgres, customer, monkeypatch
):
    """Support deactivates the engineer who left in the instant they change their password:
    the change's save (of the row read when the request began) does not turn the account on
    again, and their session ends."""
    import threading

    from django.contrib.auth import get_user_model

    from licensing import services
    from licensing.forms import ChangePasswordForm
    from tests.factories import PASSWORD

    def deactivate():
        membership = customer.membership
        services.deactivate_member(membership=membership, actor=None)
        connection.close()

    work = ChangePasswordForm.clean_old_password

    def deactivating_first(*args, **kwargs):
        thread = threading.Thread(target=deactivate)
        thread.start()
        thread.join(timeout=30)
        return work(*args, **kwargs)

    monkeypatch.setattr(ChangePasswordForm, "clean_old_password", deactivating_first)
    client = Client()
    client.force_login(customer)
    new = "Another-plant-password-9"
    data = {"old_password": PASSWORD, "new_password1": new, "new_password2": new}
    response = client.post("/accounts/password_change/", data, follow=True)
    assert "Your account was deactivated: nothing was changed." in response.content.decode()
    account = get_user_model().objects.get(pk=customer.pk)
    assert not account.is_active and account.check_password(PASSWORD)
    assert "_auth_user_id" not in client.session


def test_one_password_link_sent_from_two_tabs_at_once_sets_one_password(postgres, customer):
    """A link opened in two tabs (or on a phone and a PC) and sent from both at once: it
    works once, as it says; the other tab is told the link is no longer valid, not that its
    password was set while the other one's is the one that works."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.tokens import default_token_generator
    from django.utils.encoding import force_bytes
    from django.utils.http import urlsafe_base64_encode

    uid = urlsafe_base64_encode(force_bytes(customer.pk))
    link = f"/accounts/reset/{uid}/{default_token_generator.make_token(customer)}/"
    tabs = {}
    for password in ("First-tab-password-7", "Second-tab-password-8"):
        tab = Client()
        form = tab.get(link, follow=True)
        assert "Choose your password" in form.content.decode()
        tabs[password] = (tab, form.redirect_chain[-1][0])
    answers = {}
    pending = list(tabs.items())

    def send():
        password, (tab, url) = pending.pop()
        data = {"new_password1": password, "new_password2": password}
        answers[password] = tab.post(url, data)

    at_once(2, send)
    told_set = [password for password, answer in answers.items() if answer.status_code == 302]
    assert len(told_set) == 1, {p: a.status_code for p, a in answers.items()}
    [other] = set(tabs) - set(told_set)
    assert "This link is no longer valid" in answers[other].content.decode()
    assert get_user_model().objects.get(pk=customer.pk).check_password(told_set[0])
    assert AuditEvent.objects.filter(action="password_reset").count() == 1


@pytest.mark.parametrize("page", ["/accounts/login/", "/admin/login/"])
def test_an_account_deleted_while_it_logs_in_is_not_let_in_and_no_500(
    postgres, customer, monkeypatch, page
):
    """An administrator deletes the account in the instant after its password was checked:
    the log-in's writes (its time, its audit event) would name an account that is gone. It is
    refused (403), not a 500, and nothing is written."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.forms import AuthenticationForm

    from tests.factories import PASSWORD

    if page.startswith("/admin/"):
        customer.is_staff = True
        customer.save()
    # Checked after the password (the admin's checks the account is staff's, then Django's).
    delete_when_called(monkeypatch, AuthenticationForm, "confirm_login_allowed", customer)
    client = Client()
    response = client.post(page, {"username": customer.username, "password": PASSWORD})
    assert response.status_code == 403
    assert "Your account was deleted: you are not logged in." in response.content.decode()
    assert "_auth_user_id" not in client.session
    assert not get_user_model().objects.filter(pk=customer.pk).exists()
    assert not AuditEvent.objects.filter(action="log_in").exists()
    assert client.get("/licenses/").status_code == 302  # not logged in


def held_while_sent(message, seconds: float = 5):
    """A worker sending ``message`` (its row locked, on a connection of its own) for at most
    ``seconds`` (a slow mail server); returns the thread, once the row is locked."""
    locked = threading.Event()

    def send():
        with transaction.atomic():
            OutboxMessage.objects.select_for_update().get(pk=message.pk)
            locked.set()
            time.sleep(seconds)
        connection.close()

    thread = threading.Thread(target=send)
    thread.start()
    assert locked.wait(timeout=30)
    return thread


def _due(key: str) -> OutboxMessage:
    return OutboxMessage.objects.create(key=key, recipients=["a@x.example"], subject=key, body="x")


def test_the_sweep_passes_over_a_message_being_sent_and_requeues_the_rest(postgres):
    """A message being sent (its row locked for as long as the mail server takes) is being
    handled: the sweep does not wait for it (past the statement timeout, failing whole), and
    brings back the others, a message the broker lost say."""
    from unittest import mock

    from licensing import outbox

    sending, lost = _due("sending"), _due("lost")
    thread = held_while_sent(sending)
    with mock.patch("licensing.tasks.deliver_message.delay") as delay:
        started = time.monotonic()
        assert outbox.sweep() == 1
        waited = time.monotonic() - started
    thread.join()
    assert [c.args[0] for c in delay.call_args_list] == [lost.pk]
    assert waited < 4  # not the sending's 5 s
    assert OutboxMessage.objects.get(pk=sending.pk).queued_at is None


def test_send_again_of_a_message_being_sent_says_so_at_once(postgres):
    """Support clicks Send again while the message is being sent (a slow mail server: when
    support looks): told so at once, nothing changed, not a 500 after the statement timeout."""
    from tests.factories import UserFactory

    sending = _due("sending")
    OutboxMessage.objects.filter(pk=sending.pk).update(attempts=2)
    thread = held_while_sent(sending)
    started = time.monotonic()
    why = services.send_again(message=sending, actor=UserFactory(is_staff=True))
    waited = time.monotonic() - started
    thread.join()
    assert why == "It is being sent right now: look at it again in a moment."
    assert waited < 4
    assert OutboxMessage.objects.get(pk=sending.pk).attempts == 2
    assert not AuditEvent.objects.exists()


def test_withdrawing_an_invitation_while_it_is_emailed_is_refused_clearly(
    postgres, organization, monkeypatch
):
    """Support withdraws an invitation (a mistyped address) while its e-mail is being sent
    (the worker holds its row for as long as the mail server takes): refused after a moment,
    with why and nothing changed, not a 500 at the statement timeout."""
    from licensing import outbox
    from tests.factories import UserFactory

    monkeypatch.setattr(outbox, "enqueue", lambda message_id: True)  # the worker is away
    monkeypatch.setattr(services, "SENDING_LOCK_WAIT", "1s")
    support = UserFactory(is_staff=True)
    services.invite_member(organization=organization, email="typo@exmaple.com", actor=support)
    membership = organization.memberships.get(user__email="typo@exmaple.com")
    invitation = OutboxMessage.objects.get(key__startswith="invitation:")
    thread = held_while_sent(invitation, seconds=3)
    with pytest.raises(services.InvitationRefused, match="being sent right now"):
        services.withdraw_invitation(membership=membership, actor=support)
    thread.join()
    assert organization.memberships.filter(pk=membership.pk).exists()
    assert OutboxMessage.objects.get(pk=invitation.pk).status == "pending"
    assert not AuditEvent.objects.filter(action="member_invite_withdraw").exists()
    # Once sent, the withdrawal goes through.
    services.withdraw_invitation(membership=membership, actor=support)
    assert not organization.memberships.filter(pk=membership.pk).exists()


def test_two_licenses_activated_at_once_on_one_pair_the_other_way_round_give_one(
    postgres, customer, make_license
):
    """Two mirrored licenses activated at the same moment for the same two servers in
    opposite orders (or one of them with a third server): each locks its own license, so
    only the servers' own lock keeps the second from passing the pair check unseen."""
    for round_ in range(10):
        a, b, c = (tmslicense.new_installation_id() for _ in range(3))
        orders = [(a, b), (b, a) if round_ % 2 else (b, c)]
        outcomes: list[str] = []

        def activate(orders=orders, outcomes=outcomes):
            primary, secondary = orders.pop()
            try:
                services.activate(
                    license=make_license("mirrored"),
                    installation_id=primary,
                    mirrored_installation_id=secondary,
                    actor=customer,
                )
                outcomes.append("issued")
            except services.InvalidInstallationIds:
                outcomes.append("refused")

        at_once(2, activate)
        assert sorted(outcomes) == ["issued", "refused"], round_


def test_reminder_runs_at_once_queue_each_reminder_once_without_an_error(
    postgres, customer, make_license
):
    """Two beats (a second started by mistake) run the daily reminders at the same moment:
    one queues them, the others leave it to that one, rather than failing on their keys (an
    ERROR with a traceback in the worker's log), or on the statement timeout while waiting."""
    from datetime import date, timedelta

    today = date(2027, 3, 1)
    for days in (5, 20):
        make_license("standard", maintenance_end=today + timedelta(days=days))
    counts, errors = [], []

    def run():
        try:
            counts.append(services.queue_reminders(today=today))
        except Exception as error:  # noqa: BLE001 - what the test looks for
            errors.append(error)

    at_once(4, run)
    assert errors == [] and sorted(counts) == [0, 0, 0, 2]
    assert OutboxMessage.objects.count() == 2
