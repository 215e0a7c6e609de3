"""One real local Ray instance for the Ray tests (Ray Data batch, Ray Serve), started once.

Imported by each Ray test module; whichever asks first starts Ray, the other finds it running.
Two CPUs, no dashboard, no usage reporting: nothing leaves the machine.
"""

from __future__ import annotations

import logging
import os
from typing import Any, Iterator

import pytest

os.environ["RAY_USAGE_STATS_ENABLED"] = "0"


@pytest.fixture(scope="session")
def ray_local() -> Iterator[Any]:
    ray = pytest.importorskip("ray")
    started = not ray.is_initialized()
    if started:
        ray.init(
            address="local", num_cpus=2, include_dashboard=False, log_to_driver=False,
            logging_level=logging.WARNING, configure_logging=True,
        )
        ctx = ray.data.DataContext.get_current()
        ctx.enable_progress_bars = False
    yield ray
    if started:
        ray.shutdown()
