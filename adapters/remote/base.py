"""What every group of the remote engine's calls shares: the transport to one server."""

from __future__ import annotations

from chute.adapters.remote.transport import Transport


class RemoteBase:
    """Holds the `Transport` that the calls of each group send their requests through."""

    def __init__(self, transport: Transport) -> None:
        self._http = transport
