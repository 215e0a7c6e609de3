# `lychee serve` on a CUDA machine: the README's install (pinned torch, then the package), nothing else.
# Not built or tested by this project's CI (no Docker daemon or GPU there); kept minimal on purpose.
#   docker build -t lychee-rerank .
#   docker run --gpus all -p 8080:8080 -e LYCHEE_API_KEY=change-me -v ~/.cache/huggingface:/root/.cache/huggingface lychee-rerank
FROM nvidia/cuda:12.6.3-runtime-ubuntu24.04

RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-venv \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /opt/lychee
COPY pyproject.toml README.md ./
COPY src ./src
RUN python3 -m venv /opt/venv \
    && /opt/venv/bin/pip install --no-cache-dir "torch==2.14.1" "torchvision==0.29.1" \
    && /opt/venv/bin/pip install --no-cache-dir .

ENV PATH=/opt/venv/bin:$PATH \
    LYCHEE_MODEL=vec-ai/lychee-rerank-mm
EXPOSE 8080
# 0.0.0.0 inside the container; set LYCHEE_API_KEY (the server warns when it is missing).
CMD ["lychee", "serve", "--host", "0.0.0.0", "--port", "8080", "--backend", "lychee"]
