#!/usr/bin/env python3
"""Short TCP connections for the namespace cluster (scripts/demo.sh): a tiny HTTP server, and a client that
opens N connections one after another (each: connect, GET, read the answer, close) and reports how many
succeeded and how long the connects took (the SYN's round trip, which includes any deferral).

  conns.py serve PORT
  conns.py connect HOST PORT N [TIMEOUT_S]
  conns.py reuse HOST PORT N GAP_S SRC_PORT   N connections one after another from the same client port,
                                              GAP_S apart: each meets the closed state of the one before
  conns.py paced HOST PORT N GAP_S            N connections one after another, GAP_S apart (across a
                                              failover), each given 5 s
"""
import json
import socket
import sys
import threading
import time

ANSWER = b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"


def serve(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", port))
    s.listen(512)

    def handle(c):
        try:
            c.settimeout(5)
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = c.recv(4096)
                if not chunk:
                    break
                data += chunk
            c.sendall(ANSWER)
        except OSError:
            pass
        finally:
            c.close()

    while True:
        c, _ = s.accept()
        threading.Thread(target=handle, args=(c,), daemon=True).start()


def connect(host, port, n, timeout, gap=0.0, src_port=None):
    ok, failed, connect_ms = 0, 0, []
    errors = {}
    start = time.monotonic()
    for i in range(n):
        if i > 0 and gap > 0:
            time.sleep(gap)
        c = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        c.settimeout(timeout)
        try:
            if src_port is not None:
                c.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                c.bind(("0.0.0.0", src_port))
            t0 = time.monotonic()
            c.connect((host, port))
            connect_ms.append((time.monotonic() - t0) * 1000)
            c.sendall(b"GET / HTTP/1.0\r\nHost: server\r\n\r\n")
            data = b""
            while True:
                chunk = c.recv(4096)
                if not chunk:
                    break
                data += chunk
            if data.endswith(b"ok"):
                ok += 1
            else:
                failed += 1
                errors["short answer"] = errors.get("short answer", 0) + 1
        except OSError as e:
            failed += 1
            errors[type(e).__name__] = errors.get(type(e).__name__, 0) + 1
        finally:
            c.close()
    connect_ms.sort()

    def pct(q):
        return round(connect_ms[min(len(connect_ms) - 1, int(q * len(connect_ms)))], 3) if connect_ms else None

    print(json.dumps({
        "ok": ok,
        "failed": failed,
        "errors": errors,
        "seconds": round(time.monotonic() - start, 2),
        "connect_ms_p50": pct(0.5),
        "connect_ms_p99": pct(0.99),
        "connect_ms_max": round(connect_ms[-1], 3) if connect_ms else None,
    }))
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    if len(sys.argv) >= 3 and sys.argv[1] == "serve":
        serve(int(sys.argv[2]))
    elif len(sys.argv) >= 5 and sys.argv[1] == "connect":
        timeout = float(sys.argv[5]) if len(sys.argv) > 5 else 3.0
        sys.exit(connect(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), timeout))
    elif len(sys.argv) >= 6 and sys.argv[1] == "paced":
        sys.exit(connect(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), 5.0, float(sys.argv[5])))
    elif len(sys.argv) >= 7 and sys.argv[1] == "reuse":
        sys.exit(connect(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), 3.0,
                         float(sys.argv[5]), int(sys.argv[6])))
    else:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
