"""The portal's own settings for the activation benchmark, plus the floor view's URL.

With REDIS_URL set, the e-mail task is published to Redis and the guessing limit is counted
there, as in production, in a queue and under a key prefix of the run's own (no worker takes
its tasks; the run deletes its queue at the end). Without it, both stay in memory. Mail that
would be sent stays in memory.
"""

import os

from portal.settings import *  # noqa: F403

RUN = os.environ.setdefault("BENCH_RUN", f"bench-activation-{os.getpid()}")  # gunicorn's too
ROOT_URLCONF = "bench.urls"
CELERY_TASK_ALWAYS_EAGER = False
if REDIS_URL:  # noqa: F405
    CELERY_TASK_DEFAULT_QUEUE = RUN
    CACHES["default"]["KEY_PREFIX"] = RUN  # noqa: F405
else:
    CELERY_BROKER_URL = "memory://localhost/"
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
ACTIVATION_FAILURE_LIMIT = 10**9
# A database of its own, never the test suite's (PostgreSQL: created and dropped by the run).
DATABASES["default"]["TEST"] = {"NAME": f"test_{RUN.replace('-', '_')}"}  # noqa: F405
