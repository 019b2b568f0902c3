"""What ``pip install -r requirements.txt`` installs (the container image, docs/operations.md)
is enough for the production processes: the development requirements, installed beside it
here, must not hide a missing one (kombu needs ``packaging`` for Redis, which only its
``redis`` extra brings)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from importlib.metadata import distribution, packages_distributions
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]


def installed_by(requirements: Path) -> set[str]:
    """The distributions pip installs for a requirements file: each with its dependencies,
    extras and environment markers as pip reads them."""
    wanted = [
        Requirement(line.split("#")[0].strip())
        for line in requirements.read_text().splitlines()
        if line.split("#")[0].strip()
    ]
    found: set[tuple[str, str]] = set()  # (name, extra or "")
    while wanted:
        requirement = wanted.pop()
        name = canonicalize_name(requirement.name)
        for extra in ("", *requirement.extras):
            if (name, extra) in found:
                continue
            found.add((name, extra))
            for text in distribution(name).requires or ():
                needed = Requirement(text)
                if needed.marker is None or needed.marker.evaluate({"extra": extra}):
                    wanted.append(needed)
    return {name for name, _ in found}


def test_the_production_requirements_alone_run_the_processes():
    installed = installed_by(ROOT / "requirements.txt")
    missing = sorted(
        module
        for module, names in packages_distributions().items()
        if not any(canonicalize_name(name) in installed for name in names)
        and module not in sys.stdlib_module_names
    )
    # The processes' imports, in an interpreter where what requirements.txt does not install
    # is not found: the portal's modules, gunicorn's, the worker's and its Redis transport.
    script = textwrap.dedent(
        f"""
        import importlib, pkgutil, sys

        MISSING = set({missing!r})

        class NotInstalled:
            @staticmethod
            def find_spec(name, path=None, target=None):
                if name.partition(".")[0] in MISSING:
                    raise ModuleNotFoundError(f"{{name}}: not installed by requirements.txt")

        sys.meta_path.insert(0, NotInstalled)
        import django
        django.setup()
        for package in ("portal", "licensing", "tmslicense"):
            for module in pkgutil.walk_packages(
                importlib.import_module(package).__path__, package + "."
            ):
                if not module.name.endswith(".__main__"):  # runs a command line
                    importlib.import_module(module.name)
        from django.db import connections
        connections["default"].Database  # the PostgreSQL driver, not connecting
        from portal.celery import app
        app.connection_for_write().transport  # the broker's transport, by its URL
        for name in ("gunicorn.app.wsgiapp", "gunicorn.workers.gthread", "celery.bin.celery",
                     "celery.apps.worker", "celery.apps.beat", "redis"):
            importlib.import_module(name)
        print("ok")
        """
    )
    env = {
        "PATH": "/usr/bin:/bin",
        "DJANGO_SETTINGS_MODULE": "portal.settings",
        "DATABASE_URL": "postgresql://app:app@127.0.0.1:5432/app",  # as in production
        "REDIS_URL": "redis://127.0.0.1:6379/0",
        "CACHE_URL": "redis://127.0.0.1:6379/1",
    }
    run = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert run.stdout.strip() == "ok", run.stderr[-3000:]
