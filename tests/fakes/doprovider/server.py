"""Serve a tfplugin6 servicer the way Terraform's go-plugin client expects.

Terraform starts the provider executable, reads one handshake line from its stdout
(`1|6|unix|<socket>|grpc|<base64 server cert>`) and talks gRPC over TLS on that socket.
The TLS certificate comes from the `tf` package (cached under $HOME/.cache, so HOME must
be writable; the wrapper script takes care of that).
"""

from __future__ import annotations

import base64
import contextlib
import os
import sys
import tempfile
import threading
from concurrent import futures
from typing import Any

import grpc
from tf.gen import grpc_controller_pb2 as controller_pb
from tf.gen import grpc_controller_pb2_grpc as controller_rpc
from tf.gen import grpc_stdio_pb2_grpc as stdio_rpc
from tf.gen import tfplugin_pb2_grpc as rpc
from tf.runner import _self_signed_cert  # the framework's cached self-signed cert

# Terraform's client refuses messages above its own limit anyway; the schema is ~0.5 MB.
_MAX_MESSAGE = 64 * 1024 * 1024


class _Controller(controller_rpc.GRPCControllerServicer):  # type: ignore[misc]
    """go-plugin's controller service: Terraform calls Shutdown when it is done."""

    def __init__(self, stop: threading.Event) -> None:
        self._stop = stop

    def Shutdown(self, request: Any, context: Any) -> Any:
        self._stop.set()
        return controller_pb.Empty()


class _Stdio(stdio_rpc.GRPCStdioServicer):  # type: ignore[misc]
    """go-plugin's stdio streaming; nothing to stream, but it must exist."""

    def StreamStdio(self, request: Any, context: Any) -> Any:
        return iter(())


def serve(servicer: rpc.ProviderServicer) -> None:
    """Run `servicer` until Terraform shuts the plugin down (or kills the process)."""
    stop = threading.Event()
    server = grpc.server(
        # Terraform applies up to 10 resources in parallel (-parallelism) per provider.
        futures.ThreadPoolExecutor(max_workers=16),
        options=[
            ("grpc.max_send_message_length", _MAX_MESSAGE),
            ("grpc.max_receive_message_length", _MAX_MESSAGE),
        ],
    )
    rpc.add_ProviderServicer_to_server(servicer, server)
    controller_rpc.add_GRPCControllerServicer_to_server(_Controller(stop), server)
    stdio_rpc.add_GRPCStdioServicer_to_server(_Stdio(), server)

    with tempfile.TemporaryDirectory(prefix="doprovider-") as tmp:
        sock = os.path.join(tmp, "plugin.sock")
        cert_chain, credentials = _self_signed_cert()
        server.add_secure_port(f"unix://{sock}", credentials)
        server.start()
        cert = base64.b64encode(cert_chain).decode().rstrip("=")
        sys.stdout.write(f"1|6|unix|{sock}|grpc|{cert}\n")
        sys.stdout.flush()
        # Terraform forwards ^C to plugins; just leave.
        with contextlib.suppress(KeyboardInterrupt):
            stop.wait()
        server.stop(grace=0.05)
