"""CPU time and memory from /proc: one process (all its threads), the engine's daemons, the containers'
cgroup, and the whole machine."""
import dataclasses
import os
from typing import List, Optional

ENGINE_DAEMONS = ("dockerd", "containerd")
# cgroup v1 (cgroupfs driver): every container's CPU is charged to this parent as well, and stays there
# after the container's own cgroup is gone.
CONTAINERS_CPUACCT = ("/sys/fs/cgroup/cpuacct/docker/cpuacct.usage", "/sys/fs/cgroup/cpu,cpuacct/docker/cpuacct.usage")

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def parse_process_cpu(stat_text: str) -> float:
    """utime + stime in seconds from the text of /proc/PID/stat (the command name may hold spaces)."""
    fields = stat_text[stat_text.rindex(")") + 2:].split()
    # After "pid (comm) ", field 0 is the state; utime and stime are the 14th and 15th fields overall.
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def parse_status_kib(status_text: str, key: str) -> int:
    """A `Key:   1234 kB` line of /proc/PID/status, in KiB; 0 when absent."""
    for line in status_text.splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


@dataclasses.dataclass(frozen=True)
class MachineCpu:
    """Cumulative CPU seconds of every core, from the first line of /proc/stat."""
    busy: float
    total: float

    def __sub__(self, other: "MachineCpu") -> "MachineCpu":
        return MachineCpu(self.busy - other.busy, self.total - other.total)


def parse_machine_cpu(proc_stat_text: str) -> MachineCpu:
    """user, nice, system, idle, iowait, irq, softirq, steal (guest time is already in user)."""
    values = [int(v) for v in proc_stat_text.splitlines()[0].split()[1:9]]
    values += [0] * (8 - len(values))
    user, nice, system, idle, iowait, irq, softirq, steal = values
    busy = user + nice + system + irq + softirq + steal
    return MachineCpu(busy / CLOCK_TICKS, (busy + idle + iowait) / CLOCK_TICKS)


def machine_cpu() -> MachineCpu:
    with open("/proc/stat") as stat:
        return parse_machine_cpu(stat.read())


def process_cpu(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as stat:
        return parse_process_cpu(stat.read())


def process_rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        return parse_status_kib(status.read(), "VmRSS")


def process_peak_rss_kib(pid: int) -> int:
    """VmHWM: the resident set's high-water mark since the process started."""
    with open(f"/proc/{pid}/status") as status:
        return parse_status_kib(status.read(), "VmHWM")


def engine_daemon_pids() -> List[int]:
    """dockerd and containerd (the per-container shims and runc are short-lived; /proc loses their time)."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/comm") as comm:
                if comm.read().strip() in ENGINE_DAEMONS:
                    pids.append(int(entry))
        except OSError:
            continue
    return pids


def containers_cpu() -> Optional[float]:
    """CPU seconds every container has used (the engine's cgroup parent), or None when not cgroup v1."""
    for path in CONTAINERS_CPUACCT:
        try:
            with open(path) as usage:
                return int(usage.read()) / 1e9
        except OSError:
            continue
    return None


@dataclasses.dataclass(frozen=True)
class CpuSnapshot:
    """Where the machine's CPU time went, cumulative: everything, the engine's daemons, the containers, and
    the benchmark's own harness (this driver and the XQueue stand-in), which is nobody's grading cost."""
    machine: MachineCpu
    engine: float
    containers: Optional[float]
    harness: float = 0.0

    def __sub__(self, other: "CpuSnapshot") -> "CpuSnapshot":
        containers = None if self.containers is None or other.containers is None else self.containers - other.containers
        return CpuSnapshot(self.machine - other.machine, self.engine - other.engine, containers,
                           self.harness - other.harness)

    def __add__(self, other: "CpuSnapshot") -> "CpuSnapshot":
        containers = None if self.containers is None or other.containers is None else self.containers + other.containers
        return CpuSnapshot(MachineCpu(self.machine.busy + other.machine.busy, self.machine.total + other.machine.total),
                           self.engine + other.engine, containers, self.harness + other.harness)

    @property
    def graders(self) -> float:
        """Machine CPU without the harness: what grading cost everyone else (watcher or driver, engine,
        runtime, kernel, containers)."""
        return self.machine.busy - self.harness


def own_cpu() -> float:
    times = os.times()
    return times.user + times.system


def cpu_snapshot(daemon_pids: List[int], harness_pids: List[int] = ()) -> CpuSnapshot:
    engine = 0.0
    for pid in daemon_pids:
        try:
            engine += process_cpu(pid)
        except OSError:
            pass  # a daemon that restarted: its new time is not ours to count
    harness = own_cpu()
    for pid in harness_pids:
        try:
            harness += process_cpu(pid)
        except OSError:
            pass
    return CpuSnapshot(machine_cpu(), engine, containers_cpu(), harness)
