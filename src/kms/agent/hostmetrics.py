"""The machine's own metrics under node-exporter's names (read from /proc and statvfs), so the
node dashboards written for node-exporter work on an agent's data unchanged.

Families: node_cpu_seconds_total, node_memory_*_bytes (every /proc/meminfo field), node_load1/5/15,
node_network_{receive,transmit}_*_total, node_disk_* (whole disks, not partitions),
node_filesystem_* (node-exporter's default mount point and type exclusions), node_boot_time_seconds,
node_context_switches_total, node_forks_total, node_intr_total, node_procs_running/blocked,
node_time_seconds, node_uname_info.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

from kms.metrics.samples import BatchBuilder, SampleBatch

__all__ = ["HostMetrics"]

_CPU_MODES = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")
_NET_RX = ("bytes", "packets", "errs", "drop", "fifo", "frame", "compressed", "multicast")
_NET_TX = ("bytes", "packets", "errs", "drop", "fifo", "colls", "carrier", "compressed")
# node-exporter's defaults (collector/diskstats, filesystem)
_DISK_EXCLUDE = re.compile(r"^(z?ram|loop|fd|(h|s|v|xv)d[a-z]|nvme\d+n\d+p)\d+$")
_MOUNT_EXCLUDE = re.compile(r"^/(dev|proc|run/credentials/.+|sys|var/lib/docker/.+|var/lib/containers/storage/.+)($|/)")
_FS_EXCLUDE = re.compile(r"^(autofs|binfmt_misc|bpf|cgroup2?|configfs|debugfs|devpts|devtmpfs|fusectl|hugetlbfs|"
                         r"iso9660|mqueue|nsfs|overlay|proc|procfs|pstore|rpc_pipefs|securityfs|selinuxfs|squashfs|"
                         r"erofs|sysfs|tracefs)$")
_SECTOR = 512


def _unescape(field: str) -> str:
    """/proc/mounts escapes spaces and tabs as octal (\\040)."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


class HostMetrics:
    def __init__(self, job: str = "node-exporter", instance: str | None = None, proc: Path = Path("/proc"),
                 extra_labels: dict[str, str] | None = None):
        self.base = {"job": job, "instance": instance or os.uname().nodename, **(extra_labels or {})}
        self.proc = proc
        self.tick = os.sysconf("SC_CLK_TCK")

    def collect(self, now_ms: int | None = None) -> SampleBatch:
        now_ms = int(time.time() * 1000) if now_ms is None else now_ms
        b = BatchBuilder()

        def add(name: str, value: float, **labels: str) -> None:
            ls = tuple(sorted({**self.base, **labels, "__name__": name}.items()))
            b.add(b.series_index(ls), now_ms, float(value))

        for part in (self._stat, self._meminfo, self._loadavg, self._netdev, self._diskstats, self._filesystems):
            try:
                part(add)
            except OSError:  # a missing /proc file (another kernel, a container) leaves that family out
                continue
        u = os.uname()
        try:
            domain = (self.proc / "sys" / "kernel" / "domainname").read_text().strip()
        except OSError:
            domain = "(none)"
        add("node_uname_info", 1, sysname=u.sysname, nodename=u.nodename, release=u.release, version=u.version,
            machine=u.machine, domainname=domain)
        add("node_time_seconds", now_ms / 1000)
        return b.build()

    def _stat(self, add) -> None:
        for line in (self.proc / "stat").read_text().splitlines():
            f = line.split()
            if f[0].startswith("cpu") and f[0] != "cpu":
                for mode, v in zip(_CPU_MODES, f[1:9], strict=False):
                    add("node_cpu_seconds_total", int(v) / self.tick, cpu=f[0][3:], mode=mode)
            elif f[0] == "ctxt":
                add("node_context_switches_total", int(f[1]))
            elif f[0] == "btime":
                add("node_boot_time_seconds", int(f[1]))
            elif f[0] == "processes":
                add("node_forks_total", int(f[1]))
            elif f[0] == "intr":
                add("node_intr_total", int(f[1]))
            elif f[0] == "procs_running":
                add("node_procs_running", int(f[1]))
            elif f[0] == "procs_blocked":
                add("node_procs_blocked", int(f[1]))

    def _meminfo(self, add) -> None:
        for line in (self.proc / "meminfo").read_text().splitlines():
            key, _, rest = line.partition(":")
            f = rest.split()
            if not f:
                continue
            name = re.sub(r"\((.*)\)", r"_\1", key)  # Active(anon) -> Active_anon
            if len(f) > 1 and f[1] == "kB":
                add(f"node_memory_{name}_bytes", int(f[0]) * 1024)
            else:
                add(f"node_memory_{name}", int(f[0]))

    def _loadavg(self, add) -> None:
        f = (self.proc / "loadavg").read_text().split()
        for name, v in zip(("node_load1", "node_load5", "node_load15"), f[:3], strict=True):
            add(name, float(v))

    def _netdev(self, add) -> None:
        for line in (self.proc / "net" / "dev").read_text().splitlines()[2:]:
            dev, _, rest = line.partition(":")
            f = rest.split()
            for direction, names, vals in (("receive", _NET_RX, f[:8]), ("transmit", _NET_TX, f[8:16])):
                for n, v in zip(names, vals, strict=False):
                    add(f"node_network_{direction}_{n}_total", int(v), device=dev.strip())

    def _diskstats(self, add) -> None:
        for line in (self.proc / "diskstats").read_text().splitlines():
            f = line.split()
            if len(f) < 14 or _DISK_EXCLUDE.match(f[2]):
                continue
            dev, s = f[2], [int(x) for x in f[3:14]]
            for name, v in (("reads_completed_total", s[0]), ("reads_merged_total", s[1]),
                            ("read_bytes_total", s[2] * _SECTOR), ("read_time_seconds_total", s[3] / 1000),
                            ("writes_completed_total", s[4]), ("writes_merged_total", s[5]),
                            ("written_bytes_total", s[6] * _SECTOR), ("write_time_seconds_total", s[7] / 1000),
                            ("io_now", s[8]), ("io_time_seconds_total", s[9] / 1000),
                            ("io_time_weighted_seconds_total", s[10] / 1000)):
                add(f"node_disk_{name}", v, device=dev)

    def _filesystems(self, add) -> None:
        seen = set()
        for line in (self.proc / "mounts").read_text().splitlines():
            f = line.split()
            if len(f) < 4:
                continue
            device, mount, fstype = _unescape(f[0]), _unescape(f[1]), f[2]
            if _MOUNT_EXCLUDE.match(mount) or _FS_EXCLUDE.match(fstype) or (device, mount) in seen:
                continue
            seen.add((device, mount))
            labels = {"device": device, "mountpoint": mount, "fstype": fstype}
            try:
                st = os.statvfs(mount)
            except OSError:
                add("node_filesystem_device_error", 1, **labels)
                continue
            add("node_filesystem_device_error", 0, **labels)
            add("node_filesystem_size_bytes", st.f_blocks * st.f_frsize, **labels)
            add("node_filesystem_free_bytes", st.f_bfree * st.f_frsize, **labels)
            add("node_filesystem_avail_bytes", st.f_bavail * st.f_frsize, **labels)
            add("node_filesystem_files", st.f_files, **labels)
            add("node_filesystem_files_free", st.f_ffree, **labels)
            add("node_filesystem_readonly", int("ro" in f[3].split(",")), **labels)
