"""Serial links to vehicle firmware: NMEA 0183 GPS, SLCAN CAN adapters with DBC decoding, and the MCU link.

Entry point for the daemon: `firmware_bridge.vehicle.VehicleLinks`. Modules:
`link` and `framing` (serial transport), `nmea` and `gps` (GPS), `slcan`,
`candump` and `dbc` (CAN), `mcu_protocol`, `mcu`, `cobs` and `crc` (MCU link),
`errors` (the error tree). Nothing here imports edge_sdk.
"""
