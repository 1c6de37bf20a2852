"""A loopback stand-in for the Hub's HTTP API: just enough for create_repo + upload_folder (STACK_NOTES).

Runs on 127.0.0.1 in a thread; records every request (path, headers, body) and every committed file, so a test
can check what a push really sent - including that no token leaked into a file.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FakeHub:
    def __init__(self):
        self.requests: list[tuple[str, str, dict, bytes]] = []
        self.files: dict[str, dict[str, bytes]] = {}  # repo -> path -> content
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output clean
                pass

            def _reply(self, payload: dict, status: int = 200):
                body = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                hub.requests.append(("GET", self.path, dict(self.headers), b""))
                self._reply({"error": "not found"}, 404)

            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                body = self.rfile.read(length)
                hub.requests.append(("POST", self.path, dict(self.headers), body))
                path = self.path.split("?")[0]
                if path == "/api/repos/create":
                    data = json.loads(body or b"{}")
                    name = f"{data.get('organization') or 'user'}/{data['name']}"
                    return self._reply({"url": f"{hub.url}/{name}", "name": name})
                if path == "/api/validate-yaml":
                    return self._reply({})
                parts = path.strip("/").split("/")
                if len(parts) >= 5 and parts[0] == "api" and parts[1] == "models":
                    repo, action = f"{parts[2]}/{parts[3]}", parts[4]
                    if action == "preupload":
                        files = json.loads(body)["files"]
                        return self._reply({"files": [{"path": f["path"], "uploadMode": "regular",
                                                       "shouldIgnore": False} for f in files]})
                    if action == "commit":
                        stored = hub.files.setdefault(repo, {})
                        for line in body.decode().splitlines():
                            item = json.loads(line)
                            if item.get("key") == "file":
                                value = item["value"]
                                stored[value["path"]] = base64.b64decode(value["content"])
                        oid = hashlib.sha1(body).hexdigest()
                        return self._reply({"commitUrl": f"{hub.url}/{repo}/commit/{oid}", "commitOid": oid,
                                            "success": True})
                self._reply({"error": f"unexpected {path}"}, 404)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
