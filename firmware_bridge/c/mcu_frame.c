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
