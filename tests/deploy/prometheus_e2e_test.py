#!/usr/bin/python3
"""End to end: the real vtaserve, scraped by Debian's Prometheus on loopback.

Starts build/server/vtaserve on a generated ResNet-18 (input 32x32) with the
base deployment's config.pbtxt, and Prometheus with a copy of
deploy/prometheus/prometheus.yml (free ports, 1 s scrape and evaluation, the
shipped rule files). Sends inference requests (and a few malformed ones) over
gRPC, waits for scrapes and rule evaluations, then runs through Prometheus'
HTTP API every PromQL expression of the Grafana dashboard, every recording
rule (its expression and the recorded series), the adapter's HPA query and
the dashboard's variable queries: each must return data. Also checks that
every rule evaluates without error, that the target is up, and that the
server drains and exits 0 on SIGTERM.

Expressions that only a VTA-placed layer can feed (MODELED device time, VTA
cycle counters, fallbacks off the preferred backend) are required only when
the server reports a layer placed on "vta"; otherwise they are listed as not
checked.

  prometheus_e2e_test.py --source-dir SRC --server vtaserve --model-tool
      vtaserve-model [--client vtaserve-client] [--timeout 240]
Prints "N passed, N failed" and exits non-zero on any failure.
"""
import argparse
import ctypes
import glob
import json
import math
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "testing"))
import peer  # noqa: E402  (the peer policy of docs/testing.md)

try:
    import grpc
    import yaml
except ImportError as e:  # a missing peer module: skip, or fail under CI
    peer.require(False, "%s (python3-grpcio, python3-yaml: scripts/setup-debian.sh)" % e)

MODEL = "resnet18"


class Timeout(Exception):
    pass


# ---------------------------------------------------------------------------
# Minimal protobuf wire format (the few KServe v2 messages the test sends).

def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def field_bytes(num, data):
    return varint(num << 3 | 2) + varint(len(data)) + data


def field_str(num, s):
    return field_bytes(num, s.encode())


def packed_int64(num, values):
    return field_bytes(num, b"".join(varint(v & (2**64 - 1)) for v in values))


def decode(buf):
    """{field number: [values]} of one message (varint ints, bytes for LEN)."""
    out, i = {}, 0
    while i < len(buf):
        key, i = read_varint(buf, i)
        num, wt = key >> 3, key & 7
        if wt == 0:
            v, i = read_varint(buf, i)
        elif wt == 2:
            n, i = read_varint(buf, i)
            v, i = buf[i:i + n], i + n
        elif wt == 1:
            v, i = buf[i:i + 8], i + 8
        elif wt == 5:
            v, i = buf[i:i + 4], i + 4
        else:
            raise ValueError("wire type %d" % wt)
        out.setdefault(num, []).append(v)
    return out


def read_varint(buf, i):
    shift = result = 0
    while True:
        b = buf[i]
        i += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, i
        shift += 7


def int64s(values):
    """Repeated int64, packed or not."""
    out = []
    for v in values:
        if isinstance(v, int):
            out.append(v)
        else:
            j = 0
            while j < len(v):
                x, j = read_varint(v, j)
                out.append(x - 2**64 if x >= 2**63 else x)
    return out


def raw(x):
    return x


class Client:
    """grpc.health.v1 and the KServe v2 calls the test needs."""

    def __init__(self, port):
        self.channel = grpc.insecure_channel("127.0.0.1:%d" % port)

    def call(self, method, request, timeout=30):
        fn = self.channel.unary_unary(method, request_serializer=raw, response_deserializer=raw)
        return fn(request, timeout=timeout)

    def health(self, service=""):
        resp = self.call("/grpc.health.v1.Health/Check", field_str(1, service) if service else b"", 5)
        return decode(resp).get(1, [0])[0]  # 1 = SERVING, 2 = NOT_SERVING

    def metadata(self, model):
        resp = decode(self.call("/inference.GRPCInferenceService/ModelMetadata", field_str(1, model)))
        inputs = []
        for t in resp.get(4, []):
            f = decode(t)
            inputs.append((f[1][0].decode(), f[2][0].decode(), int64s(f.get(3, []))))
        return inputs

    def infer(self, model, name, datatype, shape, data):
        tensor = field_str(1, name) + field_str(2, datatype) + packed_int64(3, shape)
        req = field_str(1, model) + field_bytes(5, tensor) + field_bytes(7, data)
        return self.call("/inference.GRPCInferenceService/ModelInfer", req)

    def close(self):
        self.channel.close()


ELEMENT_BYTES = {"FP32": 4, "UINT8": 1, "INT8": 1, "INT32": 4, "FP16": 2, "INT64": 8}


# ---------------------------------------------------------------------------
# Processes: die with the test (PR_SET_PDEATHSIG), stopped on every exit path.

def die_with_parent():
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


class Proc:
    def __init__(self, name, argv, log_path):
        self.name = name
        self.log_path = log_path
        self.lines = []
        self.log = open(log_path, "w")
        self.p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL, preexec_fn=die_with_parent, text=True)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.p.stdout:
            self.lines.append(line)
            self.log.write(line)
            self.log.flush()

    def wait_for_line(self, pattern, deadline):
        rx = re.compile(pattern)
        while time.monotonic() < deadline:
            for line in list(self.lines):
                m = rx.search(line)
                if m:
                    return m
            if self.p.poll() is not None:
                time.sleep(0.2)
                raise RuntimeError("%s exited with %s before printing %r:\n%s" %
                                   (self.name, self.p.returncode, pattern, self.tail()))
            time.sleep(0.05)
        raise Timeout("%s did not print %r" % (self.name, pattern))

    def tail(self, n=30):
        return "".join(self.lines[-n:])

    def stop(self, sig=signal.SIGTERM, grace=10):
        if self.p.poll() is None:
            self.p.send_signal(sig)
            try:
                self.p.wait(grace)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait(5)
        self.reader.join(2)
        self.log.close()
        return self.p.returncode


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------------------
# Prometheus HTTP API.

class Prom:
    def __init__(self, port):
        self.base = "http://127.0.0.1:%d" % port

    def get(self, path, params=None, timeout=10):
        url = self.base + path + ("?" + urllib.parse.urlencode(params, doseq=True) if params else "")
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return json.loads(r.read().decode()) if path.startswith("/api/") else r.read().decode()

    def query(self, expr):
        resp = self.get("/api/v1/query", {"query": expr})
        if resp.get("status") != "success":
            raise RuntimeError("query failed: %s" % resp)
        data = resp["data"]
        if data["resultType"] == "scalar":
            return [{"metric": {}, "value": data["result"]}]
        return data["result"]

    def ready(self):
        try:
            self.get("/-/ready", timeout=2)
            return True
        except (urllib.error.URLError, ConnectionError, OSError):
            return False


def substitute(expr, values):
    """Grafana variables and macros in `expr`."""
    for name, value in values.items():
        expr = expr.replace("${%s}" % name, value).replace("$" + name, value)
    return expr


def finite_values(result):
    vals = []
    for s in result:
        v = float(s["value"][1])
        if math.isfinite(v):
            vals.append(v)
    return vals


# ---------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--source-dir", required=True)
    ap.add_argument("--server", required=True)
    ap.add_argument("--model-tool", required=True)
    ap.add_argument("--client", default="")
    ap.add_argument("--prometheus", default=shutil.which("prometheus") or "")
    ap.add_argument("--require-vta", action="store_true",
                    help="the server must place layers on vta; every VTA expression is required")
    ap.add_argument("--timeout", type=int, default=240, help="hard limit, seconds")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    args = ap.parse_args()

    def on_alarm(signum, frame):
        raise Timeout("hard timeout of %d s reached" % args.timeout)
    signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(args.timeout)
    # ctest or a user stopping the test still cleans up (finally below).
    signal.signal(signal.SIGTERM, lambda s, f: sys.exit(143))

    peer.require(args.prometheus and os.path.exists(args.prometheus),
                 "prometheus not found (scripts/setup-debian.sh installs Debian's package)")
    work = tempfile.mkdtemp(prefix="vtaserve-deploy-e2e-")
    procs = []
    results = []  # (ok, name, detail)
    started = time.monotonic()

    def check(ok, name, detail=""):
        results.append((bool(ok), name, detail))
        print("%s %s%s" % ("PASS" if ok else "FAIL", name, (": " + detail) if detail else ""), flush=True)

    try:
        for exe in (args.server, args.model_tool):
            if not os.access(exe, os.X_OK):
                raise RuntimeError("%s is not built" % exe)
        src = os.path.abspath(args.source_dir)

        # Model repository: generated ResNet-18 at 32x32, the base config.pbtxt.
        repo = os.path.join(work, "models")
        os.makedirs(os.path.join(repo, MODEL, "1"))
        gen = subprocess.run([args.model_tool, "resnet18", "--format", "qdq", "--input-size", "32",
                              "--num-classes", "10", "--softmax", "-o", os.path.join(repo, MODEL, "1", "model.onnx")],
                             capture_output=True, text=True, timeout=120)
        if gen.returncode != 0:
            raise RuntimeError("vtaserve-model failed: %s" % gen.stderr)
        shutil.copy(os.path.join(src, "deploy", "k8s", "base", "models", MODEL + ".pbtxt"),
                    os.path.join(repo, MODEL, "config.pbtxt"))

        # Server on free ports (port 0; the bound ports are logged).
        server = Proc("vtaserve", [args.server, "--model-repository=" + repo, "--grpc-port=0",
                                   "--metrics-port=0", "--exit-timeout-secs=5", "--cpu-threads=1"],
                      os.path.join(work, "vtaserve.log"))
        procs.append(server)
        m = server.wait_for_line(r"serving gRPC on port (\d+), metrics on port (\d+)", time.monotonic() + 60)
        grpc_port, metrics_port = int(m.group(1)), int(m.group(2))
        client = Client(grpc_port)
        deadline = time.monotonic() + 120
        status = 0
        while time.monotonic() < deadline:
            try:
                status = client.health("")
            except grpc.RpcError:
                status = 0
            if status == 1:
                break
            if server.p.poll() is not None:
                raise RuntimeError("vtaserve exited:\n" + server.tail())
            time.sleep(0.2)
        check(status == 1, "server health \"\" is SERVING after the model loads",
              "%.1f s after start" % (time.monotonic() - started))
        if status != 1:
            raise RuntimeError("server never became ready:\n" + server.tail())
        check(client.health(MODEL) == 1, "per-model health %r is SERVING" % MODEL)

        # The Dockerfile's HEALTHCHECK command (its port made ours) and one
        # inference through the client, against the real server.
        if args.client and os.path.isfile(args.client) and os.access(args.client, os.X_OK):
            with open(os.path.join(src, "docker", "Dockerfile")) as f:
                m = re.search(r"^\s*CMD\s+(\[\"vtaserve-client\".*\])\s*$", f.read(), re.M)
            hc_cmd = [a.replace(":8001", ":%d" % grpc_port) for a in json.loads(m.group(1))]
            hc = subprocess.run([args.client] + hc_cmd[1:], capture_output=True, text=True, timeout=30)
            check(hc.returncode == 0, "the image HEALTHCHECK command (%s) exits 0" % " ".join(hc_cmd[1:]),
                  (hc.stdout + hc.stderr).strip()[-200:])
            inf = subprocess.run([args.client, "infer", "--server=127.0.0.1:%d" % grpc_port, "--model=" + MODEL],
                                 capture_output=True, text=True, timeout=60)
            check(inf.returncode == 0 and "latency" in inf.stdout, "vtaserve-client infer succeeds",
                  " ".join((inf.stdout + inf.stderr).strip().splitlines()[-1:]))
        else:
            print("NOTE vtaserve-client not built: the HEALTHCHECK command was not run", flush=True)

        # Prometheus with the shipped config, adapted: loopback target, 1 s.
        with open(os.path.join(src, "deploy", "prometheus", "prometheus.yml")) as f:
            cfg = yaml.safe_load(f)
        jobs = [j for j in cfg["scrape_configs"] if j["job_name"] == "vtaserve"]
        check(len(jobs) == 1, "prometheus.yml has one vtaserve job")
        cfg["global"].update({"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"})
        rule_dir = os.path.join(src, "deploy", "prometheus")
        cfg["rule_files"] = [os.path.join(rule_dir, r) for r in cfg["rule_files"]]
        for j in jobs:
            for sc in j["static_configs"]:
                sc["targets"] = ["127.0.0.1:%d" % metrics_port]
        cfg_path = os.path.join(work, "prometheus.yml")
        with open(cfg_path, "w") as f:
            yaml.safe_dump(cfg, f)

        prom = None
        for attempt in range(3):
            port = free_port()
            p = Proc("prometheus", [args.prometheus, "--config.file=" + cfg_path,
                                    "--storage.tsdb.path=" + os.path.join(work, "tsdb%d" % attempt),
                                    "--web.listen-address=127.0.0.1:%d" % port,
                                    "--storage.tsdb.retention.time=1h", "--log.level=warn"],
                     os.path.join(work, "prometheus%d.log" % attempt))
            procs.append(p)
            api = Prom(port)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and p.p.poll() is None and not api.ready():
                time.sleep(0.2)
            if api.ready():
                prom = api
                break
            p.stop()
        if prom is None:
            raise RuntimeError("prometheus did not start:\n" + procs[-1].tail())

        # Traffic: good requests and malformed ones (wrong shape), in two
        # bursts a few scrapes apart so every rate has increments.
        inputs = client.metadata(MODEL)
        check(len(inputs) == 1, "ModelMetadata lists one input", repr(inputs))
        name, dtype, shape = inputs[0]
        shape = [1 if d < 0 else d for d in shape]
        nbytes = ELEMENT_BYTES[dtype] * math.prod(shape)
        payload = bytes((i * 37) & 0x3F for i in range(nbytes))  # small, valid for every dtype

        def burst(good, bad):
            ok = errors = 0
            for _ in range(good):
                client.infer(MODEL, name, dtype, shape, payload)
                ok += 1
            for _ in range(bad):
                try:
                    client.infer(MODEL, name, dtype, shape[:-1] + [shape[-1] + 1], payload)
                except grpc.RpcError as e:
                    if e.code() == grpc.StatusCode.INVALID_ARGUMENT:
                        errors += 1
            return ok, errors

        def wait_for(expr, why, seconds=30):
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline:
                if prom.query(expr):
                    return True
                time.sleep(0.5)
            raise Timeout("no data for %s (%s)" % (expr, why))

        ok1, err1 = burst(8, 2)
        check(ok1 == 8 and err1 == 2, "burst 1: 8 requests OK, 2 malformed ones INVALID_ARGUMENT",
              "%d ok, %d invalid" % (ok1, err1))
        wait_for('vtaserve_requests_total{model="%s",code="OK"} >= 8' % MODEL, "first burst scraped")
        ok2, err2 = burst(8, 2)
        check(ok2 == 8 and err2 == 2, "burst 2: 8 requests OK, 2 malformed ones INVALID_ARGUMENT")
        wait_for('vtaserve_requests_total{model="%s",code="OK"} >= 16' % MODEL, "second burst scraped")
        # Recording rules evaluated after the second scrape.
        wait_for('model:vtaserve_request_errors:ratio_rate5m{model="%s"} > 0' % MODEL, "rules evaluated")
        time.sleep(2.5)

        targets = prom.get("/api/v1/targets")["data"]["activeTargets"]
        check(len(targets) == 1 and targets[0]["health"] == "up", "the vtaserve target is up",
              json.dumps([(t["scrapeUrl"], t["health"], t["lastError"]) for t in targets]))

        # Every rule evaluates without error.
        groups = prom.get("/api/v1/rules")["data"]["groups"]
        rules = [r for g in groups for r in g["rules"]]
        bad = [(r["name"], r.get("lastError")) for r in rules if r.get("health") != "ok"]
        check(rules and not bad, "all %d rules loaded and evaluate without error" % len(rules), repr(bad))

        vta_serving = bool(prom.query('vtaserve_layer_placement_info{backend="vta"}'))
        if args.require_vta:
            check(vta_serving, "the server places layers on vta (--require-vta)")
        print("NOTE layers placed on vta: %s" % ("yes" if vta_serving else "none (no vta backend in this server)"),
              flush=True)
        vta_counters = vta_only_counters(src)

        def needs_vta(expr):
            names = set(re.findall(r"\b[\w:]+\b", expr))
            if any(n.startswith("vtaserve_layer_modeled_device_seconds") for n in names):
                return True
            if names & {"vtaserve_cpu_fallback_total", "layer:vtaserve_cpu_fallback:rate5m"}:
                return True
            return any(n == "vtaserve_layer_%s_total" % c for n in names for c in vta_counters)

        def require(expr, label):
            try:
                result = prom.query(expr)
                err = ""
            except (RuntimeError, urllib.error.HTTPError) as e:
                result, err = [], str(e)
            finite = finite_values(result)
            if not result and needs_vta(expr) and not vta_serving and not args.require_vta:
                print("NOT CHECKED (needs a layer on vta) %s: %s" % (label, expr), flush=True)
                return
            check(bool(result) and bool(finite), "%s returns data" % label,
                  err or "%d series, e.g. %s" % (len(result), finite[:1] if finite else "no finite value"))
            if not result:
                print("      expr: %s" % expr, flush=True)

        # Dashboard variables first: they feed the panel queries.
        with open(os.path.join(src, "deploy", "grafana", "vtaserve-dashboard.json")) as f:
            dash = json.load(f)
        values = {"__rate_interval": "1m", "__interval": "15s", "__range": "5m", "datasource": "prometheus"}
        for var in dash["templating"]["list"]:
            if var["type"] != "query":
                continue
            m = re.match(r"^label_values\((.*),\s*(\w+)\)$", var["definition"])
            selector = substitute(m.group(1), {"model": MODEL})
            got = prom.get("/api/v1/label/%s/values" % m.group(2), {"match[]": selector})["data"]
            check(bool(got), "dashboard variable $%s has values" % var["name"], ", ".join(got[:4]))
        values.update({"model": MODEL, "layer": ".*"})

        for panel in dash["panels"]:
            for t in panel.get("targets", []):
                require(substitute(t["expr"], values), "dashboard panel %r query %s" % (panel["title"], t["refId"]))

        for path in sorted(glob.glob(os.path.join(rule_dir, "rules", "*.yml"))):
            with open(path) as f:
                for g in yaml.safe_load(f)["groups"]:
                    for r in g["rules"]:
                        if "record" in r:
                            require(r["expr"], "recording rule %s (expression)" % r["record"])
                            require(r["record"], "recorded series %s" % r["record"])

        # A few values, not just presence: 4 of the 20 (or 21) requests failed.
        ratio = finite_values(prom.query('model:vtaserve_request_errors:ratio_rate5m{model="%s"}' % MODEL))
        check(ratio and 0.1 <= ratio[0] <= 0.3, "recorded error ratio is near 4/20", repr(ratio))
        share = finite_values(prom.query('model:vtaserve_layer_vta_time:ratio_rate5m{model="%s"}' % MODEL))
        check(share and (share[0] > 0) == vta_serving, "VTA share of layer time is > 0 exactly when layers run on vta",
              repr(share))

        with open(os.path.join(src, "deploy", "k8s", "prometheus-adapter", "adapter-config.yaml")) as f:
            adapter = yaml.safe_load(yaml.safe_load(f)["data"]["config.yaml"])
        for r in adapter["rules"]:
            q = r["metricsQuery"].replace("<<.LabelMatchers>>", 'job="vtaserve"').replace("<<.GroupBy>>", "instance")
            require(q, "adapter metric %s" % r["name"]["as"])
            series = prom.get("/api/v1/series", {"match[]": r["seriesQuery"].split("{")[0]})["data"]
            check(bool(series), "adapter seriesQuery metric %s exists" % r["seriesQuery"].split("{")[0])

        # Drain: SIGTERM, NOT_SERVING, exit 0 within the exit timeout.
        server.p.send_signal(signal.SIGTERM)
        t0 = time.monotonic()
        try:
            rc = server.p.wait(20)
        except subprocess.TimeoutExpired:
            rc = None
        check(rc == 0, "vtaserve exits 0 on SIGTERM", "rc=%s after %.1f s" % (rc, time.monotonic() - t0))
        client.close()
    except (Timeout, RuntimeError, OSError, grpc.RpcError, subprocess.SubprocessError) as e:
        check(False, "run completed", "%s: %s" % (type(e).__name__, e))
        for p in procs:
            print("---- %s log tail ----\n%s" % (p.name, p.tail()), flush=True)
    finally:
        signal.alarm(0)
        for p in reversed(procs):
            p.stop(grace=10)
        if args.keep:
            print("work directory kept: %s" % work)
        else:
            shutil.rmtree(work, ignore_errors=True)

    passed = sum(1 for ok, _, _ in results if ok)
    failed = len(results) - passed
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed or not results else 0


def vta_only_counters(src):
    """Counter names the VTA backend reports and the CPU backend does not."""
    def names(folder):
        out = set()
        for path in glob.glob(os.path.join(src, folder, "**", "*.cc"), recursive=True):
            with open(path) as f:
                text = f.read()
            out.update(re.findall(r'counters\["(\w+)"\]', text))
            for block in re.findall(r"counters\s*=\s*\{(.*?)\};", text, re.S):
                out.update(re.findall(r'\{\s*"(\w+)"\s*,', block))
        return out
    return names("vta_backend") - names("cpu_backend")


if __name__ == "__main__":
    sys.exit(main())
