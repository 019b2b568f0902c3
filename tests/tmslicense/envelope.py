"""Build license files by hand (for refusals the signer would never produce)."""

import base64
import json

BEGIN = "-----BEGIN TMS LICENSE FILE-----"
END = "-----END TMS LICENSE FILE-----"


def armor(envelope_bytes: bytes, width: int = 64) -> str:
    body = base64.b64encode(envelope_bytes).decode()
    lines = [body[i : i + width] for i in range(0, len(body), width)]
    return "\n".join([BEGIN, *lines, END]) + "\n"


def envelope(payload: bytes, sig: bytes, *, kid: str, alg: str = "ed25519") -> bytes:
    return json.dumps(
        {
            "alg": alg,
            "kid": kid,
            "payload": base64.b64encode(payload).decode(),
            "sig": base64.b64encode(sig).decode(),
        }
    ).encode()


def signed_file(payload: bytes, private_key, kid: str, **kwargs) -> str:
    return armor(envelope(payload, private_key.sign(payload), kid=kid, **kwargs))
