"""Lines split into a template and their variable parts (the numbers and hex ids), and joined back.

Log lines repeat their text and vary in their numbers and ids. Compressed as they are, every
line costs zstd a few sequences to stitch the repeated text around the variable parts; split,
the templates of a chunk repeat almost verbatim (a few bytes a line once compressed), the digits
compress to about their entropy with a Huffman table of their own, and hex ids are stored as the
bytes they spell. On the bench lines: about 21.5 bytes a line instead of 24.3, and a line filter
decompresses only the templates (2/3 of the bytes, about twice as fast per byte).

A chunk's text (lines each followed by ``\n``) becomes:

- its template: the text with each variable part replaced by one code byte telling its kind and
  length: ``DIGIT_CODES[n]`` for a run of ``n`` decimal digits (2 to ``MAX_DIGITS``; a longer
  run is cut in runs of ``MAX_DIGITS``, a lone digit stays text), ``HEX16``/``HEX32`` for a word
  of 16/32 lower-case hex characters (bounded by characters that are not letters, digits or
  ``_``: trace, span and request ids);
- its digits: those runs' bytes, in order, back to back;
- its hex ids: the bytes they spell (8 or 16 each), in order.

A chunk holding a code byte (control characters other than tab, newline and carriage return) is
not split. The kernels are compiled with numba: one pass over the bytes, no Python per line.
"""

from __future__ import annotations

import re

import numpy as np
from numba import njit

__all__ = ["split_chunks", "join", "lines_at", "hex_bytes", "on_templates", "warm", "MAX_DIGITS"]

MAX_DIGITS = 20
_CODE_BYTES = [c for c in range(1, 32) if c not in (9, 10, 13)]  # tab, newline, carriage return stay text
HEX16, HEX32 = _CODE_BYTES[0], _CODE_BYTES[1]
DIGIT_CODES = {n: _CODE_BYTES[n] for n in range(2, MAX_DIGITS + 1)}  # 2 .. 20 -> bytes 4 .. 23 (skipping 9, 10, 13)

# byte classes for the kernels
_DIGIT, _HEXLETTER, _WORD, _CODE = 1, 2, 4, 8
_CLASS = np.zeros(256, np.uint8)
_CLASS[ord("0"):ord("9") + 1] = _DIGIT
_CLASS[ord("a"):ord("f") + 1] = _HEXLETTER
_CLASS[ord("g"):ord("z") + 1] = _WORD
_CLASS[ord("A"):ord("Z") + 1] = _WORD
_CLASS[ord("_")] = _WORD
_CLASS[_CODE_BYTES] = _CODE
_DIGIT_CODE = np.zeros(MAX_DIGITS + 1, np.uint8)  # run length -> code byte
_DIGITS = np.zeros(256, np.int64)  # code byte -> the digits it stands for (0: not a digit run)
for _n, _c in DIGIT_CODES.items():
    _DIGIT_CODE[_n] = _c
    _DIGITS[_c] = _n
_HEX_BYTES = np.zeros(256, np.int64)  # code byte -> the bytes of its hex id (0: not a hex id)
_HEX_BYTES[HEX16], _HEX_BYTES[HEX32] = 8, 16
_NIBBLE = np.zeros(256, np.uint8)
_HEX_CHAR = np.frombuffer(b"0123456789abcdef", np.uint8).copy()
_NIBBLE[_HEX_CHAR] = np.arange(16)
_HEX16_BYTE, _HEX32_BYTE = bytes([HEX16]), bytes([HEX32])


@njit(cache=True, nogil=True)
def _split(buf, bounds, eligible, tmpl, digits, hexes, t_at, d_at, h_at, split):  # pragma: no cover
    cls = _CLASS
    ti = 0
    di = 0
    hx = 0
    for c in range(len(bounds) - 1):
        lo = bounds[c]
        hi = bounds[c + 1]
        t_at[c] = ti
        d_at[c] = di
        h_at[c] = hx
        t0 = ti
        d0 = di
        h0 = hx
        ok = eligible[c]
        i = lo
        while ok and i < hi:
            k = cls[buf[i]]
            if k == 8:  # a code byte in the text: not split
                ok = False
                break
            if k & 3 and (i == lo or cls[buf[i - 1]] & 7 == 0):  # a word that starts like a hex id
                j = i
                while j < hi and cls[buf[j]] & 3:
                    j += 1
                n = j - i
                if (n == 16 or n == 32) and (j == hi or cls[buf[j]] & 7 == 0):
                    tmpl[ti] = HEX16 if n == 16 else HEX32
                    ti += 1
                    for q in range(i, j, 2):  # (loops: a slice costs more than a short copy)
                        hexes[hx] = _NIBBLE[buf[q]] * 16 + _NIBBLE[buf[q + 1]]
                        hx += 1
                    i = j
                    continue
            if k == 1:
                j = i
                while j < hi and cls[buf[j]] == 1 and j - i < MAX_DIGITS:
                    j += 1
                n = j - i
                if n >= 2:
                    tmpl[ti] = _DIGIT_CODE[n]
                    ti += 1
                    for q in range(i, j):
                        digits[di] = buf[q]
                        di += 1
                    i = j
                    continue
            tmpl[ti] = buf[i]
            ti += 1
            i += 1
        if not ok or (di == d0 and hx == h0):  # not split (or nothing variable): the text as it is
            ti = t0
            for q in range(lo, hi):
                tmpl[ti] = buf[q]
                ti += 1
            di = d0
            hx = h0
            split[c] = False
        else:
            split[c] = True
    n = len(bounds) - 1
    t_at[n] = ti
    d_at[n] = di
    h_at[n] = hx


@njit(cache=True, nogil=True)
def _expand(tmpl, i, hi, line_only, digits, d, d_hi, hexes, h, h_hi, out, o):  # pragma: no cover
    """Template bytes ``i`` .. ``hi`` (to the first newline if ``line_only``) into ``out`` at
    ``o``, their variables from ``digits[d:d_hi]`` and ``hexes[h:h_hi]``: (the position in
    ``out`` after them, ``d``, ``h``), the position -1 if they do not fit."""
    while i < hi:
        b = tmpl[i]
        if line_only and b == 10:
            break
        nd = _DIGITS[b]
        nh = _HEX_BYTES[b]
        if nd:
            if d + nd > d_hi or o + nd > len(out):
                return -1, d, h
            for q in range(nd):  # (loops: a slice costs more than a short copy)
                out[o + q] = digits[d + q]
            o += nd
            d += nd
        elif nh:
            if h + nh > h_hi or o + 2 * nh > len(out):
                return -1, d, h
            for q in range(nh):
                x = hexes[h + q]
                out[o] = _HEX_CHAR[x >> 4]
                out[o + 1] = _HEX_CHAR[x & 15]
                o += 2
            h += nh
        else:
            if o >= len(out):
                return -1, d, h
            out[o] = b
            o += 1
        i += 1
    return o, d, h


@njit(cache=True, nogil=True)
def _join(tmpl, digits, hexes, out):  # pragma: no cover
    o, d, h = _expand(tmpl, 0, len(tmpl), False, digits, 0, len(digits), hexes, 0, len(hexes), out, 0)
    if o < 0 or d != len(digits) or h != len(hexes):
        return -1
    return o


@njit(cache=True, nogil=True)
def _lines(tmpl, t_at, digits, d_at, hexes, h_at, frame, at, out, out_at):  # pragma: no cover
    """The lines starting at ``at[k]`` of templates ``frame[k]`` (``tmpl[t_at[f]:t_at[f + 1]]``,
    digits ``digits[d_at[f]:d_at[f + 1]]``, hex ids ``hexes[h_at[f]:h_at[f + 1]]``) joined, back
    to back in ``out`` (bounds ``out_at``); False if template and variables do not fit."""
    o = 0
    for k in range(len(frame)):
        f = frame[k]
        lo = t_at[f]
        hi = t_at[f + 1]
        s = at[k]
        # the variables before the line: added up from the nearer end of the template
        if s - lo <= hi - s:
            d = d_at[f]
            h = h_at[f]
            for i in range(lo, s):
                d += _DIGITS[tmpl[i]]
                h += _HEX_BYTES[tmpl[i]]
        else:
            d = d_at[f + 1]
            h = h_at[f + 1]
            for i in range(s, hi):
                d -= _DIGITS[tmpl[i]]
                h -= _HEX_BYTES[tmpl[i]]
        if d < d_at[f] or h < h_at[f]:
            return False
        out_at[k] = o
        o, d, h = _expand(tmpl, s, hi, True, digits, d, d_at[f + 1], hexes, h, h_at[f + 1], out, o)
        if o < 0:
            return False
    out_at[len(frame)] = o
    return True


def split_chunks(text: np.ndarray, bounds: np.ndarray, eligible: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Chunks ``text[bounds[c]:bounds[c + 1]]`` (uint8) split: (templates, their bounds, digits,
    their bounds, hex id bytes, their bounds, which chunks are split). A chunk that is not
    ``eligible``, holds a code byte or has nothing variable is not split: its template is its
    text, its variables empty."""
    n = len(bounds) - 1
    tmpl = np.empty(len(text), np.uint8)  # a template is never longer than its text
    digits = np.empty(len(text), np.uint8)
    hexes = np.empty(len(text) // 2, np.uint8)
    t_at, d_at, h_at = np.empty(n + 1, np.int64), np.empty(n + 1, np.int64), np.empty(n + 1, np.int64)
    split = np.zeros(n, np.bool_)
    _split(text, bounds.astype(np.int64), eligible.astype(np.bool_), tmpl, digits, hexes, t_at, d_at, h_at, split)
    return tmpl[:t_at[-1]], t_at, digits[:d_at[-1]], d_at, hexes[:h_at[-1]], h_at, split


def hex_bytes(template: bytes) -> int:
    """The bytes of the hex ids a template names."""
    return 8 * template.count(_HEX16_BYTE) + 16 * template.count(_HEX32_BYTE)


def join(template: bytes, digits: bytes, hexes: bytes, size: int) -> bytes:
    """The text of a split chunk (``size`` bytes) from its template and variables; ValueError if
    they do not fit together."""
    out = np.empty(size, np.uint8)
    n = _join(np.frombuffer(template, np.uint8), np.frombuffer(digits, np.uint8), np.frombuffer(hexes, np.uint8), out)
    if n != size:
        raise ValueError(f"template and variables do not make {size} bytes")
    return out.tobytes()


def lines_at(templates: list[bytes], digits: list[bytes], hexes: list[bytes], frame: list[int],
             at: list[int]) -> list[bytes]:
    """The lines of split chunks starting at byte ``at[k]`` of template ``templates[frame[k]]``
    (without their newline), joined with their variables (``digits[frame[k]]``,
    ``hexes[frame[k]]``) in one pass; ValueError if they do not fit together."""
    tmpl = np.frombuffer(b"".join(templates), np.uint8)
    dig = np.frombuffer(b"".join(digits), np.uint8)
    hx = np.frombuffer(b"".join(hexes), np.uint8)
    t_at = np.cumsum([0, *map(len, templates)])
    f = np.asarray(frame, np.int64)
    out = np.empty(len(tmpl) + len(dig) + 2 * len(hx), np.uint8)
    out_at = np.empty(len(frame) + 1, np.int64)
    if not _lines(tmpl, t_at, dig, np.cumsum([0, *map(len, digits)]), hx, np.cumsum([0, *map(len, hexes)]), f,
                  t_at[f] + np.asarray(at, np.int64), out, out_at):
        raise ValueError("template and variables do not fit together")
    buf = out[:out_at[-1]].tobytes()
    bounds = out_at.tolist()
    return [buf[a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=True)]


def warm() -> None:
    """Load the compiled kernels (numba's cache; compiled on a first run): a server does this
    while it starts rather than in its first block cut or query."""
    text = b"took 12 ms for 0123456789abcdef\n"
    tmpl, _, digits, _, hexes, _, _ = split_chunks(np.frombuffer(text, np.uint8), np.array([0, len(text)]),
                                                   np.array([True]))
    join(tmpl.tobytes(), digits.tobytes(), hexes.tobytes(), len(text))
    lines_at([tmpl.tobytes()], [digits.tobytes()], [hexes.tobytes()], [0], [0])


_HEX_EDGE = re.compile(rb"^[a-f]+(?:[^A-Za-z0-9_]|$)|(?:^|[^A-Za-z0-9_])[a-f]+$|[a-f]{16}")
_UNSAFE = re.compile(rb"[0-9\x01-\x08\x0b\x0c\x0e-\x1f]")


def on_templates(literal: bytes) -> bool:
    """Whether a line holds ``literal`` exactly when its template does: true unless the literal
    has a digit or a code byte, or could overlap a hex id (hex letters at an edge that a word
    boundary could end or start, or 16 of them)."""
    return _UNSAFE.search(literal) is None and _HEX_EDGE.search(literal) is None
