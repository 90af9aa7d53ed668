#!/usr/bin/env python3
"""Peak RSS of one process while something else runs: samples /proc/PID/status VmRSS every
INTERVAL ms until SIGTERM / SIGINT (or the process exits), then prints
"samples=N rss_max_kib=X hwm_kib=Y" (VmHWM at the end: the kernel's own peak, which catches
spikes between two samples; reset it first with `echo 5 > /proc/PID/clear_refs`).

usage: rss_peak.py PID [INTERVAL_MS=50] > OUT
"""
import signal
import sys
import time


def field(pid, name):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(name + ":"):
                return int(line.split()[1])
    return 0


def main():
    pid = int(sys.argv[1])
    interval = (float(sys.argv[2]) if len(sys.argv) > 2 else 50.0) / 1000.0
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    signal.signal(signal.SIGINT, lambda *_: stop.append(1))
    peak, n, hwm = 0, 0, 0
    while not stop:
        try:
            peak = max(peak, field(pid, "VmRSS"))
            hwm = field(pid, "VmHWM")
        except OSError:
            break
        n += 1
        time.sleep(interval)
    try:
        peak = max(peak, field(pid, "VmRSS"))
        hwm = field(pid, "VmHWM")
    except OSError:
        pass
    print(f"samples={n} rss_max_kib={peak} hwm_kib={hwm}", flush=True)


if __name__ == "__main__":
    main()
