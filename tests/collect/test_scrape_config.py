"""The scrape configuration: Prometheus's defaults, errors naming job and key, the ``kms up``
config file and the ``--scrape-config`` Prometheus file, and target label population."""

from __future__ import annotations

import pytest

from kms.collect.config import load_each, load_jobs
from kms.collect.targets import DroppedTarget, Target, fmt_duration, populate
from kms.config import load_config
from kms.errors import BadInput


def test_defaults_and_global_inheritance():
    (a, b) = load_jobs({"scrape_interval": "15s", "scrape_timeout": "20s", "sample_limit": 5},
                       [{"job_name": "a"}, {"job_name": "b", "scrape_interval": "1m", "sample_limit": 0}])
    assert (a.scrape_interval_s, a.scrape_timeout_s, a.sample_limit) == (15, 15, 5)  # timeout capped at interval
    assert (b.scrape_interval_s, b.scrape_timeout_s, b.sample_limit) == (60, 20, 0)
    assert (a.metrics_path, a.scheme, a.honor_labels, a.honor_timestamps) == ("/metrics", "http", False, True)
    (c,) = load_jobs(None, [{"job_name": "c"}])
    assert (c.scrape_interval_s, c.scrape_timeout_s) == (60, 10)  # Prometheus's global defaults


@pytest.mark.parametrize("job, words", [
    ({"job_name": "j", "scrape_timeout": "2m"}, "job 'j'.scrape_timeout: scrape timeout greater than scrape interval"),
    ({"job_name": "j", "scrape_interval": "often"}, "job 'j'.scrape_interval: invalid duration"),
    ({"job_name": "j", "scheme": "ftp"}, "job 'j'.scheme"),
    ({"job_name": "j", "colour": 1}, "job 'j': unknown key 'colour'"),
    ({"job_name": "j", "consul_sd_configs": [{"server": "c:8500"}]}, "consul_sd_configs is not supported yet"),
    ({"job_name": "j", "kubernetes_sd_configs": [{"role": "ingress"}]},
     "job 'j'.kubernetes_sd_configs[0].role: the ingress role is not supported"),
    ({"job_name": "j", "kubernetes_sd_configs": {"role": "pod"}}, "job 'j'.kubernetes_sd_configs: expected a list"),
    ({"job_name": "j", "basic_auth": {"username": "u"}, "bearer_token": "t"}, "at most one of basic_auth"),
    ({"job_name": "j", "authorization": {"type": "Basic"}}, "authorization.type"),
    ({"job_name": "j", "tls_config": {"ca_file": "/nonexistent/ca.pem"}}, "tls_config.ca_file: no such file"),
    ({"job_name": "j", "tls_config": {"cert_file": "/etc/hostname"}}, "key_file and cert_file"),
    ({"job_name": "j", "relabel_configs": [{"action": "hashmod", "target_label": "x"}]},
     "job 'j'.relabel_configs[0].modulus"),
    ({"job_name": "j", "metric_relabel_configs": [{"action": "nope"}]}, "metric_relabel_configs[0].action"),
    ({"job_name": "j", "sample_limit": -1}, "job 'j'.sample_limit"),
    ({"job_name": "j", "file_sd_configs": [{"files": ["targets.txt"]}]}, "must end in .json, .yml or .yaml"),
    ({"job_name": "j", "static_configs": [{"targets": "a:1"}]}, "static_configs[0].targets"),
    ({"scrape_interval": "1s"}, "job_name is empty"),
])
def test_errors_name_job_and_key(job, words):
    with pytest.raises(BadInput) as e:
        load_jobs(None, [job])
    assert words in e.value.message


def test_duplicate_job_names_across_files(tmp_path):
    prom = tmp_path / "prometheus.yml"
    prom.write_text("global: {scrape_interval: 5s, evaluation_interval: 1m, external_labels: {a: b}}\n"
                    "rule_files: [x.yml]\nscrape_configs:\n  - job_name: node\n  - job_name: other\n")
    jobs = load_jobs({}, [{"job_name": "self"}], [str(prom)])
    assert [(j.job_name, j.scrape_interval_s) for j in jobs] == [("self", 60), ("node", 5), ("other", 5)]
    with pytest.raises(BadInput, match="multiple scrape configs with job name 'node'"):
        load_jobs({}, [{"job_name": "node"}], [str(prom)])


def test_kubernetes_sd_configs_and_relative_kubeconfig(tmp_path):
    prom = tmp_path / "conf" / "prometheus.yml"
    prom.parent.mkdir()
    prom.write_text("scrape_configs:\n  - job_name: pods\n    kubernetes_sd_configs:\n"
                    "      - {role: pod, kubeconfig_file: kube/config, namespaces: {names: [shop]}}\n"
                    "      - {role: node, kubeconfig_file: /abs/config}\n")
    inline = [{"job_name": "eps", "kubernetes_sd_configs": [{"role": "endpointslice", "kubeconfig_file": "k.yaml"}]}]
    eps, pods = load_jobs({}, inline, [str(prom)], base_dir=str(tmp_path / "cfgdir"))
    assert [(sd.role, sd.kubeconfig_file, sd.namespaces) for sd in pods.kubernetes_sd_configs] == [
        ("pod", str(prom.parent / "kube/config"), ("shop",)), ("node", "/abs/config", ())]
    # the --config file's own jobs: relative to that file's directory; without one, as written
    assert eps.kubernetes_sd_configs[0].kubeconfig_file == str(tmp_path / "cfgdir" / "k.yaml")
    (same,) = load_jobs({}, inline)
    assert same.kubernetes_sd_configs[0].kubeconfig_file == "k.yaml"
    # an api_server's token and TLS files likewise
    (api,) = load_jobs({}, [{"job_name": "api", "kubernetes_sd_configs": [
        {"role": "node", "api_server": "https://k:6443", "bearer_token_file": "token",
         "tls_config": {"ca_file": "ca.crt", "insecure_skip_verify": False}}]}], base_dir="/etc/kms")
    creds = api.kubernetes_sd_configs[0].credentials()
    assert (creds.token_file, creds.ca_file, creds.server) == ("/etc/kms/token", "/etc/kms/ca.crt", "https://k:6443")


def test_job_file_paths_are_relative_to_the_config_file(tmp_path):
    conf = tmp_path / "conf"
    (conf / "tls").mkdir(parents=True)
    for name in ("ca.crt", "client.crt", "client.key"):
        (conf / "tls" / name).write_text("x")
    prom = conf / "prometheus.yml"
    prom.write_text(
        "scrape_configs:\n"
        "  - job_name: app\n"
        "    basic_auth: {username: u, password_file: secrets/pw}\n"
        "    tls_config: {ca_file: tls/ca.crt, cert_file: tls/client.crt, key_file: tls/client.key}\n"
        "    file_sd_configs: [{files: [targets/*.json, /abs/more.yaml]}]\n"
        "  - job_name: token\n"
        "    bearer_token_file: secrets/token\n"
    )
    app, token = load_jobs({}, [], [str(prom)])
    assert app.auth.password_file == str(conf / "secrets/pw")
    assert (app.tls.ca_file, app.tls.cert_file, app.tls.key_file) == tuple(
        str(conf / "tls" / n) for n in ("ca.crt", "client.crt", "client.key"))
    assert app.file_sd_configs[0].files == (str(conf / "targets/*.json"), "/abs/more.yaml")
    assert token.auth.credentials_file == str(conf / "secrets/token")
    # a TLS file missing where the config points is named as Prometheus would find it
    prom.write_text("scrape_configs: [{job_name: x, tls_config: {ca_file: nope.crt}}]\n")
    with pytest.raises(BadInput, match="nope.crt"):
        load_jobs({}, [], [str(prom)])


def test_load_each_leaves_out_only_the_bad_config():
    jobs, errors = load_each([{"job_name": "a"}, {"job_name": "b", "scrape_interval": "never"}, {"job_name": "c"}],
                             {"scrape_interval": "5s"}, "ServiceMonitors")
    assert [(j.job_name, j.scrape_interval_s) for j in jobs] == [("a", 5), ("c", 5)]
    assert list(errors) == ["b"] and "ServiceMonitors: scrape_configs job 'b'.scrape_interval" in errors["b"]


def test_kms_config_file_and_flag(tmp_path):
    prom = tmp_path / "prom.yml"
    prom.write_text("scrape_configs: [{job_name: fromflag, static_configs: [{targets: ['h:1']}]}]\n")
    f = tmp_path / "kms.yaml"
    f.write_text("server: {port: 3300}\nglobal: {scrape_interval: 10s}\n"
                 "scrape_configs:\n  - job_name: inline\n    static_configs: [{targets: ['127.0.0.1:9100']}]\n")
    cfg = load_config(f, {"scrape.config_files": str(prom)}, {})
    assert cfg.server.port == 3300
    assert cfg.scrape.scrape_configs[0]["job_name"] == "inline" and cfg.scrape.global_section == {"scrape_interval": "10s"}
    jobs = load_jobs(cfg.scrape.global_section, cfg.scrape.scrape_configs, cfg.scrape.config_files)
    assert [j.job_name for j in jobs] == ["inline", "fromflag"]
    f.write_text("scrape_configs:\n  - job_name: bad\n    scrape_interval: nope\n")
    with pytest.raises(BadInput, match="job 'bad'.scrape_interval"):
        load_config(f, {}, {})


@pytest.mark.parametrize("seconds, text", [(15, "15s"), (60, "1m"), (90, "1m30s"), (0.5, "500ms"), (3600, "1h"),
                                            (86400, "1d"), (0, "0s")])
def test_fmt_duration(seconds, text):
    assert fmt_duration(seconds) == text


def job(**kw):
    (j,) = load_jobs({"scrape_interval": "15s"}, [{"job_name": "node", **kw}])
    return j


def test_populate_defaults_instance_and_url():
    j = job(params={"module": ["http_2xx", "x"]}, metrics_path="/probe")
    t = populate(j, {"__address__": "h:9100", "__meta_filepath": "/f.json", "env": "dev", "empty": ""})
    assert isinstance(t, Target)
    assert dict(t.labels) == {"instance": "h:9100", "job": "node", "env": "dev"}
    assert t.url == "http://h:9100/probe?module=http_2xx&module=x"
    d = dict(t.discovered)
    assert d["__scrape_interval__"] == "15s" and d["__param_module"] == "http_2xx" and d["__meta_filepath"] == "/f.json"
    assert (t.interval_s, t.timeout_s) == (15, 10)


def test_populate_relabels_address_scheme_path_params_and_interval():
    j = job(relabel_configs=[
        {"source_labels": ["__address__"], "target_label": "__param_target"},
        {"target_label": "__address__", "replacement": "prober:9115"},
        {"target_label": "__scheme__", "replacement": "https"},
        {"target_label": "__metrics_path__", "replacement": "/probe"},
        {"source_labels": ["__param_target"], "target_label": "instance"},
        {"target_label": "__scrape_interval__", "replacement": "30s"},
    ])
    t = populate(j, {"__address__": "example.org"})
    assert t.url == "https://prober:9115/probe?target=example.org"
    assert dict(t.labels) == {"instance": "example.org", "job": "node"}
    assert t.interval_s == 30


def test_populate_drops_and_refuses():
    j = job(relabel_configs=[{"source_labels": ["env"], "regex": "prod", "action": "keep"}])
    d = populate(j, {"__address__": "h:1", "env": "dev"})
    assert isinstance(d, DroppedTarget) and dict(d.discovered)["env"] == "dev"
    with pytest.raises(BadInput, match="no address"):
        populate(job(relabel_configs=[{"action": "labeldrop", "regex": "__address__"}]), {"__address__": "h:1"})
    with pytest.raises(BadInput, match="timeout cannot be greater"):
        populate(job(relabel_configs=[{"target_label": "__scrape_timeout__", "replacement": "1m"}]), {"__address__": "h:1"})


def test_monitor_flags(tmp_path):
    from kms.cli import _REPEATABLE, _UP_FLAGS, build_parser

    args = build_parser().parse_args(["up", "--scrape-kubernetes-monitors", "true", "--scrape-monitor-namespace", "a",
                                      "--scrape-monitor-namespace", "b", "--scrape-monitor-selector", "release=kms",
                                      "--scrape-monitor-role", "endpointslice"])
    overrides = {path: getattr(args, path) for _, path, _, _ in _UP_FLAGS}
    overrides = {p: ",".join(v) if p in _REPEATABLE and v else v for p, v in overrides.items()}
    sc = load_config(None, overrides, {}).scrape
    assert (sc.kubernetes_monitors, sc.monitor_namespaces, sc.monitor_selector, sc.monitor_role) == (
        True, ["a", "b"], "release=kms", "endpointslice")
    with pytest.raises(BadInput, match="scrape.monitor_role"):
        load_config(None, {"scrape.monitor_role": "pod"}, {})
