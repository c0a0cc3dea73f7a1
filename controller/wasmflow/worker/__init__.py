"""The worker process: config in, graph run, /metrics, /healthz, /readyz."""
