"""Start-up and footprint (issue 17): the Hyperscan databases are compiled once and loaded from
cache_dir by later runs, with the same records; a damaged or foreign cache entry is compiled
again; cache_dir off keeps nothing; the EAL's TSC calibration is measured from the process's
start, its NUMA and CPU lookups are answered from listings and its --no-huge memory is private;
a small capture runs in under 64 MiB resident."""
import glob
import os
import re
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import SPANFEED, SpanfeedTestCase, capture, scaled, scaled_kb  # noqa: E402

PCAP = capture("http/http-mixed.pcap")


class Startup(SpanfeedTestCase):
    def run_records(self, tmp, name, cache_home, extra=(), cache_directory=None):
        out = os.path.join(tmp, name + ".jsonl")
        env = dict(os.environ, XDG_CACHE_HOME=cache_home)
        env.pop("CACHE_DIRECTORY", None)
        if cache_directory is not None:
            env["CACHE_DIRECTORY"] = cache_directory
        p = subprocess.run([SPANFEED, "--pcap", PCAP, "--job", "records", "--output", f"jsonl:{out}",
                            "--metrics", "off", "-q", "--log-level", "info"] + list(extra),
                           capture_output=True, text=True, timeout=scaled(120), cwd=tmp, env=env)
        self.assertEqual(p.returncode, 0, p.stderr)
        with open(out) as f:
            records = sorted(f.read().splitlines())
        line = [l for l in p.stderr.splitlines() if "hyperscan databases:" in l]
        self.assertEqual(len(line), 1, p.stderr)
        return records, line[0], p.stderr

    def test_databases_are_cached_and_give_the_same_records(self):
        with tempfile.TemporaryDirectory() as tmp:
            cache = os.path.join(tmp, "cache")
            # Signatures + the built-in redaction database: two databases.
            first, line, _ = self.run_records(tmp, "first", cache)
            self.assertIn("0 loaded from cache, 2 compiled, 2 stored", line)
            self.assertGreater(len(first), 0)
            files = sorted(glob.glob(os.path.join(cache, "spanfeed", "hs-*.db")))
            self.assertEqual(len(files), 2, files)
            second, line, _ = self.run_records(tmp, "second", cache)
            self.assertIn("2 loaded from cache, 0 compiled, 0 stored", line)
            self.assertEqual(first, second)
            # Damaged entries (a flipped byte in the database, a truncated file) are compiled again.
            with open(files[0], "r+b") as f:
                f.seek(-100, os.SEEK_END)
                b = f.read(1)
                f.seek(-100, os.SEEK_END)
                f.write(bytes([b[0] ^ 0xFF]))
            with open(files[1], "r+b") as f:
                f.truncate(40)
            third, line, _ = self.run_records(tmp, "third", cache)
            self.assertIn("0 loaded from cache, 2 compiled, 2 stored", line)
            self.assertEqual(first, third)
            fourth, line, _ = self.run_records(tmp, "fourth", cache)
            self.assertIn("2 loaded from cache", line)
            self.assertEqual(first, fourth)
            # Another redaction set is another key: compiled and stored beside the first; the
            # signature database is still loaded.
            conf = os.path.join(tmp, "c.yaml")
            with open(conf, "w") as f:
                f.write("rules:\n  redact_credit_cards: false\n")
            _, line, _ = self.run_records(tmp, "fifth", cache, ["--config", conf])
            self.assertIn("1 loaded from cache, 1 compiled, 1 stored", line)
            self.assertEqual(len(glob.glob(os.path.join(cache, "spanfeed", "hs-*.db"))), 3)

    def test_systemd_cache_directory_comes_first(self):
        # systemd's CacheDirectory= sets CACHE_DIRECTORY (several paths joined by ':': the first is used).
        with tempfile.TemporaryDirectory() as tmp:
            systemd_dir = os.path.join(tmp, "var-cache-spanfeed")
            os.mkdir(systemd_dir)
            xdg = os.path.join(tmp, "xdg")
            _, line, _ = self.run_records(tmp, "sd1", xdg, cache_directory=systemd_dir + ":/nonexistent")
            self.assertIn("0 loaded from cache, 2 compiled, 2 stored", line)
            self.assertEqual(len(glob.glob(os.path.join(systemd_dir, "hs-*.db"))), 2)
            self.assertFalse(os.path.exists(xdg))
            _, line, _ = self.run_records(tmp, "sd2", xdg, cache_directory=systemd_dir)
            self.assertIn("2 loaded from cache, 0 compiled, 0 stored", line)

    def test_cache_dir_off_keeps_nothing(self):
        with tempfile.TemporaryDirectory() as tmp:
            conf = os.path.join(tmp, "c.yaml")
            with open(conf, "w") as f:
                f.write("cache_dir: off\n")
            cache = os.path.join(tmp, "cache")
            records, line, _ = self.run_records(tmp, "off", cache, ["--config", conf])
            self.assertIn("0 loaded from cache, 2 compiled, 0 stored (cache_dir off)", line)
            self.assertFalse(os.path.exists(cache))
            self.assertGreater(len(records), 0)

    def test_eal_shortcuts_and_footprint(self):
        with tempfile.TemporaryDirectory() as tmp:
            out = os.path.join(tmp, "eal.jsonl")
            cache = os.path.join(tmp, "cache")
            self.run_records(tmp, "warm", cache)  # the usual case: databases loaded, not compiled
            env = dict(os.environ, XDG_CACHE_HOME=cache)
            env.pop("CACHE_DIRECTORY", None)
            # meson test sets MALLOC_PERTURB_: glibc then fills every allocation, which makes
            # memory resident that a real run never touches (pools sized for the worst case).
            env.pop("MALLOC_PERTURB_", None)
            with open(os.path.join(tmp, "err"), "w+") as err_file:
                p = subprocess.Popen([SPANFEED, "--pcap", PCAP, "--job", "records", "--output", f"jsonl:{out}",
                                      "--metrics", "off", "-q", "--log-level", "info"],
                                     stdout=subprocess.DEVNULL, stderr=err_file, cwd=tmp, env=env)
                _, status, usage = os.wait4(p.pid, 0)  # this child's own peak RSS
                p.returncode = os.waitstatus_to_exitcode(status)
                err_file.seek(0)
                err = err_file.read()
            self.assertEqual(p.returncode, 0, err)
            eal = [l for l in err.splitlines() if l.startswith("spanfeed: EAL: TSC")]
            self.assertEqual(len(eal), 1, err)
            if "Detected static linkage of DPDK" in err:
                # Measured from the process's start: at least the 2 ms window, no 100 ms sleep.
                window = re.search(r"\(calibrated over ([0-9.]+) ms\)", eal[0])
                self.assertIsNotNone(window, eal[0])
                self.assertGreaterEqual(float(window.group(1)), 2.0, eal[0])
                self.assertIn("memory private", eal[0])
                probes = int(eal[0].split(", ")[1].split()[0])
                self.assertGreater(probes, 0, eal[0])
            self.assertGreater(float(eal[0].split()[3]), 0.1)
            self.assertIn("first-packet", err)
            # Two workers (the default), the built-in redaction, a 46-packet capture, warm cache.
            self.assertLess(usage.ru_maxrss, scaled_kb(64 * 1024), f"peak RSS {usage.ru_maxrss} KiB")

if __name__ == "__main__":
    unittest.main()
