"""The moto wrapper's SQS under concurrent sends, receives and deletes.

Starts scripts/lib/moto_server.py (or the wrapper given as the first
argument) on a free port of 127.0.0.1 with the interpreter switching
threads every microsecond, which makes moto's unlocked queue code race
within seconds, then sends 1,500 messages from 4 threads while 16
threads receive and delete them. Passes when every message is received
exactly once with no request failing. Against moto's own SQS (no patch),
or the wrapper with only deletes locked, it fails: messages received
twice within their visibility timeout, deletes refused and 500s from
"Set changed size during iteration" (docs/BENCHMARKS.md and
scripts/lib/moto_server.py say why this matters: the CRM-sync test lost
an event to such a race). Bounded: 120 s at most. Run by scripts/test.sh
with moto's virtualenv (boto3 comes with moto).
"""

import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request

import boto3
from botocore.config import Config

HERE = os.path.dirname(os.path.abspath(__file__))
WRAPPER = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "..", "lib", "moto_server.py")
MESSAGES = 1500
SENDERS = 4
RECEIVERS = 16
DEADLINE_S = 120


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(port):
    code = (
        "import runpy, sys; sys.setswitchinterval(1e-6); "
        f"sys.argv = [{WRAPPER!r}, '-H', '127.0.0.1', '-p', '{port}']; "
        f"runpy.run_path({WRAPPER!r}, run_name='__main__')"
    )
    server = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    for _ in range(300):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/moto-api/", timeout=1)
            return server
        except OSError:
            if server.poll() is not None:
                sys.exit(f"moto wrapper {WRAPPER} exited with {server.returncode}")
            time.sleep(0.1)
    server.kill()
    sys.exit(f"moto wrapper {WRAPPER} did not answer on 127.0.0.1:{port}")


def run(port):
    def client():
        return boto3.client(
            "sqs",
            endpoint_url=f"http://127.0.0.1:{port}",
            region_name="us-east-1",
            aws_access_key_id="test",
            aws_secret_access_key="test",
            config=Config(max_pool_connections=4, retries={"max_attempts": 1}),
        )

    url = client().create_queue(QueueName="race")["QueueUrl"]
    received, errors = {}, []
    lock = threading.Lock()
    done = threading.Event()

    def failed(e):
        with lock:
            errors.append(repr(e)[:160])

    def send(first):
        sqs = client()
        for i in range(first, MESSAGES, SENDERS):
            try:
                sqs.send_message(QueueUrl=url, MessageBody=str(i))
            except Exception as e:  # every failure is counted, none retried
                failed(e)

    def receive():
        sqs = client()
        while not done.is_set():
            try:
                batch = sqs.receive_message(
                    QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1, VisibilityTimeout=60
                ).get("Messages", [])
            except Exception as e:
                failed(e)
                continue
            for m in batch:
                with lock:
                    received[m["Body"]] = received.get(m["Body"], 0) + 1
                try:
                    sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
                except Exception as e:
                    failed(e)

    threads = [threading.Thread(target=send, args=(k,)) for k in range(SENDERS)]
    threads += [threading.Thread(target=receive) for _ in range(RECEIVERS)]
    started = time.monotonic()
    for t in threads:
        t.start()
    while len(received) < MESSAGES and time.monotonic() - started < DEADLINE_S:
        time.sleep(0.2)
    done.set()
    for t in threads:
        t.join()
    twice = sum(1 for n in received.values() if n > 1)
    print(
        f"moto SQS race check: {len(received)} of {MESSAGES} received, {twice} more than once, "
        f"{len(errors)} failed requests, {time.monotonic() - started:.1f} s"
    )
    for e in errors[:5]:
        print("  " + e)
    return len(received) == MESSAGES and twice == 0 and not errors


def main():
    port = free_port()
    server = start(port)
    try:
        ok = run(port)
    finally:
        server.kill()
        server.wait()
    if not ok:
        sys.exit(f"error: moto's SQS raced under {WRAPPER}")


if __name__ == "__main__":
    main()
