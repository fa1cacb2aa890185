"""A small OAuth identity provider for the tests: RS256 signing keys, their
JSON Web Key Set, and a token endpoint (client credentials grant) that also
serves the key set, over HTTP or HTTPS."""

import base64
import http.server
import json
import ssl
import threading
import time
import uuid

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa


ISSUER = "http://idp.test/realms/gregor"
AUDIENCE = "kafka"


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class SigningKey:
    """An RSA key that signs RS256 JWTs under key id `kid`."""

    def __init__(self, kid):
        self.kid = kid
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    def jwk(self):
        numbers = self.key.public_key().public_numbers()
        size = lambda n: n.to_bytes((n.bit_length() + 7) // 8, "big")
        return {"kty": "RSA", "kid": self.kid, "use": "sig", "alg": "RS256",
                "n": b64(size(numbers.n)), "e": b64(size(numbers.e))}

    def token(self, sub, lifetime=300, issuer=ISSUER, audience=AUDIENCE):
        now = int(time.time())
        header = {"alg": "RS256", "typ": "JWT", "kid": self.kid}
        claims = {"sub": sub, "iss": issuer, "aud": audience, "iat": now, "exp": now + lifetime,
                  "scope": "kafka", "jti": str(uuid.uuid4())}
        signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
        signature = self.key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        return f"{signing_input}.{b64(signature)}"


def write_jwks(path, *keys):
    path.write_text(json.dumps({"keys": [k.jwk() for k in keys]}))


class TokenEndpoint:
    """An OAuth identity provider: its token endpoint (client credentials
    grant: a client authenticated with HTTP Basic gets a JWT whose subject
    is its id) at /token and its key set at /jwks, over HTTPS when given a
    key store, on `host` and `port` when given them."""

    def __init__(self, key, secrets, tls=None, port=None, lifetime=300, host="127.0.0.1"):
        self.key, self.secrets, self.published, self.lifetime = key, secrets, [key], lifetime
        self.asked_for_keys = self.tokens_given = 0
        endpoint = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                if self.path != "/jwks":
                    self.send_response(404)
                    self.end_headers()
                    return
                endpoint.asked_for_keys += 1
                self.answer(json.dumps({"keys": [k.jwk() for k in endpoint.published]}).encode())

            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                auth = self.headers.get("Authorization", "")
                client, _, secret = base64.b64decode(auth.removeprefix("Basic ")).decode().partition(":")
                if endpoint.secrets.get(client) != secret:
                    self.send_response(401)
                    self.end_headers()
                    return
                endpoint.tokens_given += 1
                token = endpoint.key.token(client, lifetime=endpoint.lifetime)
                self.answer(json.dumps({"access_token": token, "token_type": "Bearer",
                                        "expires_in": endpoint.lifetime}).encode())

            def answer(self, body):
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer((host, port or 0), Handler)
        scheme = "http"
        if tls:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(tls)
            self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
            scheme = "https"
        base = f"{scheme}://{host}:{self.server.server_address[1]}"
        self.url, self.jwks_url = f"{base}/token", f"{base}/jwks"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()
