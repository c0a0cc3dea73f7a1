#!/usr/bin/env python3
"""A TCP forwarder for the test node's pods: it listens on an address the pods can reach and forwards each
connection, bytes unchanged, to a service of the host that listens on loopback only.

hack/node.sh runs one per mapping: the `kubernetes` Service's ClusterIP (10.0.0.1:443, an address of the node's
bridge) to the API server, and (`node.sh expose`) the bridge's address to a test service (MQTT broker, registry) on
the same port. It is what kube-proxy's userspace mode did (removed in Kubernetes 1.26); kube-proxy's iptables,
nftables and IPVS modes would program the host's network namespace, which the test node leaves alone on a shared
machine. TLS stays end to end: the forwarder never reads what it carries.

usage: hack/node-forward.py --state DIR LISTEN_IP:PORT TARGET_IP:PORT
  DIR names the node (it is on the command line so hack/node.sh recognises its own forwarders).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys

# A bound on simultaneous connections: the node's pods are a handful.
MAX_CONNECTIONS = 256
CHUNK = 64 * 1024


def _address(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(f"not IP:PORT: {text!r}")
    return host, int(port)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Copy until EOF, then half-close, so a client's shutdown(SHUT_WR) reaches the other side."""
    try:
        while data := await reader.read(CHUNK):
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
    except (ConnectionError, OSError):
        writer.close()


async def _serve(listen: tuple[str, int], target: tuple[str, int]) -> None:
    slots = asyncio.Semaphore(MAX_CONNECTIONS)

    async def handle(client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        if slots.locked():
            print(f"refused a connection: {MAX_CONNECTIONS} already open", file=sys.stderr, flush=True)
            client_writer.close()
            return
        async with slots:
            try:
                upstream_reader, upstream_writer = await asyncio.open_connection(*target)
            except OSError as error:
                print(f"cannot reach {target[0]}:{target[1]}: {error}", file=sys.stderr, flush=True)
                client_writer.close()
                return
            await asyncio.gather(
                _pipe(client_reader, upstream_writer), _pipe(upstream_reader, client_writer), return_exceptions=True
            )
            for writer in (client_writer, upstream_writer):
                writer.close()
                with contextlib.suppress(ConnectionError, OSError):
                    await writer.wait_closed()

    server = await asyncio.start_server(handle, *listen, reuse_address=True)
    print(f"forwarding {listen[0]}:{listen[1]} to {target[0]}:{target[1]}", file=sys.stderr, flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    async with server:
        await stop.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--state", required=True, help="the node's state directory (identifies the forwarder)")
    parser.add_argument("listen", type=_address)
    parser.add_argument("target", type=_address)
    args = parser.parse_args()
    asyncio.run(_serve(args.listen, args.target))


if __name__ == "__main__":
    main()
