# The scaleset-image-operator container image.
#
#   docker build -t scaleset-image-operator:0.1.0 .
#
# Two stages from the same base: `builder` installs the operator and its LOCKED runtime dependencies into the
# virtual environment /opt/venv with tools/docker/install.sh (hash-checked pins exported from uv.lock, then the
# project's wheel); `runtime` is the base plus that folder, run as the non-root user 65532:65532. Nothing is
# written at runtime, so it runs with readOnlyRootFilesystem (deploy/base mounts an emptyDir on /tmp).
#
# Base image: a version tag, the same for both stages (the venv links to the base's Python). For reproducible
# builds pin its digest too, either here or with --build-arg:
#   docker buildx imagetools inspect python:3.11-slim-bookworm     (the "Digest:" line, sha256:...)
#   docker build --build-arg PYTHON_IMAGE=python:3.11-slim-bookworm@sha256:<digest> .
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS builder
# The uv release the Makefile uses (UV_VERSION there).
ARG UV_VERSION=0.13.9
RUN python3 -m pip install --no-cache-dir --disable-pip-version-check "uv==${UV_VERSION}"
WORKDIR /src
COPY pyproject.toml uv.lock README.md ./
COPY operator/ operator/
COPY crds/ crds/
COPY tools/docker/install.sh tools/docker/install.sh
RUN sh tools/docker/install.sh /src /opt/venv

FROM ${PYTHON_IMAGE} AS runtime
# Must equal __version__ in operator/scaleset_image_operator/__init__.py (tests/unit/test_dockerfile.py checks it).
ARG VERSION=0.1.0
# The repository the image is built from (override with --build-arg SOURCE_URL=...).
ARG SOURCE_URL=https://github.com/scaleset-dev/scaleset-image-operator
LABEL org.opencontainers.image.title="scaleset-image-operator" \
      org.opencontainers.image.description="Kubernetes operator that rolls Azure VM Scale Sets onto a new OS image, one update domain at a time, without downtime." \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.source="${SOURCE_URL}" \
      org.opencontainers.image.licenses="Apache-2.0"
# PYTHONDONTWRITEBYTECODE: the root filesystem is read-only (the venv's bytecode was compiled at build time).
# HOME: user 65532 has no passwd entry; /tmp is the one writable folder the Deployment mounts.
ENV VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp
COPY --from=builder /opt/venv /opt/venv
USER 65532:65532
# 8080: Prometheus metrics (/metrics); 8081: liveness and readiness (/healthz). Kubernetes probes the health
# port, so the image has no HEALTHCHECK.
EXPOSE 8080 8081
# Kubernetes `args` replace CMD and keep the ENTRYPOINT: deploy/base's `args: [run, --health-port=8081]` runs
# `scaleset-image run --health-port=8081`.
ENTRYPOINT ["scaleset-image"]
CMD ["run"]
