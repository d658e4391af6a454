import threading

import paho.mqtt.client as mqtt


def test_mosquitto_fixture_delivers_and_restarts(mosquitto):
    received = threading.Event()
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="fixture-check")
    client.on_message = lambda c, u, msg: received.set() if msg.payload == b"one" else None
    client.connect(mosquitto.host, mosquitto.port)
    client.subscribe("check/#", qos=1)
    client.loop_start()
    try:
        client.publish("check/a", b"one", qos=1).wait_for_publish(timeout=5)
        assert received.wait(timeout=5)
        mosquitto.restart()
        assert mosquitto.running
    finally:
        client.loop_stop()
        client.disconnect()
