"""`manage.py seed_demo`: demo data for a first look, the same however often it runs."""

import re
from io import StringIO
from unittest import mock

import pytest
from django.contrib.auth import authenticate, get_user_model
from django.core.management import CommandError, call_command
from django.db import connection

import tmslicense
from licensing.models import AuditEvent, License, Membership, Organization
from licensing.services import find_license


def _seed() -> str:
    out = StringIO()
    call_command("seed_demo", stdout=out, any_database=connection.vendor != "sqlite")
    return out.getvalue()


def test_seed_demo_adds_nothing_to_another_database_unless_told(db):
    """Its accounts' password is published (README): not on a production database by a
    command typed there by mistake."""
    with (
        mock.patch.object(connection, "vendor", "postgresql"),
        pytest.raises(CommandError, match="--any-database") as refused,
    ):
        call_command("seed_demo")
    assert "nothing was added" in str(refused.value)
    assert not get_user_model().objects.exists() and not License.objects.exists()


def test_seed_demo_is_idempotent_and_prints_what_it_made(db):
    first = _seed()
    counts = (Organization.objects.count(), License.objects.count(), Membership.objects.count())
    assert _seed() == first
    assert counts == (
        Organization.objects.count(),
        License.objects.count(),
        Membership.objects.count(),
    )

    demo = authenticate(username="demo", password="demo-password-1")
    support = authenticate(username="support", password="demo-password-1")
    assert demo is not None and support is not None and support.is_staff
    assert support.has_perm("licensing.revoke_activation")
    assert "demo / demo-password-1" in first and "support / demo-password-1" in first

    printed = re.findall(r"TM-[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}", first)
    own = [number for number in printed if number != printed[-1]]
    assert {find_license(user=demo, number=n).kind for n in own} == {
        "standard",
        "mirrored",
        "enterprise",
    }
    assert License.objects.get(number=printed[-1]).organization != demo.membership.organization
    ids = re.findall(r"[0-9A-Z]{4}(?:-[0-9A-Z]{4}){4}", first)
    assert len(set(ids)) == 4
    assert all(tmslicense.normalize_installation_id(i) == i for i in ids)


def test_demo_licenses_name_the_product_and_an_edition_unlike_their_kind(db):
    _seed()
    # Rows from an earlier seed_demo, whose editions repeated their kinds ("ThinManager
    # Standard, standard license" in its e-mails): set right by the next run, and the same
    # however often it runs.
    earlier = {"001H": "Standard", "002R": "Premium", "003Z": "Enterprise", "001G": "Standard"}
    for end, edition in earlier.items():
        License.objects.filter(number__endswith=end).update(edition=edition)
    out = _seed()
    assert _seed() == out
    licenses = License.objects.all()
    assert len(licenses) == 4
    for lic in licenses:
        assert lic.product == "ThinManager"
        assert lic.edition in {"Standard", "Premium"}
        assert lic.edition.lower() not in lic.get_kind_display().lower()
    # What support set since (trying the admin) stays as set: the customer's file would
    # otherwise be called out of date by every start of `make run`. An edition an earlier
    # version gave another license is one support may set too.
    for end, edition in (("001H", "Gold"), ("002R", "Premium")):
        lic = License.objects.get(number__endswith=end)
        License.objects.filter(pk=lic.pk).update(edition=edition)
        AuditEvent.objects.create(action="license_change", license=lic, object_repr=str(lic))
    _seed()
    assert License.objects.get(number__endswith="001H").edition == "Gold"
    assert License.objects.get(number__endswith="002R").edition == "Premium"
