"""Keys and tokens for the load benchmark: real keys, real signatures.

The keys are made once per work directory and kept there, so token pools
minted by an earlier run stay valid. Signing uses `cryptography` (installed
by run.py when missing); the JWT encoding itself is a few lines of stdlib.
"""

import base64
import hashlib
import hmac
import json
import multiprocessing
import os
import re
import secrets
import signal
import time
from pathlib import Path

from procs import BenchError

ISSUER = "https://accounts.bench.test"
AUDIENCE = "bench-api"
ALGORITHMS = ("HS256", "RS256", "ES256", "EdDSA")
KIDS = {"RS256": "bench-rsa", "ES256": "bench-p256", "EdDSA": "bench-ed25519"}
# Pools are re-minted when their tokens would expire within this margin.
POOL_MIN_LIFETIME = 6 * 3600
TOKEN_LIFETIME = 2 * 86400


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_int(value):
    return b64url(value.to_bytes((value.bit_length() + 7) // 8, "big"))


class Keys:
    """Holds the benchmark's signing keys and writes their public forms."""

    def __init__(self, directory):
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        secret_path = self.dir / "hs256.secret"
        if not secret_path.exists():
            # Alphanumeric so it can sit unquoted in HAProxy's config.
            secret_path.write_text(secrets.token_hex(32) + "\n")
        self.secret = secret_path.read_text().strip().encode()
        self.rsa = self._private("rsa.pem", lambda: rsa.generate_private_key(65537, 2048))
        self.p256 = self._private("p256.pem", lambda: ec.generate_private_key(ec.SECP256R1()))
        self.ed25519 = self._private("ed25519.pem", ed25519.Ed25519PrivateKey.generate)
        self._serialization = serialization
        for name, key in (("rsa", self.rsa), ("p256", self.p256)):
            pub = key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            (self.dir / f"{name}.pub.pem").write_bytes(pub)

    def _private(self, name, generate):
        from cryptography.hazmat.primitives import serialization

        path = self.dir / name
        if not path.exists():
            key = generate()
            path.write_bytes(
                key.private_bytes(
                    serialization.Encoding.PEM,
                    serialization.PrivateFormat.PKCS8,
                    serialization.NoEncryption(),
                )
            )
        return serialization.load_pem_private_key(path.read_bytes(), password=None)

    def fingerprint(self):
        """Names this key set, so pools minted with other keys are not reused."""
        digest = hashlib.sha256(self.secret)
        for name in ("rsa.pem", "p256.pem", "ed25519.pem"):
            digest.update((self.dir / name).read_bytes())
        return digest.hexdigest()[:12]

    def public_pem(self, alg):
        """Returns the path of the PEM public key HAProxy verifies `alg` with."""
        return str(self.dir / {"RS256": "rsa.pub.pem", "ES256": "p256.pub.pem"}[alg])

    def jwk(self, alg):
        """Returns the public JWK for `alg` (the secret itself for HS256)."""
        if alg == "HS256":
            return {"kty": "oct", "alg": "HS256", "k": b64url(self.secret)}
        if alg == "RS256":
            numbers = self.rsa.public_key().public_numbers()
            return {
                "kty": "RSA", "kid": KIDS[alg], "alg": alg, "use": "sig",
                "n": b64url_int(numbers.n), "e": b64url_int(numbers.e),
            }
        if alg == "ES256":
            numbers = self.p256.public_key().public_numbers()
            return {
                "kty": "EC", "kid": KIDS[alg], "alg": alg, "use": "sig", "crv": "P-256",
                "x": b64url(numbers.x.to_bytes(32, "big")),
                "y": b64url(numbers.y.to_bytes(32, "big")),
            }
        raw = self.ed25519.public_key().public_bytes(
            self._serialization.Encoding.Raw, self._serialization.PublicFormat.Raw
        )
        return {"kty": "OKP", "kid": KIDS[alg], "alg": alg, "use": "sig", "crv": "Ed25519",
                "x": b64url(raw)}

    def jwks(self, algs):
        """Returns a JWKS document holding the public keys of `algs`."""
        return {"keys": [self.jwk(alg) for alg in algs if alg != "HS256"]}

    def sign(self, alg, signing_input):
        """Signs `signing_input` (bytes) as the JWS algorithm `alg` asks."""
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec, padding
        from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

        if alg == "HS256":
            return hmac.new(self.secret, signing_input, hashlib.sha256).digest()
        if alg == "RS256":
            return self.rsa.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
        if alg == "ES256":
            der = self.p256.sign(signing_input, ec.ECDSA(hashes.SHA256()))
            r, s = decode_dss_signature(der)
            return r.to_bytes(32, "big") + s.to_bytes(32, "big")
        return self.ed25519.sign(signing_input)

    def token(self, alg, kid=None, lifetime=TOKEN_LIFETIME, jti=None, now=None, claims=None,
              sign=None):
        """Mints a token of `alg` for the benchmark's issuer and audience.

        `claims` overrides claims (None as a value removes one); `sign`,
        given the signing input, returns the signature bytes in place of
        `alg`'s own key.
        """
        now = int(time.time()) if now is None else now
        header = {"alg": alg, "typ": "JWT"}
        kid = kid if kid is not None else KIDS.get(alg)
        if kid:
            header["kid"] = kid
        body = {
            "iss": ISSUER, "aud": AUDIENCE, "sub": "user-42", "email": "user42@bench.test",
            "roles": ["player"], "iat": now, "exp": now + lifetime,
            "jti": jti or secrets.token_hex(8),
        }
        for name, value in (claims or {}).items():
            if value is None:
                body.pop(name, None)
            else:
                body[name] = value
        signing_input = (
            b64url(json.dumps(header, separators=(",", ":")).encode())
            + "."
            + b64url(json.dumps(body, separators=(",", ":")).encode())
        ).encode()
        signature = sign(signing_input) if sign else self.sign(alg, signing_input)
        return signing_input.decode() + "." + b64url(signature)


def refusal_tokens(keys):
    """Returns the fixed tokens of the refusal floods, each refused for one reason."""
    good = keys.token("HS256")
    head, body, sig = good.split(".")
    flipped = ("A" if sig[0] != "A" else "B") + sig[1:]
    return {
        "malformed": "not-a-jwt.%%%.x",
        "expired": keys.token("HS256", lifetime=-3600),
        "bad-signature": f"{head}.{body}.{flipped}",
    }


def forgeries(keys, algs):
    """Returns (what, token) pairs a proxy verifying `algs` must all refuse.

    Each is well formed and, but for `alg none`, carries a real signature,
    so only the check it names can refuse it: the algorithm pinned (none,
    another one the bench has a key for, HMAC keyed with the public key),
    the issuer and the audience (wrong, or left out: a library that checks
    a claim only when it is present lets those through).
    """
    alg = algs[0]
    other = next(a for a in ("HS256", "RS256", "ES256") if a not in algs)
    found = [
        ("alg none", keys.token("none", kid=KIDS.get(alg), sign=lambda _: b"")),
        (f"{other} in place of {alg}", keys.token(other)),
        ("wrong issuer", keys.token(alg, claims={"iss": ISSUER + ".evil"})),
        ("wrong audience", keys.token(alg, claims={"aud": "other-api"})),
        ("no issuer", keys.token(alg, claims={"iss": None})),
        ("no audience", keys.token(alg, claims={"aud": None})),
    ]
    if alg in ("RS256", "ES256"):
        public = Path(keys.public_pem(alg)).read_bytes()
        confused = keys.token("HS256", kid=KIDS[alg], sign=lambda data: hmac.new(
            public, data, hashlib.sha256).digest())
        found.append(("HS256 keyed with the public key", confused))
    return found


_WORKER_KEYS = None


def _init_worker(directory):
    global _WORKER_KEYS
    # Forked from the driver: its handlers would turn the pool's own
    # shutdown of its workers into tracebacks.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_DFL)
    _WORKER_KEYS = Keys(directory)


def _mint_chunk(job):
    alg, start, count, random_kid, now = job
    out = []
    for i in range(start, start + count):
        kid = f"unknown-{secrets.token_hex(8)}" if random_kid else None
        out.append(_WORKER_KEYS.token(alg, kid=kid, jti=f"pool-{i}-{secrets.token_hex(4)}",
                                      now=now))
    return out


def pool(keys, directory, alg, count, random_kid=False, log=print):
    """Returns the path of a file of `count` distinct tokens, minting it if needed.

    Pools are kept between runs (minting RS256 is slow) and re-minted when
    their keys changed or their tokens near expiry. Each proxy process sees a
    pool at most once, because the driver restarts it per measurement.
    """
    kind = f"{alg}-randomkid" if random_kid else alg
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{kind}-{count}-{keys.fingerprint()}.txt"
    stamp = path.with_suffix(".minted")
    if path.exists() and stamp.exists():
        if int(stamp.read_text()) + TOKEN_LIFETIME - time.time() > POOL_MIN_LIFETIME:
            return str(path)
    _remove_stale(directory, kind, count, keys.fingerprint())
    log(f"minting {count} distinct {kind} tokens ...")
    now = int(time.time())
    chunk = 2000
    jobs = [(alg, s, min(chunk, count - s), random_kid, now) for s in range(0, count, chunk)]
    with multiprocessing.Pool(os.cpu_count() or 2, _init_worker, (str(keys.dir),)) as workers:
        with open(path, "w") as out:
            for tokens in workers.imap(_mint_chunk, jobs):
                out.write("\n".join(tokens) + "\n")
    stamp.write_text(str(now))
    return str(path)


def _remove_stale(directory, kind, count, fingerprint):
    """Deletes the pools of `kind` this one replaces: same size, or other keys.

    Pools of other sizes made with the same keys stay, so a quick run (60,000
    tokens), a full run (250,000) and the cache-size scenario (1,000,000)
    do not re-mint each other's pools on every session.
    """
    shape = re.compile(rf"{re.escape(kind)}-(\d+)-([0-9a-f]+)\.")
    for old in directory.iterdir():
        found = shape.match(old.name)
        if found and (int(found.group(1)) == count or found.group(2) != fingerprint):
            old.unlink()


def pool_head(path, count):
    """Returns the path of a pool holding the first `count` tokens of pool `path`.

    The cache-size scenario mints its largest pool once and takes the
    smaller ones from its head; a head is rewritten when its pool is newer.
    """
    source = Path(path)
    head = source.with_name(f"{source.stem}.head{count}.txt")
    if head.exists() and head.stat().st_mtime >= source.stat().st_mtime:
        return str(head)
    written = 0
    with open(source) as lines, open(head, "w") as out:
        for line in lines:
            if written == count:
                break
            out.write(line)
            written += 1
    if written < count:
        head.unlink()
        raise BenchError(f"{source} holds {written} tokens, fewer than {count}")
    return str(head)
