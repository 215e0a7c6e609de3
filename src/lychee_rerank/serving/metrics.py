"""Prometheus metrics of the HTTP service.

Each app gets its own registry, so several servers in one process (tests, embedding apps)
never share or double-register counters.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
COUNT_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)


class ServerMetrics:
    """The numbers an operator alerts on: traffic, latency, errors by kind, batching, queueing."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter("lychee_requests", "HTTP requests.", ["route", "method", "status"], registry=r)
        self.latency = Histogram(
            "lychee_request_duration_seconds", "HTTP request latency.", ["route"], buckets=LATENCY_BUCKETS, registry=r
        )
        self.model_latency = Histogram(
            "lychee_model_duration_seconds", "Time spent in the model per request.", ["route"],
            buckets=LATENCY_BUCKETS, registry=r,
        )
        self.documents = Counter("lychee_documents", "Documents received for scoring.", ["route"], registry=r)
        self.documents_per_request = Histogram(
            "lychee_documents_per_request", "Documents in one request.", buckets=COUNT_BUCKETS, registry=r
        )
        self.errors = Counter(
            "lychee_errors", "Errors by kind (limit, validation, auth, timeout, overloaded, document, internal...).",
            ["kind"], registry=r,
        )
        self.batch_size = Histogram(
            "lychee_batch_size", "Pairs per forward pass.", buckets=COUNT_BUCKETS, registry=r
        )
        self.coalesced = Histogram(
            "lychee_coalesced_requests", "Requests that shared one micro-batch.", buckets=COUNT_BUCKETS, registry=r
        )
        self.oom_backoffs = Counter(
            "lychee_oom_backoffs", "CUDA out-of-memory events answered by halving the batch.", registry=r
        )
        self.abandoned_jobs = Counter(
            "lychee_abandoned_jobs",
            "Model jobs stopped at a batch boundary because every request they served gave up (timeout, disconnect).",
            registry=r,
        )
        self.abandoned_pairs = Counter(
            "lychee_abandoned_pairs", "Pairs left unscored because their requests gave up.", registry=r
        )
        self.queue_depth = Gauge("lychee_queue_depth", "Requests admitted to the model (running + waiting).", registry=r)
        self.model_loaded = Gauge("lychee_model_loaded", "1 once the model is loaded.", registry=r)

    def render(self) -> bytes:
        return generate_latest(self.registry)
