"""The embedded default MongoDB: a SecantusDB child process shared by the data dir's processes."""

from adapters.embedded.process import EmbeddedServerError
from adapters.embedded.secantus import EmbeddedMongo, serving
from adapters.embedded.supervisor import RestartPolicy, ServerHealth, ServerState

__all__ = ["EmbeddedMongo", "EmbeddedServerError", "RestartPolicy", "ServerHealth", "ServerState", "serving"]
