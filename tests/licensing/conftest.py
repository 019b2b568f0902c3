import pytest
from django.contrib.auth.models import Group

from tests.factories import LicenseFactory, OrganizationFactory, UserFactory


@pytest.fixture
def organization(db):
    return OrganizationFactory(name="Acme Packaging")


@pytest.fixture
def customer(organization):
    return UserFactory(organization=organization)


@pytest.fixture
def other_customer(db):
    return UserFactory(organization=OrganizationFactory(name="Rival Foods"))


@pytest.fixture
def customer_client(client, customer):
    client.force_login(customer)
    return client


@pytest.fixture
def make_license(organization):
    def make(kind="standard", **kwargs):
        kwargs.setdefault("organization", organization)
        return LicenseFactory(kind=kind, **kwargs)

    return make


@pytest.fixture
def support(db):
    """A staff member in the support group."""
    user = UserFactory(is_staff=True)
    user.groups.add(Group.objects.get(name="support"))
    return user


@pytest.fixture
def support_client(client, support):
    client.force_login(support)
    return client
