"""The engine's use cases, one group of methods per module; `OrchestrationEngine`
(`chute.application.engine`) is all of them on one object."""
