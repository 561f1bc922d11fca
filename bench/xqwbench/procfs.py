"""CPU time and memory from /proc: one process (all its threads) and the whole machine."""
import dataclasses
import os

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
