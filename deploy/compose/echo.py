#!/usr/bin/env python3
"""A stand-in for the protected service: answers every request with a JSON
description of what it received (method, path, headers), so the identity
headers tollgate adds can be seen.

Standard library only, so it runs on a stock python image in the compose
stack and on the CI machine, where .ci/assets puts tollgate in front of it
to capture a real /metrics page.

    python3 echo.py --listen 127.0.0.1:0

prints "echo listening on HOST:PORT" once bound, then serves until SIGTERM
or Ctrl-C.
"""

import argparse
import json
import signal
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Echo(BaseHTTPRequestHandler):
    # HTTP/1.1 so tollgate's pooled client can keep the connection open.
    protocol_version = "HTTP/1.1"

    def answer(self):
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        body = json.dumps(
            {
                "method": self.command,
                "path": self.path,
                "headers": {name.lower(): value for name, value in self.headers.items()},
            },
            indent=2,
        ).encode() + b"\n"
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = answer

    def log_message(self, format, *args):
        # One line per request on stderr is the stand-in's whole log.
        sys.stderr.write("echo: %s %s\n" % (self.address_string(), format % args))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listen", default="0.0.0.0:8000", help="HOST:PORT; port 0 picks one")
    host, _, port = parser.parse_args().listen.rpartition(":")
    server = ThreadingHTTPServer((host, int(port)), Echo)
    server.daemon_threads = True

    # Container runtimes stop with SIGTERM; end as cleanly as with Ctrl-C.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    bound_host, bound_port = server.server_address[:2]
    print(f"echo listening on {bound_host}:{bound_port}", flush=True)
    try:
        server.serve_forever()
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
