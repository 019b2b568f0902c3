FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
RUN useradd --system --uid 10001 --home-dir /app tms

COPY requirements.txt .
RUN pip install -r requirements.txt

COPY . .
# Hashed, compressed static files served by WhiteNoise (STATIC_MANIFEST=true at run time).
RUN SECRET_KEY=collectstatic-only STATIC_MANIFEST=true python manage.py collectstatic --noinput

USER tms
EXPOSE 8000
CMD ["gunicorn", "portal.wsgi:application", "-c", "portal/gunicorn.conf.py"]
