"""Seeing DripDrop run: Prometheus metrics (:mod:`.metrics`), OpenTelemetry spans
(:mod:`.tracing`) and structured logs (:mod:`.logs`). Each is a no-op unless its library is
installed (metrics) or the host configures it (an OpenTelemetry SDK, a log handler)."""
