# screenpop: slim Python image, non-root, `screenpop serve`.
FROM python:3.11-slim AS base

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /srv/screenpop

# Dependencies first, so code changes do not reinstall them.
COPY pyproject.toml README.md ./
COPY app ./app
COPY telephony ./telephony
COPY frontend ./frontend
COPY migrations ./migrations
COPY alembic.ini ./
RUN pip install . \
    && useradd --system --uid 10001 --home-dir /srv/screenpop screenpop \
    && chown -R screenpop /srv/screenpop

USER screenpop
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=3s --retries=3 \
    CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/readyz').status != 200)"

# Every setting comes from the environment (SCREENPOP_*); see README "Configuration".
CMD ["screenpop", "serve", "--host", "0.0.0.0", "--port", "8000"]
