"""Lines split into a template and their variable parts (the numbers and hex ids), and joined back.

Log lines repeat their text and vary in their numbers and ids. Compressed as they are, every
line costs zstd a few sequences to stitch the repeated text around the variable parts; split,
the templates of a chunk repeat almost verbatim (a few bytes a line once compressed) and the
variable parts compress to about their entropy. On the bench lines: 21.3 bytes a line instead
of 24.3, and a line filter decompresses only the templates (2/3 of the bytes, about twice as
fast per byte).

A chunk's text (lines each followed by ``\\n``) becomes:

- its template: the text with each variable part replaced by one code byte telling its kind and
  length: ``DIGIT_CODES[n]`` for a run of ``n`` decimal digits (2 to ``MAX_DIGITS``; a longer
  run is cut in runs of ``MAX_DIGITS``, a lone digit stays text), ``HEX16``/``HEX32`` for a word
  of 16/32 lower-case hex characters (bounded by characters that are not letters, digits or
  ``_``: trace, span and request ids);
- its variables: those parts' bytes, in order, back to back.

A chunk holding a code byte (control characters other than tab, newline and carriage return) is
not split. The kernels are compiled with numba: one pass over the bytes, no Python per line.
"""

from __future__ import annotations

import re

import numpy as np
from numba import njit

__all__ = ["split_chunks", "join", "lines_at", "on_templates", "warm", "MAX_DIGITS"]

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
for _n, _c in DIGIT_CODES.items():
    _DIGIT_CODE[_n] = _c
_LENGTH = np.zeros(256, np.int64)  # code byte -> length of its variable part (0: a text byte)
_LENGTH[HEX16], _LENGTH[HEX32] = 16, 32
for _n, _c in DIGIT_CODES.items():
    _LENGTH[_c] = _n


@njit(cache=True, nogil=True)
def _split(buf, bounds, eligible, cls, digit_code, hex16, hex32, tmpl, var, t_at, v_at, split):  # pragma: no cover
    ti = 0
    vi = 0
    for c in range(len(bounds) - 1):
        lo = bounds[c]
        hi = bounds[c + 1]
        t_at[c] = ti
        v_at[c] = vi
        ok = eligible[c]
        if ok:
            for i in range(lo, hi):
                if cls[buf[i]] == 8:
                    ok = False
                    break
        t0 = ti
        v0 = vi
        if ok:
            i = lo
            while i < hi:
                k = cls[buf[i]]
                if k & 3 and (i == lo or cls[buf[i - 1]] & 7 == 0):  # a word that starts like a hex id
                    j = i
                    while j < hi and cls[buf[j]] & 3:
                        j += 1
                    n = j - i
                    if (n == 16 or n == 32) and (j == hi or cls[buf[j]] & 7 == 0):
                        tmpl[ti] = hex16 if n == 16 else hex32
                        ti += 1
                        for q in range(i, j):  # (loops: a slice costs more than a short copy)
                            var[vi] = buf[q]
                            vi += 1
                        i = j
                        continue
                if k == 1:
                    j = i
                    while j < hi and cls[buf[j]] == 1 and j - i < 20:
                        j += 1
                    n = j - i
                    if n >= 2:
                        tmpl[ti] = digit_code[n]
                        ti += 1
                        for q in range(i, j):
                            var[vi] = buf[q]
                            vi += 1
                        i = j
                        continue
                tmpl[ti] = buf[i]
                ti += 1
                i += 1
        if not ok or vi == v0:  # not split (or nothing variable): the text as it is
            ti = t0
            for q in range(lo, hi):
                tmpl[ti] = buf[q]
                ti += 1
            vi = v0
            split[c] = False
        else:
            split[c] = True
    t_at[len(bounds) - 1] = ti
    v_at[len(bounds) - 1] = vi


@njit(cache=True, nogil=True)
def _join(tmpl, var, length, out):  # pragma: no cover
    o = 0
    v = 0
    nv = len(var)
    for i in range(len(tmpl)):
        b = tmpl[i]
        n = length[b]
        if n == 0:
            if o >= len(out):
                return -1
            out[o] = b
            o += 1
        else:
            if v + n > nv or o + n > len(out):
                return -1
            for q in range(n):
                out[o + q] = var[v + q]
            o += n
            v += n
    if v != nv:
        return -1
    return o


@njit(cache=True, nogil=True)
def _lines(tmpl, t_at, var, v_at, frame, at, out, out_at):  # pragma: no cover
    """The lines starting at ``at[h]`` of templates ``frame[h]`` (``tmpl[t_at[f]:t_at[f + 1]]``,
    variables ``var[v_at[f]:v_at[f + 1]]``) joined, back to back in ``out`` (bounds ``out_at``);
    False if template and variables do not fit together."""
    length = _LENGTH
    o = 0
    for h in range(len(frame)):
        f = frame[h]
        lo = t_at[f]
        hi = t_at[f + 1]
        s = at[h]
        # the variables before the line: added up from the nearer end of the template
        if s - lo <= hi - s:
            v = v_at[f]
            for i in range(lo, s):
                v += length[tmpl[i]]
        else:
            v = v_at[f + 1]
            for i in range(s, hi):
                v -= length[tmpl[i]]
        out_at[h] = o
        i = s
        while i < hi and tmpl[i] != 10:
            b = tmpl[i]
            k = length[b]
            if k == 0:
                out[o] = b
                o += 1
            else:
                if v < v_at[f] or v + k > v_at[f + 1] or o + k > len(out):
                    return False
                for q in range(k):
                    out[o + q] = var[v + q]
                o += k
                v += k
            i += 1
    out_at[len(frame)] = o
    return True


def split_chunks(text: np.ndarray, bounds: np.ndarray, eligible: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Chunks ``text[bounds[c]:bounds[c + 1]]`` (uint8) split: (templates, their bounds,
    variables, their bounds, which chunks are split). A chunk that is not ``eligible``, holds a
    code byte or has nothing variable is not split: its template is its text, its variables
    empty."""
    n = len(bounds) - 1
    tmpl = np.empty(len(text), np.uint8)  # a template is never longer than its text
    var = np.empty(len(text), np.uint8)
    t_at = np.empty(n + 1, np.int64)
    v_at = np.empty(n + 1, np.int64)
    split = np.zeros(n, np.bool_)
    _split(text, bounds.astype(np.int64), eligible.astype(np.bool_), _CLASS, _DIGIT_CODE, HEX16, HEX32,
           tmpl, var, t_at, v_at, split)
    return tmpl[:t_at[-1]], t_at, var[:v_at[-1]], v_at, split


def join(template: bytes, variables: bytes, size: int) -> bytes:
    """The text of a split chunk (``size`` bytes) from its template and variables; ValueError if
    they do not fit together."""
    out = np.empty(size, np.uint8)
    n = _join(np.frombuffer(template, np.uint8), np.frombuffer(variables, np.uint8), _LENGTH, out)
    if n != size:
        raise ValueError(f"template and variables do not make {size} bytes")
    return out.tobytes()


def lines_at(templates: list[bytes], variables: list[bytes], frame: list[int], at: list[int]) -> list[bytes]:
    """The lines of split chunks starting at byte ``at[h]`` of template ``templates[frame[h]]``
    (without their newline), joined with their variables (``variables[frame[h]]``) in one pass;
    ValueError if they do not fit together."""
    tmpl = np.frombuffer(b"".join(templates), np.uint8)
    var = np.frombuffer(b"".join(variables), np.uint8)
    t_at = np.cumsum([0, *map(len, templates)])
    v_at = np.cumsum([0, *map(len, variables)])
    f = np.asarray(frame, np.int64)
    out = np.empty(len(tmpl) + len(var), np.uint8)
    out_at = np.empty(len(frame) + 1, np.int64)
    if not _lines(tmpl, t_at, var, v_at, f, t_at[f] + np.asarray(at, np.int64), out, out_at):
        raise ValueError("template and variables do not fit together")
    buf = out[:out_at[-1]].tobytes()
    bounds = out_at.tolist()
    return [buf[a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=True)]


def warm() -> None:
    """Load the compiled kernels (numba's cache; compiled on a first run): a server does this
    while it starts rather than in its first block cut or query."""
    tmpl, _, var, _, _ = split_chunks(np.frombuffer(b"took 12 ms\n", np.uint8), np.array([0, 11]), np.array([True]))
    join(tmpl.tobytes(), var.tobytes(), 11)
    lines_at([tmpl.tobytes()], [var.tobytes()], [0], [0])


_HEX_EDGE = re.compile(rb"^[a-f]+(?:[^A-Za-z0-9_]|$)|(?:^|[^A-Za-z0-9_])[a-f]+$|[a-f]{16}")
_UNSAFE = re.compile(rb"[0-9\x01-\x08\x0b\x0c\x0e-\x1f]")


def on_templates(literal: bytes) -> bool:
    """Whether a line holds ``literal`` exactly when its template does: true unless the literal
    has a digit or a code byte, or could overlap a hex id (hex letters at an edge that a word
    boundary could end or start, or 16 of them)."""
    return _UNSAFE.search(literal) is None and _HEX_EDGE.search(literal) is None
