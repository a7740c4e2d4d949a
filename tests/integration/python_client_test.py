#!/usr/bin/env python3
"""Third-party client check: Debian's python3-grpcio with stubs generated from
proto/ at test time talks to the real vtaserve binary (health Check/Watch,
ServerMetadata, ModelMetadata, ModelConfig, ModelInfer raw and typed, an
invalid request), then SIGTERM must drain and exit 0.

usage: python_client_test.py SOURCE_DIR VTASERVE_BINARY WRITE_TEST_MODEL_BINARY
"""
import os
import re
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time


def main():
    src, server_bin, writer_bin = sys.argv[1:4]
    tmp = tempfile.mkdtemp(prefix="vtaserve_py_")
    try:
        return run(src, server_bin, writer_bin, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def run(src, server_bin, writer_bin, tmp):
    # The peers (docs/testing.md: skip on a developer's machine, fail in CI).
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                    "..", "testing"))
    import peer
    try:
        import grpc  # noqa: F401
        have_grpc = True
    except ImportError:
        have_grpc = False
    peer.require(have_grpc, "python3-grpcio is not installed (scripts/setup-debian.sh)")
    # Stubs from our own .proto files, generated now.
    plugin = shutil.which("grpc_python_plugin")
    peer.require(plugin, "grpc_python_plugin is not on PATH "
                 "(protobuf-compiler-grpc, scripts/setup-debian.sh)")
    subprocess.run(
        ["protoc", "-I" + src, "--python_out=" + tmp, "--grpc_python_out=" + tmp,
         "--plugin=protoc-gen-grpc_python=" + plugin,
         "proto/inference.proto", "proto/model_config.proto", "proto/health.proto"],
        check=True)
    sys.path.insert(0, tmp)
    import grpc
    from proto import health_pb2, health_pb2_grpc, inference_pb2, inference_pb2_grpc

    repo = os.path.join(tmp, "repo")
    os.makedirs(os.path.join(repo, "resnet18", "1"))
    subprocess.run([writer_bin, os.path.join(repo, "resnet18", "1", "model.onnx"),
                    "32", "10"], check=True)
    with open(os.path.join(repo, "resnet18", "config.pbtxt"), "w") as f:
        f.write('max_batch_size: 2\nplacement: ["cpu", "reference"]\n')

    log_path = os.path.join(tmp, "server.log")
    log = open(log_path, "w+")
    proc = subprocess.Popen(
        [server_bin, "--model-repository=" + repo, "--grpc-port=0",
         "--metrics-port=0", "--exit-timeout-secs=10"],
        stdout=log, stderr=subprocess.STDOUT)
    try:
        port = None
        deadline = time.time() + 60
        while port is None and time.time() < deadline:
            assert proc.poll() is None, "server exited: " + open(log_path).read()
            m = re.search(r"serving gRPC on port (\d+)", open(log_path).read())
            if m:
                port = int(m.group(1))
            else:
                time.sleep(0.05)
        assert port, "no port in the log: " + open(log_path).read()
        channel = grpc.insecure_channel("127.0.0.1:%d" % port)
        health = health_pb2_grpc.HealthStub(channel)
        infer = inference_pb2_grpc.GRPCInferenceServiceStub(channel)

        status = None
        while time.time() < deadline:
            status = health.Check(health_pb2.HealthCheckRequest(service=""),
                                  timeout=10).status
            if status == health_pb2.HealthCheckResponse.SERVING:
                break
            time.sleep(0.1)
        assert status == health_pb2.HealthCheckResponse.SERVING, open(log_path).read()
        assert health.Check(health_pb2.HealthCheckRequest(service="resnet18"),
                            timeout=10).status == health_pb2.HealthCheckResponse.SERVING
        watch = health.Watch(health_pb2.HealthCheckRequest(service="resnet18"))
        first = next(watch)
        assert first.status == health_pb2.HealthCheckResponse.SERVING

        meta = infer.ServerMetadata(inference_pb2.ServerMetadataRequest(), timeout=10)
        assert meta.name == "vtaserve" and "statistics" in meta.extensions
        mm = infer.ModelMetadata(inference_pb2.ModelMetadataRequest(name="resnet18"),
                                 timeout=10)
        assert len(mm.inputs) == 1, mm
        inp = mm.inputs[0]
        assert list(inp.shape) == [-1, 3, 32, 32], inp
        cfg = infer.ModelConfig(inference_pb2.ModelConfigRequest(name="resnet18"),
                                timeout=10).config
        assert cfg.max_batch_size == 2 and list(cfg.placement) == ["cpu", "reference"]

        n = 3 * 32 * 32
        values = [((i * 37) % 255) / 255.0 - 0.5 for i in range(n)]
        req = inference_pb2.ModelInferRequest(model_name="resnet18", id="py")
        t = req.inputs.add(name=inp.name, datatype=inp.datatype, shape=[1, 3, 32, 32])
        assert inp.datatype == "FP32", inp.datatype
        req.raw_input_contents.append(struct.pack("<%df" % n, *values))
        resp = infer.ModelInfer(req, timeout=60)
        assert resp.id == "py" and resp.model_name == "resnet18"
        out = resp.outputs[0]
        count = 1
        for d in out.shape:
            count *= d
        assert list(out.shape)[0] == 1 and count == 10, out
        assert len(resp.raw_output_contents[0]) == count * 4

        typed = inference_pb2.ModelInferRequest(model_name="resnet18")
        tt = typed.inputs.add(name=inp.name, datatype="FP32", shape=[1, 3, 32, 32])
        tt.contents.fp32_contents.extend(values)
        resp2 = infer.ModelInfer(typed, timeout=60)
        assert resp2.raw_output_contents[0] == resp.raw_output_contents[0]

        bad = inference_pb2.ModelInferRequest(model_name="resnet18")
        bad.inputs.add(name=inp.name, datatype="FP32", shape=[1, 3, 32, 31])
        bad.raw_input_contents.append(b"\0" * (3 * 32 * 31 * 4))
        try:
            infer.ModelInfer(bad, timeout=10)
            raise AssertionError("invalid request accepted")
        except grpc.RpcError as e:
            assert e.code() == grpc.StatusCode.INVALID_ARGUMENT, e
            assert "expected shape" in e.details(), e.details()
        try:
            infer.ModelInfer(inference_pb2.ModelInferRequest(model_name="nope"),
                             timeout=10)
            raise AssertionError("unknown model accepted")
        except grpc.RpcError as e:
            assert e.code() == grpc.StatusCode.NOT_FOUND, e

        proc.send_signal(signal.SIGTERM)
        # The watch sees the drain.
        assert next(watch).status == health_pb2.HealthCheckResponse.NOT_SERVING
        code = proc.wait(timeout=30)
        assert code == 0, "exit code %d: %s" % (code, open(log_path).read())
        print("python client test passed (port %d)" % port)
        return 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


if __name__ == "__main__":
    sys.exit(main())
