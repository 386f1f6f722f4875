"""Alerts POSTed to webhooks: retried after a failure, delivered in order, a full queue drops
(and counts) instead of holding up ingest. A real HTTP server on loopback is the receiver."""
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from linewatch.commission.alerts import Alerter, Webhooks
from linewatch.commission.config import AlertsConfig


class Receiver:
    """Answers 500 to the first `failures` POSTs, then 200; keeps what it accepted."""

    def __init__(self, failures=0):
        self.failures = failures
        self.received = []
        self.attempts = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.attempts += 1
                if receiver.attempts <= receiver.failures:
                    self.send_response(500)
                else:
                    receiver.received.append(json.loads(body))
                    self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = "http://127.0.0.1:%d/alerts" % self.server.server_address[1]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def wait_for(condition, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.02)
    return condition()


def test_a_failed_post_is_retried_and_alerts_arrive_in_order():
    receiver = Receiver(failures=1)
    published = []
    alerter = Alerter(AlertsConfig(webhooks=(receiver.url,), retries=2, timeout_s=2.0),
                      lambda topic, data: published.append(topic))
    try:
        alerter.incident({"id": "I-000001", "class": "explosion"})
        alerter.incident({"id": "I-000002", "class": "small_arms"})
        # the receiver keeps a body before it answers: wait for the sender's count too
        assert wait_for(lambda: alerter.webhooks.delivered == 2)
        assert [a["id"] for a in receiver.received] == ["I-000001", "I-000002"]
        assert receiver.attempts == 3                 # one 500, then two deliveries
        assert alerter.webhooks.delivered == 2 and alerter.webhooks.failed == 0
        assert published == ["lw/alerts/incident"] * 2
    finally:
        alerter.close()
        receiver.close()


def test_a_dead_receiver_is_given_up_after_the_retries():
    receiver = Receiver(failures=100)
    hooks = Webhooks(AlertsConfig(webhooks=(receiver.url,), retries=1, timeout_s=2.0))
    try:
        hooks.post(b'{"kind": "incident"}')
        assert wait_for(lambda: hooks.failed == 1)
        assert receiver.attempts == 2 and receiver.received == []
    finally:
        hooks.close()
        receiver.close()


def test_a_full_queue_drops_and_counts_without_blocking():
    release = threading.Event()

    def stuck_opener(request, timeout):
        release.wait(10)
        raise OSError("receiver unreachable")

    hooks = Webhooks(AlertsConfig(webhooks=("http://127.0.0.1:9/",), queue_size=2, retries=0),
                     opener=stuck_opener)
    try:
        for i in range(10):                          # the receiver hangs: post must not wait
            hooks.post(b"{}")
        assert hooks.dropped >= 7                    # one in flight, two queued at most
    finally:
        release.set()
        hooks.close()
