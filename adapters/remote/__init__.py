"""The engine's use cases on a chute server, over its HTTP API: for clients (the CLI's
client commands) and for workers that run away from the database (`Worker(RemoteEngine(
url, key), processor)`).

`RemoteEngine` has the methods, arguments, results and errors of `OrchestrationEngine`'s
client and worker use cases, plus `wait_job`, `iter_jobs`, `upload_file` and `stream`;
`SyncRemoteEngine` is the same, blocking. Errors the engine has no class for are
`RemoteError` (`Unauthorized` for a refused or missing key); every error from a problem
response keeps its `title` and `detail` (`problem_of(error)`).
"""

from chute.adapters.remote.engine import RemoteEngine
from chute.adapters.remote.errors import Problem, RemoteError, Unauthorized, problem_of
from chute.adapters.remote.stream import StreamEvent
from chute.adapters.remote.sync import SyncRemoteEngine

__all__ = [
    "Problem",
    "RemoteEngine",
    "RemoteError",
    "StreamEvent",
    "SyncRemoteEngine",
    "Unauthorized",
    "problem_of",
]
