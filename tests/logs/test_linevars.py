"""Lines split into templates and variable parts (``linevars``): joined back exactly, and a
literal that ``on_templates`` accepts is in a line exactly when it is in the line's template."""

from __future__ import annotations

import random

import numpy as np
import pytest

from kms.logs.storage.linevars import (
    DIGIT_CODES,
    HEX16,
    HEX32,
    MAX_DIGITS,
    hex_bytes,
    join,
    lines_at,
    on_templates,
    split_chunks,
)

TOKENS = ["level=info", "msg=\"cache hit\"", "0123456789abcdef", "4bf92f3577b34da6a3ce929d0e0e4736", "deadbeef",
          "cafe", "abcdef0123456789ab", "ABCDEF0123456789", "x0123456789abcdef", "0123456789abcdef_", "500", "7",
          "1" * 45, "10.0.3.4", "0.0412", "duration=12ms", "é", "ß42", "\t", "\r", " ", "=", ",", "-", "error",
          "refused", "e5", "1e", "a1b2", "\x01", "\x1f", "\u212a", "é0123456789abcdef"]


def _line(rnd: random.Random) -> str:
    return "".join(rnd.choice(TOKENS) + rnd.choice(["", " ", "=", "/"]) for _ in range(rnd.randrange(8)))


def _split(text: bytes) -> tuple[bytes, bytes, bytes, bool]:
    tmpl, _, digits, _, hexes, _, split = split_chunks(np.frombuffer(text, np.uint8), np.array([0, len(text)]),
                                                       np.array([True]))
    return tmpl.tobytes(), digits.tobytes(), hexes.tobytes(), bool(split[0])


@pytest.mark.parametrize("seed", range(4))
def test_split_chunks_join_back(seed):
    rnd = random.Random(seed)
    texts = [("\n".join(_line(rnd) for _ in range(rnd.randrange(1, 30))) + "\n").encode() for _ in range(200)]
    texts.append(bytes(rnd.randrange(256) for _ in range(5000)))  # any bytes at all
    buf = b"".join(texts)
    bounds = np.cumsum([0, *map(len, texts)])
    eligible = np.array([rnd.random() < 0.9 for _ in texts])
    tmpl, t_at, digits, d_at, hexes, h_at, split = split_chunks(np.frombuffer(buf, np.uint8), bounds, eligible)
    assert split.any() and not split.all()
    for c, text in enumerate(texts):
        t, d, h = (tmpl[t_at[c]:t_at[c + 1]].tobytes(), digits[d_at[c]:d_at[c + 1]].tobytes(),
                   hexes[h_at[c]:h_at[c + 1]].tobytes())
        if split[c]:
            assert eligible[c] and len(t) < len(text) and join(t, d, h, len(text)) == text
            assert hex_bytes(t) == len(h)
        else:
            assert t == text and d == h == b""


def test_lines_at_joins_single_lines():
    rnd = random.Random(7)
    texts = [("\n".join(_line(rnd).replace("\x01", "").replace("\x1f", "") for _ in range(rnd.randrange(1, 40))) + "\n")
             .encode() for _ in range(50)]
    parts = [_split(t) for t in texts]
    assert all(split for *_, split in parts)
    frame, at, want = [], [], []
    for f, text in enumerate(texts):
        starts = [0] + [i + 1 for i, b in enumerate(parts[f][0]) if b == 10][:-1]
        for entry in rnd.sample(range(len(starts)), min(3, len(starts))):
            frame.append(f)
            at.append(starts[entry])
            want.append(text.split(b"\n")[entry])
    assert lines_at([p[0] for p in parts], [p[1] for p in parts], [p[2] for p in parts], frame, at) == want
    with pytest.raises(ValueError):  # a template naming more variables than there are
        lines_at([b"took " + bytes([DIGIT_CODES[3]]) + b" ms\n"], [b"12"], [b""], [0], [0])
    with pytest.raises(ValueError):
        lines_at([b"id " + bytes([HEX16]) + b"\n"], [b""], [b"1234567"], [0], [0])


def test_what_becomes_a_variable():
    t, d, h, split = _split(b"id=0123456789abcdef x0123456789abcdef 4bf92f3577b34da6a3ce929d0e0e4736 7 42ms " +
                            b"9" * (MAX_DIGITS + 3) + b"\n")
    assert split
    # a hex id is a whole word; digits anywhere; a run past MAX_DIGITS goes on in a second run
    assert t == (b"id=" + bytes([HEX16]) + b" x" + bytes([DIGIT_CODES[10]]) + b"abcdef " + bytes([HEX32]) + b" 7 " +
                 bytes([DIGIT_CODES[2]]) + b"ms " + bytes([DIGIT_CODES[MAX_DIGITS], DIGIT_CODES[3]]) + b"\n")
    assert d == b"0123456789" + b"42" + b"9" * (MAX_DIGITS + 3)
    assert h == bytes.fromhex("0123456789abcdef4bf92f3577b34da6a3ce929d0e0e4736")
    assert _split(b"a \x01 12\n") == (b"a \x01 12\n", b"", b"", False)  # a code byte keeps the chunk whole
    assert _split(b"no numbers here\n") == (b"no numbers here\n", b"", b"", False)
    assert _split(b"id 0123456789abcdef\n") == (b"id " + bytes([HEX16]) + b"\n", b"", bytes.fromhex("0123456789abcdef"),
                                                 True)


def test_join_refuses_what_does_not_fit():
    t, d, h, _ = _split(b"took 123 ms\n")
    with pytest.raises(ValueError):
        join(t, d[:-1], h, 12)
    with pytest.raises(ValueError):
        join(t, d + b"4", h, 13)
    with pytest.raises(ValueError):
        join(t, d, b"\x01", 12)


@pytest.mark.parametrize("literal, ok", [
    ("upstream timeout", True), ("timeout", True), ("refused", True), ("error", True), (" error ", True),
    ("GET /api", True), ("x\ny", True), ("a\nb", False), ("cafe", False), ("abc-", False), ("=dead", False), ("status=500", False),
    ("e5", False), ("\x01", False), ("x" * 3 + "abcdef" * 3, False), ("ß", True),
])
def test_on_templates(literal, ok):
    assert on_templates(literal.encode()) is ok


@pytest.mark.parametrize("seed", range(4))
def test_a_literal_on_templates_finds_exactly_the_lines(seed):
    rnd = random.Random(100 + seed)
    lines = [_line(rnd).replace("\n", " ").encode() for _ in range(300)]
    templates = [_split(x + b"\n")[0][:-1] for x in lines]
    literals = set()
    for x in lines * 3:
        if len(x) > 1:
            i, j = sorted(rnd.sample(range(len(x) + 1), 2))
            literals.add(x[i:j])
    literals |= {t.encode() for t in TOKENS} | {b"ab", b"f ", b" a", b"=c", b"ms", b"rror"}
    checked = 0
    for lit in literals:
        if not on_templates(lit):
            continue
        checked += 1
        assert [lit in x for x in lines] == [lit in t for t in templates], lit
    assert checked > 60
