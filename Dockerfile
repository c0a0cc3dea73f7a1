# wasmflow: one image for the control plane (`wasmflow operator`) and the data plane (`wasmflow worker`), so there is
# one image to scan, sign and list in the chart's values (and in global.azure.images on Arc).
#
# Stages:
#   build    the base plus uv; installs the locked dependencies first (a layer that survives code changes), then
#            the project itself, into /app/.venv with bytecode precompiled (the root file system is read-only).
#   runtime  the same base plus /app/.venv only: no uv, no compilers, no package caches; a numeric non-root user.
#
# BASE_IMAGE must be a Debian bookworm root with /usr/bin/python3.11 and apt; pin it by digest. hack/base-image.sh
# builds one locally from Debian packages (no public base image is pulled) and `make docker-build` passes it, e.g.
#   buildah bud --build-arg BASE_IMAGE=localhost/wasmflow-base:bookworm-python3-<key>@sha256:<digest> -t wasmflow .
# Works with buildah, podman and docker (BuildKit), which all understand RUN --mount.
ARG BASE_IMAGE=localhost/wasmflow-base:bookworm-python3

FROM ${BASE_IMAGE} AS build
# Behind a TLS-intercepting proxy, pass its CA bundle as the build secret `build-ca` (hack/docker-build.sh passes the
# host's trust store): it is mounted for the downloading steps only and never stored in a layer.
# uv, pinned; from PyPI through pip, the one installer that needs nothing but Debian's python3-venv.
ARG UV_VERSION=0.13.9
RUN --mount=type=secret,id=build-ca \
    if [ -f /run/secrets/build-ca ]; then export PIP_CERT=/run/secrets/build-ca; fi \
    && apt-get update -qq \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-venv >/dev/null \
    && python3 -m venv /opt/uv \
    && /opt/uv/bin/pip install --quiet --no-cache-dir "uv==${UV_VERSION}"
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PYTHON_PREFERENCE=only-system \
    UV_PYTHON=/usr/bin/python3.11 \
    UV_PROJECT_ENVIRONMENT=/app/.venv \
    UV_NO_CACHE=1
WORKDIR /src
# Dependencies exactly as locked (no dev group); the project is not installed yet, so this layer caches well.
RUN --mount=type=secret,id=build-ca \
    --mount=type=bind,source=uv.lock,target=/src/uv.lock \
    --mount=type=bind,source=pyproject.toml,target=/src/pyproject.toml \
    if [ -f /run/secrets/build-ca ]; then export SSL_CERT_FILE=/run/secrets/build-ca; fi \
    && /opt/uv/bin/uv sync --frozen --no-default-groups --no-install-project
COPY pyproject.toml uv.lock README.md ./
COPY controller ./controller
# The project as a regular (non-editable) install: the runtime stage copies /app/.venv and nothing of /src.
RUN --mount=type=secret,id=build-ca \
    if [ -f /run/secrets/build-ca ]; then export SSL_CERT_FILE=/run/secrets/build-ca; fi \
    && /opt/uv/bin/uv sync --frozen --no-default-groups --no-editable

FROM ${BASE_IMAGE} AS runtime
# A named account for the numeric UID the chart runs as (runAsUser 65532), so tools that look the user up work.
RUN groupadd --gid 65532 wasmflow \
    && useradd --uid 65532 --gid 65532 --no-log-init --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin wasmflow
# Owned by root and not writable by the runtime user: the code cannot be changed from inside the container.
COPY --from=build /app/.venv /app/.venv
# Everything that writes goes to /tmp (an emptyDir in the pod): HOME, XDG caches, the OCI cache of the CLI, the
# compiled-component cache. No bytecode is written at run time (it was compiled at build time).
ENV PATH=/app/.venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOME=/tmp \
    XDG_CACHE_HOME=/tmp/.cache \
    WASMFLOW_CACHE=/tmp/.cache/wasmflow \
    WASMFLOW_CACHE_DIR=/tmp/wasmflow-cache
USER 65532:65532
WORKDIR /tmp
# Labels last: VERSION, REVISION and CREATED change on every build and would invalidate the layers above.
ARG VERSION=0.0.0
ARG REVISION=unknown
ARG CREATED=1970-01-01T00:00:00Z
ARG BASE_IMAGE
LABEL org.opencontainers.image.title="wasmflow" \
      org.opencontainers.image.description="Kubernetes operator and worker that run WebAssembly data-processing pipelines" \
      org.opencontainers.image.source="https://github.com/wasmflow/wasmflow" \
      org.opencontainers.image.url="https://github.com/wasmflow/wasmflow" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.base.name="${BASE_IMAGE}"
ENTRYPOINT ["wasmflow"]
CMD ["--help"]
