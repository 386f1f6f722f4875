"""Golden vectors: the same bytes under CPython and on the MicroPython unix port."""
import json
from pathlib import Path

from lwtools import make_vectors

HERE = Path(__file__).parent
VECTORS = HERE.parent / "vectors" / "v1.json"
CHECK = HERE / "vectors_check.py"


def load_check():
    import importlib.util
    spec = importlib.util.spec_from_file_location("vectors_check", CHECK)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_vectors_cover_every_frame_type():
    from lwproto.const import TYPE_NAMES
    names = {v["name"] for v in json.loads(VECTORS.read_text())["valid"]}
    assert names == set(TYPE_NAMES.values())


def test_vectors_file_is_what_the_generator_writes():
    assert json.loads(VECTORS.read_text()) == json.loads(json.dumps(make_vectors.build()))


def test_vectors_under_cpython():
    failures = load_check().check(json.loads(VECTORS.read_text()))
    assert failures == []


def test_vectors_under_micropython(micropython):
    result = micropython.run(CHECK, str(VECTORS))
    assert "0 failures" in result.stdout, result.stdout + result.stderr
    assert result.returncode == 0


def test_hmac_fallback_matches_cpython_hmac(micropython):
    """The board's hand-rolled HMAC (no hmac module there) against CPython's for long keys too."""
    import hmac
    code = (
        "from lwproto import auth\n"
        "for n in (0, 1, 63, 64, 65, 200):\n"
        "    print(auth.hmac_sha256(bytes(range(n % 256)) * 1 if n < 256 else b'', b'm' * n).hex())\n"
    )
    result = micropython.run_code(code)
    expected = [hmac.digest(bytes(range(n % 256)), b"m" * n, "sha256").hex() for n in (0, 1, 63, 64, 65, 200)]
    assert result.stdout.split() == expected, result.stdout
