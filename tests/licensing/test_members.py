"""Support invites a customer's engineer: an account of the organization, whose password only
the engineer chooses, from an e-mailed link."""

import html
import re

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core import mail
from django.test import Client
from django.utils import timezone

import tmslicense
from licensing import services
from licensing.models import AuditEvent, Membership, OutboxMessage
from tests.factories import PASSWORD, OrganizationFactory, UserFactory

User = get_user_model()
NEW_PASSWORD = "Plant-floor-password-7"


def invite(support_client, organization, email, capture):
    with capture(execute=True):  # the outbox hands the e-mail over after commit
        return support_client.post(
            f"/admin/licensing/organization/{organization.pk}/invite/", {"email": email}
        )


def link_in(message) -> str:
    return re.search(r"https?://[^/\s]+(/accounts/reset/\S+/)", message.body).group(1)


def test_an_invited_member_chooses_a_password_and_sees_the_organizations_licenses(
    support_client, support, organization, make_license, django_capture_on_commit_callbacks
):
    lic = make_license("mirrored")
    other = make_license(organization=OrganizationFactory(name="Rival Foods"))
    page = support_client.get(f"/admin/licensing/organization/{organization.pk}/change/")
    url = f"/admin/licensing/organization/{organization.pk}/invite/"
    assert f'href="{url}"' in page.content.decode()
    assert "Invite a member" in support_client.get(url).content.decode()

    response = invite(
        support_client, organization, "Eng.One@acme.example", django_capture_on_commit_callbacks
    )
    assert response.status_code == 302
    assert response["Location"] == f"/admin/licensing/organization/{organization.pk}/change/"
    user = User.objects.get(email="Eng.One@acme.example")
    assert user.username == "eng.one@acme.example" and not user.has_usable_password()
    assert user.membership.organization == organization and not user.is_staff
    event = AuditEvent.objects.get(action="member_invite")
    assert event.actor == support and event.organization_id == organization.pk
    assert event.details == {"member": "Eng.One@acme.example", "again": "no"}
    # The link is a secret: only the member's mailbox has it.
    (message,) = mail.outbox
    assert message.to == ["Eng.One@acme.example"] and "Acme Packaging" in message.body
    assert "http://127.0.0.1:8000/accounts/reset/" in message.body  # SITE_URL, not who asked
    assert OutboxMessage.objects.get().body == ""  # erased once sent
    members = support_client.get(f"/admin/licensing/organization/{organization.pk}/change/")
    assert "(invited: no password yet)" in members.content.decode()

    member = Client()
    form = member.get(link_in(message), follow=True)
    assert "Choose your password" in form.content.decode()
    done = member.post(
        form.redirect_chain[-1][0], {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD}
    )
    assert done.status_code == 302
    accepted = AuditEvent.objects.get(action="invitation_accepted")
    assert accepted.actor == user and accepted.organization_id == organization.pk
    assert not AuditEvent.objects.filter(action="password_reset").exists()
    assert (
        member.post(
            "/accounts/login/", {"username": "eng.one@acme.example", "password": NEW_PASSWORD}
        ).status_code
        == 302
    )
    page = member.get("/licenses/").content.decode()
    assert lic.number in page and other.number not in page
    assert member.get(f"/licenses/{other.number}/").status_code == 404
    # The link works once.
    again = Client().get(link_in(message), follow=True).content.decode()
    assert "This link is no longer valid" in again


def test_an_address_invited_in_its_domains_other_form_is_the_same_account(
    support_client, organization, django_capture_on_commit_callbacks
):
    """bücher.example and xn--bcher-kva.example are one mailbox: inviting the address in the
    other form finds its account (two would share it, and logging in by it find neither)."""
    UserFactory(email="bob@bücher.example", organization=organization)
    response = invite(
        support_client,
        organization,
        "bob@xn--bcher-kva.example",
        django_capture_on_commit_callbacks,
    )
    assert "is a member of" in response.content.decode() and "already" in response.content.decode()
    assert User.objects.filter(email__icontains="bob@").count() == 1


def test_an_address_with_characters_a_user_name_cannot_have_is_invited_and_logs_in(
    support_client, organization, django_capture_on_commit_callbacks
):
    email = "Sean.O'Brien@acme.example"  # a valid address; Django's user names have no "'"
    response = invite(support_client, organization, email, django_capture_on_commit_callbacks)
    assert response.status_code == 302
    user = User.objects.get(email=email)
    assert user.username == "sean.o_brien@acme.example"
    member = Client()
    form = member.get(link_in(mail.outbox[0]), follow=True)
    member.post(
        form.redirect_chain[-1][0], {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD}
    )
    logged_in = member.post("/accounts/login/", {"username": email, "password": NEW_PASSWORD})
    assert logged_in.status_code == 302
    # Another address that writes the same user name is refused, not merged with this one.
    capture = django_capture_on_commit_callbacks
    other = invite(support_client, organization, "sean.o_brien@acme.example", capture)
    assert "belongs to another account" in other.content.decode()


def test_an_invitation_not_yet_used_is_sent_again_and_forgot_password_serves_it_too(
    support_client, organization, django_capture_on_commit_callbacks
):
    invite(support_client, organization, "eng@acme.example", django_capture_on_commit_callbacks)
    response = invite(
        support_client, organization, "ENG@acme.example", django_capture_on_commit_callbacks
    )
    assert response.status_code == 302
    assert User.objects.filter(email__iexact="eng@acme.example").count() == 1
    assert len(mail.outbox) == 2 and mail.outbox[1].to == ["eng@acme.example"]
    assert AuditEvent.objects.filter(action="member_invite").latest("pk").details["again"] == "yes"
    # Its link ran out, say: "Forgot your password?" sends one (Django skips accounts with no
    # usable password; an invited member has none yet).
    with django_capture_on_commit_callbacks(execute=True):
        Client().post("/accounts/password_reset/", {"email": "eng@acme.example"})
    assert len(mail.outbox) == 3 and "/accounts/reset/" in mail.outbox[2].body
    # Each link works until one of them is used, or its time is up.
    first, last = Client(), Client()
    for member, message in ((first, mail.outbox[0]), (last, mail.outbox[2])):
        assert "new_password1" in member.get(link_in(message), follow=True).content.decode()


def test_the_invitation_says_how_long_its_link_works(
    support_client, organization, settings, django_capture_on_commit_callbacks
):
    settings.PASSWORD_RESET_TIMEOUT = 3600
    response = invite(
        support_client, organization, "eng@acme.example", django_capture_on_commit_callbacks
    )
    assert "the link works once, for 1 hour" in mail.outbox[0].body
    shown = support_client.get(response["Location"]).content.decode()
    assert "for 1 hour)" in shown


@pytest.mark.parametrize(
    ("who", "expected"),
    [
        ("member", "already and has chosen a password"),
        ("elsewhere", "exists already (member of Rival Foods)"),
        ("staff", "exists already (staff)"),
        ("username", "belongs to another account"),
        ("malformed", "Enter a valid email address."),
        ("too long", "is too long for a user name"),
        # Mailed to the plain address, which then would not log in: refused, said visibly.
        ("zero-width space", r"eng@acme.example\u200b holds characters that show as nothing"),
        ("soft hyphen", "mail servers read its domain as acme.example"),
        ("full-width letter", "mail servers read its domain as acme.example"),
        # Mail is sent by the old rules, which read ß as ss: another domain today.
        ("sharp s", "mail servers read its domain as strasse.example"),
        ("deactivated", "is deactivated: ask an administrator"),
        ("password turned off", "turned off the password"),
    ],
)
def test_an_invitation_that_cannot_be_made_says_why_and_writes_nothing(
    support_client, organization, customer, django_capture_on_commit_callbacks, who, expected
):
    def member(**kwargs):
        return UserFactory(organization=organization, **kwargs)

    email = {
        "member": lambda: customer.email,
        "elsewhere": lambda: (
            UserFactory(organization=OrganizationFactory(name="Rival Foods")).email
        ),
        "staff": lambda: UserFactory(is_staff=True).email,
        "username": lambda: (
            UserFactory(username="taken@acme.example", email="x@x.example").username
        ),
        "malformed": lambda: "eng at acme",
        "too long": lambda: "e" * 140 + "@acme.example",
        "zero-width space": lambda: "eng@acme.example\u200b",
        "soft hyphen": lambda: "eng@ac\u00adme.example",
        "full-width letter": lambda: "eng@\uff41cme.example",
        "sharp s": lambda: "eng@straße.example",
        "deactivated": lambda: member(is_active=False, password=None).email,
        # Logged in once, then an administrator turned its password off: not an invitation.
        "password turned off": lambda: member(password=None, last_login=timezone.now()).email,
    }[who]()
    users, memberships = User.objects.count(), Membership.objects.count()
    response = invite(support_client, organization, email, django_capture_on_commit_callbacks)
    assert response.status_code == 200
    assert expected in response.content.decode()
    assert "<title>Error: " in response.content.decode()
    assert (User.objects.count(), Membership.objects.count()) == (users, memberships)
    assert not AuditEvent.objects.filter(action="member_invite").exists()
    assert not OutboxMessage.objects.exists() and not mail.outbox
    customer.refresh_from_db()
    assert customer.check_password(PASSWORD)
    # Nor does "Forgot your password?" serve an account that awaits no invitation's password.
    with django_capture_on_commit_callbacks(execute=True):
        Client().post("/accounts/password_reset/", {"email": email})
    assert len(mail.outbox) == (1 if who in ("member", "elsewhere", "staff") else 0)


def test_only_staff_with_the_permission_invite(client, organization):
    clerk = UserFactory(is_staff=True)  # staff, not in the support group
    clerk.user_permissions.add(Permission.objects.get(codename="view_organization"))
    client.force_login(clerk)
    url = f"/admin/licensing/organization/{organization.pk}/invite/"
    page = client.get(f"/admin/licensing/organization/{organization.pk}/change/")
    assert page.status_code == 200 and url not in page.content.decode()
    assert client.get(url).status_code == 403
    assert client.post(url, {"email": "eng@acme.example"}).status_code == 403
    withdraw = f"/admin/licensing/organization/{organization.pk}/withdraw/1/"
    assert client.post(withdraw).status_code == 403
    customer = UserFactory(organization=organization)
    client.force_login(customer)
    assert client.get(url).status_code == 302  # to the admin's log-in
    assert not User.objects.filter(email="eng@acme.example").exists()


def test_the_other_members_hear_of_a_new_member(
    support_client, organization, customer, django_capture_on_commit_callbacks
):
    invite(support_client, organization, "eng@acme.example", django_capture_on_commit_callbacks)
    notice, invitation = sorted(mail.outbox, key=lambda m: "/accounts/reset/" in m.body)
    assert notice.to == [customer.email] and invitation.to == ["eng@acme.example"]
    assert "eng@acme.example" in notice.subject and "/accounts/reset/" not in notice.body
    assert notice.subject == f"eng@acme.example was invited to {organization.name}'s licenses"
    assert "withdraws an invitation" in notice.body
    # Invited again: no second notice.
    invite(support_client, organization, "eng@acme.example", django_capture_on_commit_callbacks)
    assert len(mail.outbox) == 3 and mail.outbox[2].to == ["eng@acme.example"]


def test_a_long_address_invited_to_a_long_named_organization_gets_a_shortened_notice(
    support_client, organization, customer, django_capture_on_commit_callbacks
):
    """The members' notice names the address and the organization in its subject: both at
    their longest no longer fit the subject's column (on PostgreSQL a 500)."""
    organization.name = "Acme Packaging " + "Manufacturing Division " * 8
    organization.save()
    email = "b.very.long.address.for.an.engineer." + "x" * 60 + "@plant.acme.example"
    response = invite(support_client, organization, email, django_capture_on_commit_callbacks)
    assert response.status_code == 302
    notice = next(m for m in mail.outbox if m.to == [customer.email])
    assert len(notice.subject) == 200 and notice.subject.endswith("…")
    assert notice.subject.startswith(f"{email} was invited to Acme Packaging")
    assert organization.name in notice.body


def test_support_withdraws_an_invitation_not_used_yet(
    support_client, support, organization, customer, django_capture_on_commit_callbacks
):
    invite(support_client, organization, "eng@acme.exmaple", django_capture_on_commit_callbacks)
    invited = User.objects.get(email="eng@acme.exmaple")
    link = link_in(next(m for m in mail.outbox if m.to == ["eng@acme.exmaple"]))
    # A link sent again, still waiting for the mail server.
    OutboxMessage.objects.create(
        key=f"invitation:{invited.pk}:waiting",
        recipients=[invited.email],
        subject="s",
        body=f"Choose your password: {link}",
        secret=True,
    )
    page = support_client.get(f"/admin/licensing/organization/{organization.pk}/change/")
    url = f"/admin/licensing/organization/{organization.pk}/withdraw/{invited.membership.pk}/"
    html = page.content.decode()
    assert f'href="{url}"' in html and html.count("/withdraw/") == 1  # not for the customer
    assert "eng@acme.exmaple" in support_client.get(url).content.decode()

    notice = OutboxMessage.objects.get(key=f"member-added:{invited.pk}")
    OutboxMessage.objects.filter(pk=notice.pk).update(status="pending", sent_at=None)  # waiting
    response = support_client.post(url)
    assert response.status_code == 302
    assert not User.objects.filter(pk=invited.pk).exists()
    assert OutboxMessage.objects.get(pk=notice.pk).status == "cancelled"
    # Nobody heard of the invitation, so nobody hears of its withdrawal.
    assert not OutboxMessage.objects.filter(key__startswith="member-withdrawn:").exists()
    assert Membership.objects.filter(organization=organization).count() == 1
    event = AuditEvent.objects.get(action="member_invite_withdraw")
    assert event.actor == support and event.details == {"member": "eng@acme.exmaple"}
    waiting = OutboxMessage.objects.get(key=f"invitation:{invited.pk}:waiting")
    assert waiting.status == "cancelled"
    assert waiting.body == ""  # its link is erased, as once sent (the notice's text is kept)
    assert OutboxMessage.objects.get(pk=notice.pk).body
    assert "no longer valid" in Client().get(link, follow=True).content.decode()
    gone = support_client.post(url, follow=True).content.decode()  # Back, or another tab
    assert "That invitation was withdrawn already" in gone


def test_a_password_reset_waiting_to_be_sent_is_not_sent_once_withdrawn(
    support_client, organization, django_capture_on_commit_callbacks
):
    invite(support_client, organization, "eng@acme.exmaple", django_capture_on_commit_callbacks)
    invited = User.objects.get(email="eng@acme.exmaple")
    Client().post("/accounts/password_reset/", {"email": invited.email})  # the mail server waits
    reset = OutboxMessage.objects.get(key__startswith="password-reset:", status="pending")
    url = f"/admin/licensing/organization/{organization.pk}/withdraw/{invited.membership.pk}/"
    assert support_client.post(url).status_code == 302
    reset.refresh_from_db()
    assert reset.status == "cancelled" and reset.last_error == "The invitation was withdrawn."


def test_the_members_told_of_an_invitation_are_told_of_its_withdrawal(
    support_client, organization, customer, django_capture_on_commit_callbacks
):
    """A member read "X was invited" and wrote to support: once withdrawn, they hear so."""
    invite(support_client, organization, "eng@acme.exmaple", django_capture_on_commit_callbacks)
    invited = User.objects.get(email="eng@acme.exmaple")
    assert OutboxMessage.objects.get(key=f"member-added:{invited.pk}").status == "sent"
    url = f"/admin/licensing/organization/{organization.pk}/withdraw/{invited.membership.pk}/"
    assert "told of its withdrawal" in support_client.get(url).content.decode()
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        done = support_client.post(url, follow=True).content.decode()
    assert "Its other members are told." in done
    (notice,) = mail.outbox
    assert notice.to == [customer.email]  # not the withdrawn address
    assert notice.subject == (
        f"The invitation of eng@acme.exmaple to {organization.name}'s licenses was withdrawn"
    )
    assert "eng@acme.exmaple" in notice.body and "no longer works" in notice.body


def test_members_whose_notice_failed_are_not_told_of_a_withdrawal(
    support_client, organization, customer, django_capture_on_commit_callbacks
):
    """They never heard of the invitation (the mail server refused it for good): nothing to
    withdraw for them, and its notice is not sent later, of an account that is gone."""
    invite(support_client, organization, "eng@acme.exmaple", django_capture_on_commit_callbacks)
    invited = User.objects.get(email="eng@acme.exmaple")
    notice = OutboxMessage.objects.get(key=f"member-added:{invited.pk}")
    OutboxMessage.objects.filter(pk=notice.pk).update(status="failed", sent_at=None)
    url = f"/admin/licensing/organization/{organization.pk}/withdraw/{invited.membership.pk}/"
    done = support_client.post(url, follow=True).content.decode()
    assert "Withdrew the invitation" in done and "Its other members are told" not in done
    assert not OutboxMessage.objects.filter(key__startswith="member-withdrawn:").exists()
    assert OutboxMessage.objects.get(pk=notice.pk).status == "cancelled"


def test_an_account_in_use_is_no_invitation_to_withdraw(support_client, organization, customer):
    url = f"/admin/licensing/organization/{organization.pk}/withdraw/{customer.membership.pk}/"
    for response in (support_client.get(url, follow=True), support_client.post(url, follow=True)):
        assert f"The account of {customer.email} is in use" in response.content.decode()
        assert response.redirect_chain[-1][0].endswith(f"/organization/{organization.pk}/change/")
    assert User.objects.filter(pk=customer.pk).exists()
    assert not AuditEvent.objects.filter(action="member_invite_withdraw").exists()
    # Nor through another organization's address.
    other = OrganizationFactory(name="Rival Foods")
    wrong = f"/admin/licensing/organization/{other.pk}/withdraw/{customer.membership.pk}/"
    assert "withdrawn already" in support_client.post(wrong, follow=True).content.decode()
    assert User.objects.filter(pk=customer.pk).exists()


def test_support_deactivates_a_member_who_left_the_plant(
    support, organization, customer, django_capture_on_commit_callbacks
):
    """The customer writes that an engineer left: support takes their access away at once.
    The account is kept, with its history; the session they have open ends."""
    colleague = UserFactory(organization=organization, email="colleague@acme.example")
    invited = UserFactory(organization=organization, password=None)  # no password yet
    engineer = Client()
    engineer.force_login(customer)
    assert engineer.get("/licenses/").status_code == 200
    Client().post("/accounts/password_reset/", {"email": customer.email})  # waiting to be sent
    reset = OutboxMessage.objects.get(key__startswith=f"password-reset:{customer.pk}:")
    staff = Client()
    staff.force_login(support)
    page = staff.get(f"/admin/licensing/organization/{organization.pk}/change/").content.decode()
    url = f"/admin/licensing/organization/{organization.pk}/deactivate/{customer.membership.pk}/"
    assert f'href="{url}"' in page and page.count("/deactivate/") == 2  # not the invited one
    assert f"/withdraw/{invited.membership.pk}/" in page
    assert "no longer log in" in staff.get(url).content.decode()

    response = staff.post(url, follow=True)
    assert f"Deactivated the account of {customer.email}" in response.content.decode()
    customer.refresh_from_db()
    assert not customer.is_active and Membership.objects.filter(user=customer).exists()
    event = AuditEvent.objects.get(action="member_deactivate")
    assert (event.actor, event.organization, event.details) == (
        support,
        organization,
        {"member": f"{customer.username} ({customer.email})"},
    )
    reset.refresh_from_db()
    assert (reset.status, reset.body) == ("cancelled", "")
    # The open session ends; the password no longer logs in; a reset sends nothing.
    assert engineer.get("/licenses/")["Location"].startswith("/accounts/login/")
    assert not Client().login(username=customer.email, password=PASSWORD)
    with django_capture_on_commit_callbacks(execute=True):
        Client().post("/accounts/password_reset/", {"email": customer.email})
    assert not [m for m in mail.outbox if customer.email in m.to]
    colleagues = Client()
    colleagues.force_login(colleague)
    assert customer.email not in colleagues.get("/members/").content.decode()
    page = staff.get(f"/admin/licensing/organization/{organization.pk}/change/").content.decode()
    assert "deactivated" in page and f'href="{url}"' not in page
    again = staff.post(url, follow=True).content.decode()  # Back, or another tab
    assert "deactivated already" in again
    assert AuditEvent.objects.filter(action="member_deactivate").count() == 1


def test_deactivating_the_last_member_who_gets_e_mails_says_so_first(support, organization):
    """The engineer who left was the only member with a confirmed address (a colleague is
    invited, no password yet): after the deactivation no license e-mail reaches anyone, which
    support is told before it is done and once it is."""
    leaving = UserFactory(organization=organization)
    UserFactory(organization=organization, password=None)  # invited: its address unconfirmed
    staff = Client()
    staff.force_login(support)
    url = f"/admin/licensing/organization/{organization.pk}/deactivate/{leaving.membership.pk}/"
    alone = (
        f"Nobody else in {organization} has a confirmed e-mail address: no license e-mail (new "
        "files, revocations, reminders) reaches anyone until an invited member chooses a "
        "password."
    )
    assert alone in html.unescape(staff.get(url).content.decode())
    response = staff.post(url, follow=True)
    assert alone in html.unescape(response.content.decode())
    # With a colleague who gets them: nothing to warn of.
    other = UserFactory(organization=organization)
    url = f"/admin/licensing/organization/{organization.pk}/deactivate/{other.membership.pk}/"
    UserFactory(organization=organization)
    assert "Nobody else" not in staff.get(url).content.decode()


def test_only_an_account_in_use_of_that_organization_is_deactivated(
    client, support_client, organization, customer
):
    invited = UserFactory(organization=organization, password=None)
    url = f"/admin/licensing/organization/{organization.pk}/deactivate/{invited.membership.pk}/"
    said = support_client.post(url).content.decode()
    assert "has not chosen a password yet: withdraw the invitation instead" in said
    other = OrganizationFactory(name="Rival Foods")
    wrong = f"/admin/licensing/organization/{other.pk}/deactivate/{customer.membership.pk}/"
    assert "deactivated already" in support_client.post(wrong, follow=True).content.decode()
    clerk = UserFactory(is_staff=True)  # staff, not in the support group
    clerk.user_permissions.add(Permission.objects.get(codename="view_organization"))
    client.force_login(clerk)
    mine = f"/admin/licensing/organization/{organization.pk}/deactivate/{customer.membership.pk}/"
    assert client.post(mine).status_code == 403
    assert (
        "/deactivate/"
        not in client.get(
            f"/admin/licensing/organization/{organization.pk}/change/"
        ).content.decode()
    )
    assert User.objects.filter(is_active=True).count() == User.objects.count()
    assert not AuditEvent.objects.filter(action="member_deactivate").exists()


def test_a_password_set_as_the_invitation_is_withdrawn_brings_no_account_back(
    support_client, support, organization, django_capture_on_commit_callbacks, monkeypatch
):
    from licensing.forms import NewPasswordForm

    invite(support_client, organization, "eng@acme.example", django_capture_on_commit_callbacks)
    invited = User.objects.get(email="eng@acme.example")
    member = Client()
    form = member.get(link_in(mail.outbox[-1]), follow=True)
    checked = NewPasswordForm.clean

    def withdrawn_meanwhile(self):
        # The link was checked and the password is being saved when support withdraws.
        services.withdraw_invitation(membership=invited.membership, actor=support)
        return checked(self)

    monkeypatch.setattr(NewPasswordForm, "clean", withdrawn_meanwhile)
    sent = member.post(
        form.redirect_chain[-1][0], {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD}
    )
    assert "This link is no longer valid" in sent.content.decode()
    assert not User.objects.filter(pk=invited.pk).exists()


def test_a_member_not_yet_confirmed_gets_none_of_the_organizations_e_mails(
    support_client, organization, customer, make_license, django_capture_on_commit_callbacks
):
    invite(support_client, organization, "eng@acme.exmaple", django_capture_on_commit_callbacks)
    invite(support_client, organization, "maria@acme.example", django_capture_on_commit_callbacks)
    notice = next(m for m in mail.outbox if "maria@acme.example" in m.subject)
    assert notice.to == [customer.email]  # not the mistyped address, waiting for its password
    live, _ = services.activate(
        license=make_license(),
        installation_id=tmslicense.new_installation_id(),
        actor=customer,
    )
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        services.reissue(activation=live, actor=customer)  # its file goes to the members
    (reissued,) = mail.outbox
    assert reissued.to == [customer.email] and reissued.attachments


def test_support_is_told_when_nobody_could_be_e_mailed(
    support_client, organization, customer, make_license
):
    live, _ = services.activate(
        license=make_license(), installation_id=tmslicense.new_installation_id(), actor=customer
    )
    customer.is_active = False  # the only member left
    customer.save()
    UserFactory(organization=organization, password=None)  # invited, no password yet
    url = f"/admin/licensing/activation/{live.pk}/revoke/"
    page = support_client.post(url, {"reason": "Hardware returned"}, follow=True)
    assert "nobody was told by e-mail" in page.content.decode()
    assert not OutboxMessage.objects.filter(key=f"revoked:{live.serial}").exists()
