/*
 * Test program for the MCU frame codec (needs a hosted libc; the codec does not).
 *
 *   test_mcu_frame vectors FILE   check every vector line of FILE, print "N passed, M failed"
 *   test_mcu_frame filter         read commands on stdin, print one result line for each:
 *       E <version> <type> <seq> <flags> <payload hex or ->  ->  wire hex (delimiter included) or ERR <code>
 *       D <block hex>                                         ->  OK <version> <type> <seq> <flags> <payload hex or -> or ERR <code>
 *       S <stream hex>                                        ->  one line per completed block, then END
 *       U <type> <payload hex or ->                           ->  message fields in payload order, or ERR <code>
 *       P <type> <field> ...                                  ->  payload hex packed from the fields
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mcu_frame.h"

#define LINE_MAX_LENGTH 4096

static size_t parse_hex(const char *text, uint8_t *out, size_t capacity)
{
    size_t length = 0;
    if (strcmp(text, "-") == 0) {
        return 0;
    }
    while (text[0] && text[1] && length < capacity) {
        unsigned int byte;
        if (sscanf(text, "%2x", &byte) != 1) {
            break;
        }
        out[length++] = (uint8_t)byte;
        text += 2;
    }
    return length;
}

static void print_hex(FILE *stream, const uint8_t *data, size_t length)
{
    size_t i;
    if (length == 0) {
        fputs("-", stream);
    }
    for (i = 0; i < length; i++) {
        fprintf(stream, "%02x", data[i]);
    }
}

static void print_frame(const mcu_frame_t *frame)
{
    printf("OK %u %u %u %u ", frame->version, frame->type, frame->seq, frame->flags);
    print_hex(stdout, frame->payload, frame->length);
    putchar('\n');
}

static int encode_command(const char *args)
{
    unsigned int version, type, seq, flags;
    char payload_hex[LINE_MAX_LENGTH];
    mcu_frame_t frame;
    uint8_t wire[MCU_MAX_WIRE_FRAME];
    uint8_t payload[256];
    size_t payload_length;
    int length;

    if (sscanf(args, "%u %u %u %u %4095s", &version, &type, &seq, &flags, payload_hex) != 5) {
        return MCU_ERR_BUFFER;
    }
    payload_length = parse_hex(payload_hex, payload, sizeof payload);
    if (payload_length > MCU_MAX_PAYLOAD) {
        return MCU_ERR_LENGTH;
    }
    frame.version = (uint8_t)version;
    frame.type = (uint8_t)type;
    frame.seq = (uint8_t)seq;
    frame.flags = (uint8_t)flags;
    frame.length = (uint8_t)payload_length;
    memcpy(frame.payload, payload, payload_length);
    length = mcu_frame_encode(&frame, wire, sizeof wire);
    if (length < 0) {
        return length;
    }
    print_hex(stdout, wire, (size_t)length);
    putchar('\n');
    return MCU_OK;
}

static void stream_command(const char *hex)
{
    static uint8_t data[LINE_MAX_LENGTH];
    size_t length = parse_hex(hex, data, sizeof data);
    mcu_decoder_t decoder;
    mcu_frame_t frame;
    size_t i;

    mcu_decoder_init(&decoder);
    for (i = 0; i < length; i++) {
        int status = mcu_decoder_push(&decoder, data[i], &frame);
        if (status == 1) {
            print_frame(&frame);
        } else if (status < 0) {
            printf("ERR %d\n", status);
        }
    }
    puts("END");
}

static void unpack_command(const char *args)
{
    unsigned int type;
    char payload_hex[LINE_MAX_LENGTH];
    mcu_frame_t frame;
    uint8_t payload[256];
    size_t length;
    int status = MCU_ERR_PAYLOAD;

    if (sscanf(args, "%u %4095s", &type, payload_hex) != 2) {
        puts("ERR usage");
        return;
    }
    length = parse_hex(payload_hex, payload, sizeof payload);
    if (length > MCU_MAX_PAYLOAD) {
        printf("ERR %d\n", MCU_ERR_PAYLOAD);
        return;
    }
    frame.type = (uint8_t)type;
    frame.length = (uint8_t)length;
    memcpy(frame.payload, payload, length);
    if (type == MCU_MSG_HEARTBEAT) {
        mcu_heartbeat_t message;
        status = mcu_unpack_heartbeat(&frame, &message);
        if (status == MCU_OK) {
            printf("%lu %u\n", (unsigned long)message.uptime_ms, message.state);
        }
    } else if (type == MCU_MSG_VEHICLE_STATE) {
        mcu_vehicle_state_t message;
        status = mcu_unpack_vehicle_state(&frame, &message);
        if (status == MCU_OK) {
            printf("%u %d %u %u\n", message.speed_centi_kmh, message.steering_decideg, message.gear, message.indicators);
        }
    } else if (type == MCU_MSG_DRIVER_ALERT) {
        mcu_driver_alert_t message;
        status = mcu_unpack_driver_alert(&frame, &message);
        if (status == MCU_OK) {
            printf("%u %u %u\n", message.kind, message.severity, message.text_id);
        }
    } else if (type == MCU_MSG_ACK) {
        mcu_ack_t message;
        status = mcu_unpack_ack(&frame, &message);
        if (status == MCU_OK) {
            printf("%u %u %u\n", message.acked_type, message.acked_seq, message.status);
        }
    }
    if (status != MCU_OK) {
        printf("ERR %d\n", status);
    }
}

static void pack_command(const char *args)
{
    unsigned int type;
    long a = 0, b = 0, c = 0, d = 0;
    mcu_frame_t frame;
    int count = sscanf(args, "%u %ld %ld %ld %ld", &type, &a, &b, &c, &d);

    if (type == MCU_MSG_HEARTBEAT && count == 3) {
        mcu_heartbeat_t message;
        message.uptime_ms = (uint32_t)a;
        message.state = (uint8_t)b;
        mcu_pack_heartbeat(&message, &frame);
    } else if (type == MCU_MSG_VEHICLE_STATE && count == 5) {
        mcu_vehicle_state_t message;
        message.speed_centi_kmh = (uint16_t)a;
        message.steering_decideg = (int16_t)b;
        message.gear = (uint8_t)c;
        message.indicators = (uint8_t)d;
        mcu_pack_vehicle_state(&message, &frame);
    } else if (type == MCU_MSG_DRIVER_ALERT && count == 4) {
        mcu_driver_alert_t message;
        message.kind = (uint8_t)a;
        message.severity = (uint8_t)b;
        message.text_id = (uint16_t)c;
        mcu_pack_driver_alert(&message, &frame);
    } else if (type == MCU_MSG_ACK && count == 4) {
        mcu_ack_t message;
        message.acked_type = (uint8_t)a;
        message.acked_seq = (uint8_t)b;
        message.status = (uint8_t)c;
        mcu_pack_ack(&message, &frame);
    } else {
        puts("ERR usage");
        return;
    }
    print_hex(stdout, frame.payload, frame.length);
    putchar('\n');
}

static int run_filter(void)
{
    char line[LINE_MAX_LENGTH];
    while (fgets(line, sizeof line, stdin) != NULL) {
        line[strcspn(line, "\r\n")] = '\0';
        if (line[0] == 'E' && line[1] == ' ') {
            int status = encode_command(line + 2);
            if (status != MCU_OK) {
                printf("ERR %d\n", status);
            }
        } else if (line[0] == 'D' && line[1] == ' ') {
            uint8_t block[LINE_MAX_LENGTH];
            size_t length = parse_hex(line + 2, block, sizeof block);
            mcu_frame_t frame;
            int status = mcu_frame_decode(block, length, &frame);
            if (status == MCU_OK) {
                print_frame(&frame);
            } else {
                printf("ERR %d\n", status);
            }
        } else if (line[0] == 'S' && line[1] == ' ') {
            stream_command(line + 2);
        } else if (line[0] == 'U' && line[1] == ' ') {
            unpack_command(line + 2);
        } else if (line[0] == 'P' && line[1] == ' ') {
            pack_command(line + 2);
        } else if (line[0] != '\0') {
            printf("ERR unknown command\n");
        }
        fflush(stdout);
    }
    return 0;
}

static int check_ok_vector(const char *args, int line_number)
{
    unsigned int version, type, seq, flags;
    char payload_hex[LINE_MAX_LENGTH], wire_hex[LINE_MAX_LENGTH];
    uint8_t payload[256], expected[LINE_MAX_LENGTH], wire[MCU_MAX_WIRE_FRAME];
    size_t payload_length, expected_length;
    mcu_frame_t frame, decoded;
    int length;

    if (sscanf(args, "%u %u %u %u %4095s %4095s", &version, &type, &seq, &flags, payload_hex, wire_hex) != 6) {
        fprintf(stderr, "line %d: malformed ok vector\n", line_number);
        return 0;
    }
    payload_length = parse_hex(payload_hex, payload, sizeof payload);
    expected_length = parse_hex(wire_hex, expected, sizeof expected);
    frame.version = (uint8_t)version;
    frame.type = (uint8_t)type;
    frame.seq = (uint8_t)seq;
    frame.flags = (uint8_t)flags;
    frame.length = (uint8_t)payload_length;
    memcpy(frame.payload, payload, payload_length);
    length = mcu_frame_encode(&frame, wire, sizeof wire);
    if (length < 0 || (size_t)length != expected_length || memcmp(wire, expected, expected_length) != 0) {
        fprintf(stderr, "line %d: encoded bytes differ from the vector\n", line_number);
        return 0;
    }
    if (mcu_frame_decode(expected, expected_length - 1, &decoded) != MCU_OK || decoded.length != payload_length ||
        decoded.type != frame.type || decoded.seq != frame.seq || decoded.flags != frame.flags ||
        memcmp(decoded.payload, payload, payload_length) != 0) {
        fprintf(stderr, "line %d: decoding the vector's wire bytes failed\n", line_number);
        return 0;
    }
    return 1;
}

static int check_error_vector(const char *args, int line_number)
{
    static const struct { const char *reason; int code; } reasons[] = {
        {"cobs", MCU_ERR_COBS}, {"length", MCU_ERR_LENGTH}, {"crc", MCU_ERR_CRC}, {"version", MCU_ERR_VERSION},
    };
    char reason[64], block_hex[LINE_MAX_LENGTH];
    uint8_t block[LINE_MAX_LENGTH];
    size_t length, i;
    mcu_frame_t frame;
    int status;

    if (sscanf(args, "%63s %4095s", reason, block_hex) != 2) {
        fprintf(stderr, "line %d: malformed err vector\n", line_number);
        return 0;
    }
    length = parse_hex(block_hex, block, sizeof block);
    status = mcu_frame_decode(block, length, &frame);
    for (i = 0; i < sizeof reasons / sizeof reasons[0]; i++) {
        if (strcmp(reasons[i].reason, reason) == 0) {
            if (status == reasons[i].code) {
                return 1;
            }
            fprintf(stderr, "line %d: expected %s (%d), got %d\n", line_number, reason, reasons[i].code, status);
            return 0;
        }
    }
    fprintf(stderr, "line %d: unknown reason %s\n", line_number, reason);
    return 0;
}

static int run_vectors(const char *path)
{
    char line[LINE_MAX_LENGTH];
    int passed = 0, failed = 0, line_number = 0;
    FILE *file = fopen(path, "r");
    static const uint8_t check_input[] = "123456789";

    if (file == NULL) {
        fprintf(stderr, "cannot open %s\n", path);
        return 2;
    }
    if (mcu_crc16(check_input, 9, 0xFFFFu) == 0x29B1u) {
        passed++;
    } else {
        fprintf(stderr, "CRC-16/CCITT-FALSE check value mismatch\n");
        failed++;
    }
    while (fgets(line, sizeof line, file) != NULL) {
        int ok;
        line_number++;
        line[strcspn(line, "\r\n")] = '\0';
        if (line[0] == '#' || line[0] == '\0') {
            continue;
        }
        if (strncmp(line, "ok ", 3) == 0) {
            ok = check_ok_vector(line + 3, line_number);
        } else if (strncmp(line, "err ", 4) == 0) {
            ok = check_error_vector(line + 4, line_number);
        } else {
            fprintf(stderr, "line %d: unknown vector kind\n", line_number);
            ok = 0;
        }
        if (ok) {
            passed++;
        } else {
            failed++;
        }
    }
    fclose(file);
    printf("%d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "vectors") == 0) {
        return run_vectors(argv[2]);
    }
    if (argc == 2 && strcmp(argv[1], "filter") == 0) {
        return run_filter();
    }
    fprintf(stderr, "usage: %s vectors FILE | filter\n", argv[0]);
    return 2;
}
