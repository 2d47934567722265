"""The telemetry adapters: Prometheus metrics and OpenTelemetry traces."""
