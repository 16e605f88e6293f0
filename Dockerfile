# syntax=docker/dockerfile:1
# The image the registry-cleanup components run: the CLI and a checksum-verified regctl on a
# small Python base, as a non-root user. Built for linux/amd64 and linux/arm64 by
# .gitlab/ci/image.yml; README "Container image" explains the choices and the size budget.

# python:3.12-alpine3.24 (Python 3.12.14, Alpine 3.24.2) pinned by its multi-platform index
# digest, as listed in github.com/docker-library/repo-info
# repos/python/remote/3.12-alpine3.24.md (commit 2f6ab1f1). Alpine rather than Debian slim:
# python:3.12-slim-bookworm alone is 45 MB compressed, over the image's 35 MB budget.
ARG PYTHON_IMAGE=python:3.12.14-alpine3.24@sha256:b68d71645de25b97ac8e781e3c0e61d0ca23c5b4f46ad4da96cd7b871e01997d

# --- the CLI: wheel, then a venv with only its runtime dependencies -------------------------
FROM ${PYTHON_IMAGE} AS app
WORKDIR /src
COPY pyproject.toml README.md ./
COPY entrypoint/ entrypoint/
# google-re2 (protect patterns are RE2, as GitLab's are) publishes no musl wheel, so its binding
# is compiled here against Alpine's RE2 and Abseil; the runtime stage gets only their libraries.
# Its setup.py imports pybind11 and has no build-system table, so the wheel is built without
# build isolation, before the venv install below picks it up from /wheels.
# hadolint ignore=DL3018,DL3013
RUN set -eu; \
    apk add --no-cache g++ re2-dev abseil-cpp-dev; \
    python -m pip install --no-cache-dir pybind11 setuptools wheel; \
    python -m pip wheel --no-cache-dir --no-build-isolation --no-deps --wheel-dir /wheels google-re2
# No dev extra, no pip inside the venv, no caches; no .pyc either, which keeps ~4 MB out of the
# compressed image (the runtime user could not write them back anyway).
RUN set -eu; \
    python -m pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .; \
    python -m venv --without-pip /opt/registry-cleanup; \
    python -m pip --python /opt/registry-cleanup/bin/python install \
        --no-cache-dir --no-compile --find-links /wheels /wheels/registry_cleanup-*.whl

# --- regctl: the release asset for the target platform, checked against regctl.sha256 -------
# Runs on the build platform: nothing here executes the downloaded binary.
FROM --platform=${BUILDPLATFORM} ${PYTHON_IMAGE} AS regctl
ARG TARGETARCH
ARG REGCTL_VERSION=v0.11.5
WORKDIR /regctl
COPY regctl.sha256 ./
RUN wget -q -O "regctl-linux-${TARGETARCH}" \
    "https://github.com/regclient/regclient/releases/download/${REGCTL_VERSION}/regctl-linux-${TARGETARCH}"
# A missing or different sum stops the build here (set -e, and sha256sum -c exits 1).
RUN set -eu; \
    if ! grep -E "^[0-9a-f]{64}  regctl-linux-${TARGETARCH}\$" regctl.sha256 > expected.sha256; then \
        echo "regctl.sha256 has no sum for regctl-linux-${TARGETARCH}" >&2; exit 1; \
    fi; \
    sha256sum -c expected.sha256; \
    mv "regctl-linux-${TARGETARCH}" regctl; \
    chmod 0755 regctl

# --- the runtime image -----------------------------------------------------------------------
FROM ${PYTHON_IMAGE}
ARG VERSION=0.0.0-dev
ARG REVISION=unknown
ARG SOURCE=unknown
LABEL org.opencontainers.image.title="registry-cleanup" \
      org.opencontainers.image.description="Deletes a branch's container image when the branch goes away" \
      org.opencontainers.image.licenses="MIT" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}"
# pip (and the copy ensurepip keeps to reinstall it) has no use at run time; the user gets a
# home because regctl and the CLI write their private config there. re2 brings the shared
# libraries (RE2, Abseil) the compiled google-re2 binding links against; the base image is
# pinned by digest, so its Alpine branch fixes the package versions.
# hadolint ignore=DL3018
RUN set -eu; \
    apk add --no-cache re2; \
    python -m pip uninstall --yes --no-cache-dir pip; \
    rm -rf /usr/local/bin/pip /usr/local/bin/pip3* /usr/local/lib/python3.12/ensurepip; \
    addgroup -g 10001 registry-cleanup; \
    adduser -D -u 10001 -G registry-cleanup -h /home/registry-cleanup registry-cleanup
COPY --from=regctl /regctl/regctl /usr/local/bin/regctl
COPY --from=app /opt/registry-cleanup /opt/registry-cleanup
ENV PATH="/opt/registry-cleanup/bin:${PATH}" \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
USER 10001:10001
WORKDIR /home/registry-cleanup
# No ENTRYPOINT: GitLab Runner starts a shell in the image to run job scripts.
CMD ["registry-cleanup", "--help"]
