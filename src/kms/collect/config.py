"""The ``global`` scrape defaults and ``scrape_configs`` of Prometheus's configuration format.

:func:`load_jobs` checks everything Prometheus checks at load (unknown keys, durations, timeout
not above the interval, relabel rules, duplicate job names) and names the job and key in every
error (:class:`~kms.errors.BadInput`). Durations are seconds (floats). Service discovery other
than ``static_configs``, ``file_sd_configs`` and ``kubernetes_sd_configs`` is refused with a clear
message. A relative ``kubeconfig_file`` is read from the directory of the file the job came from,
as Prometheus reads it.
"""

from __future__ import annotations

import base64
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from kms.collect.relabel import RelabelError, Rule, parse_rules
from kms.config import parse_duration
from kms.errors import BadInput
from kms.kube.sd_config import KubeSDConfig, parse_sd_config

__all__ = ["Auth", "FileSD", "ScrapeJob", "StaticGroup", "TLS", "load_each", "load_jobs", "read_prometheus_file",
           "reload_jobs"]

_GLOBAL_KEYS = {"scrape_interval", "scrape_timeout", "sample_limit", "label_limit", "label_name_length_limit",
                "label_value_length_limit", "target_limit", "body_size_limit"}
# keys of a Prometheus global section that matter elsewhere (rules, remote write): accepted, unused here
_GLOBAL_OTHER = {"evaluation_interval", "external_labels", "query_log_file", "rule_query_offset",
                 "scrape_protocols", "keep_dropped_targets", "metric_name_validation_scheme",
                 "scrape_failure_log_file", "scrape_classic_histograms", "always_scrape_classic_histograms",
                 "convert_classic_histograms_to_nhcb", "scrape_native_histograms", "metric_name_escaping_scheme"}
_JOB_KEYS = {"job_name", "scrape_interval", "scrape_timeout", "metrics_path", "scheme", "params", "basic_auth",
             "authorization", "bearer_token", "bearer_token_file", "tls_config", "honor_labels", "honor_timestamps",
             "static_configs", "file_sd_configs", "kubernetes_sd_configs", "relabel_configs", "metric_relabel_configs", "sample_limit",
             "label_limit", "label_name_length_limit", "label_value_length_limit", "target_limit",
             "body_size_limit", "follow_redirects", "enable_http2", "enable_compression", "scrape_protocols",
             "track_timestamps_staleness", "keep_dropped_targets"}
_LATER_SD = ("consul_sd_configs", "dns_sd_configs", "ec2_sd_configs", "http_sd_configs",
             "docker_sd_configs", "azure_sd_configs", "gce_sd_configs", "openstack_sd_configs")
_LIMITS = ("sample_limit", "label_limit", "label_name_length_limit", "label_value_length_limit", "target_limit",
           "body_size_limit")


@dataclass(frozen=True)
class TLS:
    ca_file: str = ""
    cert_file: str = ""
    key_file: str = ""
    insecure_skip_verify: bool = False
    server_name: str = ""


@dataclass(frozen=True)
class Auth:
    """At most one of basic auth or an ``Authorization`` header; secrets in files are read at
    each scrape (Prometheus re-reads them, so rotated tokens work)."""

    username: str = ""
    password: str = ""
    password_file: str = ""
    type: str = ""  # Authorization scheme, "Bearer" by default when credentials are given
    credentials: str = ""
    credentials_file: str = ""

    def header(self) -> str | None:
        """The ``Authorization`` header value, or None."""
        if self.username or self.password or self.password_file:
            pw = Path(self.password_file).read_text().strip() if self.password_file else self.password
            return "Basic " + base64.b64encode(f"{self.username}:{pw}".encode()).decode()
        if self.credentials or self.credentials_file:
            cred = Path(self.credentials_file).read_text().strip() if self.credentials_file else self.credentials
            return f"{self.type or 'Bearer'} {cred}"
        return None


@dataclass(frozen=True)
class StaticGroup:
    targets: tuple[str, ...]
    labels: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class FileSD:
    files: tuple[str, ...]
    refresh_interval_s: float = 300.0


@dataclass
class ScrapeJob:
    job_name: str
    scrape_interval_s: float = 60.0
    scrape_timeout_s: float = 10.0
    metrics_path: str = "/metrics"
    scheme: str = "http"
    params: dict[str, list[str]] = field(default_factory=dict)
    auth: Auth = field(default_factory=Auth)
    tls: TLS = field(default_factory=TLS)
    honor_labels: bool = False
    honor_timestamps: bool = True
    follow_redirects: bool = True
    enable_compression: bool = True
    static_configs: list[StaticGroup] = field(default_factory=list)
    file_sd_configs: list[FileSD] = field(default_factory=list)
    kubernetes_sd_configs: list[KubeSDConfig] = field(default_factory=list)
    relabel_configs: list[Rule] = field(default_factory=list)
    metric_relabel_configs: list[Rule] = field(default_factory=list)
    sample_limit: int = 0  # 0 = no limit, as in Prometheus
    label_limit: int = 0
    label_name_length_limit: int = 0
    label_value_length_limit: int = 0
    target_limit: int = 0
    body_size_limit: int = 0  # bytes
    raw: dict = field(default_factory=dict, repr=False)  # the job as written (for /api/v1/status/config)


def _duration(value: Any, at: str) -> float:
    try:
        return parse_duration(str(value))
    except BadInput:
        raise BadInput(f"{at}: invalid duration {value!r}") from None


def _size(value: Any, at: str) -> int:
    """Prometheus's byte sizes: a number or ``<n>[KMGT]B`` (and ``KiB``...)."""
    if isinstance(value, int):
        return value
    text = str(value).strip().upper().replace("IB", "B")
    for suffix, mult in (("TB", 1 << 40), ("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10), ("B", 1)):
        if text.endswith(suffix):
            try:
                return int(float(text[: -len(suffix)]) * mult)
            except ValueError:
                break
    try:
        return int(text)
    except ValueError:
        raise BadInput(f"{at}: invalid size {value!r}") from None


def _int(value: Any, at: str) -> int:
    try:
        n = int(value)
    except (TypeError, ValueError):
        raise BadInput(f"{at}: not a whole number: {value!r}") from None
    if n < 0:
        raise BadInput(f"{at}: must not be negative")
    return n


def _bool(value: Any, at: str) -> bool:
    if isinstance(value, bool):
        return value
    raise BadInput(f"{at}: expected true or false, got {value!r}")


def _mapping(value: Any, at: str, keys: set[str]) -> dict:
    if not isinstance(value, dict):
        raise BadInput(f"{at}: expected a mapping")
    unknown = set(value) - keys
    if unknown:
        raise BadInput(f"{at}: unknown key {sorted(unknown)[0]!r} (known: {', '.join(sorted(keys))})")
    return value


def _resolver(base_dir: str):
    """Relative file paths of a scrape config, resolved against the configuration file's
    directory as Prometheus resolves them (absolute paths, and all paths without one, as given)."""

    def resolve(path: Any) -> Any:
        return str(Path(base_dir) / path) if base_dir and isinstance(path, str) and path and not Path(path).is_absolute() else path

    return resolve


_AS_GIVEN = _resolver("")


def _auth(doc: dict, at: str, resolve=_AS_GIVEN) -> Auth:
    kinds = [k for k in ("basic_auth", "authorization", "bearer_token", "bearer_token_file") if doc.get(k)]
    if len(kinds) > 1:
        raise BadInput(f"{at}: at most one of basic_auth, authorization, bearer_token & bearer_token_file "
                       f"must be configured (got {', '.join(kinds)})")
    if "basic_auth" in kinds:
        b = _mapping(doc["basic_auth"], f"{at}.basic_auth", {"username", "password", "password_file", "username_file"})
        if b.get("password") and b.get("password_file"):
            raise BadInput(f"{at}.basic_auth: at most one of password & password_file must be configured")
        return Auth(username=str(b.get("username", "")), password=str(b.get("password", "") or ""),
                    password_file=resolve(str(b.get("password_file", "") or "")))
    if "authorization" in kinds:
        a = _mapping(doc["authorization"], f"{at}.authorization", {"type", "credentials", "credentials_file"})
        if str(a.get("type", "Bearer")).lower() == "basic":
            raise BadInput(f"{at}.authorization.type: authorization type cannot be set to \"basic\", use "
                           "\"basic_auth\" instead")
        return Auth(type=str(a.get("type", "Bearer")), credentials=str(a.get("credentials", "") or ""),
                    credentials_file=resolve(str(a.get("credentials_file", "") or "")))
    if "bearer_token" in kinds:
        return Auth(type="Bearer", credentials=str(doc["bearer_token"]))
    if "bearer_token_file" in kinds:
        return Auth(type="Bearer", credentials_file=resolve(str(doc["bearer_token_file"])))
    return Auth()


def _tls(doc: Any, at: str, resolve=_AS_GIVEN) -> TLS:
    if doc is None:
        return TLS()
    t = _mapping(doc, at, {"ca_file", "cert_file", "key_file", "insecure_skip_verify", "server_name", "min_version",
                           "ca", "cert", "key"})
    t = {k: resolve(v) if k in ("ca_file", "cert_file", "key_file") else v for k, v in t.items()}
    for inline in ("ca", "cert", "key"):
        if inline in t:
            raise BadInput(f"{at}.{inline}: inline certificates are not supported; use {inline}_file")
    if bool(t.get("cert_file")) != bool(t.get("key_file")):
        raise BadInput(f"{at}: exactly one of key_file and cert_file given; both are needed for a client certificate")
    for k in ("ca_file", "cert_file", "key_file"):
        if t.get(k) and not Path(str(t[k])).is_file():
            raise BadInput(f"{at}.{k}: no such file {t[k]!r}")
    return TLS(str(t.get("ca_file", "") or ""), str(t.get("cert_file", "") or ""), str(t.get("key_file", "") or ""),
               _bool(t.get("insecure_skip_verify", False), f"{at}.insecure_skip_verify"),
               str(t.get("server_name", "") or ""))


def _labels(doc: Any, at: str) -> tuple[tuple[str, str], ...]:
    if doc is None:
        return ()
    if not isinstance(doc, dict):
        raise BadInput(f"{at}: expected a mapping of label names to values")
    return tuple(sorted((str(k), "" if v is None else str(v)) for k, v in doc.items()))


def static_group(doc: Any, at: str) -> StaticGroup:
    """One ``{targets: [...], labels: {...}}`` group (static_configs and file SD files)."""
    g = _mapping(doc, at, {"targets", "labels"})
    targets = g.get("targets") or []
    if not isinstance(targets, list):
        raise BadInput(f"{at}.targets: expected a list of host:port")
    return StaticGroup(tuple(str(t) for t in targets), _labels(g.get("labels"), f"{at}.labels"))


def _kube_sd(doc: Any, at: str, base_dir: str) -> KubeSDConfig:
    """One ``kubernetes_sd_configs`` entry; its relative file paths (kubeconfig, token and TLS
    files) resolved against ``base_dir``, as Prometheus resolves them against the config's directory."""
    sd = parse_sd_config(doc, at)
    if not base_dir:
        return sd
    resolve = _resolver(base_dir)
    http = dict(sd.http)
    if "bearer_token_file" in http:
        http["bearer_token_file"] = resolve(http["bearer_token_file"])
    for key, files in (("authorization", ("credentials_file",)), ("tls_config", ("ca_file", "cert_file", "key_file"))):
        if isinstance(http.get(key), dict):
            http[key] = {k: resolve(v) if k in files else v for k, v in http[key].items()}
    return dataclasses.replace(sd, kubeconfig_file=resolve(sd.kubeconfig_file), http=http)


def _job(doc: Any, n: int, defaults: dict, base_dir: str = "") -> ScrapeJob:
    if not isinstance(doc, dict):
        raise BadInput(f"scrape_configs[{n}]: expected a mapping")
    name = doc.get("job_name")
    if not name:
        raise BadInput(f"scrape_configs[{n}]: job_name is empty")
    at = f"scrape_configs job {name!r}"
    for key in doc:
        if key in _LATER_SD:
            raise BadInput(f"{at}: {key} is not supported yet (static_configs, file_sd_configs and "
                           "kubernetes_sd_configs are)")
        if key not in _JOB_KEYS:
            raise BadInput(f"{at}: unknown key {key!r}")
    job = ScrapeJob(job_name=str(name), raw=dict(doc))
    job.scrape_interval_s = _duration(doc.get("scrape_interval", defaults["scrape_interval"]), f"{at}.scrape_interval")
    if "scrape_timeout" in doc:
        job.scrape_timeout_s = _duration(doc["scrape_timeout"], f"{at}.scrape_timeout")
        if job.scrape_timeout_s > job.scrape_interval_s:
            raise BadInput(f"{at}.scrape_timeout: scrape timeout greater than scrape interval for scrape config "
                           f"with job name {name!r}")
    else:  # Prometheus: the global timeout, but never longer than the job's interval
        job.scrape_timeout_s = min(_duration(defaults["scrape_timeout"], "global.scrape_timeout"),
                                   job.scrape_interval_s)
    if job.scrape_interval_s <= 0 or job.scrape_timeout_s <= 0:
        raise BadInput(f"{at}: scrape_interval and scrape_timeout must be positive")
    job.metrics_path = str(doc.get("metrics_path", "/metrics"))
    job.scheme = str(doc.get("scheme", "http"))
    if job.scheme not in ("http", "https"):
        raise BadInput(f"{at}.scheme: {job.scheme!r} is not http or https")
    params = doc.get("params") or {}
    if not isinstance(params, dict):
        raise BadInput(f"{at}.params: expected a mapping of names to lists of values")
    job.params = {str(k): [str(x) for x in (v if isinstance(v, list) else [v])] for k, v in params.items()}
    resolve = _resolver(base_dir)
    job.auth = _auth(doc, at, resolve)
    job.tls = _tls(doc.get("tls_config"), f"{at}.tls_config", resolve)
    for key in ("honor_labels", "honor_timestamps", "follow_redirects", "enable_compression"):
        if key in doc:
            setattr(job, key, _bool(doc[key], f"{at}.{key}"))
    job.static_configs = [static_group(g, f"{at}.static_configs[{i}]") for i, g in enumerate(doc.get("static_configs") or [])]
    for i, f in enumerate(doc.get("file_sd_configs") or []):
        fd = _mapping(f, f"{at}.file_sd_configs[{i}]", {"files", "refresh_interval"})
        files = fd.get("files") or []
        if not isinstance(files, list) or not files:
            raise BadInput(f"{at}.file_sd_configs[{i}].files: expected a non-empty list of paths or globs")
        for p in files:
            if not str(p).endswith((".json", ".yml", ".yaml")):
                raise BadInput(f"{at}.file_sd_configs[{i}].files: path {p!r} is not a valid file path "
                               "(it must end in .json, .yml or .yaml)")
        job.file_sd_configs.append(FileSD(tuple(resolve(str(p)) for p in files),
                                          _duration(fd.get("refresh_interval", "5m"),
                                                    f"{at}.file_sd_configs[{i}].refresh_interval")))
    sds = doc.get("kubernetes_sd_configs") or []
    if not isinstance(sds, list):
        raise BadInput(f"{at}.kubernetes_sd_configs: expected a list")
    job.kubernetes_sd_configs = [_kube_sd(sd, f"{at}.kubernetes_sd_configs[{i}]", base_dir) for i, sd in enumerate(sds)]
    for key in ("relabel_configs", "metric_relabel_configs"):
        try:
            setattr(job, key, parse_rules(doc.get(key), f"{at}.{key}"))
        except RelabelError as e:
            raise BadInput(str(e)) from None
    for key in _LIMITS:
        value = doc.get(key, defaults.get(key, 0))
        setattr(job, key, _size(value, f"{at}.{key}") if key == "body_size_limit" else _int(value, f"{at}.{key}"))
    return job


def _defaults(where: str, g: Any) -> dict:
    """The job defaults of a ``global`` section."""
    defaults = {"scrape_interval": "1m", "scrape_timeout": "10s"}
    g = g or {}
    if not isinstance(g, dict):
        raise BadInput(f"{where}: global: expected a mapping")
    for k, v in g.items():
        if k not in _GLOBAL_KEYS and k not in _GLOBAL_OTHER:
            raise BadInput(f"{where}: global: unknown key {k!r}")
        if k in _GLOBAL_KEYS:
            defaults[k] = v
    return defaults


def load_jobs(global_doc: dict | None, scrape_configs: list | None, files: list[str] | None = None,
              base_dir: str = "") -> list[ScrapeJob]:
    """The jobs of a ``global`` + ``scrape_configs`` pair (read from a file in ``base_dir``, if
    any), then of each Prometheus config file (``--scrape-config``; each with its own ``global``).
    Job names must be unique across all."""
    sections: list[tuple[str, dict | None, list | None, str]] = [("config", global_doc, scrape_configs, base_dir)]
    for f in files or []:
        g, s = read_prometheus_file(f)
        sections.append((str(f), g, s, str(Path(f).parent)))
    jobs: list[ScrapeJob] = []
    seen: dict[str, str] = {}
    for where, g, configs, base in sections:
        defaults = _defaults(where, g)
        if configs is None:
            continue
        if not isinstance(configs, list):
            raise BadInput(f"{where}: scrape_configs: expected a list")
        for n, doc in enumerate(configs):
            try:
                job = _job(doc, n, defaults, base)
            except BadInput as e:
                raise BadInput(f"{where}: {e.message}") from None
            if job.job_name in seen:
                raise BadInput(f"{where}: found multiple scrape configs with job name {job.job_name!r} "
                               f"(also in {seen[job.job_name]})")
            seen[job.job_name] = where
            jobs.append(job)
    return jobs


def load_each(configs: list[dict], global_doc: dict | None = None, where: str = "") -> tuple[list[ScrapeJob], dict[str, str]]:
    """Jobs of generated scrape configs (ServiceMonitors...), each checked on its own: one that
    fails is left out, the others load. Returns the jobs and ``{job_name: error}``."""
    defaults = _defaults(where or "global", global_doc)
    jobs: list[ScrapeJob] = []
    errors: dict[str, str] = {}
    for n, doc in enumerate(configs):
        try:
            jobs.append(_job(doc, n, defaults))
        except BadInput as e:
            name = str(doc.get("job_name", f"#{n}")) if isinstance(doc, dict) else f"#{n}"
            errors[name] = f"{where}: {e.message}" if where else e.message
    return jobs, errors


def read_prometheus_file(path: str | Path) -> tuple[dict | None, list | None]:
    """``global`` and ``scrape_configs`` of a Prometheus configuration file (other sections,
    e.g. rule_files or remote_write, are not read here)."""
    try:
        doc = yaml.safe_load(Path(path).read_text()) or {}
    except (OSError, yaml.YAMLError) as e:
        raise BadInput(f"cannot read Prometheus config file {path}: {e}") from None
    if not isinstance(doc, dict):
        raise BadInput(f"Prometheus config file {path}: expected a mapping at the top level")
    return doc.get("global"), doc.get("scrape_configs")


def reload_jobs(config_file: str, config_files: list[str]) -> list[ScrapeJob]:
    """The jobs as the files say now (SIGHUP): the ``global`` and ``scrape_configs`` of the
    ``--config`` file (if any) and of the ``--scrape-config`` files. BadInput as at start."""
    g, configs = read_prometheus_file(config_file) if config_file else (None, None)
    return load_jobs(g, configs, config_files, str(Path(config_file).parent) if config_file else "")
