#!/usr/bin/env python3
"""moto's server, one request at a time: `scripts/moto-dynamodb.py [HOST] [PORT]`.

DynamoDB applies each request atomically. moto's `TransactWriteItems` deep-copies the tables it
touches for a rollback, and another request changing a table meanwhile makes that copy fail
(`RuntimeError: dictionary changed size during iteration`, answered as an HTML 500). Serving one
request at a time keeps moto to DynamoDB's semantics; connections are still accepted
concurrently. Used by `.ci/run`, the tests' instructions and the DynamoDB burst.
"""

import sys
import threading

from moto.server import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import run_simple

host = sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1"
port = int(sys.argv[2]) if len(sys.argv) > 2 else 5000
app = DomainDispatcherApplication(create_backend_app)
lock = threading.Lock()


def one_at_a_time(environ, start_response):
    with lock:
        return list(app(environ, start_response))


run_simple(host, port, one_at_a_time, threaded=True)
