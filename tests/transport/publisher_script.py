"""Publisher run as a separate process by the crash tests.

    python -m tests.transport.publisher_script URL SPOOL VEHICLE COUNT {hold|drain}

Puts COUNT result envelopes into the spool file, prints "SPOOLED <n>" and then
either waits to be killed (`hold`) or sends the spool and exits when it is
empty (`drain`, COUNT usually 0), printing "DRAINED <acked>".
"""

from __future__ import annotations

import sys
import time

from edge_sdk.transport.client import MqttClient
from edge_sdk.transport.config import MqttConfig
from edge_sdk.transport.payloads import EnvelopeBuilder
from edge_sdk.transport.spool import Spool
from edge_sdk.transport.topics import MessageKind, Topics


def main(argv: list[str]) -> int:
    url, spool_path, vehicle, count, mode = argv
    topics = Topics("fleet", vehicle)
    config = MqttConfig.from_url(
        url, client_id=f"pub-{vehicle}", status_topic=topics.status, sender_id=vehicle,
        reconnect_min_delay=0.1, reconnect_max_delay=0.5, keepalive=5,
    )
    client = MqttClient(config, Spool(spool_path))
    client.start()
    builder = EnvelopeBuilder(vehicle)
    for index in range(int(count)):
        client.publish(topics.results, builder.build(MessageKind.RESULTS, {"index": index}))
    print(f"SPOOLED {client.spool.depth}", flush=True)
    if mode == "hold":
        while True:
            time.sleep(1)
    drained = client.wait_drained(30)
    acked = client.stats()["acked"]
    client.stop(5)
    print(f"DRAINED {acked}" if drained else f"NOT-DRAINED {client.spool.depth}", flush=True)
    return 0 if drained else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
