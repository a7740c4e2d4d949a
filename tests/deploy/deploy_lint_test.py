#!/usr/bin/python3
"""Static checks of docker/, deploy/k8s, deploy/prometheus and deploy/grafana.

No Docker engine or Kubernetes API server is needed: the Dockerfile is parsed
and cross-checked against the repository; manifests are parsed (python3-yaml)
and, when kubectl is installed, rendered with `kubectl kustomize` and checked
as rendered; Prometheus files go through promtool (check config, test rules).
Cross-checks read the server's own sources for flag names, metric names,
backend counter names, first-conv strategies and VTA presets.

  deploy_lint_test.py --source-dir /work/main [unittest args]
"""
import argparse
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "testing"))
import peer  # noqa: E402  (the peer policy of docs/testing.md)

try:
    import yaml
except ImportError as e:
    peer.require(False, "%s (python3-yaml: scripts/setup-debian.sh)" % e)

SOURCE_DIR = None  # set in main()


def src(*parts):
    return os.path.join(SOURCE_DIR, *parts)


def read(*parts):
    with open(src(*parts), encoding="utf-8") as f:
        return f.read()


# ---------------------------------------------------------------------------
# Facts read from the server's sources.

def server_flags():
    """ABSL_FLAG names of server/main.cc (with underscores)."""
    return set(re.findall(r"ABSL_FLAG\(\s*[\w:<>]+\s*,\s*(\w+)\s*,", read("server", "main.cc")))


def tool_flags(tool):
    path = src("tools", tool, "main.cc")
    with open(path, encoding="utf-8") as f:
        return set(re.findall(r"ABSL_FLAG\(\s*[\w:<>]+\s*,\s*(\w+)\s*,", f.read()))


def cmake_binaries():
    """Names of every vtaserve_cc_binary / add_executable in the tree."""
    names = set()
    paths = []
    for top in ("server", "tools", "engine", "cpu_backend", "vta_backend"):
        paths += glob.glob(src(top, "**", "CMakeLists.txt"), recursive=True)
    for path in paths:
        with open(path, encoding="utf-8") as f:
            text = f.read()
        names.update(re.findall(r"vtaserve_cc_binary\(\s*NAME\s+([\w-]+)", text))
        names.update(re.findall(r"add_executable\(\s*([\w-]+)", text))
    return names


def metric_families():
    """Metric family names registered in server/metrics.cc, by type."""
    text = read("server", "metrics.cc")
    families = {}
    for kind, name in re.findall(
            r'Build(Counter|Histogram|Gauge)\(\)\s*\.Name\("(\w+)"\)', text):
        families[name] = kind
    return families


def backend_counter_names():
    """LayerTiming counter names the backends report (string literals)."""
    names = set()
    for path in glob.glob(src("cpu_backend", "**", "*.cc"), recursive=True) + \
            glob.glob(src("vta_backend", "**", "*.cc"), recursive=True):
        with open(path, encoding="utf-8") as f:
            text = f.read()
        names.update(re.findall(r'counters\["(\w+)"\]', text))
        for block in re.findall(r"counters\s*=\s*\{(.*?)\};", text, re.S):
            names.update(re.findall(r'\{\s*"(\w+)"\s*,', block))
    return names


def known_metric_names():
    """Every series name the server can export."""
    names = set()
    for name, kind in metric_families().items():
        if kind == "Histogram":
            names.update({name + "_bucket", name + "_sum", name + "_count"})
        else:
            names.add(name)
    for counter in backend_counter_names():
        names.add("vtaserve_layer_%s_total" % re.sub(r"[^A-Za-z0-9]", "_", counter))
    return names


def first_conv_strategies():
    text = read("engine", "model_config.h")
    block = re.search(r"kFirstConvStrategies\[\]\s*=\s*\{(.*?)\};", text, re.S).group(1)
    return set(re.findall(r'"(\w+)"', block))


def known_backends():
    text = read("engine", "model_config.h")
    block = re.search(r"kKnownBackends\[\]\s*=\s*\{(.*?)\};", text, re.S).group(1)
    return set(re.findall(r'"(\w+)"', block))


def vta_presets():
    text = read("vta_backend", "config.cc")
    block = re.search(r"VtaConfigPreset\(absl::string_view name\)\s*\{(.*?)\n\}", text, re.S)
    return set(re.findall(r'name == "(\w+)"', block.group(1)))


def parse_flag_args(args):
    """{'grpc_port': '8001', ...} from ['--grpc-port=8001', ...]."""
    out = {}
    for a in args:
        m = re.match(r"^--([\w-]+)(?:=(.*))?$", a)
        assert m, "argument %r is not a --flag[=value]" % a
        out[m.group(1).replace("-", "_")] = m.group(2) if m.group(2) is not None else "true"
    return out


def parse_pbtxt(text):
    """The scalar and list fields of a flat config.pbtxt (no nested messages)."""
    fields = {}
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        m = re.match(r"^(\w+)\s*:\s*(.+)$", line)
        assert m, "unexpected config line %r" % line
        key, value = m.group(1), m.group(2).strip()
        if value.startswith("["):
            fields[key] = re.findall(r'"([^"]*)"', value)
        elif value.startswith('"'):
            fields[key] = value.strip('"')
        else:
            fields[key] = int(value)
    return fields


# ---------------------------------------------------------------------------
# Dockerfile.

def parse_dockerfile(text):
    """[(instruction, argument string)] with continuations joined."""
    out, pending = [], ""
    for raw in text.splitlines():
        line = raw.rstrip()
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if pending and line.lstrip().startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line = pending + line
        pending = ""
        instr, _, rest = line.strip().partition(" ")
        out.append((instr.upper(), rest.strip()))
    assert not pending, "Dockerfile ends inside a continued line"
    return out


def split_stages(instructions):
    """{'args': {...}, 'stages': [{'base', 'name', 'body': [...]}, ...]}."""
    args, stages = {}, []
    for instr, rest in instructions:
        if instr == "ARG" and not stages:
            k, _, v = rest.partition("=")
            args[k] = v
        elif instr == "FROM":
            m = re.match(r"^(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?$", rest, re.I)
            assert m, "bad FROM %r" % rest
            base = re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda g: args.get(g.group(1) or g.group(2), ""), m.group(1))
            stages.append({"base": base, "name": m.group(2), "body": []})
        else:
            assert stages or instr == "ARG", "%s before FROM" % instr
            stages[-1]["body"].append((instr, rest))
    return {"args": args, "stages": stages}


def dockerignore_patterns():
    path = src("docker", "Dockerfile.dockerignore")
    pats = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if line and not line.startswith("#"):
                pats.append(line)
    return pats


def ignored(rel, patterns):
    import fnmatch
    parts = rel.split("/")
    for p in patterns:
        p = p.lstrip("/")
        if p.startswith("**/"):
            if any(fnmatch.fnmatch(x, p[3:]) for x in parts):
                return True
        elif fnmatch.fnmatch(rel, p) or fnmatch.fnmatch(parts[0], p):
            return True
    return False


class DockerfileTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.text = read("docker", "Dockerfile")
        cls.df = split_stages(parse_dockerfile(cls.text))
        cls.stages = cls.df["stages"]
        cls.by_name = {s["name"]: s for s in cls.stages}

    def body(self, stage, instr):
        return [rest for i, rest in self.by_name[stage]["body"] if i == instr]

    def test_multi_stage_on_debian12(self):
        self.assertEqual([s["name"] for s in self.stages], ["build", "runtime"])
        for s in self.stages:
            self.assertEqual(s["base"], "debian:12", s["name"])

    def test_build_stage_uses_the_make_setup_script(self):
        self.assertTrue(os.path.isfile(src("scripts", "setup-debian.sh")))
        self.assertIn("setup:", read("Makefile"))
        self.assertIn("scripts/setup-debian.sh", read("Makefile"))
        runs = " ".join(self.body("build", "RUN"))
        self.assertIn("bash scripts/setup-debian.sh", runs)

    def test_build_stage_builds_existing_targets(self):
        builds = [r for r in self.body("build", "RUN") if "--target" in r]
        self.assertEqual(len(builds), 1)
        m = re.search(r"--target\s+([\w\s-]+?)\s*(?:&&|$)", builds[0])
        self.assertIsNotNone(m)
        targets = m.group(1).split()
        self.assertEqual(set(targets), {"vtaserve", "vtaserve-client", "vtaserve-model"})
        known = cmake_binaries()
        for t in targets:
            self.assertIn(t, known, "no CMake target %s in the tree" % t)

    def test_model_generation_uses_valid_flags(self):
        runs = " ".join(self.body("build", "RUN"))
        m = re.search(r"vtaserve-model\s+(resnet18)\s+(.*?)-o\s+(\S+)", runs)
        self.assertIsNotNone(m, "no vtaserve-model resnet18 ... -o PATH")
        flags = tool_flags("vtaserve-model")
        for name in re.findall(r"--([\w-]+)", m.group(2)):
            self.assertIn(name.replace("-", "_"), flags)
        self.assertTrue(m.group(3).endswith("/resnet18/1/model.onnx"))

    def test_runtime_stage_runs_as_non_root(self):
        users = self.body("runtime", "USER")
        self.assertTrue(users, "runtime stage sets no USER")
        user = users[-1].split(":")[0]
        self.assertNotIn(user, ("root", "0"))
        # The runtime USER comes after every RUN (a later RUN would run as it).
        body = self.by_name["runtime"]["body"]
        last_user = max(i for i, (ins, _) in enumerate(body) if ins == "USER")
        self.assertFalse([ins for ins, _ in body[last_user:] if ins == "RUN"])
        self.assertIn("--uid %s" % user, " ".join(self.body("runtime", "RUN")))

    def test_exposes_grpc_and_metrics_ports(self):
        ports = " ".join(self.body("runtime", "EXPOSE")).split()
        self.assertEqual(sorted(ports), ["8001", "8002"])
        cmd = json.loads(self.body("runtime", "CMD")[-1])
        flags = parse_flag_args(cmd)
        self.assertEqual(flags["grpc_port"], "8001")
        self.assertEqual(flags["metrics_port"], "8002")
        self.assertTrue(set(flags) <= server_flags(), set(flags) - server_flags())
        self.assertEqual(json.loads(self.body("runtime", "ENTRYPOINT")[-1]), ["vtaserve"])

    def test_healthcheck_uses_client_health_command(self):
        hc = self.body("runtime", "HEALTHCHECK")
        self.assertEqual(len(hc), 1)
        m = re.search(r"CMD\s+(\[.*\])", hc[0])
        self.assertIsNotNone(m, "HEALTHCHECK needs an exec-form CMD")
        cmd = json.loads(m.group(1))
        self.assertEqual(cmd[:2], ["vtaserve-client", "health"])
        self.assertTrue(any("8001" in a for a in cmd[2:]))
        client_dir = src("tools", "vtaserve-client")
        if os.path.isdir(client_dir):
            text = "".join(open(p, encoding="utf-8").read()
                           for p in glob.glob(os.path.join(client_dir, "*.cc")))
            self.assertIn('"health"', text, "vtaserve-client has no health command")
            for a in cmd[2:]:
                name = re.match(r"--([\w-]+)", a).group(1)
                known = (re.search(r'Flag\(flags,\s*"%s"' % re.escape(name), text) or
                         re.search(r"ABSL_FLAG\([^,]+,\s*%s\s*," % name.replace("-", "_"), text))
                self.assertTrue(known, "vtaserve-client reads no flag --%s" % name)

    def test_copy_sources_exist(self):
        patterns = dockerignore_patterns()
        produced = {}
        for stage in self.stages:
            produced[stage["name"]] = " ".join(self.body(stage["name"], "RUN"))
        for stage in self.stages:
            for rest in self.body(stage["name"], "COPY"):
                words = rest.split()
                opts = [w for w in words if w.startswith("--")]
                paths = [w for w in words if not w.startswith("--")]
                sources = paths[:-1]
                self.assertTrue(sources, rest)
                frm = [o.split("=", 1)[1] for o in opts if o.startswith("--from=")]
                for s in sources:
                    if frm:
                        self.assertIn(frm[0], produced, "COPY from unknown stage %s" % frm[0])
                        # The source is made by a RUN of that stage.
                        top = "/".join(s.rstrip("/").split("/")[:3])
                        self.assertIn(top, produced[frm[0]], "%s not made in stage %s" % (s, frm[0]))
                    elif s == ".":
                        continue
                    else:
                        self.assertTrue(os.path.exists(src(s)), "COPY source %s missing" % s)
                        self.assertFalse(ignored(s, patterns), "%s is dockerignored" % s)
        # Files the build stage reads from the context after COPY . .
        runs = produced["build"]
        for rel in re.findall(r"\b((?:docker|deploy|scripts)/[\w./-]+)", runs):
            self.assertTrue(os.path.exists(src(rel)), rel)
            self.assertFalse(ignored(rel, patterns), rel)

    def test_runtime_stage_installs_no_dev_packages(self):
        runs = " ".join(self.body("runtime", "RUN"))
        self.assertNotRegex(runs, r"\S+-dev\b")
        self.assertIn("runtime-packages.txt", runs)
        self.assertNotIn("setup-debian.sh", runs)
        self.assertNotIn("cmake", runs)

    def test_runtime_deps_lists_runtime_packages_of_built_binaries(self):
        binaries = [b for b in BINARIES if b and os.path.isfile(b)]
        if not binaries:
            self.skipTest("no built binaries given (--binary)")
        out = subprocess.run(["bash", src("docker", "runtime-deps.sh")] + binaries,
                             capture_output=True, text=True, timeout=120)
        self.assertEqual(out.returncode, 0, out.stderr)
        pkgs = out.stdout.split()
        self.assertIn("libc6", pkgs)
        self.assertFalse([p for p in pkgs if p.endswith("-dev")], pkgs)
        if any(b.endswith("vtaserve") for b in binaries):
            for needed in ("libgrpc++1.51", "libprotobuf32", "libabsl20220623"):
                self.assertIn(needed, pkgs)

    def test_runtime_deps_rejects_a_missing_binary(self):
        out = subprocess.run(["bash", src("docker", "runtime-deps.sh"), "/nonexistent/vtaserve"],
                             capture_output=True, text=True, timeout=60)
        self.assertNotEqual(out.returncode, 0)


# ---------------------------------------------------------------------------
# Kubernetes manifests.

K8S = None  # deploy/k8s


def load_yaml_docs(path):
    with open(path, encoding="utf-8") as f:
        return [d for d in yaml.safe_load_all(f) if d is not None]


def kustomize(path):
    out = subprocess.run([KUBECTL, "kustomize", path], capture_output=True, text=True, timeout=120)
    if out.returncode != 0:
        raise AssertionError("kubectl kustomize %s failed: %s" % (path, out.stderr))
    return [d for d in yaml.safe_load_all(out.stdout) if d is not None]


def matches(selector, labels):
    return all(labels.get(k) == v for k, v in selector.items())


REQUIRED = {
    ("apps/v1", "Deployment"): ["spec.selector.matchLabels", "spec.template.metadata.labels",
                                "spec.template.spec.containers"],
    ("v1", "Service"): ["spec.selector", "spec.ports"],
    ("v1", "ConfigMap"): ["data"],
    ("autoscaling/v2", "HorizontalPodAutoscaler"): ["spec.scaleTargetRef.name", "spec.maxReplicas",
                                                    "spec.metrics"],
    ("monitoring.coreos.com/v1", "ServiceMonitor"): ["spec.selector.matchLabels", "spec.endpoints"],
    ("policy/v1", "PodDisruptionBudget"): ["spec.selector.matchLabels"],
}


def get(obj, dotted):
    for part in dotted.split("."):
        if not isinstance(obj, dict) or part not in obj:
            return None
        obj = obj[part]
    return obj


def quantity(q):
    """CPU cores or memory bytes of a Kubernetes quantity."""
    q = str(q)
    units = {"m": 1e-3, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "k": 1e3, "M": 1e6, "G": 1e9}
    m = re.match(r"^([0-9.]+)([A-Za-z]*)$", q)
    assert m, "bad quantity %r" % q
    return float(m.group(1)) * units.get(m.group(2), 1)


def check_rendered(tc, docs, flavor):
    """Cross-object checks on one rendered kustomization."""
    kinds = {}
    for d in docs:
        tc.assertIn("apiVersion", d)
        tc.assertIn("kind", d)
        tc.assertTrue(get(d, "metadata.name"), d)
        key = (d["apiVersion"], d["kind"])
        tc.assertIn(key, REQUIRED, "unexpected object %s" % (key,))
        for field in REQUIRED[key]:
            tc.assertIsNotNone(get(d, field), "%s %s lacks %s" % (d["kind"], d["metadata"]["name"], field))
        kinds.setdefault(d["kind"], []).append(d)
    for k in ("Deployment", "Service", "ConfigMap", "ServiceMonitor", "PodDisruptionBudget"):
        tc.assertEqual(len(kinds.get(k, [])), 1, "%s: want one %s" % (flavor, k))
    dep = kinds["Deployment"][0]
    svc = kinds["Service"][0]
    cm = kinds["ConfigMap"][0]
    pod = dep["spec"]["template"]
    pod_labels = pod["metadata"]["labels"]
    spec = pod["spec"]
    tc.assertTrue(matches(dep["spec"]["selector"]["matchLabels"], pod_labels))
    tc.assertTrue(matches(svc["spec"]["selector"], pod_labels), "Service selects no server pod")
    tc.assertTrue(matches(kinds["PodDisruptionBudget"][0]["spec"]["selector"]["matchLabels"], pod_labels))
    tc.assertTrue(matches(kinds["ServiceMonitor"][0]["spec"]["selector"]["matchLabels"],
                          svc["metadata"].get("labels", {})), "ServiceMonitor selects no Service")
    for k, v in dep["metadata"].get("labels", {}).items():
        if k.startswith("app.kubernetes.io/"):
            tc.assertEqual(pod_labels.get(k, v), v, k)

    containers = spec["containers"]
    tc.assertEqual(len(containers), 1)
    c = containers[0]
    tc.assertTrue(c["image"].startswith("vtaserve:"), c["image"])
    tc.assertNotEqual(c["image"], "vtaserve:latest")
    flags = parse_flag_args(c["args"])
    tc.assertTrue(set(flags) <= server_flags(), set(flags) - server_flags())
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    tc.assertEqual(ports, {"grpc": int(flags["grpc_port"]), "metrics": int(flags["metrics_port"])})
    # Service ports target the named container ports, same numbers.
    svc_ports = {p["name"]: p for p in svc["spec"]["ports"]}
    tc.assertEqual(set(svc_ports), {"grpc", "metrics"})
    for name, p in svc_ports.items():
        tc.assertIn(p["targetPort"], (name, ports[name]))
        tc.assertEqual(p["port"], ports[name])
    tc.assertEqual(svc_ports["grpc"].get("appProtocol"), "grpc")
    ep = kinds["ServiceMonitor"][0]["spec"]["endpoints"]
    tc.assertTrue(all(e["port"] == "metrics" for e in ep))
    # Native gRPC probes on the serving port; readiness on service "".
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        tc.assertIn(probe, c)
        g = c[probe].get("grpc")
        tc.assertIsNotNone(g, "%s is not a gRPC probe" % probe)
        tc.assertEqual(g["port"], int(flags["grpc_port"]), probe)
    tc.assertEqual(c["readinessProbe"]["grpc"].get("service"), "")
    # Liveness tolerates more than a full drain before restarting.
    live = c["livenessProbe"]
    exit_timeout = int(flags.get("exit_timeout_secs", "30"))
    tc.assertGreater(live["periodSeconds"] * live["failureThreshold"], exit_timeout)
    # Grace period covers preStop plus the server's drain.
    pre_stop = c.get("lifecycle", {}).get("preStop", {}).get("exec", {}).get("command", [])
    pre_stop_secs = int(pre_stop[1]) if pre_stop[:1] == ["sleep"] else 0
    tc.assertGreater(spec["terminationGracePeriodSeconds"], exit_timeout + pre_stop_secs)
    # Resources: requests and limits for cpu and memory, requests <= limits.
    res = c["resources"]
    for r in ("cpu", "memory"):
        tc.assertLessEqual(quantity(res["requests"][r]), quantity(res["limits"][r]), r)
    tc.assertLessEqual(quantity(res["limits"]["cpu"]), 4, "edge gateways are small")
    tc.assertLessEqual(quantity(res["limits"]["memory"]), 2**30)
    # Non-root.
    tc.assertTrue(spec["securityContext"]["runAsNonRoot"])
    tc.assertNotEqual(spec["securityContext"]["runAsUser"], 0)
    # Every mount has a volume; the model config mount is the ConfigMap.
    vols = {v["name"]: v for v in spec.get("volumes", [])}
    for m in c.get("volumeMounts", []):
        tc.assertIn(m["name"], vols, "mount %s has no volume" % m["name"])
    cfg_mounts = [m for m in c["volumeMounts"] if "configMap" in vols[m["name"]]]
    tc.assertEqual(len(cfg_mounts), 1)
    tc.assertEqual(vols[cfg_mounts[0]["name"]]["configMap"]["name"], cm["metadata"]["name"])
    mount = cfg_mounts[0]
    tc.assertIn(mount["subPath"], cm["data"])
    m = re.match(r"^(.*)/(\w+)/config\.pbtxt$", mount["mountPath"])
    tc.assertIsNotNone(m, mount["mountPath"])
    tc.assertEqual(m.group(1), flags["model_repository"])
    config = parse_pbtxt(cm["data"][mount["subPath"]])
    tc.assertEqual(config["name"], m.group(2))
    tc.assertTrue(set(config.get("placement", [])) <= known_backends(), config)
    tc.assertIn(config.get("first_conv", "auto"), first_conv_strategies())
    if "vta_config" in flags:
        tc.assertIn(flags["vta_config"], vta_presets())
    # HPA (absent on fpga) targets the Deployment with the adapter's metric.
    hpas = kinds.get("HorizontalPodAutoscaler", [])
    for h in hpas:
        tc.assertEqual(h["spec"]["scaleTargetRef"]["name"], dep["metadata"]["name"])
        tc.assertEqual(h["spec"]["scaleTargetRef"]["kind"], "Deployment")
        tc.assertLessEqual(h["spec"].get("minReplicas", 1), h["spec"]["maxReplicas"])
        names = [get(m, "pods.metric.name") for m in h["spec"]["metrics"] if m["type"] == "Pods"]
        tc.assertEqual(names, [adapter_metric_name()])
    return kinds


def adapter_metric_name():
    docs = load_yaml_docs(os.path.join(K8S, "prometheus-adapter", "adapter-config.yaml"))
    rules = yaml.safe_load(docs[0]["data"]["config.yaml"])["rules"]
    return rules[0]["name"]["as"]


class K8sManifestTest(unittest.TestCase):
    def test_every_manifest_parses(self):
        files = glob.glob(os.path.join(K8S, "**", "*.yaml"), recursive=True)
        self.assertGreaterEqual(len(files), 10)
        for f in files:
            docs = load_yaml_docs(f)
            self.assertTrue(docs, f)
            for d in docs:
                self.assertIn("kind", d, f)
                self.assertIn("apiVersion", d, f)

    def test_kustomization_references_exist(self):
        kfiles = glob.glob(os.path.join(K8S, "**", "kustomization.yaml"), recursive=True)
        self.assertEqual(len(kfiles), 4)
        for kf in kfiles:
            base = os.path.dirname(kf)
            k = load_yaml_docs(kf)[0]
            self.assertEqual(k["kind"], "Kustomization")
            refs = list(k.get("resources", []))
            refs += [p["path"] for p in k.get("patches", [])]
            for gen in k.get("configMapGenerator", []):
                refs += [f.split("=", 1)[-1] for f in gen.get("files", [])]
            for r in refs:
                self.assertTrue(os.path.exists(os.path.join(base, r)), "%s: %s missing" % (kf, r))

    def test_base_image_name_matches_images_transformer(self):
        k = load_yaml_docs(os.path.join(K8S, "base", "kustomization.yaml"))[0]
        dep = load_yaml_docs(os.path.join(K8S, "base", "deployment.yaml"))[0]
        image = dep["spec"]["template"]["spec"]["containers"][0]["image"]
        self.assertEqual([i["name"] for i in k["images"]], [image])

    def test_pod_user_is_the_image_user(self):
        stages = split_stages(parse_dockerfile(read("docker", "Dockerfile")))["stages"]
        user = [rest for ins, rest in stages[-1]["body"] if ins == "USER"][-1]
        uid, _, gid = user.partition(":")
        dep = load_yaml_docs(os.path.join(K8S, "base", "deployment.yaml"))[0]
        sc = dep["spec"]["template"]["spec"]["securityContext"]
        self.assertEqual(str(sc["runAsUser"]), uid)
        self.assertEqual(str(sc["runAsGroup"]), gid or uid)

    def test_model_configs_are_valid_and_name_the_model(self):
        files = glob.glob(os.path.join(K8S, "**", "models", "*.pbtxt"), recursive=True)
        self.assertEqual(len(files), 3)
        for f in files:
            with open(f, encoding="utf-8") as fh:
                config = parse_pbtxt(fh.read())
            self.assertEqual(config["name"], os.path.basename(f)[:-len(".pbtxt")])
            self.assertTrue(config["placement"])
            self.assertTrue(set(config["placement"]) <= known_backends(), f)
            self.assertIn(config.get("first_conv", "auto"), first_conv_strategies(), f)
            self.assertGreater(config.get("max_queue_size", 64), 0)

    def test_adapter_rule_serves_the_hpa_metric(self):
        docs = load_yaml_docs(os.path.join(K8S, "prometheus-adapter", "adapter-config.yaml"))
        rules = yaml.safe_load(docs[0]["data"]["config.yaml"])["rules"]
        self.assertEqual(len(rules), 1)
        r = rules[0]
        self.assertIn("<<.LabelMatchers>>", r["metricsQuery"])
        self.assertIn("<<.GroupBy>>", r["metricsQuery"])
        self.assertEqual(set(r["resources"]["overrides"]), {"namespace", "pod"})
        series = re.match(r"^(\w+)", r["seriesQuery"]).group(1)
        self.assertIn(series, known_metric_names())
        self.assertRegex(series, r["name"]["matches"])
        hpa = load_yaml_docs(os.path.join(K8S, "base", "hpa.yaml"))[0]
        self.assertEqual(hpa["spec"]["metrics"][0]["pods"]["metric"]["name"], r["name"]["as"])


# kubectl is an optional tool, not a peer: scripts/setup-debian.sh does not
# install it, so these skip without it everywhere, CI included (docs/testing.md).
@unittest.skipUnless(shutil.which("kubectl"), "kubectl is not installed: rendered overlays not checked")
class KustomizeRenderTest(unittest.TestCase):
    def test_base_renders_consistently(self):
        check_rendered(self, kustomize(os.path.join(K8S, "base")), "base")

    def test_edge_overlay_runs_cpu_only(self):
        kinds = check_rendered(self, kustomize(os.path.join(K8S, "overlays", "edge")), "edge")
        dep = kinds["Deployment"][0]
        spec = dep["spec"]["template"]["spec"]
        self.assertEqual(spec["nodeSelector"], {"vtaserve.io/accelerator": "cpu"})
        config = parse_pbtxt(kinds["ConfigMap"][0]["data"]["config.pbtxt"])
        self.assertNotIn("vta", config["placement"])
        self.assertEqual(len(kinds["HorizontalPodAutoscaler"]), 1)
        self.assertEqual(dep["metadata"]["labels"]["vtaserve.io/flavor"], "edge")

    def test_fpga_overlay_passes_only_the_driver_device_nodes(self):
        kinds = check_rendered(self, kustomize(os.path.join(K8S, "overlays", "fpga")), "fpga")
        dep = kinds["Deployment"][0]
        spec = dep["spec"]["template"]["spec"]
        c = spec["containers"][0]
        self.assertEqual(spec["nodeSelector"], {"vtaserve.io/accelerator": "vta"})
        tol = spec["tolerations"]
        self.assertTrue(any(t["key"] == "vtaserve.io/accelerator" and t["value"] == "vta"
                            and t["effect"] == "NoSchedule" for t in tol))
        flags = parse_flag_args(c["args"])
        # The board: its driver opens /dev/uio0 and /dev/udmabuf0 (pynq
        # preset, vta_backend/driver/board_spec.cc); exactly those reach the
        # container, through a device plugin, without privileges.
        self.assertEqual(flags["vta_device"], "pynq")
        self.assertNotIn("vta_config", flags)
        limits = c["resources"]["limits"]
        devices = sorted(k for k in limits if k.startswith("smarter-devices/"))
        self.assertEqual(devices, ["smarter-devices/udmabuf0", "smarter-devices/uio0"])
        self.assertFalse(c["securityContext"]["privileged"])
        self.assertFalse(c["securityContext"]["allowPrivilegeEscalation"])
        self.assertFalse([m for m in c.get("volumeMounts", [])
                          if m["mountPath"].startswith("/dev/")])
        self.assertEqual(dep["spec"]["strategy"], {"type": "Recreate"})
        self.assertNotIn("HorizontalPodAutoscaler", kinds)
        config = parse_pbtxt(kinds["ConfigMap"][0]["data"]["config.pbtxt"])
        self.assertEqual(config["placement"][0], "vta")

    def test_prometheus_adapter_renders(self):
        docs = kustomize(os.path.join(K8S, "prometheus-adapter"))
        self.assertEqual([d["kind"] for d in docs], ["ConfigMap"])
        self.assertEqual(docs[0]["metadata"]["namespace"], "monitoring")


# ---------------------------------------------------------------------------
# Prometheus and Grafana.

def recording_rules():
    out = []
    for path in sorted(glob.glob(src("deploy", "prometheus", "rules", "*.yml"))):
        for g in load_yaml_docs(path)[0]["groups"]:
            for r in g["rules"]:
                out.append(r)
    return out


def dashboard():
    with open(src("deploy", "grafana", "vtaserve-dashboard.json"), encoding="utf-8") as f:
        return json.load(f)


def dashboard_targets(d):
    for p in d["panels"]:
        for t in p.get("targets", []):
            yield p, t


PROMQL_WORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or",
                "unless", "offset", "bool"}


def series_names(expr):
    """vtaserve_* and recorded (a:b:c) names an expression reads."""
    expr = re.sub(r'"[^"]*"', '""', expr)
    recorded = set(re.findall(r"\b(\w+:\w+:\w+)\b", expr))
    for r in recorded:
        expr = expr.replace(r, " ")
    return recorded | set(re.findall(r"\b(vtaserve_\w+)", expr))


def need_promtool(tc):
    """The peer policy (docs/testing.md): skip without promtool, fail in CI."""
    reason = peer.skip_reason(shutil.which(PROMTOOL),
                              "promtool not found (Debian's prometheus package, scripts/setup-debian.sh)")
    if reason:
        tc.skipTest(reason)


class PrometheusRulesTest(unittest.TestCase):
    def test_promtool_checks_config_and_rules(self):
        need_promtool(self)
        out = subprocess.run([PROMTOOL, "check", "config", src("deploy", "prometheus", "prometheus.yml")],
                             capture_output=True, text=True, timeout=60)
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
        self.assertIn("SUCCESS", out.stdout + out.stderr)

    def test_alert_rule_unit_tests_pass(self):
        need_promtool(self)
        out = subprocess.run([PROMTOOL, "test", "rules", src("deploy", "prometheus", "tests", "alerts_test.yml")],
                             capture_output=True, text=True, timeout=60)
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)

    def test_rules_read_only_metrics_the_server_exports(self):
        known = known_metric_names()
        recorded = {r["record"] for r in recording_rules() if "record" in r}
        for r in recording_rules():
            for name in series_names(r["expr"]):
                self.assertTrue(name in known or name in recorded,
                                "%s reads unknown series %s" % (r.get("record") or r.get("alert"), name))

    def test_required_recording_rules_exist(self):
        recorded = {r["record"] for r in recording_rules() if "record" in r}
        for want in ("layer:vtaserve_layer_duration_seconds:p50_5m",
                     "layer:vtaserve_layer_duration_seconds:p99_5m",
                     "model:vtaserve_layer_vta_time:ratio_rate5m",
                     "model:vtaserve_request_errors:ratio_rate5m",
                     "pod_model:vtaserve_queue_seconds_per_request:rate1m"):
            self.assertIn(want, recorded)
        alerts = {r["alert"] for r in recording_rules() if "alert" in r}
        self.assertTrue({"VtaserveHighErrorRatio", "VtaserveHighLatency", "VtaserveNotServing"} <= alerts)


class GrafanaDashboardTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.d = dashboard()

    def test_structure(self):
        d = self.d
        self.assertEqual(d["uid"], "vtaserve-overview")
        self.assertIsInstance(d["schemaVersion"], int)
        ids = [p["id"] for p in d["panels"]]
        self.assertEqual(len(ids), len(set(ids)))
        boxes = []
        for p in d["panels"]:
            g = p["gridPos"]
            self.assertLessEqual(g["x"] + g["w"], 24, p["title"])
            for b in boxes:
                overlap = (g["x"] < b["x"] + b["w"] and b["x"] < g["x"] + g["w"] and
                           g["y"] < b["y"] + b["h"] and b["y"] < g["y"] + g["h"])
                self.assertFalse(overlap, "%s overlaps another panel" % p["title"])
            boxes.append(g)
            if p["type"] != "row":
                self.assertTrue(p.get("targets"), p["title"])
                self.assertEqual(p["datasource"]["uid"], "${datasource}")
        refs = [t["refId"] for p in d["panels"] for t in p.get("targets", [])]
        self.assertTrue(all(refs))

    def test_variables_are_used_and_defined(self):
        names = {v["name"] for v in self.d["templating"]["list"]}
        self.assertEqual(names, {"datasource", "model", "layer"})
        for p, t in dashboard_targets(self.d):
            for var in re.findall(r"\$\{?(\w+)", t["expr"]):
                self.assertTrue(var in names or var.startswith("__"), "%s: $%s undefined" % (p["title"], var))

    def test_required_panels(self):
        panels = [p for p in self.d["panels"] if p["type"] != "row"]
        exprs = lambda p: " ".join(t["expr"] for t in p["targets"])
        def has(ptype, needle):
            return any(p["type"] == ptype and needle in exprs(p) for p in panels)
        self.assertTrue(has("timeseries", "vtaserve_requests_total"))
        self.assertTrue(has("timeseries", "model:vtaserve_request_errors:ratio_rate5m"))
        self.assertTrue(has("timeseries", "histogram_quantile(0.99, sum by (model, le) (rate(vtaserve_request_duration_seconds_bucket"))
        self.assertTrue(has("heatmap", "vtaserve_layer_duration_seconds_bucket"))
        self.assertTrue(has("table", "layer:vtaserve_layer_duration_seconds:p99_5m"))
        self.assertTrue(has("timeseries", 'sum by (device) (rate(vtaserve_layer_duration_seconds_sum'))
        self.assertTrue(has("timeseries", "vtaserve_layer_modeled_device_seconds"))
        self.assertTrue(has("timeseries", "vtaserve_layer_modeled_cycles_total"))
        self.assertTrue(has("bargauge", "vtaserve_layer_gemm_cycles_total"))
        self.assertTrue(has("timeseries", "vtaserve_layer_host_transform_seconds"))
        self.assertTrue(has("timeseries", "vtaserve_cpu_fallback_total"))
        self.assertTrue(has("table", "vtaserve_layer_placement_info"))
        heat = [p for p in panels if p["type"] == "heatmap"][0]
        self.assertEqual(heat["targets"][0].get("format"), "heatmap")

    def test_modeled_device_panels_say_modeled(self):
        modeled = ("vtaserve_layer_modeled_", "_cycles_total")
        for p, t in dashboard_targets(self.d):
            if any(m in t["expr"] for m in modeled):
                self.assertIn("MODELED", p["title"], p["title"])
                self.assertIn("modeled", (t.get("legendFormat") or "") + p["description"].lower())

    def test_queries_are_valid_promql(self):
        need_promtool(self)
        # promtool parses each expression when it checks a rule file.
        values = {"model": "resnet18", "layer": ".*", "__rate_interval": "1m",
                  "__range": "5m", "__interval": "15s"}
        rules = []
        for i, (p, t) in enumerate(dashboard_targets(self.d)):
            expr = t["expr"]
            for k, v in values.items():
                expr = expr.replace("${%s}" % k, v).replace("$" + k, v)
            self.assertNotIn("$", expr, p["title"])
            rules.append({"record": "dashboard:query_%d:check" % i, "expr": expr})
        with tempfile.NamedTemporaryFile("w", suffix=".yml", delete=False) as f:
            yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}, f)
        try:
            out = subprocess.run([PROMTOOL, "check", "rules", f.name],
                                 capture_output=True, text=True, timeout=60)
        finally:
            os.unlink(f.name)
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
        self.assertIn("%d rules found" % len(rules), out.stdout)

    def test_queries_read_only_known_series(self):
        known = known_metric_names()
        recorded = {r["record"] for r in recording_rules() if "record" in r}
        for p, t in dashboard_targets(self.d):
            for name in series_names(t["expr"]):
                self.assertTrue(name in known or name in recorded, "%s: unknown series %s" % (p["title"], name))
        for v in self.d["templating"]["list"]:
            if v["type"] == "query":
                for name in series_names(v["definition"]):
                    self.assertIn(name, known)


BINARIES = []
PROMTOOL = "promtool"
KUBECTL = "kubectl"


def main():
    global SOURCE_DIR, K8S, BINARIES, PROMTOOL, KUBECTL
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--source-dir", required=True)
    parser.add_argument("--binary", action="append", default=[],
                        help="built vtaserve / vtaserve-client to list runtime packages of")
    args, rest = parser.parse_known_args()
    SOURCE_DIR = os.path.abspath(args.source_dir)
    K8S = src("deploy", "k8s")
    BINARIES = args.binary
    PROMTOOL = shutil.which("promtool") or "promtool"
    KUBECTL = shutil.which("kubectl") or "kubectl"
    unittest.main(argv=[sys.argv[0]] + rest, verbosity=2)


if __name__ == "__main__":
    main()
