from datetime import date, timedelta

import factory
from django.contrib.auth import get_user_model

import tmslicense
from licensing.models import Kind, License, Membership, Organization

PASSWORD = "correct horse battery staple"


class OrganizationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Organization

    name = factory.Sequence(lambda n: f"Plant {n}")


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"engineer{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    password = factory.PostGenerationMethodCall("set_password", PASSWORD)

    @factory.post_generation
    def organization(self, create, extracted, **kwargs):
        self.save()
        if extracted is not None:
            Membership.objects.create(user=self, organization=extracted)


class LicenseFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = License

    number = factory.LazyFunction(tmslicense.new_license_number)
    organization = factory.SubFactory(OrganizationFactory)
    kind = Kind.STANDARD
    edition = "Standard"
    seats = 10
    features = factory.LazyFunction(lambda: ["relevance"])
    maintenance_end = factory.LazyFunction(lambda: date.today() + timedelta(days=365))
