# syntax=docker/dockerfile:1
# lychee-rerank on a CUDA machine: `lychee serve` (API) by default, `lychee ui` from the same image.
#   docker build -t lychee-rerank .
#   docker run --gpus all -p 127.0.0.1:8080:8080 -e LYCHEE_API_KEY=change-me \
#     -v lychee-models:/home/lychee/.cache/huggingface lychee-rerank
#   docker compose up            # API on :8080 and UI on :8501 (docker-compose.yml)
# Linted by hadolint in the tests (tests/test_packaging.py); no Docker engine runs in this project's CI.
ARG CUDA_IMAGE=nvidia/cuda:12.6.3-runtime-ubuntu24.04

# ---------------------------------------------------------------------------- build: the venv
FROM ${CUDA_IMAGE} AS build
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-venv \
    && rm -rf /var/lib/apt/lists/*
RUN python3 -m venv /opt/venv
# torch first, in its own layer: it is most of the image and changes least often.
# hadolint ignore=DL3059
RUN /opt/venv/bin/pip install --no-cache-dir "torch==2.14.1" "torchvision==0.29.1"
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
# Extras baked in: the API, the UI and the offline lite backend (see README "Install").
ARG EXTRAS=server,ui,lite
RUN /opt/venv/bin/pip install --no-cache-dir ".[${EXTRAS}]"

# ---------------------------------------------------------------------------- runtime
FROM ${CUDA_IMAGE} AS runtime
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --gid 10001 lychee \
    && useradd --create-home --uid 10001 --gid 10001 --shell /usr/sbin/nologin lychee \
    && mkdir -p /home/lychee/.cache/huggingface \
    && chown -R lychee:lychee /home/lychee/.cache
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    HF_HOME=/home/lychee/.cache/huggingface \
    LYCHEE_MODEL=vec-ai/lychee-rerank-mm
# Model weights (~17 GB) live in a volume: downloaded once, kept across containers and upgrades.
VOLUME ["/home/lychee/.cache/huggingface"]
USER 10001:10001
WORKDIR /home/lychee
EXPOSE 8080
# /health answers 503 while the model loads, 200 once it serves; the first download takes a while.
HEALTHCHECK --interval=30s --timeout=5s --start-period=600s --retries=3 \
    CMD ["python3", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/health', timeout=4)"]
# 0.0.0.0 inside the container only; publish the port on the host's loopback or behind a proxy,
# and set LYCHEE_API_KEY (the server warns when it is missing).
CMD ["lychee", "serve", "--host", "0.0.0.0", "--port", "8080", "--backend", "lychee"]
