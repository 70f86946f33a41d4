#!/usr/bin/env python3
"""Serves one file of SIZE zero bytes for any GET path on 127.0.0.1:PORT, slowly (about
RATE bytes per second), with Range support: enough for a screenshot of a download in progress
without any network. Usage: slow-file-server.py PORT SIZE [RATE]"""
import http.server
import sys
import time

PORT, SIZE = int(sys.argv[1]), int(sys.argv[2])
RATE = int(sys.argv[3]) if len(sys.argv) > 3 else 4 * 1024 * 1024


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        start = 0
        header = self.headers.get("Range", "")
        if header.startswith("bytes="):
            start = int(header[6:].split("-")[0] or 0)
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{SIZE - 1}/{SIZE}")
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(SIZE - start))
        self.end_headers()
        chunk = bytes(64 * 1024)
        sent = start
        try:
            while sent < SIZE:
                n = min(len(chunk), SIZE - sent)
                self.wfile.write(chunk[:n])
                sent += n
                time.sleep(n / RATE)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def log_message(self, *args):
        pass


http.server.ThreadingHTTPServer(("127.0.0.1", PORT), Handler).serve_forever()
