"""The node's TLS context: trusts the line's CA only (the PEM from the board config's
broker.ca). Its own module, imported only by a node that uses TLS, so a plain node's heap
carries none of it (at 128K the node has no room to spare; firmware/README.md, "Memory")."""


_made = {}  # type: dict


def context(ca_pem):
    """An SSL context for `mqtt.MQTTClient(ssl=...)`, made once per CA (it holds the parsed
    certificate). Raises OSError when this MicroPython has no `ssl` (a board built without
    TLS), ValueError when `ca_pem` is no certificate."""
    ctx = _made.get(ca_pem)
    if ctx is None:
        ctx = _made[ca_pem] = _context(ca_pem)
    return ctx


def _context(ca_pem):
    try:
        import ssl
    except ImportError:
        raise OSError("the broker wants TLS (config broker.ca) but this MicroPython has no ssl")
    from binascii import a2b_base64
    body = "".join(line for line in ca_pem.split("\n") if line and not line.startswith("-----"))
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.verify_mode = ssl.CERT_REQUIRED  # type: ignore[attr-defined]  # the unix port has it; the esp32 stubs do not
    ctx.load_verify_locations(cadata=a2b_base64(body))   # DER: mbedtls wants PEM 0-terminated
    return ctx
