"""moto_server with each DynamoDB request handled alone, and SQS deletes, receives and releases under their queue's lock.

moto's TransactWriteItems is not atomic against concurrent requests: it
deep-copies every table it touches, applies its items one by one, and on
a failed condition puts the copies back, erasing whatever other requests
wrote to those tables in the meantime. Under concurrent conditional
transactions that loses acknowledged writes (seen: 7 of 80 creates lost
with 8 writers, half of them failing on purpose), which real DynamoDB
never does. Handling DynamoDB requests one at a time gives the tests
DynamoDB's guarantee; every other service stays concurrent (an SQS long
poll must not hold the others up).

Arguments are moto_server's (`-H 127.0.0.1 -p 5000`). Started by
scripts/lib/moto-server with the Python of moto's virtualenv.
"""

import sys
import threading

from moto import server
from moto.sqs.models import Queue, SQSBackend
from moto.moto_server.werkzeug_app import DomainDispatcherApplication

_dynamodb = threading.Lock()
_dispatch = DomainDispatcherApplication.__call__


def _dispatch_dynamodb_alone(self, environ, start_response):
    # DynamoDB's JSON protocol names the operation in X-Amz-Target
    # ("DynamoDB_20120810.TransactWriteItems").
    if environ.get("HTTP_X_AMZ_TARGET", "").startswith("DynamoDB"):
        with _dynamodb:
            # The whole body inside the lock: a response is complete
            # before the next request starts. close() as WSGI asks.
            body = _dispatch(self, environ, start_response)
            try:
                return list(body)
            finally:
                getattr(body, "close", lambda: None)()
    return _dispatch(self, environ, start_response)


DomainDispatcherApplication.__call__ = _dispatch_dynamodb_alone


# moto's SQS changes a queue's messages without the lock that a send
# appends under (a Condition over an RLock). Queue.delete_message rebuilds
# the message list and assigns it back: a message sent meanwhile can
# vanish before anyone receives it (seen: hubspot_sync, one user's only
# event gone, queue and dead-letter queue empty). receive_message scans
# and marks what it takes: two receives at once iterate the pending set
# while the other adds to it ("Set changed size during iteration", a 500)
# and can both take the same message, and a message moved to the
# dead-letter queue is removed from a list a delete may be rebuilding.
# change_message_visibility removes from the pending set what a receive
# may be removing. So the three run under the queue's lock (every delete,
# batch or single, goes through SQSBackend.delete_message).
# scripts/tests/moto_sqs_race.py checks these patches.
def _under_queue_lock(operation):
    def locked(self, queue_name, *args, **kwargs):
        with self.get_queue(queue_name)._messages_lock:
            return operation(self, queue_name, *args, **kwargs)

    return locked


for _name in ("delete_message", "receive_message", "change_message_visibility"):
    setattr(SQSBackend, _name, _under_queue_lock(getattr(SQSBackend, _name)))


# A long poll's wait between scans must let the others in. moto's waits
# only while no message is visible; when messages are visible that this
# receive may not take (a FIFO group in flight, which it skips), it
# rescans at once, and under the lock that would hold every send, delete
# and release to the queue until the poll ends. So with messages visible
# it waits 50 ms, or until a send notifies, with the lock released.
def _wait_for_messages(self, timeout):
    with self._messages_lock:
        if self.messages:
            self._messages_lock.wait(timeout=0.05)
        else:
            self._messages_lock.wait_for(lambda: self.messages, timeout=timeout)


Queue.wait_for_messages = _wait_for_messages

if __name__ == "__main__":
    sys.exit(server.main())
