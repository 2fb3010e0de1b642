"""The compiled line search (``linefind.find_lines``) against a plain Python reading of the lines."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from kms.logs.storage.linefind import find_lines

_LINE = st.text(alphabet="ab c", max_size=12)
_LITERAL = st.text(alphabet="abc", min_size=1, max_size=3).map(str.encode)


def _expected(frames: list[list[bytes]], groups: list[list[bytes]]) -> list[tuple[int, int, bytes]]:
    return [(f, e, line) for f, lines in enumerate(frames) for e, line in enumerate(lines)
            if all(any(x in line for x in g) for g in groups)]


@settings(max_examples=300, deadline=None)
@given(frames=st.lists(st.lists(_LINE.map(str.encode), min_size=1, max_size=6), min_size=1, max_size=8),
       groups=st.lists(st.lists(_LITERAL, min_size=1, max_size=3), min_size=1, max_size=3),
       extra=st.lists(st.booleans(), min_size=24, max_size=24))
def test_finds_exactly_the_lines_holding_a_literal_of_every_group(frames, groups, extra):
    texts = [b"".join(line + b"\n" for line in lines) for lines in frames]
    buf = b"".join(texts)
    sizes = np.array([len(t) for t in texts])
    # like trigram signatures: every frame holding the literal, and maybe some others
    may = np.array([[x in t or extra[(i * 7 + f) % 24] for f, t in enumerate(texts)] for i, x in enumerate(groups[0])])
    frame, entry, start, stop = find_lines(buf, sizes, groups, may)
    got = [(int(f), int(e), buf[s:p]) for f, e, s, p in zip(frame, entry, start, stop, strict=True)]
    assert got == _expected(frames, groups)
    assert all(buf[s - 1:s] in (b"", b"\n") and buf[p:p + 1] == b"\n" for s, p in zip(start, stop, strict=True))


def test_a_frame_the_signatures_rule_out_is_not_searched():
    buf = b"x timeout\ny\nz timeout\n"
    sizes = np.array([10, 2, 10])
    frame, entry, *_ = find_lines(buf, sizes, [[b"timeout"]], np.array([[False, True, True]]))
    assert frame.tolist() == [2] and entry.tolist() == [0]


def test_several_literals_find_each_line_once_in_order():
    buf = b"timeout refused\nok\nrefused\ntimeout\n"
    frame, entry, start, stop = find_lines(buf, np.array([len(buf)]), [[b"timeout", b"refused"]])
    assert entry.tolist() == [0, 2, 3]
    assert [buf[s:p] for s, p in zip(start, stop, strict=True)] == [b"timeout refused", b"refused", b"timeout"]


def test_a_literal_holding_a_newline_finds_the_line_it_starts_in():
    buf = b"a b\nc d\n"
    frame, entry, start, stop = find_lines(buf, np.array([len(buf)]), [[b"b\nc"]])
    assert entry.tolist() == [0] and buf[start[0]:stop[0]] == b"a b"  # callers filter such lines again


def test_many_hits_grow_the_output():
    buf = b"hit\n" * 5000
    frame, entry, *_ = find_lines(buf, np.array([len(buf) // 2, len(buf) // 2]), [[b"hit"]])
    assert frame.tolist() == [0] * 2500 + [1] * 2500
    assert entry.tolist() == list(range(2500)) * 2
