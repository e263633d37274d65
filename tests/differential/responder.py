"""A responder's server (run as a script inside its namespace; standard library only).

Answers TCP and UDP on every port given with "<name>:<port it received on>". Prints "ready" once every
socket is bound, and exits when its standard input closes (so it never outlives the harness).

    python responder.py NAME PORT [PORT ...]
"""

import os
import selectors
import socket
import sys


def main() -> None:
    name, ports = sys.argv[1], [int(p) for p in sys.argv[2:]]
    sel = selectors.DefaultSelector()
    for port in ports:
        for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
            sock = socket.socket(socket.AF_INET, kind)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(("0.0.0.0", port))
            if kind == socket.SOCK_STREAM:
                sock.listen(128)
            sock.setblocking(False)
            sel.register(sock, selectors.EVENT_READ, f"{name}:{port}".encode())
    sel.register(sys.stdin, selectors.EVENT_READ, None)
    print("ready", flush=True)
    while True:
        for key, _ in sel.select():
            if key.data is None:
                if not os.read(sys.stdin.fileno(), 4096):
                    return
                continue
            sock, reply = key.fileobj, key.data
            try:
                if sock.type == socket.SOCK_STREAM:
                    conn, _ = sock.accept()
                    conn.setblocking(True)
                    conn.settimeout(1.0)
                    conn.sendall(reply)
                    conn.close()
                else:
                    _, peer = sock.recvfrom(2048)
                    sock.sendto(reply, peer)
            except OSError:
                pass


if __name__ == "__main__":
    main()
