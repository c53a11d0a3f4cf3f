"""Local TCP listeners that play a client's endpoint for the outbound-guard tests: each connection
is handed to a function (answer, redirect, drip, stall, ...), optionally over TLS with a test CA."""

from __future__ import annotations

import socket
import ssl
import threading
import time
from pathlib import Path

from tests.live_provider import write_tls_files


class Listener:
    """Listens on ``host`` (a loopback address); ``serve(conn, listener)`` runs for each connection
    on a thread of its own. ``connections`` counts them; ``sni`` keeps the server name each TLS
    client asked for."""

    def __init__(self, serve, *, host: str = "127.0.0.1", port: int = 0,
                 tls: ssl.SSLContext | None = None) -> None:
        self.serve, self.tls, self.host = serve, tls, host
        self.connections, self.sni, self.sent = 0, [], 0
        self.holding = threading.Event()  # set by handlers that have a request and are waiting
        self.release = threading.Event()  # what they wait for
        self._closed = False
        self._lock = threading.Lock()
        self._sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((host, port))
        self._sock.listen(32)
        self._sock.settimeout(0.1)
        self.port = self._sock.getsockname()[1]
        if tls is not None:
            tls.sni_callback = self._note_sni
        self._thread = threading.Thread(target=self._accept, name="test-listener", daemon=True)
        self._thread.start()

    def url(self, path: str = "/", *, scheme: str | None = None, host: str | None = None) -> str:
        scheme = scheme or ("https" if self.tls else "http")
        host = host or (f"[{self.host}]" if ":" in self.host else self.host)
        return f"{scheme}://{host}:{self.port}{path}"

    def _note_sni(self, _sock, name, _context) -> None:
        self.sni.append(name)

    def _accept(self) -> None:
        while not self._closed:
            try:
                conn, _ = self._sock.accept()
            except (TimeoutError, OSError):
                continue
            with self._lock:
                self.connections += 1
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        conn.settimeout(30)
        try:
            if self.tls is not None:
                conn = self.tls.wrap_socket(conn, server_side=True)
            self.serve(conn, self)
        except (OSError, ssl.SSLError):
            pass  # the client gave up or refused us: what several tests are about
        finally:
            conn.close()

    def close(self) -> None:
        self.release.set()
        self._closed = True
        self._thread.join(timeout=5)
        self._sock.close()


# ------------------------------------------------------------------ what a listener does
def read_request(conn: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(4096)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
            while len(body) < length:
                body += conn.recv(4096)
    return data


def answer(status: int = 200, body: bytes = b'{"keys": []}', headers: tuple = ()):
    def serve(conn, listener):
        read_request(conn)
        lines = [f"HTTP/1.1 {status} X", f"Content-Length: {len(body)}", "Content-Type: application/json",
                 "Connection: close", *headers]
        conn.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
    return serve


def redirect(location: str):
    return answer(302, b"", (f"Location: {location}",))


def hold(conn, listener):
    """Takes the request, then answers only when the test releases it."""
    read_request(conn)
    listener.holding.set()
    listener.release.wait(30)
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}")


def stall(conn, listener):
    """Takes the request and never answers (until the client gives up)."""
    read_request(conn)
    conn.recv(1)


def drip(head: bytes, byte: bytes = b"x", limit: int = 3000, pause: float = 0.01):
    """Sends ``head``, then one byte at a time, ``pause`` apart, up to ``limit`` bytes."""
    def serve(conn, listener):
        read_request(conn)
        conn.sendall(head)
        for _ in range(limit):
            conn.sendall(byte)
            listener.sent += 1
            time.sleep(pause)
    return serve


def flood(head: bytes, chunk: bytes, times: int):
    """Sends ``head`` then ``chunk`` ``times`` times as fast as the client reads."""
    def serve(conn, listener):
        read_request(conn)
        conn.sendall(head)
        for _ in range(times):
            conn.sendall(chunk)
            listener.sent += len(chunk)
    return serve


def plain_http_on_a_tls_port(conn, listener):
    """An open port that does not speak TLS."""
    conn.recv(4096)
    conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")


# ------------------------------------------------------------------ TLS material
class LocalCA:
    """A throwaway CA, a server certificate it signed for ``hosts``/``ips``, and the contexts to
    serve it and to trust it."""

    def __init__(self, folder: Path, hosts=("localhost",), ips=("127.0.0.1", "::1")) -> None:
        self.files = write_tls_files(folder, hosts=hosts, ips=ips)

    def server(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.files["cert"], self.files["key"])
        return context

    def client(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.files["ca"]))
