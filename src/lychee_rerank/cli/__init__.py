"""``lychee``: the command line, one module per command group.

:mod:`.app` holds the Typer app, the shared helpers and the ranking commands; importing this
package registers the others (:mod:`.serve`, :mod:`.jobs`, :mod:`.training`, :mod:`.models`). Nothing heavy is
imported here: each command imports what it needs when it runs.
"""

from . import jobs, models, serve, training  # noqa: F401 - registers their commands on ``app``
from .app import app, main

__all__ = ["app", "main"]
