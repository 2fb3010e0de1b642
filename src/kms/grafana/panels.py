"""Small builders for Grafana dashboard JSON (schema of Grafana 10/11), so dashboards are code."""

from __future__ import annotations

from kms.grafana.datasources import LOKI_UID, PROM_UID, TEMPO_UID

__all__ = ["PROM", "LOKI", "TEMPO", "Layout", "target", "query_var", "dashboard"]

PROM = {"type": "prometheus", "uid": PROM_UID}
LOKI = {"type": "loki", "uid": LOKI_UID}
TEMPO = {"type": "tempo", "uid": TEMPO_UID}

_GRID_WIDTH = 24


def target(expr: str, legend: str = "", *, exemplar: bool = False, instant: bool = False) -> dict:
    """A Prometheus query of a panel (``refId`` is assigned by ``Layout.add``)."""
    return {
        "datasource": PROM,
        "expr": expr,
        "legendFormat": legend or "__auto",
        "range": not instant,
        "instant": instant,
        "exemplar": exemplar,
        "format": "table" if instant else "time_series",  # instant queries feed table panels
    }


def query_var(name: str, label: str, query: str, *, multi: bool = True) -> dict:
    """A ``label_values(...)`` template variable; All means ``.*`` so ``=~"$var"`` matches everything."""
    return {
        "name": name,
        "label": label,
        "type": "query",
        "datasource": PROM,
        "query": {"query": query, "refId": f"{name}-var"},
        "definition": query,
        "refresh": 2,  # on time-range change: new services appear without a reload
        "sort": 1,
        "multi": multi,
        "includeAll": True,
        "allValue": ".*",
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
    }


class Layout:
    """Places panels left to right in rows of 24 grid units and numbers them."""

    def __init__(self) -> None:
        self.panels: list[dict] = []
        self._x = self._y = self._row_h = 0

    def row(self, title: str) -> None:
        self._newline()
        self.panels.append(
            {"type": "row", "title": title, "collapsed": False, "id": len(self.panels) + 1, "panels": [],
             "gridPos": {"x": 0, "y": self._y, "w": _GRID_WIDTH, "h": 1}}
        )  # fmt: skip
        self._y += 1

    def _newline(self) -> None:
        self._y += self._row_h
        self._x = self._row_h = 0

    def add(self, kind: str, title: str, targets: list[dict], *, w: int = 8, h: int = 8, unit: str = "",
            description: str = "", datasource: dict | None = None, options: dict | None = None) -> dict:  # fmt: skip
        if self._x + w > _GRID_WIDTH:
            self._newline()
        for i, t in enumerate(targets):
            t["refId"] = chr(ord("A") + i)
        panel = {
            "id": len(self.panels) + 1,
            "type": kind,
            "title": title,
            "description": description,
            "datasource": datasource or targets[0]["datasource"],
            "targets": targets,
            "gridPos": {"x": self._x, "y": self._y, "w": w, "h": h},
            "fieldConfig": {"defaults": {"unit": unit} if unit else {}, "overrides": []},
            "options": options or {},
        }
        self.panels.append(panel)
        self._x += w
        self._row_h = max(self._row_h, h)
        return panel


def dashboard(uid: str, title: str, description: str, variables: list[dict], layout: Layout) -> dict:
    return {
        "uid": uid,
        "title": title,
        "description": description,
        "tags": ["kms"],
        "editable": True,
        "schemaVersion": 39,
        "version": 1,
        "time": {"from": "now-1h", "to": "now"},
        "refresh": "30s",
        "timezone": "browser",
        "graphTooltip": 1,  # shared crosshair: line up a latency spike with the error ratio
        "templating": {"list": variables},
        "annotations": {"list": []},
        "links": [],
        "panels": layout.panels,
    }
