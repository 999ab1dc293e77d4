#!/usr/bin/env python3
"""Writes the seed corpora (fuzz/corpus/) and the hand-written edge cases
(fuzz/regressions/) from the repository's fixtures; run from anywhere.

Inputs are described in fuzz/src/<target>.rs. A crasher found by a fuzzer
is kept by copying its file into fuzz/regressions/<target>/ by hand, not by
this script, which only rewrites the files it names.
"""
import base64
import json
import pathlib

ROOT = pathlib.Path(__file__).resolve().parent.parent
FUZZ = ROOT / "fuzz"
EXP = 1800000600  # ten minutes after the harness clock
SIGNERS = ["HS256", "HS384", "HS512", "RS256", "RS512", "PS256", "PS384",
           "ES256", "ES384", "EdDSA", "HS256-CONFUSED"]


def write(kind, target, name, data):
    folder = FUZZ / kind / target
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(data if isinstance(data, bytes) else data.encode())


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def raw(header_value):
    """A token input whose Authorization value is taken as written."""
    return b"\x00" + header_value.encode()


def signed(signer, header, claims):
    """A token input the harness signs with `signer`, header and claims as
    written (text, so duplicates and odd spellings survive)."""
    selector = bytes([SIGNERS.index(signer) * 2 + 1])
    return selector + header.encode() + b"\x00" + claims.encode()


def fuzz_claims(**extra):
    claims = {"iss": "https://fuzz.test", "aud": "api", "sub": "alice",
              "iat": 1700000000, "exp": EXP}
    claims.update(extra)
    return json.dumps(claims)


def token_seeds():
    tokens = json.loads((ROOT / "tests/fixtures/interop/tokens.json").read_text())
    keep = ["pyjwt-hs256", "pyjwt-rs256", "pyjwt-es384", "pyjwt-es256-expired",
            "jose-ps256", "jose-eddsa", "jose-rs256-wrong-audience",
            "jose-hs256-wrong-issuer"]
    for token in tokens:
        if token["name"] in keep:
            write("corpus", "token", "interop-" + token["name"], raw("Bearer " + token["token"]))
    for signer in SIGNERS[:-1]:
        kid = {"RS256": "rsa", "RS512": "rsa", "PS256": "rsa", "PS384": "rsa",
               "ES256": "p256", "ES384": "p384", "EdDSA": "ed"}.get(signer)
        header = {"alg": signer, "typ": "JWT"}
        if kid:
            header["kid"] = kid
        write("corpus", "token", "signed-" + signer.lower(),
              signed(signer, json.dumps(header), fuzz_claims()))
    rich = fuzz_claims(roles=["admin", "player"], realm_access={"roles": ["ops"]},
                       org={"tenant": "t-1"}, groups=["a", "b"], nbf=1700000000,
                       exp=EXP + 0.5, aud=["other-api", "api"], jti="j-1")
    write("corpus", "token", "signed-rich-identity", signed("ES256", '{"alg":"ES256"}', rich))
    cognito = json.dumps({"iss": "https://cognito.fuzz.test", "client_id": "client-1",
                          "sub": "u-1", "exp": EXP})
    write("corpus", "token", "signed-cognito-client-id", signed("HS256", '{"alg":"HS256"}', cognito))

    edge = {
        "alg-none": raw("Bearer " + b64(b'{"alg":"none"}') + "." + b64(fuzz_claims().encode()) + "."),
        "key-confusion-hs256-with-the-jwks": signed("HS256-CONFUSED", '{"alg":"HS256"}', fuzz_claims()),
        "alg-says-rs256-signed-hs256": signed("HS256", '{"alg":"RS256","kid":"rsa"}', fuzz_claims()),
        "kid-of-another-key-type": signed("ES256", '{"alg":"ES256","kid":"rsa"}', fuzz_claims()),
        "crit-header": signed("HS256", '{"alg":"HS256","crit":["exp"]}', fuzz_claims()),
        "exp-as-string": signed("HS256", '{"alg":"HS256"}', fuzz_claims(exp=str(EXP))),
        "exp-huge": signed("HS256", '{"alg":"HS256"}', fuzz_claims(exp=1e308)),
        "exp-just-past-leeway": signed("HS256", '{"alg":"HS256"}', fuzz_claims(exp=1800000000 - 60)),
        "duplicate-sub": signed("HS256", '{"alg":"HS256"}',
                                '{"iss":"https://fuzz.test","aud":"api","sub":"alice","sub":"admin","exp":%d}' % EXP),
        "sub-with-crlf": signed("HS256", '{"alg":"HS256"}', fuzz_claims(sub="a\r\nX-Fuzz-Roles: admin")),
        "role-with-comma": signed("HS256", '{"alg":"HS256"}', fuzz_claims(roles=["admin,ops"])),
        "tenant-not-a-string": signed("HS256", '{"alg":"HS256"}', fuzz_claims(org={"tenant": {"x": 1}})),
        "identity-over-the-limit": signed("HS256", '{"alg":"HS256"}', fuzz_claims(sub="a" * 65)),
        "issued-before-the-cut-off": signed("HS256", '{"alg":"HS256"}', fuzz_claims(iat=1500000000)),
        "no-iat-under-a-cut-off": signed("HS256", '{"alg":"HS256"}',
                                         json.dumps({"iss": "https://fuzz.test", "aud": "api", "exp": EXP})),
        "cognito-aud-for-someone-else": signed("HS256", '{"alg":"HS256"}', json.dumps(
            {"iss": "https://cognito.fuzz.test", "client_id": "client-1", "aud": "x", "sub": "u", "exp": EXP})),
        "two-spaces-lowercase-scheme": raw("bearer  " + "a.b.c"),
        "padded-signature": raw("Bearer eyJhbGciOiJIUzI1NiJ9.e30.abc="),
        "four-segments": raw("Bearer a.b.c.d"),
        "over-the-size-cap": raw("Bearer " + "a" * 4097),
    }
    for name, data in edge.items():
        write("regressions", "token", name, data)


def path_seeds():
    paths = ["/", "/admin/x", "/public/../admin/x", "/public/%2e%2e/admin/x", "//admin/x",
             "/admin/./x", "/%61dmin/x", "/health", "/auth/login", "/api/items/1",
             "/public/a%20b/", "/a/b/../../c"]
    for at, path in enumerate(paths):
        write("corpus", "path", "p%02d" % at, bytes([at % 8]) + path.encode())
    edge = {
        "encoded-slash": b"\x00/public%2F..%2Fadmin/x",
        "encoded-backslash": b"\x00/public%5c..%5cadmin",
        "climb-above-root": b"\x00/a/../../admin",
        "encoded-dot-dot-at-the-end": b"\x00/admin/x/%2E%2e",
        "double-encoded-dot": b"\x00/public/%252e%252e/admin",
        "lowercase-escape-of-a-reserved-byte": b"\x00/a%3fb/%c3%a9",
        "bare-admin-directory": b"\x00/admin",
        "admin-via-lowercase-delete": b"\x05/public/%2e%2e/admin/",
        "matrix-parameter": b"\x00/admin;x=1/",
        "nul-escape": b"\x00/admin%00",
        "truncated-escape": b"\x00/admin%4",
        "head-on-a-get-rule": b"\x01/health",
        "not-absolute": b"\x00admin",
    }
    for name, data in edge.items():
        write("regressions", "path", name, data)


def jwks_seeds():
    sources = ["tests/fixtures/interop/jwks.json", "fuzz/keys/jwks.json",
               "tests/fixtures/issuers/firebase/keys.json", "tests/fixtures/issuers/entra-v2/keys.json",
               "tests/fixtures/issuers/okta/keys.json", "tests/fixtures/issuers/auth0/keys.json"]
    for source in sources:
        name = source.replace("tests/fixtures/", "").replace("/", "-")
        write("corpus", "jwks", name, (ROOT / source).read_bytes())
    jwks = json.loads((FUZZ / "keys/jwks.json").read_text())
    rsa, p256, p384, ed = jwks["keys"]
    edge = {
        "duplicate-kid": {"keys": [p256, dict(p256, kty="EC", crv="P-384", x=p384["x"], y=p384["y"])]},
        "short-rsa-modulus": {"keys": [{"kty": "RSA", "n": "AQAB", "e": "AQAB"}]},
        "rsa-exponent-zero": {"keys": [dict(rsa, e="AA")]},
        "ec-point-of-the-wrong-size": {"keys": [dict(p256, x=p384["x"])]},
        "alg-of-another-key-type": {"keys": [dict(ed, alg="ES256")]},
        "encryption-key": {"keys": [dict(rsa, use="enc")]},
        "kid-not-a-string": {"keys": [dict(p256, kid=7)]},
        "keys-not-an-array": {"keys": {"a": p256}},
        "x509-map-of-junk": {"a": "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", "b": ""},
    }
    for name, document in edge.items():
        write("regressions", "jwks", name, json.dumps(document))


def config_seeds():
    for source in ["config/tollgate.toml", "config/demo.toml",
                   "tests/fixtures/issuers/cognito/access.toml",
                   "tests/fixtures/issuers/keycloak/access.toml"]:
        text = (ROOT / source).read_text()
        if not text.lstrip().startswith(("[upstream]", "service")) and "[upstream]" not in text:
            text = '[upstream]\nurl = "http://127.0.0.1:8000"\n' + text
        write("corpus", "config", source.replace("tests/fixtures/", "").replace("/", "-"), text)
    minimal = ('[upstream]\nurl = "http://127.0.0.1:8000"\n\n[[providers]]\nname = "a"\n'
               'issuer = "https://a.test"\naudiences = ["api"]\nalgorithms = ["HS256"]\n'
               'secret_env = "S"\n')
    edge = {
        "rule-path-with-a-dot-segment": minimal + '\n[[rules]]\npath = "/a/./b"\npublic = true\n',
        "rule-prefix-with-an-escape": minimal + '\n[[rules]]\npath_prefix = "/a%2e/"\npublic = true\n',
        "rule-path-not-ascii": minimal + '\n[[rules]]\npath = "/caf\u00e9"\npublic = true\n',
        "unknown-key-after-multibyte-text": "# \u00e9\u00e9\u00e9\n" + minimal + "leway = \"1s\"\n",
        "leeway-over-five-minutes": minimal + 'leeway = "6m"\n',
        "algorithm-none": minimal.replace('["HS256"]', '["none"]'),
        "empty-audiences": minimal.replace('["api"]', '[]'),
        "two-providers-one-name": minimal + minimal.split("\n\n", 1)[1],
        "token-limit-too-small": minimal + '\n[limits]\nmax_token_bytes = 63\n',
        "unterminated-string": minimal + 'name = "a\n',
    }
    for name, text in edge.items():
        write("regressions", "config", name, text)


if __name__ == "__main__":
    token_seeds()
    path_seeds()
    jwks_seeds()
    config_seeds()
