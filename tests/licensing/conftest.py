import pytest

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
