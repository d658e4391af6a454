"""Serial links to vehicle firmware: NMEA 0183 GPS, SLCAN CAN adapters with DBC decoding, and the MCU link.

Stands alone: nothing here imports edge_sdk.
"""
