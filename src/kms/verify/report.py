"""The table ``kms verify`` prints: one row a link, with its latency and, on failure, what to fix."""

from __future__ import annotations

import textwrap
from dataclasses import dataclass

__all__ = ["Result", "render_table"]


@dataclass
class Result:
    link: str
    ok: bool
    latency_s: float | None  # from the moment the telemetry was acknowledged to the link first holding
    detail: str
    hint: str = ""  # what to fix; shown only on failure

    def as_dict(self) -> dict:
        return {"link": self.link, "ok": self.ok, "latency_s": self.latency_s, "detail": self.detail,
                "hint": self.hint if not self.ok else ""}


def render_table(results: list[Result], width: int = 100) -> str:
    link_w = max([len("LINK")] + [len(r.link) for r in results])
    head = f"{'LINK':<{link_w}}  RESULT  LATENCY  DETAIL"
    lines = [head, "-" * max(len(head), min(width, 100))]
    indent = " " * (link_w + 18)
    for r in results:
        latency = f"{r.latency_s:.2f}s" if r.latency_s is not None else "-"
        text = r.detail if r.ok or not r.hint else f"{r.detail}. Fix: {r.hint}"
        wrapped = textwrap.wrap(text, max(30, width - len(indent)), break_on_hyphens=False, break_long_words=False) or [""]
        lines.append(f"{r.link:<{link_w}}  {'pass' if r.ok else 'FAIL':<6}  {latency:>7}  {wrapped[0]}")
        lines += [indent + w for w in wrapped[1:]]
    failed = [r.link for r in results if not r.ok]
    lines.append("")
    lines.append(f"{len(results) - len(failed)}/{len(results)} links hold"
                 + (f"; broken: {', '.join(failed)}" if failed else ""))
    return "\n".join(lines)
