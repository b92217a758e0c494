"""The moto wrapper's SQS under concurrent sends, receives, releases and deletes.

Starts scripts/lib/moto_server.py (or the wrapper given as the first
argument) on a free port of 127.0.0.1 with the interpreter switching
threads every microsecond, which makes moto's unlocked queue code race
within seconds. On a standard queue and on a FIFO queue (16 message
groups) at once, 2 threads each send 750 messages while 8 threads each
long-poll, release every fifth message once (visibility 0, as the
service's consumers do with what they cannot handle yet) and delete the
rest. Passes when every message is deleted exactly once, received once
more for its release and no more, no request fails, and no send waits
longer than a long poll (a poll that held the queue's lock through its
wait would hold the sends up). Against moto's own SQS code, the wrapper
with only deletes locked, or without its wait patch, it fails
(docs/ARCHITECTURE.md; scripts/lib/moto_server.py says why each matters:
the CRM-sync test lost an event to such a race). Bounded: 120 s at most.
Run by scripts/test.sh with moto's virtualenv (boto3 comes with moto).
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
MESSAGES = 750  # per queue
SENDERS = 2  # per queue
RECEIVERS = 8  # per queue
GROUPS = 16  # FIFO message groups
POLL_S = 2  # a receive's long poll
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


class Queue:
    """One queue's traffic and what its consumers saw, per message body."""

    def __init__(self, port, name):
        self.port = port
        self.fifo = name.endswith(".fifo")
        attributes = {"FifoQueue": "true"} if self.fifo else {}
        self.url = self.client().create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
        self.name = name
        self.received, self.released, self.deleted = {}, set(), {}
        self.errors, self.slowest_send = [], 0.0
        self.lock = threading.Lock()

    def client(self):
        return boto3.client(
            "sqs",
            endpoint_url=f"http://127.0.0.1:{self.port}",
            region_name="us-east-1",
            aws_access_key_id="test",
            aws_secret_access_key="test",
            config=Config(
                max_pool_connections=4, retries={"max_attempts": 1}, read_timeout=60
            ),
        )

    def failed(self, e):
        with self.lock:
            self.errors.append(f"{self.name}: {e!r}"[:160])

    def send(self, first):
        sqs = self.client()
        for i in range(first, MESSAGES, SENDERS):
            extra = (
                {"MessageGroupId": str(i % GROUPS), "MessageDeduplicationId": str(i)}
                if self.fifo
                else {}
            )
            began = time.monotonic()
            try:
                sqs.send_message(QueueUrl=self.url, MessageBody=str(i), **extra)
            except Exception as e:  # every failure is counted, none retried
                self.failed(e)
            with self.lock:
                self.slowest_send = max(self.slowest_send, time.monotonic() - began)

    def receive(self, done):
        sqs = self.client()
        while not done.is_set():
            try:
                batch = sqs.receive_message(
                    QueueUrl=self.url,
                    MaxNumberOfMessages=10,
                    WaitTimeSeconds=POLL_S,
                    VisibilityTimeout=60,
                ).get("Messages", [])
            except Exception as e:
                self.failed(e)
                continue
            for m in batch:
                body, handle = m["Body"], m["ReceiptHandle"]
                with self.lock:
                    self.received[body] = self.received.get(body, 0) + 1
                    release = int(body) % 5 == 0 and body not in self.released
                    if release:
                        self.released.add(body)
                try:
                    if release:
                        sqs.change_message_visibility(
                            QueueUrl=self.url, ReceiptHandle=handle, VisibilityTimeout=0
                        )
                    else:
                        sqs.delete_message(QueueUrl=self.url, ReceiptHandle=handle)
                        with self.lock:
                            self.deleted[body] = self.deleted.get(body, 0) + 1
                except Exception as e:
                    self.failed(e)

    def verdict(self):
        wrong = [
            b
            for b in map(str, range(MESSAGES))
            if self.deleted.get(b) != 1
            or self.received.get(b) != 1 + (b in self.released)
        ]
        print(
            f"  {self.name}: {len(self.deleted)} of {MESSAGES} deleted, "
            f"{len(self.released)} released once, {len(wrong)} received or deleted "
            f"the wrong number of times, {len(self.errors)} failed requests, "
            f"slowest send {self.slowest_send:.2f} s"
        )
        for e in self.errors[:3]:
            print("    " + e)
        return not wrong and not self.errors and self.slowest_send < POLL_S


def main():
    port = free_port()
    server = start(port)
    try:
        queues = [Queue(port, "race"), Queue(port, "race.fifo")]
        done = threading.Event()
        threads = [
            threading.Thread(target=q.send, args=(k,)) for q in queues for k in range(SENDERS)
        ]
        threads += [
            threading.Thread(target=q.receive, args=(done,))
            for q in queues
            for _ in range(RECEIVERS)
        ]
        started = time.monotonic()
        for t in threads:
            t.start()
        while (
            any(len(q.deleted) < MESSAGES for q in queues)
            and time.monotonic() - started < DEADLINE_S
        ):
            time.sleep(0.2)
        done.set()
        for t in threads:
            t.join()
        print(f"moto SQS race check ({time.monotonic() - started:.1f} s):")
        ok = all([q.verdict() for q in queues])
    finally:
        server.kill()
        server.wait()
    if not ok:
        sys.exit(f"error: moto's SQS raced under {WRAPPER}")


if __name__ == "__main__":
    main()
