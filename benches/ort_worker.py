"""A long-lived onnxruntime worker for benches/peers: times session.run inside this process.

Protocol: one request per line on stdin, one reply per line on stdout ("ok ..." or
"err <message>"); fields are separated by tabs. Anything else goes to stderr.

  load<TAB>MODEL<TAB>NAME=PATH.npy...  -> ok<TAB>ORT_VERSION<TAB>RSS_BEFORE_KIB<TAB>LOAD_MS
  outputs<TAB>DIR                        -> ok<TAB>MS<TAB>NAME...   (DIR/<i>.npy, graph order)
  run<TAB>K                              -> ok<TAB>MS...            (K runs, one after another)
  stats                                  -> ok<TAB>PEAK_RSS_KIB
  quit                                   -> (exits)

Each MS is time.perf_counter() around one session.run, in milliseconds. The session has
intra_op_num_threads=2 and onnxruntime's default graph optimizations (all enabled).
RSS figures are this process's (Python and numpy included), from /proc/self/status.
"""

import os
import resource
import sys
import time

import numpy as np
import onnxruntime as ort

THREADS = 2


def status_kib(field):
    """A field of /proc/self/status in KiB, or -1 where there is none."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return -1


def rss_kib():
    """Current resident set size of this process in KiB."""
    return status_kib("VmRSS")


def peak_rss_kib():
    """Peak resident set size of this process in KiB. VmHWM, not getrusage's ru_maxrss: Linux
    carries ru_maxrss over exec, so a child of a large parent would report the parent's size."""
    hwm = status_kib("VmHWM")
    return hwm if hwm >= 0 else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


class Worker:
    def __init__(self):
        self.session = None
        self.feeds = None

    def load(self, model, *pairs):
        feeds = {}
        for p in pairs:
            name, _, path = p.partition("=")
            feeds[name] = np.load(path)
        before = rss_kib()
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = THREADS
        t = time.perf_counter()
        self.session = ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])
        load_ms = (time.perf_counter() - t) * 1e3
        self.feeds = feeds
        return [ort.__version__, str(before), f"{load_ms:.3f}"]

    def outputs(self, folder):
        t = time.perf_counter()
        outs = self.session.run(None, self.feeds)
        ms = (time.perf_counter() - t) * 1e3
        names = [o.name for o in self.session.get_outputs()]
        for i, v in enumerate(outs):
            np.save(os.path.join(folder, f"{i}.npy"), np.ascontiguousarray(v))
        return [f"{ms:.6f}"] + names

    def run(self, k):
        times = []
        for _ in range(int(k)):
            t = time.perf_counter()
            self.session.run(None, self.feeds)
            times.append((time.perf_counter() - t) * 1e3)
        return [f"{ms:.6f}" for ms in times]

    def stats(self):
        return [str(peak_rss_kib())]


def main():
    w = Worker()
    for line in sys.stdin:
        fields = line.rstrip("\n").split("\t")
        cmd, args = fields[0], fields[1:]
        if cmd == "quit":
            break
        try:
            if cmd not in ("load", "outputs", "run", "stats"):
                raise ValueError(f"unknown request '{cmd}'")
            if cmd != "load" and w.session is None:
                raise ValueError("no model loaded")
            reply = getattr(w, cmd)(*args)
            out = "\t".join(["ok"] + reply)
        except Exception as e:  # the reply carries it; the worker stays up
            msg = f"{type(e).__name__}: {e}".replace("\n", " ").replace("\t", " ")
            out = f"err\t{msg}"
        sys.stdout.write(out + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
