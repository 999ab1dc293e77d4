#!/usr/bin/env python3
"""Mints an HS256 token for trying tollgate by hand: the compose stack, or
the capture in .ci/assets. Standard library only.

    export JWT_SECRET_KEY=...     # the same value tollgate reads
    python3 deploy/compose/mint_token.py --sub alice --roles admin

The defaults match deploy/compose/tollgate/tollgate.toml. Not for
production: the account store issues real tokens.
"""

import argparse
import base64
import hashlib
import hmac
import json
import os
import sys
import time


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--issuer", default="https://issuer.compose.test")
    parser.add_argument("--audience", default="compose")
    parser.add_argument("--sub", default="alice")
    parser.add_argument("--roles", default="", help="comma-separated")
    parser.add_argument("--ttl", type=int, default=900, help="seconds until exp")
    args = parser.parse_args()

    secret = os.environ.get("JWT_SECRET_KEY", "").encode()
    if len(secret) < 32:
        sys.exit("mint_token.py: set JWT_SECRET_KEY to the secret tollgate uses (at least 32 bytes)")

    now = int(time.time())
    claims = {"iss": args.issuer, "aud": args.audience, "sub": args.sub, "iat": now, "exp": now + args.ttl}
    if args.roles:
        claims["roles"] = args.roles.split(",")
    header = {"alg": "HS256", "typ": "JWT"}
    signing_input = ".".join(
        b64url(json.dumps(part, separators=(",", ":")).encode()) for part in (header, claims)
    )
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    print(f"{signing_input}.{b64url(signature)}")


if __name__ == "__main__":
    main()
