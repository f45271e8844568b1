"""``python -m provisioner.autoscaler.serve --settings PATH``: run the autoscaler service.

Serves the cluster-autoscaler's externalgrpc protocol over mutual TLS only: the server's
certificate and key and the CA that the autoscaler's client certificate must chain to come
from the settings (the autoscaler's cloud-config names its cert, key and cacert). A bad
settings file or unreadable secret is one line on stderr and exit 2; the DigitalOcean token
is read from its file and never printed.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
from concurrent import futures
from pathlib import Path
from typing import Any

from provisioner.autoscaler import join_token, settings
from provisioner.autoscaler.doclient import DoClient, read_token
from provisioner.autoscaler.groups import Groups
from provisioner.errors import EXIT_USAGE, ProvisionError, UsageError

WORKERS = 8


def _read(path: str, what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as error:
        raise UsageError(f"{path}: cannot read the {what}: {error.strerror}") from None


def secret_values(path: str) -> dict[str, str]:
    """The late secret values (a JSON object of strings)."""
    try:
        data = json.loads(_read(path, "secret values file"))
    except ValueError:
        raise UsageError(f"{path}: the secret values file is not JSON") from None
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        raise UsageError(f"{path}: the secret values file must be a JSON object of strings")
    return data


def build(conf: settings.Settings) -> tuple[Any, int]:
    """A started-ready gRPC server for ``conf`` and the port it is bound to."""
    import grpc

    from provisioner.autoscaler.protos import externalgrpc_pb2_grpc as pb_grpc
    from provisioner.autoscaler.servicer import CloudProvider

    try:
        token = read_token(conf.do_token_file)
    except ProvisionError as error:
        raise UsageError(str(error)) from None
    try:
        kube = join_token.kube_for(conf.kube_api)
        kube.check()  # a pod without its service account token stops here, not at scale-up
    except ProvisionError as error:
        raise UsageError(str(error)) from None
    groups = Groups(conf, DoClient(conf.do_api_url, token), lambda: join_token.mint(kube),
                    secret_values(conf.secret_values_file))
    credentials = grpc.ssl_server_credentials(
        [(_read(conf.tls.key, "TLS key"), _read(conf.tls.cert, "TLS certificate"))],
        root_certificates=_read(conf.tls.client_ca, "client CA"), require_client_auth=True)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=WORKERS))
    register: Any = pb_grpc.add_CloudProviderServicer_to_server  # generated, untyped
    register(CloudProvider(groups), server)
    port = server.add_secure_port(conf.listen, credentials)
    if port == 0:
        raise UsageError(f"cannot listen on {conf.listen}")
    return server, port


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m provisioner.autoscaler.serve",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--settings", required=True, help="the service's settings JSON")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(message)s")
    try:
        server, port = build(settings.load(args.settings))
    except ProvisionError as error:
        print(f"provision-autoscaler: {error}", file=sys.stderr)
        return error.exit_code if error.exit_code else EXIT_USAGE
    server.start()
    logging.info("serving the externalgrpc cloud provider on port %d (mutual TLS)", port)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    server.stop(grace=5).wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
