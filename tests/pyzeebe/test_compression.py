"""Clients that compress every call, as Camunda's Node SDK and grpc-java
clients with compression on do: pyzeebe over a grpcio channel with gzip or
deflate, and a raw HTTP/2 request that checks the answer comes back
compressed when the client accepts it."""

import asyncio
import gzip
import os
import struct
import subprocess
import zlib

import grpc
import pytest
from pyzeebe import ZeebeClient, ZeebeWorker, Job

from test_flows import TIMEOUT_S, run_worker_until, write_process


@pytest.mark.parametrize("compression", [grpc.Compression.Gzip, grpc.Compression.Deflate], ids=["gzip", "deflate"])
def test_a_compressing_client_deploys_creates_and_completes(broker, tmp_path, compression):
    name = "gzip" if compression == grpc.Compression.Gzip else "deflate"

    async def scenario():
        channel = grpc.aio.insecure_channel(broker.address, compression=compression)
        client = ZeebeClient(channel)
        topology = await client.topology()
        assert topology.cluster_size == 1
        # A model large enough that the compressed request differs visibly
        # from the plain one.
        path = write_process(tmp_path, f"pz_{name}", f"pz-{name}-job")
        with open(path, "a") as f:
            f.write("<!--" + "padding " * 4096 + "-->")
        await client.deploy_resource(path)
        done = asyncio.Event()
        seen = []
        worker = ZeebeWorker(channel)

        @worker.task(task_type=f"pz-{name}-job")
        async def work(job: Job, blob: str):
            seen.append(len(blob))
            return {"echo": blob[:10]}

        blob = "x" * 100_000
        result_task = asyncio.create_task(
            client.run_process_with_result(f"pz_{name}", {"blob": blob}, timeout=TIMEOUT_S * 1000)
        )

        async def wait_result():
            result = await result_task
            done.set()
            return result

        waiter = asyncio.create_task(wait_result())
        await run_worker_until(worker, done)
        result = await waiter
        assert seen == [100_000]
        assert result.variables["echo"] == "x" * 10
        await channel.close()

    asyncio.run(asyncio.wait_for(scenario(), TIMEOUT_S * 2))


def grpc_frame(message: bytes, compressed: bool) -> bytes:
    return struct.pack(">BI", 1 if compressed else 0, len(message)) + message


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
def test_the_gateway_answers_compressed_when_asked(broker, tmp_path, encoding):
    """A Topology call over HTTP/2 with a compressed (empty) request: the
    answer names the encoding and its message carries the compressed flag."""
    body = gzip.compress(b"") if encoding == "gzip" else zlib.compress(b"")
    request = tmp_path / "request.bin"
    request.write_bytes(grpc_frame(body, compressed=True))
    headers = tmp_path / "headers.txt"
    answer = subprocess.run(
        [
            "curl", "-sS", "--http2-prior-knowledge", "--max-time", str(TIMEOUT_S),
            "-H", "content-type: application/grpc",
            "-H", "te: trailers",
            "-H", f"grpc-encoding: {encoding}",
            "-H", f"grpc-accept-encoding: {encoding}",
            "-D", str(headers),
            "--data-binary", f"@{request}",
            f"http://{broker.address}/gateway_protocol.Gateway/Topology",
        ],
        capture_output=True,
        check=True,
    ).stdout
    header_text = headers.read_text().lower()
    assert f"grpc-encoding: {encoding}" in header_text, header_text
    assert len(answer) >= 5, answer
    flag, length = struct.unpack(">BI", answer[:5])
    assert flag == 1, "the answer's message is compressed"
    message = answer[5 : 5 + length]
    plain = gzip.decompress(message) if encoding == "gzip" else zlib.decompress(message)
    # TopologyResponse: brokers (field 1) and clusterSize (field 2, = 1).
    assert b"\x10\x01" in plain
