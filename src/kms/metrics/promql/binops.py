"""Binary operators: arithmetic, comparison (filter or ``bool``), set operators, vector matching."""

from __future__ import annotations

import numpy as np

from kms.metrics.promql import histtrim
from kms.metrics.promql.nativehist import FloatHistogram, IncompatibleSchema
from kms.metrics.promql.values import InstantVec, PromQLError, ScalarVal, VSeries

__all__ = ["eval_binary"]

COMPARISON = {"==", "!=", ">", "<", ">=", "<="}
SET_OPS = {"and", "or", "unless"}


def _arith(op: str, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    with np.errstate(all="ignore"):
        if op == "+":
            return a + b
        if op == "-":
            return a - b
        if op == "*":
            return a * b
        if op == "/":
            return np.divide(a, b)
        if op == "%":
            return np.fmod(a, b)
        if op == "^":
            return np.power(a, b)
        if op == "atan2":
            return np.arctan2(a, b)
        if op == "==":
            return a == b
        if op == "!=":
            return a != b
        if op == ">":
            return a > b
        if op == "<":
            return a < b
        if op == ">=":
            return a >= b
        if op == "<=":
            return a <= b
    raise PromQLError(f"unsupported binary operator {op}")


def _sig(labels: dict[str, str], on: bool, names: list[str]) -> tuple:
    if on:
        return tuple((k, labels.get(k, "")) for k in sorted(names))
    drop = set(names) | {"__name__"}  # __type__/__unit__ still take part in matching
    return tuple(sorted((k, v) for k, v in labels.items() if k not in drop))


def eval_binary(ev, e, ts):
    op = str(e.op)
    if op == "atan2" and ev.trim:
        return _trim(ev, e, ts)
    mod = e.modifier
    return_bool = bool(mod is not None and mod.return_bool)
    lhs = ev.eval(e.lhs, ts)
    rhs = ev.eval(e.rhs, ts)
    n = len(ts)
    if isinstance(lhs, ScalarVal) and isinstance(rhs, ScalarVal):
        r = _arith(op, lhs.v, rhs.v)
        return ScalarVal(np.asarray(r, dtype=np.float64))
    if isinstance(lhs, ScalarVal) or isinstance(rhs, ScalarVal):
        swap = isinstance(lhs, ScalarVal)
        vec, sc = (rhs, lhs) if swap else (lhs, rhs)
        out = []
        for s in vec.series:
            a, b = (sc.v, s.v) if swap else (s.v, sc.v)
            r = _arith(op, a, b)
            h = _scalar_hists(ev, e, op, s, sc.v, swap)
            if op in COMPARISON:
                if return_bool:
                    out.append(VSeries(s.labels, r.astype(np.float64), s.ok, True))
                else:
                    ok = s.ok & r
                    if ok.any():
                        out.append(VSeries(s.labels, s.v, ok, s.drop_name))
            elif s.ok.any() or h is not None:
                out.append(VSeries(s.labels, r, s.ok, True, h))
        return InstantVec(out)
    if op in SET_OPS:
        return _set_op(op, mod, lhs, rhs, n)
    return _vector_binop(op, mod, return_bool, lhs, rhs, n, lambda *a: _elem_hist(ev, e, op, return_bool, *a))


_OP_WORD = {"+": "addition", "-": "subtraction"}


def _trim(ev, e, ts) -> InstantVec:
    """``histogram </ float`` and ``histogram >/ float``; any other operand pair is dropped with
    Prometheus's incompatible-types info."""
    op = ev.trim
    lhs, rhs = ev.eval(e.lhs, ts), ev.eval(e.rhs, ts)
    if isinstance(lhs, InstantVec) and isinstance(rhs, InstantVec):

        def elem(lv, rv, lh, rh):
            if lh is not None and rh is None:
                return histtrim.trim(lh, rv, op == "</")
            kinds = ("float" if lh is None else "histogram", "float" if rh is None else "histogram")
            ev.info(
                f'incompatible sample types encountered for binary operator "{op}": {kinds[0]} {op} {kinds[1]}',
                e,
            )
            return None

        out = _vector_binop("atan2", e.modifier, False, lhs, rhs, len(ts), elem)
        if any(s.ok.any() for s in out.series):
            ev.info(f'incompatible sample types encountered for binary operator "{op}": float {op} float', e)
        return InstantVec([
            VSeries(s.labels, s.v, np.zeros(len(ts), dtype=bool), s.drop_name, s.h) for s in out.series if s.h is not None
        ])  # fmt: skip
    if not isinstance(lhs, InstantVec) or not isinstance(rhs, ScalarVal):
        kinds = ("float", "float")
        if isinstance(lhs, InstantVec) and any(s.h is not None for s in lhs.series):
            kinds = ("histogram", "histogram")
        ev.info(
            f'incompatible sample types encountered for binary operator "{op}": {kinds[0]} {op} {kinds[1]}', e
        )
        return InstantVec([])
    out = []
    for s in lhs.series:
        if s.ok.any():
            ev.info(f'incompatible sample types encountered for binary operator "{op}": float {op} float', e)
        if s.h is None:
            continue
        h = np.empty(len(s.h), dtype=object)
        h[:] = [
            None if x is None else histtrim.trim(x, float(rhs.v[j]), op == "</") for j, x in enumerate(s.h)
        ]
        out.append(VSeries(s.labels, s.v, np.zeros(len(ts), dtype=bool), s.drop_name, h))
    return InstantVec(out)


def _scalar_hists(ev, e, op: str, s: VSeries, sc: np.ndarray, swap: bool) -> np.ndarray | None:
    """Histogram results of ``vector op scalar``: only ``h * f``, ``f * h`` and ``h / f`` exist."""
    if s.h is None:
        return None
    out = np.empty(len(s.h), dtype=object)
    out[:] = None
    found = False
    for j, h in enumerate(s.h):
        if h is None:
            continue
        if op == "*" or (op == "/" and not swap):
            out[j] = (
                h.copy().scale(float(sc[j])).compact() if op == "*" else h.copy().div(float(sc[j])).compact()
            )
            found = True
        else:
            lt, rt = ("float", "histogram") if swap else ("histogram", "float")
            ev.info(f'incompatible sample types encountered for binary operator "{op}": {lt} {op} {rt}', e)
    return out if found else None


def _elem_hist(ev, e, op: str, return_bool: bool, lv: float, rv: float, lh, rh):
    """One element of a vector-vector operation where a side is a native histogram: a
    ``FloatHistogram``, a float, or None (dropped, with Prometheus's annotation)."""
    if lh is not None and rh is not None:
        if op in ("+", "-"):
            res = lh.copy()
            try:
                collision, reconciled = res.add(rh) if op == "+" else res.sub(rh)
            except IncompatibleSchema:
                name = ""
                ev.warn(
                    f'vector contains a mix of histograms with exponential and custom buckets schemas for metric name "{name}"',
                    e,
                )
                return None
            if op == "-":
                res.hint = "gauge"
            if collision:
                ev.warn(f"conflicting counter resets during histogram {_OP_WORD[op]}", e)
            if reconciled:
                ev.info(f"mismatched custom buckets were reconciled during {_OP_WORD[op]}", e)
            return res.compact()
        if op in ("==", "!="):
            same = lh.same_as(rh, lambda a, b: a == b or (a != a and b != b))
            keep = same if op == "==" else not same
            if return_bool:
                return 1.0 if keep else 0.0
            return lh if keep else None
        kinds = ("histogram", "histogram")
    elif rh is not None:
        if op == "*":
            return rh.copy().scale(lv).compact()
        kinds = ("float", "histogram")
    else:
        if op == "*":
            return lh.copy().scale(rv).compact()
        if op == "/":
            return lh.copy().div(rv).compact()
        kinds = ("histogram", "float")
    ev.info(
        f'incompatible sample types encountered for binary operator "{op}": {kinds[0]} {op} {kinds[1]}', e
    )
    return None


def _matching(mod):
    if mod is None or mod.matching is None:
        return False, []
    return str(mod.matching.type).endswith("Include"), list(mod.matching.labels)


def _set_op(op, mod, lhs: InstantVec, rhs: InstantVec, n: int) -> InstantVec:
    on, names = _matching(mod)
    present: dict[tuple, np.ndarray] = {}
    for s in rhs.series:
        k = _sig(s.labels, on, names)
        present[k] = present.get(k, np.zeros(n, dtype=bool)) | s.present()
    none = np.zeros(n, dtype=bool)
    if op == "and":
        out = [s.only(present.get(_sig(s.labels, on, names), none)) for s in lhs.series]
    elif op == "unless":
        out = [s.only(~present.get(_sig(s.labels, on, names), none)) for s in lhs.series]
    else:
        lpres: dict[tuple, np.ndarray] = {}
        for s in lhs.series:
            k = _sig(s.labels, on, names)
            lpres[k] = lpres.get(k, np.zeros(n, dtype=bool)) | s.present()
        out = list(lhs.series)
        out += [s.only(~lpres.get(_sig(s.labels, on, names), none)) for s in rhs.series]
    return InstantVec([s for s in out if s.present().any()])


def _vector_binop(
    op, mod, return_bool, lhs: InstantVec, rhs: InstantVec, n: int, elem_hist=None
) -> InstantVec:
    on, names = _matching(mod)
    card = str(mod.card) if mod is not None else "OneToOne"
    group_right = card.endswith("OneToMany")
    many_to_one = card.endswith("ManyToOne") or group_right
    include = list(mod.group_labels) if (mod is not None and many_to_one and mod.group_labels) else []
    many, one = (rhs, lhs) if group_right else (lhs, rhs)

    # Index the "one" side; it must be unique per signature at every step.
    ones: dict[tuple, list[VSeries]] = {}
    for s in one.series:
        ones.setdefault(_sig(s.labels, on, names), []).append(s)
    for k, group in ones.items():
        if len(group) > 1:
            cnt = np.sum([g.present() for g in group], axis=0)
            if np.any(cnt > 1):
                side = "left" if group_right else "right"
                dup = sorted(_braced(g.labels) for g in group)
                grp = ", ".join(f'{a}="{b}"' for a, b in k)
                raise PromQLError(
                    f"found duplicate series for the match group {{{grp}}} on the {side} hand-side of the operation:"
                    f" [{', '.join(dup)}];many-to-many matching not allowed: matching labels must be unique on one side"
                )
    drop_name = op not in COMPARISON or return_bool
    out: list[VSeries] = []
    seen: dict[tuple, list[VSeries]] = {}
    matched: dict[tuple, list[np.ndarray]] = {}
    for s in many.series:
        k = _sig(s.labels, on, names)
        for o in ones.get(k, ()):
            both = s.present() & o.present() if (s.h is not None or o.h is not None) else s.ok & o.ok
            if not both.any():
                continue
            lser, rser = (o, s) if group_right else (s, o)
            matched.setdefault((k, id(o)), []).append(both)
            val, ok = _apply(op, return_bool, lser.v, rser.v, both & s.ok & o.ok)
            h = None
            if elem_hist is not None and (s.h is not None or o.h is not None):
                val, ok, h = _mixed(elem_hist, lser, rser, both & ~(s.ok & o.ok), val, ok)
            if not ok.any() and h is None:
                continue
            labels = _result_labels(s.labels, o.labels, on, names, many_to_one, include, drop_name)
            res_drop = drop_name or s.drop_name
            if h is not None and op in COMPARISON and not return_bool:
                res_drop = s.drop_name
            seen.setdefault(k, []).append(VSeries(labels, val, ok))
            out.append(VSeries(labels, val, ok, res_drop, h))
    fv = mod.fill_values if mod is not None else None
    fill_l = fv.lhs if fv is not None else None
    fill_r = fv.rhs if fv is not None else None
    # Prometheus swaps the sides for group_right before filling, so fill_left always fills the
    # "many" side and fill_right the "one" side (fill-modifier.test pins this down).
    fill_one, fill_many = fill_r, fill_l
    if fill_one is not None or fill_many is not None:
        out += _filled(
            op, return_bool, on, names, many, ones, many_to_one, include, group_right, fill_one, fill_many, n
        )
    if not many_to_one:
        for oks in matched.values():
            if len(oks) > 1 and np.any(np.sum(oks, axis=0) > 1):
                raise PromQLError(
                    "multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)"
                )
    else:
        byl: dict[tuple, list[VSeries]] = {}
        for s in out:
            byl.setdefault(tuple(sorted(s.labels.items())), []).append(s)
        for group in byl.values():
            if len(group) > 1 and np.any(np.sum([g.present() for g in group], axis=0) > 1):
                raise PromQLError("multiple matches for labels: grouping labels must ensure unique matches")
    return InstantVec(out)


def _mixed(elem_hist, lser: VSeries, rser: VSeries, steps: np.ndarray, val, ok):
    """Fill in the steps where a side holds a histogram, one element at a time."""
    val = np.array(val, dtype=np.float64)
    ok = ok.copy()
    h = np.empty(len(ok), dtype=object)
    h[:] = None
    found = False
    for j in np.nonzero(steps)[0]:
        lh = lser.h[j] if lser.h is not None else None
        rh = rser.h[j] if rser.h is not None else None
        r = elem_hist(float(lser.v[j]), float(rser.v[j]), lh, rh)
        if isinstance(r, FloatHistogram):
            h[j] = r
            found = True
        elif r is not None:
            val[j], ok[j] = r, True
    return val, ok, h if found else None


def _apply(
    op, return_bool: bool, lv: np.ndarray, rv: np.ndarray, ok: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(values, present) of ``lv op rv`` at the steps in ``ok``: arithmetic gives the result;
    a comparison keeps the left value where true, or gives 0/1 with ``bool``."""
    r = _arith(op, lv, rv)
    if op not in COMPARISON:
        return r, ok
    if return_bool:
        return r.astype(np.float64), ok
    return lv, ok & r


def _filled(
    op, return_bool, on, names, many, ones, many_to_one, include, group_right, fill_one, fill_many, n
):
    """The ``fill()``/``fill_left()``/``fill_right()`` modifiers: pair unmatched series with a constant."""
    out = []
    one_ok = {k: np.any([g.ok for g in grp], axis=0) for k, grp in ones.items()}
    none = np.zeros(n, dtype=bool)
    many_ok: dict[tuple, np.ndarray] = {}

    def emit(labels, lv, rv, ok):
        val, ok = _apply(op, return_bool, lv, rv, ok)
        if ok.any():
            out.append(
                VSeries(labels, np.asarray(val, dtype=np.float64), ok, op not in COMPARISON or return_bool)
            )

    for s in many.series:
        k = _sig(s.labels, on, names)
        many_ok[k] = many_ok.get(k, none) | s.ok
        if fill_one is not None:
            ok = s.ok & ~one_ok.get(k, none)
            if ok.any():
                const = np.full(n, fill_one)
                lv, rv = (const, s.v) if group_right else (s.v, const)
                labels = _result_labels(s.labels, {}, on, names, many_to_one, include, True)
                emit(labels, lv, rv, ok)
    if fill_many is not None:
        for k, grp in ones.items():
            for o in grp:
                ok = o.ok & ~many_ok.get(k, none)
                if ok.any():
                    const = np.full(n, fill_many)
                    lv, rv = (o.v, const) if group_right else (const, o.v)
                    emit({a: b for a, b in k if b != ""}, lv, rv, ok)
    return out


def _braced(labels: dict[str, str]) -> str:
    return "{" + ", ".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}"


def _result_labels(many_l, one_l, on, names, many_to_one, include, drop_name):
    lab = dict(many_l)
    if not many_to_one:
        if on:
            lab = {k: v for k, v in lab.items() if k in names}
        else:
            for k in names:
                lab.pop(k, None)
    for k in include:
        if one_l.get(k, ""):
            lab[k] = one_l[k]
        else:
            lab.pop(k, None)
    return lab
