/* MCU link frame codec: CRC-16/CCITT-FALSE, COBS and the version 1 frame layout. */
#include "mcu_frame.h"

uint16_t mcu_crc16(const uint8_t *data, size_t length, uint16_t crc)
{
    size_t i;
    for (i = 0; i < length; i++) {
        uint8_t bit;
        crc ^= (uint16_t)((uint16_t)data[i] << 8);
        for (bit = 0; bit < 8; bit++) {
            crc = (crc & 0x8000u) ? (uint16_t)((crc << 1) ^ 0x1021u) : (uint16_t)(crc << 1);
        }
    }
    return crc;
}

size_t mcu_cobs_encode(const uint8_t *input, size_t length, uint8_t *output, size_t capacity)
{
    size_t read = 0;
    size_t write = 1;
    size_t code_index = 0;
    uint8_t code = 1;

    if (capacity == 0) {
        return 0;
    }
    while (read < length) {
        if (write >= capacity) {
            return 0;
        }
        if (input[read] == 0) {
            output[code_index] = code;
            code_index = write++;
            code = 1;
        } else {
            output[write++] = input[read];
            code++;
            if (code == 0xFF) {
                if (write >= capacity) {
                    return 0;
                }
                output[code_index] = code;
                code_index = write++;
                code = 1;
            }
        }
        read++;
    }
    output[code_index] = code;
    return write;
}

int mcu_cobs_decode(const uint8_t *block, size_t length, uint8_t *output, size_t capacity)
{
    size_t read = 0;
    size_t write = 0;

    if (length == 0) {
        return MCU_ERR_COBS;
    }
    while (read < length) {
        uint8_t code = block[read];
        size_t end;
        size_t i;
        if (code == 0) {
            return MCU_ERR_COBS;
        }
        end = read + code;
        if (end > length) {
            return MCU_ERR_COBS;
        }
        for (i = read + 1; i < end; i++) {
            if (block[i] == 0) {
                return MCU_ERR_COBS;
            }
            if (write >= capacity) {
                return MCU_ERR_BUFFER;
            }
            output[write++] = block[i];
        }
        read = end;
        if (code != 0xFF && read < length) {
            if (write >= capacity) {
                return MCU_ERR_BUFFER;
            }
            output[write++] = 0;
        }
    }
    return (int)write;
}

int mcu_frame_encode(const mcu_frame_t *frame, uint8_t *output, size_t capacity)
{
    uint8_t raw[MCU_MAX_FRAME];
    size_t raw_length;
    size_t encoded;
    uint16_t crc;

    if (frame->length > MCU_MAX_PAYLOAD) {
        return MCU_ERR_LENGTH;
    }
    raw[0] = frame->version;
    raw[1] = frame->type;
    raw[2] = frame->seq;
    raw[3] = frame->flags;
    raw[4] = frame->length;
    memcpy(&raw[MCU_HEADER_SIZE], frame->payload, frame->length);
    raw_length = MCU_HEADER_SIZE + frame->length;
    crc = mcu_crc16(raw, raw_length, 0xFFFFu);
    raw[raw_length++] = (uint8_t)(crc >> 8);
    raw[raw_length++] = (uint8_t)(crc & 0xFFu);
    if (capacity < 1) {
        return MCU_ERR_BUFFER;
    }
    encoded = mcu_cobs_encode(raw, raw_length, output, capacity - 1);
    if (encoded == 0) {
        return MCU_ERR_BUFFER;
    }
    output[encoded] = 0;
    return (int)(encoded + 1);
}

int mcu_frame_decode(const uint8_t *block, size_t length, mcu_frame_t *frame)
{
    uint8_t raw[MCU_MAX_WIRE_FRAME];
    int decoded;
    uint16_t expected;

    if (length > MCU_MAX_WIRE_FRAME - 1u) {
        return MCU_ERR_LENGTH;
    }
    decoded = mcu_cobs_decode(block, length, raw, sizeof raw);
    if (decoded < 0) {
        return MCU_ERR_COBS;
    }
    if ((size_t)decoded < MCU_HEADER_SIZE + MCU_CRC_SIZE) {
        return MCU_ERR_LENGTH;
    }
    expected = (uint16_t)(((uint16_t)raw[decoded - 2] << 8) | raw[decoded - 1]);
    if (mcu_crc16(raw, (size_t)decoded - MCU_CRC_SIZE, 0xFFFFu) != expected) {
        return MCU_ERR_CRC;
    }
    if (raw[0] != MCU_PROTOCOL_VERSION) {
        return MCU_ERR_VERSION;
    }
    if (raw[4] > MCU_MAX_PAYLOAD || (size_t)raw[4] + MCU_HEADER_SIZE + MCU_CRC_SIZE != (size_t)decoded) {
        return MCU_ERR_LENGTH;
    }
    frame->version = raw[0];
    frame->type = raw[1];
    frame->seq = raw[2];
    frame->flags = raw[3];
    frame->length = raw[4];
    memcpy(frame->payload, &raw[MCU_HEADER_SIZE], raw[4]);
    return MCU_OK;
}

void mcu_decoder_init(mcu_decoder_t *decoder)
{
    decoder->length = 0;
    decoder->overflow = 0;
}

int mcu_decoder_push(mcu_decoder_t *decoder, uint8_t byte, mcu_frame_t *frame)
{
    int status;

    if (byte != 0) {
        if (decoder->length < sizeof decoder->block) {
            decoder->block[decoder->length++] = byte;
        } else {
            decoder->overflow = 1;
        }
        return 0;
    }
    if (decoder->overflow) {
        mcu_decoder_init(decoder);
        return MCU_ERR_LENGTH;
    }
    if (decoder->length == 0) {
        return 0;
    }
    status = mcu_frame_decode(decoder->block, decoder->length, frame);
    decoder->length = 0;
    return status == MCU_OK ? 1 : status;
}

static void put_u16(uint8_t *out, uint16_t value)
{
    out[0] = (uint8_t)(value & 0xFFu);
    out[1] = (uint8_t)(value >> 8);
}

static uint16_t get_u16(const uint8_t *in)
{
    return (uint16_t)(in[0] | (uint16_t)(in[1] << 8));
}

static int check_payload(const mcu_frame_t *frame, uint8_t type, uint8_t size)
{
    return (frame->type == type && frame->length == size) ? MCU_OK : MCU_ERR_PAYLOAD;
}

void mcu_pack_heartbeat(const mcu_heartbeat_t *message, mcu_frame_t *frame)
{
    frame->type = MCU_MSG_HEARTBEAT;
    frame->length = MCU_HEARTBEAT_SIZE;
    put_u16(&frame->payload[0], (uint16_t)(message->uptime_ms & 0xFFFFu));
    put_u16(&frame->payload[2], (uint16_t)(message->uptime_ms >> 16));
    frame->payload[4] = message->state;
}

void mcu_pack_vehicle_state(const mcu_vehicle_state_t *message, mcu_frame_t *frame)
{
    frame->type = MCU_MSG_VEHICLE_STATE;
    frame->length = MCU_VEHICLE_STATE_SIZE;
    put_u16(&frame->payload[0], message->speed_centi_kmh);
    /* Two's complement on the wire, whatever the MCU's own integer representation. */
    put_u16(&frame->payload[2], (uint16_t)((uint16_t)message->steering_decideg & 0xFFFFu));
    frame->payload[4] = message->gear;
    frame->payload[5] = message->indicators;
}

void mcu_pack_driver_alert(const mcu_driver_alert_t *message, mcu_frame_t *frame)
{
    frame->type = MCU_MSG_DRIVER_ALERT;
    frame->length = MCU_DRIVER_ALERT_SIZE;
    frame->payload[0] = message->kind;
    frame->payload[1] = message->severity;
    put_u16(&frame->payload[2], message->text_id);
}

void mcu_pack_ack(const mcu_ack_t *message, mcu_frame_t *frame)
{
    frame->type = MCU_MSG_ACK;
    frame->length = MCU_ACK_SIZE;
    frame->payload[0] = message->acked_type;
    frame->payload[1] = message->acked_seq;
    frame->payload[2] = message->status;
}

int mcu_unpack_heartbeat(const mcu_frame_t *frame, mcu_heartbeat_t *message)
{
    if (check_payload(frame, MCU_MSG_HEARTBEAT, MCU_HEARTBEAT_SIZE) != MCU_OK) {
        return MCU_ERR_PAYLOAD;
    }
    message->uptime_ms = (uint32_t)get_u16(&frame->payload[0]) | ((uint32_t)get_u16(&frame->payload[2]) << 16);
    message->state = frame->payload[4];
    return MCU_OK;
}

int mcu_unpack_vehicle_state(const mcu_frame_t *frame, mcu_vehicle_state_t *message)
{
    uint16_t steering;

    if (check_payload(frame, MCU_MSG_VEHICLE_STATE, MCU_VEHICLE_STATE_SIZE) != MCU_OK) {
        return MCU_ERR_PAYLOAD;
    }
    message->speed_centi_kmh = get_u16(&frame->payload[0]);
    steering = get_u16(&frame->payload[2]);
    /* Convert from two's complement without relying on implementation-defined casts. */
    message->steering_decideg = (steering & 0x8000u) ? (int16_t)(-(int32_t)(0x10000u - steering)) : (int16_t)steering;
    message->gear = frame->payload[4];
    message->indicators = frame->payload[5];
    return MCU_OK;
}

int mcu_unpack_driver_alert(const mcu_frame_t *frame, mcu_driver_alert_t *message)
{
    if (check_payload(frame, MCU_MSG_DRIVER_ALERT, MCU_DRIVER_ALERT_SIZE) != MCU_OK) {
        return MCU_ERR_PAYLOAD;
    }
    message->kind = frame->payload[0];
    message->severity = frame->payload[1];
    message->text_id = get_u16(&frame->payload[2]);
    return MCU_OK;
}

int mcu_unpack_ack(const mcu_frame_t *frame, mcu_ack_t *message)
{
    if (check_payload(frame, MCU_MSG_ACK, MCU_ACK_SIZE) != MCU_OK) {
        return MCU_ERR_PAYLOAD;
    }
    message->acked_type = frame->payload[0];
    message->acked_seq = frame->payload[1];
    message->status = frame->payload[2];
    return MCU_OK;
}
