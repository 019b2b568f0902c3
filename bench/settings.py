"""The portal's own settings for the activation benchmark, plus the floor view's URL.

The e-mail task is published to an in-memory broker (nothing consumes it), and mail that
would be sent stays in memory.
"""

import os

from portal.settings import *  # noqa: F403

ROOT_URLCONF = "bench.urls"
CELERY_BROKER_URL = "memory://"
CELERY_TASK_ALWAYS_EAGER = False
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
ACTIVATION_FAILURE_LIMIT = 10**9
# A database of its own, never the test suite's (PostgreSQL: created and dropped by the run).
DATABASES["default"]["TEST"] = {"NAME": f"test_bench_activation_{os.getpid()}"}  # noqa: F405
