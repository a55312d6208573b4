"""Test "hosts": network namespaces joined to this machine by veth pairs, made and removed by
the tests, so workers and beats can run on separate networks and be cut off.

Host ``i`` has the address 10.231.i.2 inside its namespace; this machine is 10.231.i.1 on the
other end of the pair. PostgreSQL, RabbitMQ and the private Redis listen on 127.0.0.1 only, so
a forwarder (``python -m tests.hosts forward``) listens on each 10.231.i.1 and relays to
127.0.0.1. Cutting a host off takes its end of the link down: packets are dropped, no
connection is reset, as when a machine falls off the network.
"""

from __future__ import annotations

import os
import selectors
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
SUBNET = "10.231"


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check, timeout=30)


class Host:
    def __init__(self, index: int) -> None:
        self.index = index
        tag = f"sy{os.getpid() % 10000}h{index}"
        self.namespace = tag
        self.outer = f"{tag}a"  # this machine's end of the link
        self.inner = f"{tag}b"
        self.gateway = f"{SUBNET}.{index}.1"  # this machine, as the host sees it
        self.address = f"{SUBNET}.{index}.2"

    @property
    def prefix(self) -> list[str]:
        return ["ip", "netns", "exec", self.namespace]

    def create(self) -> Host:
        self.remove()
        _ip("netns", "add", self.namespace)
        _ip("link", "add", self.outer, "type", "veth", "peer", "name", self.inner)
        _ip("link", "set", self.inner, "netns", self.namespace)
        _ip("addr", "add", f"{self.gateway}/30", "dev", self.outer)
        _ip("link", "set", self.outer, "up")
        inside = ["netns", "exec", self.namespace, "ip"]
        _ip(*inside, "addr", "add", f"{self.address}/30", "dev", self.inner)
        _ip(*inside, "link", "set", self.inner, "up")
        _ip(*inside, "link", "set", "lo", "up")
        return self

    def cut(self) -> None:
        _ip("link", "set", self.outer, "down")

    def heal(self) -> None:
        _ip("link", "set", self.outer, "up")

    def remove(self) -> None:
        _ip("netns", "del", self.namespace, check=False)
        _ip("link", "del", self.outer, check=False)

    def url(self, url: str) -> str:
        """``url`` (on 127.0.0.1) as this host reaches it: through its gateway."""
        parts = urlsplit(url)
        netloc = parts.netloc.replace("127.0.0.1", self.gateway).replace("localhost", self.gateway)
        return urlunsplit(parts._replace(netloc=netloc))


class Forwarder:
    """``python -m tests.hosts forward`` as a subprocess: relays each gateway's ports."""

    def __init__(self, hosts: list[Host], ports: list[int], log_path: Path) -> None:
        self.hosts = hosts
        self.ports = ports
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> Forwarder:
        listen = [f"{h.gateway}:{p}" for h in self.hosts for p in self.ports]
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "tests.hosts", "forward", *listen],
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 10
        while b"listening" not in self.log_path.read_bytes():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the forwarder did not start:\n{self.log_path.read_text()}")
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        if self.process is not None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=10)
            self.process = None


def _pipe(a: socket.socket, b: socket.socket) -> None:
    selector = selectors.DefaultSelector()
    selector.register(a, selectors.EVENT_READ, b)
    selector.register(b, selectors.EVENT_READ, a)
    try:
        while True:
            for key, _ in selector.select():
                source = key.fileobj
                assert isinstance(source, socket.socket)
                data = source.recv(65536)
                if not data:
                    return
                key.data.sendall(data)
    except OSError:
        return
    finally:
        a.close()
        b.close()


def _serve(server: socket.socket, port: int) -> None:
    while True:
        client, _ = server.accept()
        try:
            upstream = socket.create_connection(("127.0.0.1", int(port)), timeout=5)
        except OSError:
            client.close()
            continue
        upstream.settimeout(None)
        threading.Thread(target=_pipe, args=(client, upstream), daemon=True).start()


def forward(listen: list[str]) -> None:
    for item in listen:
        address, port = item.rsplit(":", 1)
        server = socket.create_server((address, int(port)))
        threading.Thread(target=_serve, args=(server, int(port)), daemon=True).start()
    print("listening on " + " ".join(listen), flush=True)
    signal.sigwait({signal.SIGTERM, signal.SIGINT})


if __name__ == "__main__":
    if sys.argv[1:2] == ["forward"]:
        forward(sys.argv[2:])
