/*
 * MCU link frame codec, protocol version 1 (portable C99, no heap).
 *
 * Frame before stuffing:
 *   version u8 | type u8 | seq u8 | flags u8 | length u8 | payload[length] | crc16 u16 big-endian
 * CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF, no reflection, xorout 0,
 * check value 0x29B1) covers every byte before the CRC. On the wire each
 * frame is COBS-encoded and followed by a single 0x00 delimiter.
 * Byte tables: docs/mcu_protocol.md. Uses only <string.h> and <stdint.h>.
 */
#ifndef MCU_FRAME_H
#define MCU_FRAME_H

#include <stdint.h>
#include <string.h>

#define MCU_PROTOCOL_VERSION 1u
#define MCU_HEADER_SIZE 5u
#define MCU_CRC_SIZE 2u
#define MCU_MAX_PAYLOAD 32u
#define MCU_MAX_FRAME (MCU_HEADER_SIZE + MCU_MAX_PAYLOAD + MCU_CRC_SIZE)
/* COBS adds one byte per started 254 bytes plus one; the delimiter adds one more. */
#define MCU_MAX_WIRE_FRAME (MCU_MAX_FRAME + MCU_MAX_FRAME / 254u + 2u)
#define MCU_FLAG_ACK_REQUEST 0x01u

enum mcu_message_type {
    MCU_MSG_HEARTBEAT = 0x01,
    MCU_MSG_VEHICLE_STATE = 0x02,
    MCU_MSG_DRIVER_ALERT = 0x03,
    MCU_MSG_ACK = 0x04
};

/* Error codes; COBS, LENGTH, CRC, VERSION and PAYLOAD match the `reason` of the Python McuFrameError. */
enum mcu_status {
    MCU_OK = 0,
    MCU_ERR_BUFFER = -1,  /* output buffer too small */
    MCU_ERR_COBS = -2,    /* malformed COBS block */
    MCU_ERR_LENGTH = -3,  /* frame too short or too long, or length field mismatch */
    MCU_ERR_CRC = -4,     /* CRC mismatch */
    MCU_ERR_VERSION = -5, /* protocol version other than MCU_PROTOCOL_VERSION */
    MCU_ERR_PAYLOAD = -6  /* payload length does not match the message type */
};

typedef struct {
    uint8_t version;
    uint8_t type;
    uint8_t seq;
    uint8_t flags;
    uint8_t length;
    uint8_t payload[MCU_MAX_PAYLOAD];
} mcu_frame_t;

/* Message payloads, version 1; multi-byte fields are little-endian on the wire. */
#define MCU_HEARTBEAT_SIZE 5u
#define MCU_VEHICLE_STATE_SIZE 6u
#define MCU_DRIVER_ALERT_SIZE 4u
#define MCU_ACK_SIZE 3u
#define MCU_SPEED_UNKNOWN 0xFFFFu
#define MCU_STEERING_UNKNOWN 0x7FFF

typedef struct {
    uint32_t uptime_ms;
    uint8_t state;             /* 0 ok, 1 degraded, 2 fault */
} mcu_heartbeat_t;

typedef struct {
    uint16_t speed_centi_kmh;  /* 0.01 km/h, MCU_SPEED_UNKNOWN when unknown */
    int16_t steering_decideg;  /* 0.1 degree, left positive, MCU_STEERING_UNKNOWN when unknown */
    uint8_t gear;              /* 0 unknown, 1 park, 2 reverse, 3 neutral, 4 drive */
    uint8_t indicators;        /* bit 0 left, bit 1 right, bit 2 hazard */
} mcu_vehicle_state_t;

typedef struct {
    uint8_t kind;
    uint8_t severity;          /* 0 info, 1 warning, 2 critical */
    uint16_t text_id;
} mcu_driver_alert_t;

typedef struct {
    uint8_t acked_type;
    uint8_t acked_seq;
    uint8_t status;            /* 0 accepted, 1 unsupported type, 2 invalid payload */
} mcu_ack_t;

/* Fill frame->type, frame->length and frame->payload; version, seq and flags are left to the caller. */
void mcu_pack_heartbeat(const mcu_heartbeat_t *message, mcu_frame_t *frame);
void mcu_pack_vehicle_state(const mcu_vehicle_state_t *message, mcu_frame_t *frame);
void mcu_pack_driver_alert(const mcu_driver_alert_t *message, mcu_frame_t *frame);
void mcu_pack_ack(const mcu_ack_t *message, mcu_frame_t *frame);

/* Return MCU_OK, or MCU_ERR_PAYLOAD when the frame's type or payload length does not match. */
int mcu_unpack_heartbeat(const mcu_frame_t *frame, mcu_heartbeat_t *message);
int mcu_unpack_vehicle_state(const mcu_frame_t *frame, mcu_vehicle_state_t *message);
int mcu_unpack_driver_alert(const mcu_frame_t *frame, mcu_driver_alert_t *message);
int mcu_unpack_ack(const mcu_frame_t *frame, mcu_ack_t *message);

/* Stream decoder: feed bytes one at a time, get a frame at each 0x00. */
typedef struct {
    uint8_t block[MCU_MAX_WIRE_FRAME];
    size_t length;
    uint8_t overflow;
} mcu_decoder_t;

uint16_t mcu_crc16(const uint8_t *data, size_t length, uint16_t crc);

/* Returns the encoded length, or 0 when `capacity` is too small. */
size_t mcu_cobs_encode(const uint8_t *input, size_t length, uint8_t *output, size_t capacity);

/* Decodes one block without its delimiter; returns the decoded length or a negative mcu_status. */
int mcu_cobs_decode(const uint8_t *block, size_t length, uint8_t *output, size_t capacity);

/* Writes COBS(frame) + 0x00 to `output`; returns the wire length or a negative mcu_status. */
int mcu_frame_encode(const mcu_frame_t *frame, uint8_t *output, size_t capacity);

/* Checks one block (without delimiter) in the order COBS, length, CRC, version, length field. */
int mcu_frame_decode(const uint8_t *block, size_t length, mcu_frame_t *frame);

void mcu_decoder_init(mcu_decoder_t *decoder);

/*
 * Pushes one received byte. Returns 1 when `frame` holds a new valid frame,
 * 0 when more bytes are needed (empty blocks between delimiters are idle fill),
 * or a negative mcu_status for a completed but invalid block, which is dropped.
 * A block longer than MCU_MAX_WIRE_FRAME is dropped as MCU_ERR_LENGTH at its delimiter.
 */
int mcu_decoder_push(mcu_decoder_t *decoder, uint8_t byte, mcu_frame_t *frame);

#endif
