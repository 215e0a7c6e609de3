"""``lychee serve`` and ``lychee serve-ray``: one HTTP API, one process or N Ray Serve replicas.

Both build :class:`~lychee_rerank.serving.settings.ServerSettings` from their flags the same
way (:func:`settings_from_flags`: flags over ``LYCHEE_*`` over defaults) and refuse bad values
before anything heavy is imported.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Optional

import typer

from .app import _quiet_libraries, app, fail, family_option, say, warn


def settings_from_flags(given: dict[str, Any]) -> Any:
    """``ServerSettings`` from the flags that were set (``None`` = not given), or exit 2 with each problem."""
    from pydantic import ValidationError

    from ..serving.settings import ServerSettings

    try:
        return ServerSettings(**{k: v for k, v in given.items() if v is not None})
    except ValidationError as exc:
        for problem in exc.errors():
            where = ".".join(str(x) for x in problem["loc"])
            fail(f"{where}: {problem['msg']}")
        raise typer.Exit(2)


def warn_if_exposed(settings: Any) -> None:
    if settings.host not in ("127.0.0.1", "localhost", "::1") and not settings.api_key_value:
        warn(f"listening on {settings.host} without --api-key: anyone who can reach it can use it")


@app.command()
def serve(
    host: Optional[str] = typer.Option(None, "--host", help="Interface to bind [default: 127.0.0.1]."),
    port: Optional[int] = typer.Option(None, "--port", "-p", help="Port [default: 8080]."),
    backend: Optional[str] = typer.Option(None, "--backend", help="auto, lychee or lite [default: auto]."),
    model: Optional[str] = typer.Option(None, "--model", "-m", help="Hub id or local directory (or LYCHEE_MODEL)."),
    family: Optional[str] = family_option(envvar=None),
    adapter: Optional[str] = typer.Option(None, "--adapter", help="LoRA adapter directory from `lychee finetune`."),
    api_key: Optional[str] = typer.Option(
        None, "--api-key", help="Require 'Authorization: Bearer KEY' on every route but /health (or LYCHEE_API_KEY)."
    ),
    allow_local_dir: Optional[Path] = typer.Option(
        None, "--allow-local-dir", help="Let requests name image files inside this directory (nowhere else)."
    ),
    allow_urls: Optional[bool] = typer.Option(
        None, "--allow-urls/--no-allow-urls", help="Let requests name http(s) image URLs (public addresses only)."
    ),
    device: Optional[str] = typer.Option(None, "--device"),
    dtype: Optional[str] = typer.Option(None, "--dtype"),
    attn: Optional[str] = typer.Option(None, "--attn", help="auto, flash_attention_2, sdpa or eager."),
    model_max_pixels: Optional[int] = typer.Option(None, "--max-pixels", help="Pixel budget per image, model side."),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", "-b", min=1),
    max_documents: Optional[int] = typer.Option(None, "--max-documents", help="Documents per request [1000]."),
    max_request_bytes: Optional[int] = typer.Option(None, "--max-request-bytes", help="Request body size [64 MiB]."),
    max_image_bytes: Optional[int] = typer.Option(None, "--max-image-bytes", help="Encoded size of one image [20 MiB]."),
    max_image_pixels: Optional[int] = typer.Option(None, "--max-image-pixels", help="Width x height of one image [40 M]."),
    max_text_chars: Optional[int] = typer.Option(None, "--max-text-chars", help="Characters of one text [100000]."),
    request_timeout_s: Optional[float] = typer.Option(None, "--request-timeout", help="Seconds per request, then 504 [120]."),
    max_queue: Optional[int] = typer.Option(None, "--max-queue", help="Requests admitted to the model, then 503 [64]."),
    max_wait_ms: Optional[float] = typer.Option(None, "--max-wait-ms", help="Micro-batching: wait for concurrent requests [5]."),
    url_timeout_s: Optional[float] = typer.Option(None, "--url-timeout", help="Seconds to fetch one image URL [10]."),
    head_timeout_s: Optional[float] = typer.Option(
        None, "--head-timeout", help="Seconds for a request head to arrive, then 408 and close [10]."
    ),
    log_level: str = typer.Option("info", "--log-level"),
) -> None:
    """Serve the reranker over HTTP (Cohere/Jina/vLLM-compatible /v1/rerank; docs at /docs)."""
    from ..extras import require

    require("server", "lychee serve")
    import uvicorn

    settings = settings_from_flags({
        "host": host, "port": port, "backend": backend, "model": model, "family": family, "api_key": api_key,
        "allow_local_dir": allow_local_dir, "allow_urls": allow_urls, "device": device, "dtype": dtype,
        "attn_implementation": attn, "model_max_pixels": model_max_pixels, "adapter": adapter, "batch_size": batch_size,
        "max_documents": max_documents, "max_request_bytes": max_request_bytes, "max_image_bytes": max_image_bytes,
        "max_image_pixels": max_image_pixels, "max_text_chars": max_text_chars,
        "request_timeout_s": request_timeout_s, "max_queue": max_queue, "max_wait_ms": max_wait_ms, "url_timeout_s": url_timeout_s,
        "head_timeout_s": head_timeout_s,
    })
    from ..serving.app import create_app  # imports torch: only once the settings are known to be valid

    _quiet_libraries()
    logging.getLogger("lychee_rerank").setLevel(logging.INFO)
    warn_if_exposed(settings)
    say(f"lychee serve: http://{settings.host}:{settings.port} (docs at /docs); loading the model...", "dim")
    from ..serving.http_limits import raise_open_file_limit, uvicorn_http_options

    raise_open_file_limit()  # each connection is a descriptor: the default 1,024 is a few slow clients
    uvicorn.run(
        create_app(settings), host=settings.host, port=settings.port, log_level=log_level,
        **uvicorn_http_options(max_header_bytes=settings.max_header_bytes, head_timeout_s=settings.head_timeout_s),
    )


@app.command("serve-ray")
def serve_ray(
    replicas: int = typer.Option(1, "--replicas", "-r", min=1, help="Replicas (one model each); initial count with autoscaling."),
    host: Optional[str] = typer.Option(None, "--host", help="Interface of Serve's HTTP proxy [default: 127.0.0.1]."),
    port: Optional[int] = typer.Option(None, "--port", "-p", help="Port [default: 8080]."),
    backend: Optional[str] = typer.Option(None, "--backend", help="auto, lychee or lite [default: auto]."),
    model: Optional[str] = typer.Option(None, "--model", "-m", help="Hub id or local directory (or LYCHEE_MODEL)."),
    family: Optional[str] = family_option(envvar=None),
    adapter: Optional[str] = typer.Option(None, "--adapter", help="LoRA adapter directory from `lychee finetune`."),
    api_key: Optional[str] = typer.Option(None, "--api-key", help="Require 'Authorization: Bearer KEY' (or LYCHEE_API_KEY)."),
    allow_local_dir: Optional[Path] = typer.Option(None, "--allow-local-dir", help="Let requests name image files in this directory."),
    device: Optional[str] = typer.Option(None, "--device"),
    dtype: Optional[str] = typer.Option(None, "--dtype"),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", "-b", min=1),
    max_documents: Optional[int] = typer.Option(None, "--max-documents", help="Documents per request [1000]."),
    request_timeout_s: Optional[float] = typer.Option(None, "--request-timeout", help="Seconds per request, then 504 [120]."),
    max_queue: Optional[int] = typer.Option(None, "--max-queue", help="Requests admitted to one replica's model, then 503 [64]."),
    max_wait_ms: Optional[float] = typer.Option(None, "--max-wait-ms", help="Micro-batching window inside a replica [5]."),
    max_ongoing_requests: int = typer.Option(16, "--max-ongoing-requests", min=1, help="Requests Serve sends one replica at once."),
    num_gpus_per_replica: float = typer.Option(0.0, "--num-gpus-per-replica", min=0.0),
    num_cpus_per_replica: float = typer.Option(1.0, "--num-cpus-per-replica", min=0.0),
    autoscaling_min: Optional[int] = typer.Option(None, "--autoscaling-min", min=0, help="With --autoscaling-max: fewest replicas [1]."),
    autoscaling_max: Optional[int] = typer.Option(None, "--autoscaling-max", min=1, help="Turn on Serve autoscaling up to this many replicas."),
    target_ongoing_requests: float = typer.Option(4.0, "--target-ongoing-requests", min=0.1, help="Autoscaling target per replica."),
    address: Optional[str] = typer.Option(None, "--address", help="Ray cluster to join (or RAY_ADDRESS); default: a local instance."),
) -> None:
    """Serve the same HTTP API on Ray Serve with N replicas (one model each)."""
    from ..extras import require

    require("server", "lychee serve-ray")  # each replica serves the FastAPI app
    require("scale", "lychee serve-ray")
    settings = settings_from_flags({
        "host": host, "port": port, "backend": backend, "model": model, "family": family, "adapter": adapter, "api_key": api_key,
        "allow_local_dir": allow_local_dir, "device": device, "dtype": dtype, "batch_size": batch_size,
        "max_documents": max_documents, "request_timeout_s": request_timeout_s, "max_queue": max_queue, "max_wait_ms": max_wait_ms,
    })
    from ..serving.ray_serve import ReplicaOptions, run

    options = ReplicaOptions(
        num_replicas=replicas, max_ongoing_requests=max_ongoing_requests, num_cpus=num_cpus_per_replica,
        num_gpus=num_gpus_per_replica, autoscaling_min=autoscaling_min, autoscaling_max=autoscaling_max,
        target_ongoing_requests=target_ongoing_requests,
    )
    _quiet_libraries()
    warn_if_exposed(settings)
    say(f"lychee serve-ray: http://{settings.host}:{settings.port} with {replicas} replica(s); loading the models...", "dim")
    run(settings, options, address=address, blocking=True)
