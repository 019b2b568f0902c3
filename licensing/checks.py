"""`manage.py check --deploy`: what a deployment must have that the settings alone do not show."""

from django.core import checks

from . import signing


@checks.register(checks.Tags.security, deploy=True)
def signing_key(app_configs, **kwargs):
    """A portal that cannot sign issues no file and serves no keyring: said before it starts
    (docker-compose's first deployment runs this), not at a customer's first activation."""
    why = signing.problem()
    if why is None:
        return []
    return [checks.Error(why, id="licensing.E001")]
