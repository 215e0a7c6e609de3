# syntax=docker/dockerfile:1
# lychee-rerank: one image, two roles. `lychee serve` (the API, port 8080) by default; the web UI
# with `lychee ui --host 0.0.0.0 --port 8501` as the command. docs/guides/container.md has the guide:
#   docker build -t lychee-rerank .
#   docker run --gpus all -p 127.0.0.1:8080:8080 -e LYCHEE_API_KEY=change-me \
#     -v lychee-models:/home/lychee/.cache/huggingface lychee-rerank
#   docker compose up            # API on :8080 and UI on :8501 (docker-compose.yml)
# podman: `podman build --format docker ...` (keeps HEALTHCHECK), `--device nvidia.com/gpu=all` for the GPU.
# Built and run by the container test (tests/container/, `make container-test`) from a Debian base
# made by debootstrap (CUDA_IMAGE=...), with torch from the host's wheels; linted by hadolint
# (tests/test_packaging.py).
#
# The base: the CUDA runtime for users; any Debian/Ubuntu image with python3 (>= 3.10) works, and
# on a machine without a GPU (or without a model) the service starts on the offline lite backend.
ARG CUDA_IMAGE=nvidia/cuda:12.6.3-runtime-ubuntu24.04

# ---------------------------------------------------------------------------- build: the wheel
# The project is installed the way users install it: a wheel with extras, not a source tree.
FROM ${CUDA_IMAGE} AS build
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-venv \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
# pip reads PIP_* from the environment: a build (the tests) may point it at local wheel folders with
# --build-arg PIP_EXTRA_INDEX_URL=... / PIP_FIND_LINKS=...; unset, pip uses PyPI only. The secret
# `hostca` is a CA bundle for pip behind a TLS-inspecting proxy: read during the step, never stored.
ARG PIP_EXTRA_INDEX_URL
ARG PIP_FIND_LINKS
RUN --mount=type=secret,id=hostca \
    if [ -s /run/secrets/hostca ]; then export PIP_CERT=/run/secrets/hostca; fi \
    && python3 -m venv /opt/build \
    && /opt/build/bin/pip wheel --no-cache-dir --no-deps --wheel-dir /dist .

# ---------------------------------------------------------------------------- runtime
FROM ${CUDA_IMAGE} AS runtime
# libgl1 and libglib2.0-0: OpenCV (the lite backend's OCR) loads them.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-venv libgl1 libglib2.0-0 \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --gid 10001 lychee \
    && useradd --create-home --uid 10001 --gid 10001 --shell /usr/sbin/nologin lychee \
    && mkdir -p /home/lychee/.cache/huggingface /home/lychee/.cache/lychee-rerank/lite \
    && chown -R lychee:lychee /home/lychee/.cache
ARG PIP_EXTRA_INDEX_URL
ARG PIP_FIND_LINKS
# torch first, in its own layer: it is most of the image and changes least often.
RUN --mount=type=secret,id=hostca \
    if [ -s /run/secrets/hostca ]; then export PIP_CERT=/run/secrets/hostca; fi \
    && python3 -m venv /opt/venv \
    && /opt/venv/bin/pip install --no-cache-dir "torch==2.14.1" "torchvision==0.29.1"
# Extras baked in: the API, the UI and the offline lite backend (see README "Install").
ARG EXTRAS=server,ui,lite
COPY --from=build /dist /tmp/dist
RUN --mount=type=secret,id=hostca \
    if [ -s /run/secrets/hostca ]; then export PIP_CERT=/run/secrets/hostca; fi \
    && wheel="$(echo /tmp/dist/lychee_rerank-*.whl)" \
    && /opt/venv/bin/pip install --no-cache-dir "${wheel}[${EXTRAS}]" \
    && rm -rf /tmp/dist
# Configuration is LYCHEE_* variables, one per ServerSettings field (LYCHEE_API_KEY, LYCHEE_MODEL,
# LYCHEE_MAX_DOCUMENTS, LYCHEE_REQUEST_TIMEOUT_S, ...; docs/guides/container.md lists the names). None is set here but where the server listens: with no
# LYCHEE_MODEL and no model in the cache volume it serves the lite backend, and /health says so.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    HF_HOME=/home/lychee/.cache/huggingface \
    LYCHEE_CACHE_DIR=/home/lychee/.cache/lychee-rerank/lite \
    LYCHEE_HOST=0.0.0.0 \
    LYCHEE_PORT=8080
# Model weights (~17 GB for the 7B) and the lite backend's image analyses live in volumes:
# downloaded or computed once, kept across containers and upgrades.
VOLUME ["/home/lychee/.cache/huggingface", "/home/lychee/.cache/lychee-rerank/lite"]
USER 10001:10001
WORKDIR /home/lychee
EXPOSE 8080 8501
# /health answers 503 while the model loads, 200 once it serves; a first download takes a while.
# The UI role sets LYCHEE_HEALTH_URL=http://127.0.0.1:8501/_stcore/health (Streamlit's endpoint).
HEALTHCHECK --interval=30s --timeout=5s --start-period=600s --retries=3 \
    CMD ["python3", "-c", "import os, urllib.request as u; u.urlopen(os.environ.get('LYCHEE_HEALTH_URL') or 'http://127.0.0.1:%s/health' % os.environ.get('LYCHEE_PORT', '8080'), timeout=4)"]
# Exec form: `lychee` is PID 1 and gets SIGTERM itself (uvicorn, and Streamlit, which `lychee ui`
# becomes, stop cleanly on it). 0.0.0.0 is inside the container only: publish the port on the
# host's loopback or behind a proxy, and set LYCHEE_API_KEY (the server warns when it is missing).
CMD ["lychee", "serve"]
