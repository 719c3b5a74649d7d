# syntax=docker/dockerfile:1
# screenpop image: dependencies from the lock in their own layer, the code installed read-only,
# a non-root runtime user. Build: `docker build -t screenpop .`

# --- build: a virtualenv with the locked dependencies, then screenpop itself ----------------
FROM python:3.11-slim-bookworm AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/opt/venv/bin:$PATH

RUN python -m venv /opt/venv

# This layer changes only when constraints/locked.txt does (`make lock`): a code change does
# not reinstall a single dependency, and two builds of one lock install the same bytes.
COPY constraints/locked.txt /tmp/locked.txt
RUN pip install --require-hashes --no-deps -r /tmp/locked.txt

WORKDIR /src
COPY pyproject.toml README.md alembic.ini ./
COPY app ./app
COPY telephony ./telephony
COPY frontend ./frontend
COPY migrations ./migrations
# --no-deps: everything it needs came from the lock above.
RUN pip install --no-deps . \
    && python -c "import app.main, telephony, migrations"

# --- runtime: the virtualenv only, owned by root, run as an unprivileged user ---------------
FROM python:3.11-slim-bookworm AS runtime

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/venv/bin:$PATH

# The code lives in /opt/venv (root-owned, not writable by the service); the service's only
# writable place is its working directory (the per-install JWT key, an SQLite file if used).
RUN useradd --system --uid 10001 --user-group --home-dir /var/lib/screenpop --create-home \
        --shell /usr/sbin/nologin screenpop \
    && mkdir -p /data \
    && chmod 0755 /var/lib/screenpop

COPY --from=build /opt/venv /opt/venv

WORKDIR /var/lib/screenpop
USER 10001:10001
EXPOSE 8000

HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/readyz', timeout=2).status != 200)"]

# Every setting comes from the environment (SCREENPOP_*); see docs/configuration.md.
ENTRYPOINT ["screenpop"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]
