"""The HTTP service on Ray Serve: the same FastAPI app, N replicas, one model each.

Each replica loads its reranker in its constructor (so Serve routes to it only once the model
is ready), then builds the app with :func:`lychee_rerank.serving.app.create_app` - the very app
``lychee serve`` runs, so routes, limits, errors and scores are identical. Serve's proxy
spreads requests over the replicas; ``max_ongoing_requests`` bounds what one replica is sent
(the app's own micro-batching then shares forward passes among those), and an autoscaling
config lets Serve add or remove replicas with the load.

Entry point: ``lychee serve-ray --replicas N`` (:mod:`lychee_rerank.cli.serve`).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any, Optional

from ray import serve

from .settings import ServerSettings

APP_NAME = "lychee-rerank"


@dataclass(frozen=True)
class ReplicaOptions:
    """Ray Serve knobs of the deployment (what ``serve.deployment`` takes)."""

    num_replicas: int = 1
    max_ongoing_requests: int = 16
    """Requests Serve sends one replica at once; the app coalesces them into shared batches."""
    num_cpus: float = 1.0
    num_gpus: float = 0.0
    autoscaling_min: Optional[int] = None
    autoscaling_max: Optional[int] = None
    target_ongoing_requests: float = 4.0
    """Autoscaling aims at this many requests in flight per replica."""

    def deployment_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "max_ongoing_requests": self.max_ongoing_requests,
            "ray_actor_options": {"num_cpus": self.num_cpus, "num_gpus": self.num_gpus},
        }
        if self.autoscaling_max is not None:
            lowest = self.autoscaling_min if self.autoscaling_min is not None else 1
            kwargs["autoscaling_config"] = {
                "min_replicas": lowest,
                "initial_replicas": max(lowest, min(self.num_replicas, self.autoscaling_max)),
                "max_replicas": self.autoscaling_max,
                "target_ongoing_requests": self.target_ongoing_requests,
            }
        else:
            kwargs["num_replicas"] = self.num_replicas
        return kwargs


@serve.ingress()
class LycheeDeployment:
    """One replica: one reranker, one copy of the service's FastAPI app."""

    def __init__(self, settings: ServerSettings) -> None:
        from .app import default_loader

        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        self.settings = settings
        self.reranker = default_loader(settings)  # before the replica counts as ready

    def __serve_build_asgi_app__(self) -> Any:
        from .app import create_app

        return create_app(self.settings, self.reranker)


def build_app(settings: ServerSettings, options: ReplicaOptions = ReplicaOptions()) -> Any:
    """The Serve application (``serve.run`` it, or hand it to ``serve deploy`` via a builder)."""
    deployment = serve.deployment(LycheeDeployment, name="LycheeReranker", **options.deployment_kwargs())
    return deployment.bind(settings)


def run(
    settings: ServerSettings,
    options: ReplicaOptions = ReplicaOptions(),
    *,
    address: Optional[str] = None,
    blocking: bool = True,
) -> Any:
    """Start (or join) Ray, start Serve's proxy on ``settings.host:port`` and deploy the app.

    ``blocking=False`` returns once every replica has loaded its model (tests, notebooks).
    """
    import ray

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    if not ray.is_initialized():
        address = address or os.environ.get("RAY_ADDRESS")
        if address:
            ray.init(address=address, logging_level=logging.WARNING)
        else:
            ray.init(address="local", include_dashboard=False, logging_level=logging.WARNING)
    serve.start(http_options={"host": settings.host, "port": settings.port})
    return serve.run(build_app(settings, options), name=APP_NAME, route_prefix="/", blocking=blocking)

