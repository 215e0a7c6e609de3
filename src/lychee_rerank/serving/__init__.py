"""HTTP service: app wiring (:mod:`.app`), request schemas, settings, middleware, metrics,
micro-batching (:mod:`.coalesce`), the model worker, image sources and Ray Serve.

Importing the package is cheap; :func:`.app.create_app` builds the FastAPI app and loads the model.
"""
