#!/usr/bin/env python3
"""vtaserve-run as a user runs it.

A ResNet-18 (int8 QDQ, 32x32) written by vtaserve-model runs on every device
(reference, cpu, vta, auto), on auto with every first-conv policy, and on cpu
with 1 and 3 pool threads; the output files must be byte-identical (every backend is bit-exact with the
reference). Bad invocations must fail with the documented exit code (2 usage,
1 model/input/run error), a message naming the problem, and no crash.
"""
import argparse
import os
import struct
import subprocess
import sys
import tempfile


def run(cmd, timeout=240):
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       text=True, timeout=timeout)
    return p.returncode, p.stdout + p.stderr


def write_npy_f32(path, shape, value=0.25):
    """A float32 .npy (format 1.0) filled with `value`."""
    header = "{'descr': '<f4', 'fortran_order': False, 'shape': (%s), }" % (
        "".join("%d, " % d for d in shape))
    pad = 64 - (10 + len(header) + 1) % 64
    header = header + " " * pad + "\n"
    count = 1
    for d in shape:
        count *= d
    with open(path, "wb") as f:
        f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)))
        f.write(header.encode("latin1"))
        f.write(struct.pack("<%df" % count, *([value] * count)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--run", required=True)
    ap.add_argument("--model-tool", required=True)
    args = ap.parse_args()
    failures = []

    def check(cond, what, out=""):
        if not cond:
            failures.append(what + ("\n" + out if out else ""))

    with tempfile.TemporaryDirectory() as tmp:
        model = os.path.join(tmp, "resnet18.onnx")
        rc, out = run([args.model_tool, "resnet18", "--format", "qdq",
                       "--input-size", "32", "-o", model])
        if rc != 0:
            print("vtaserve-model failed:\n" + out)
            return 1
        good_input = os.path.join(tmp, "in.npy")
        write_npy_f32(good_input, [1, 3, 32, 32])

        outputs = {}
        # (device, first-conv policy, CPU pool threads)
        cases = [(d, None, None) for d in ("reference", "cpu", "vta", "auto")]
        cases += [("auto", fc, None) for fc in ("cpu", "vta_pad", "vta_im2col", "vta_s2d",
                                                "vta_kwfold")]
        cases += [("cpu", None, t) for t in (1, 3)]
        for device, first_conv, threads in cases:
            name = device + ("_" + first_conv if first_conv else "")
            name += "_%dthreads" % threads if threads else ""
            path = os.path.join(tmp, name + ".npy")
            cmd = [args.run, model, "--input", good_input, "--output", path,
                   "--device", device, "--repeat", "2"]
            if first_conv:
                cmd += ["--first-conv", first_conv]
            if threads:
                cmd += ["--cpu-threads", str(threads)]
            rc, out = run(cmd)
            check(rc == 0, "%s: exit %d" % (name, rc), out)
            check("top-5" in out, "%s: no top-5 line" % name, out)
            if rc == 0:
                with open(path, "rb") as f:
                    outputs[name] = f.read()
        ref = outputs.get("reference")
        check(ref is not None and len(ref) > 128, "no reference output")
        for name, data in outputs.items():
            check(data == ref, "%s: output differs from the reference" % name)

        # Usage errors: exit 2.
        rc, out = run([args.run, model, "--input", good_input, "--output",
                       os.path.join(tmp, "x.npy"), "--device", "gpu"])
        check(rc == 2 and "unknown device 'gpu'" in out, "unknown device: exit %d" % rc, out)
        rc, out = run([args.run, model, "--input", good_input])
        check(rc == 2, "missing --output: exit %d" % rc, out)
        rc, out = run([args.run, model, "--input", good_input, "--output",
                       os.path.join(tmp, "x.npy"), "--cpu-threads", "-1"])
        check(rc == 2 and "--cpu-threads" in out, "negative --cpu-threads: exit %d" % rc, out)

        # Model, input and placement errors: exit 1 with the reason.
        rc, out = run([args.run, os.path.join(tmp, "absent.onnx"), "--input",
                       good_input, "--output", os.path.join(tmp, "x.npy")])
        check(rc == 1 and "NOT_FOUND" in out, "absent model: exit %d" % rc, out)
        corrupt = os.path.join(tmp, "corrupt.onnx")
        with open(corrupt, "wb") as f:
            f.write(os.urandom(4096))
        rc, out = run([args.run, corrupt, "--input", good_input, "--output",
                       os.path.join(tmp, "x.npy")])
        check(rc == 1 and "vtaserve-run:" in out, "corrupt model: exit %d" % rc, out)
        wrong = os.path.join(tmp, "wrong.npy")
        write_npy_f32(wrong, [1, 3, 16, 16])
        rc, out = run([args.run, model, "--input", wrong, "--output",
                       os.path.join(tmp, "x.npy"), "--device", "cpu"])
        check(rc == 1 and "shape" in out, "wrong input shape: exit %d" % rc, out)
        truncated = os.path.join(tmp, "truncated.npy")
        with open(good_input, "rb") as f:
            data = f.read()
        with open(truncated, "wb") as f:
            f.write(data[: len(data) // 2])
        rc, out = run([args.run, model, "--input", truncated, "--output",
                       os.path.join(tmp, "x.npy"), "--device", "cpu"])
        check(rc == 1, "truncated input: exit %d" % rc, out)
        rc, out = run([args.run, model, "--input", good_input, "--output",
                       os.path.join(tmp, "x.npy"), "--device", "auto",
                       "--first-conv", "bogus"])
        check(rc == 1 and "unknown first_conv policy 'bogus'" in out,
              "unknown first-conv policy: exit %d" % rc, out)

    for f in failures:
        print("FAIL: " + f)
    print("%d failures" % len(failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
