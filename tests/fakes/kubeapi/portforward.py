"""``GET /api/v1/namespaces/<ns>/pods/<name>/portforward`` over WebSocket, as the kubelet
answers it through the API server.

kubernetes/kubernetes pkg/kubelet/cri/streaming/portforward/websocket.go
(handleWebSocketStreams, V4Options): the ``ports`` query parameter lists the pod's ports;
each gets two channels, data (2i) and error (2i+1); the subprotocols are
``v4.channel.k8s.io`` (binary), its base64 variant and none; the first message on each
channel is the port as an unsigned 16-bit little-endian integer; then the data channel
carries the TCP stream both ways, and a failure to reach the port is written as text on the
error channel ("error forwarding port %d to pod %s, uid %v: %v"). Each WebSocket message
is one channel byte and its data (staging/src/k8s.io/apiserver/pkg/util/wsstream/conn.go).
The handshake and frames are RFC 6455 (the client masks its frames, the server does not).

The fake has no containers: `FakeKubeAPI.pod_ports[(namespace, port)]` names the loopback
address a test serves as that port of every pod in the namespace. A port no test serves
is refused as a kubelet reports a connection refused. Only the binary protocol is spoken.
"""

from __future__ import annotations

import base64
import hashlib
import re
import select
import socket
import struct
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, BinaryIO

PATH = re.compile(r"^/api/v1/namespaces/([^/]+)/pods/([^/]+)/portforward$")
GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455, 1.3
V4 = "v4.channel.k8s.io"


@dataclass(frozen=True)
class Forwarded:
    user: str
    namespace: str
    pod: str
    ports: tuple[int, ...]


def _frame(opcode: int, payload: bytes) -> bytes:
    head = bytes([0x80 | opcode])
    n = len(payload)
    if n < 126:
        head += bytes([n])
    elif n < 1 << 16:
        head += bytes([126]) + struct.pack(">H", n)
    else:
        head += bytes([127]) + struct.pack(">Q", n)
    return head + payload


def _read_frame(rfile: BinaryIO) -> tuple[int, bytes] | None:
    head = rfile.read(2)
    if len(head) < 2:
        return None
    opcode, n = head[0] & 0x0F, head[1] & 0x7F
    if n == 126:
        n = struct.unpack(">H", rfile.read(2))[0]
    elif n == 127:
        n = struct.unpack(">Q", rfile.read(8))[0]
    mask = rfile.read(4) if head[1] & 0x80 else b""
    data = rfile.read(n)
    if mask:
        data = bytes(b ^ mask[i % 4] for i, b in enumerate(data))
    return opcode, data


def serve(handler: Any, namespace: str, pod: str, query: Mapping[str, str], user: str,
          pod_exists: bool, targets: Mapping[tuple[str, int], tuple[str, int]],
          note: Callable[[Forwarded], None]) -> None:
    """Answer one port-forward request on the handler's connection, until either end closes."""
    def refuse(code: int, reason: str) -> None:
        body = reason.encode()
        handler.wfile.write(f"HTTP/1.1 {code} {reason}\r\nContent-Type: text/plain\r\n"
                            f"Content-Length: {len(body)}\r\n\r\n".encode() + body)

    offered = [p.strip() for p in handler.headers.get("Sec-WebSocket-Protocol", "").split(",")]
    key = handler.headers.get("Sec-WebSocket-Key", "")
    if handler.headers.get("Upgrade", "").lower() != "websocket" or not key:
        return refuse(400, "Bad Request")
    if not pod_exists:
        return refuse(404, "Not Found")
    try:
        ports = tuple(int(p) for p in query.get("ports", "").split(",") if p)
    except ValueError:
        return refuse(400, "Bad Request")
    if not ports or any(not 0 < p < 65536 for p in ports):
        return refuse(400, "Bad Request")
    note(Forwarded(user, namespace, pod, ports))
    accept = base64.b64encode(hashlib.sha1((key + GUID).encode()).digest()).decode()
    protocol = V4 if V4 in offered else ""
    handler.wfile.write(("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                         f"Connection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n"
                         + (f"Sec-WebSocket-Protocol: {protocol}\r\n" if protocol else "")
                         + "\r\n").encode())
    lock = threading.Lock()

    def send(channel: int, data: bytes) -> None:
        with lock:
            handler.wfile.write(_frame(0x2, bytes([channel]) + data))
            handler.wfile.flush()

    upstream: dict[int, socket.socket] = {}
    for i, port in enumerate(ports):
        send(2 * i, struct.pack("<H", port))
        send(2 * i + 1, struct.pack("<H", port))
        address = targets.get((namespace, port))
        try:
            if address is None:
                raise ConnectionRefusedError("connection refused")
            upstream[2 * i] = socket.create_connection(address, timeout=10)
        except OSError as e:
            send(2 * i + 1, f"error forwarding port {port} to pod {pod}, uid : {e}".encode())
    done = threading.Event()

    def pump(channel: int, sock: socket.socket) -> None:
        try:
            while not done.is_set():
                readable, _, _ = select.select([sock], [], [], 0.2)
                if readable:
                    data = sock.recv(65536)
                    if not data:
                        break
                    send(channel, data)
        except OSError:
            pass
        finally:
            done.set()

    for channel, sock in upstream.items():
        threading.Thread(target=pump, args=(channel, sock), daemon=True).start()
    try:
        while not done.is_set() and upstream:
            readable, _, _ = select.select([handler.connection], [], [], 0.2)
            if not readable:
                continue
            frame = _read_frame(handler.rfile)
            if frame is None or frame[0] == 0x8:  # gone, or a close frame
                break
            opcode, data = frame
            if opcode == 0x9:
                with lock:
                    handler.wfile.write(_frame(0xA, data))
            elif opcode == 0x2 and data and data[0] in upstream:
                upstream[data[0]].sendall(data[1:])
    except OSError:
        pass
    finally:
        done.set()
        for sock in upstream.values():
            sock.close()
        try:
            with lock:
                handler.wfile.write(_frame(0x8, struct.pack(">H", 1000)))
        except OSError:
            pass
