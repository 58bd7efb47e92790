//! Shared plumbing for cocoon daemons: configuration layering, HTTP serving, metrics, health and graceful shutdown.
