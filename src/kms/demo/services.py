"""The demo's two services. Plain Flask apps with no OpenTelemetry code at all: run under
``opentelemetry-instrument`` they emit traces (Flask, requests and sqlite3 spans), logs with trace
context and HTTP metrics with exemplars, as any auto-instrumented application would.

    python -m kms.demo.services backend --port 8081
    python -m kms.demo.services frontend --port 8080 --backend http://127.0.0.1:8081
"""

from __future__ import annotations

import argparse
import logging
import random
import sqlite3
import threading
import time

import requests
from flask import Flask, jsonify, request

from kms.demo import ITEMS

__all__ = ["backend_app", "frontend_app", "main"]

log = logging.getLogger("kms.demo")


def backend_app(error_rate: float, slow_rate: float) -> Flask:
    """The API: prices and stock from a SQLite database (a client span with db.system=sqlite, which
    the service graph shows as a virtual node), an occasional error and a slow path."""
    app = Flask("backend")
    local = threading.local()

    def db() -> sqlite3.Connection:
        if not hasattr(local, "conn"):
            conn = sqlite3.connect(":memory:")
            conn.execute("CREATE TABLE items (name TEXT PRIMARY KEY, price REAL, stock INTEGER)")
            conn.executemany("INSERT INTO items VALUES (?, ?, ?)",
                             [(n, round(1 + i * 0.75, 2), 10 * (i + 1)) for i, n in enumerate(ITEMS)])
            local.conn = conn
        return local.conn

    def query(sql: str, *params: object) -> tuple | None:
        # through a cursor: the DB-API instrumentation traces cursor statements, not Connection.execute
        cur = db().cursor()
        cur.execute(sql, params)
        return cur.fetchone()

    @app.get("/api/price/<item>")
    def price(item: str):
        if random.random() < slow_rate:
            delay = random.uniform(0.3, 1.2)
            log.warning("slow price lookup for %s: cache miss, recomputing for %.0f ms", item, delay * 1000)
            time.sleep(delay)
        if random.random() < error_rate:
            log.error("price lookup for %s failed: upstream pricing rules unavailable", item)
            return jsonify(error="pricing rules unavailable"), 500
        row = query("SELECT price FROM items WHERE name = ?", item)
        if row is None:
            log.info("unknown item %s", item)
            return jsonify(error=f"unknown item {item}"), 404
        time.sleep(random.uniform(0.002, 0.02))
        log.info("price of %s is %.2f", item, row[0])
        return jsonify(item=item, price=row[0])

    @app.get("/api/stock/<item>")
    def stock(item: str):
        row = query("SELECT stock FROM items WHERE name = ?", item)
        return jsonify(item=item, stock=row[0] if row else 0)

    @app.get("/health")
    def health():
        return "ok"

    return app


def frontend_app(backend: str) -> Flask:
    """The web app: ``/checkout`` asks the backend for price and stock and logs the outcome."""
    app = Flask("frontend")
    session = requests.Session()

    @app.get("/checkout")
    def checkout():
        item = request.args.get("item") or random.choice(ITEMS)
        qty = int(request.args.get("qty", "1"))
        log.info("checkout started: item=%s qty=%d", item, qty)
        price = session.get(f"{backend}/api/price/{item}", timeout=10)
        if price.status_code >= 500:
            log.error("checkout failed: backend answered %d for the price of %s", price.status_code, item)
            return jsonify(error="backend unavailable"), 502
        if price.status_code != 200:
            return jsonify(price.json()), price.status_code
        stock = session.get(f"{backend}/api/stock/{item}", timeout=10).json()["stock"]
        total = round(price.json()["price"] * qty, 2)
        log.info("checkout done: item=%s qty=%d total=%.2f in_stock=%d", item, qty, total, stock)
        return jsonify(item=item, qty=qty, total=total, in_stock=stock >= qty)

    @app.get("/")
    def index():
        return "kms demo shop: GET /checkout?item=apple&qty=2\n"

    @app.get("/health")
    def health():
        return "ok"

    return app


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m kms.demo.services")
    p.add_argument("service", choices=["frontend", "backend"])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--backend", default="http://127.0.0.1:8081", help="the backend's URL (frontend only)")
    p.add_argument("--error-rate", type=float, default=0.03, help="share of backend price lookups that fail")
    p.add_argument("--slow-rate", type=float, default=0.05, help="share of backend price lookups that are slow")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no access log lines
    app = (frontend_app(args.backend) if args.service == "frontend"
           else backend_app(args.error_rate, args.slow_rate))
    app.run(host=args.host, port=args.port, threaded=True)


if __name__ == "__main__":
    main()
