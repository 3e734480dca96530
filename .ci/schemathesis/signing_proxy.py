#!/usr/bin/env python3
"""A signing proxy for API conformance runs: every request that passes through it gets a fresh
body-bound request token (EdDSA, `htm`/`htu`/`bsh` computed over the exact bytes forwarded), as
an authority's system would sign it, so that schemathesis exercises Writ's API beyond its 401s.

Only a request whose `Authorization` header is exactly the placeholder (`--placeholder`, by
default `Bearer signed-by-the-proxy`) is signed; one without the header, or with any other
value (schemathesis sends made-up credentials to check that they are refused), is forwarded as
it is, so that the refusal of unauthenticated requests is tested too. Usage:

    signing_proxy.py --listen 18181 --upstream http://127.0.0.1:18180 \
        --key data/demo-keys/fr-parquet-paris.pem --kid fr-parquet-paris-demo \
        --iss fr-parquet-paris --aud writ:<deployment id>
"""

import argparse
import base64
import hashlib
import http.client
import json
import time
import urllib.parse
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

HOP_HEADERS = {"connection", "keep-alive", "transfer-encoding", "host", "content-length",
               "proxy-connection", "te", "trailer", "upgrade"}


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def load_ed25519(path):
    """The Ed25519 key of a PKCS#8 PEM file, v1 or v2 (v2 carries the public key too, which
    `cryptography` refuses): the 32-byte seed follows the OCTET STRING header 04 20."""
    with open(path, "rb") as f:
        pem = f.read()
    try:
        return serialization.load_pem_private_key(pem, password=None)
    except ValueError:
        pass
    der = base64.b64decode(b"".join(l for l in pem.splitlines() if not l.startswith(b"-----")))
    oid = bytes.fromhex("06032b6570")
    at = der.index(oid) + len(oid)
    at = der.index(b"\x04\x20", at) + 2
    return ed25519.Ed25519PrivateKey.from_private_bytes(der[at:at + 32])


def make_handler(args, key):
    upstream = urllib.parse.urlsplit(args.upstream)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt, *a):  # quiet: schemathesis reports
            pass

        def _forward(self):
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_HEADERS}
            # Sign only what carries the placeholder: schemathesis drops the header, or sends
            # other credentials, to test that such requests are refused, and those must reach
            # Writ as they are.
            if any(k.lower() == "authorization" and v == args.placeholder
                   for k, v in headers.items()):
                now = int(time.time())
                claims = {
                    "iss": args.iss, "aud": args.aud, "iat": now, "exp": now + 120,
                    "jti": str(uuid.uuid4()), "htm": self.command.upper(), "htu": self.path,
                    "bsh": b64url(hashlib.sha256(body).digest()),
                }
                token = jwt.encode(claims, key, algorithm="EdDSA",
                                   headers={"kid": args.kid, "typ": "JWT"})
                headers = {k: v for k, v in headers.items() if k.lower() != "authorization"}
                headers["Authorization"] = f"Bearer {token}"
            conn = http.client.HTTPConnection(upstream.hostname, upstream.port, timeout=60)
            try:
                conn.request(self.command, self.path, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                self.send_response(resp.status, resp.reason)
                for k, v in resp.getheaders():
                    if k.lower() not in HOP_HEADERS:
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)
            finally:
                conn.close()

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _forward
        do_TRACE = do_CONNECT = do_QUERY = _forward

    return Handler


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--listen", type=int, required=True)
    p.add_argument("--upstream", required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--kid", required=True)
    p.add_argument("--iss", required=True)
    p.add_argument("--aud", required=True)
    p.add_argument("--placeholder", default="Bearer signed-by-the-proxy",
                   help="the Authorization value that asks for a signature")
    args = p.parse_args()
    key = load_ed25519(args.key)
    server = ThreadingHTTPServer(("127.0.0.1", args.listen), make_handler(args, key))
    print(json.dumps({"listening": args.listen, "upstream": args.upstream}), flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
