#!/usr/bin/env python
"""The lab's "outside" (a stand-in for the internet): answers every GET with the client address.

The body is `client=<source address as seen here>`, so tests can tell whether traffic arrived
directly (a host's own address) or through NAT (the NAT gateway's address).
"""

import argparse
import http.server
import signal
import sys


class ClientAddressHandler(http.server.BaseHTTPRequestHandler):
    server_version = "nixfleet-lab-outside"

    def do_GET(self):  # noqa: N802 (http.server's naming)
        body = f"client={self.client_address[0]}\n".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_HEAD(self):  # noqa: N802
        self.send_response(200)
        self.end_headers()

    def log_message(self, format, *args):  # noqa: A002 (signature of the base class)
        sys.stderr.write(f"{self.client_address[0]} {format % args}\n")
        sys.stderr.flush()


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bind", required=True)
    parser.add_argument("--port", type=int, default=80)
    args = parser.parse_args(argv)
    server = http.server.ThreadingHTTPServer((args.bind, args.port), ClientAddressHandler)
    server.daemon_threads = True
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        server.serve_forever()
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
