/*
 * camotp serial protocol: frame codec for the board firmware.
 * Portable C99, no allocation; the same code runs on the board and, for the
 * shared test vectors, on the host (see vectors_main.c and hw/frame_test.go).
 *
 * A frame on the wire is COBS(version, type, payload..., crc_hi, crc_lo)
 * followed by a single 0x00 delimiter. The CRC is CRC-16/CCITT-FALSE
 * (poly 0x1021, init 0xFFFF) over version, type and payload.
 * docs/serial-protocol.md describes every frame.
 */
#ifndef CAMOTP_PROTO_H
#define CAMOTP_PROTO_H

#include <stddef.h>
#include <stdint.h>

#define CAMOTP_PROTOCOL_VERSION 1
#define CAMOTP_MAX_FRAME 250 /* decoded: version + type + payload + CRC */
#define CAMOTP_MAX_WIRE (CAMOTP_MAX_FRAME + CAMOTP_MAX_FRAME / 254 + 2)

/* Frame types: board -> host below 0x80, host -> board from 0x80. */
enum {
  CAMOTP_HELLO = 0x01,
  CAMOTP_BUTTON = 0x02,
  CAMOTP_PONG = 0x03,
  CAMOTP_HELLO_REQ = 0x80,
  CAMOTP_DRAW = 0x81,
  CAMOTP_LED = 0x82,
  CAMOTP_PING = 0x83,
};

/* Buttons, as device.Button numbers them. */
enum { CAMOTP_SELECT = 1, CAMOTP_VOLUP, CAMOTP_VOLDOWN, CAMOTP_PROGRAM, CAMOTP_POWER };

/* Decode results. */
typedef enum {
  CAMOTP_OK = 0,
  CAMOTP_ERR_COBS = 1,
  CAMOTP_ERR_SHORT = 2,
  CAMOTP_ERR_OVERSIZE = 3,
  CAMOTP_ERR_CRC = 4,
  CAMOTP_ERR_VERSION = 5,
} camotp_err;

uint16_t camotp_crc16(const uint8_t *data, size_t len);

/* COBS-encodes len bytes of src into dst (room for len + len/254 + 1);
 * returns the encoded length (no delimiter). */
size_t camotp_cobs_encode(const uint8_t *src, size_t len, uint8_t *dst);

/* Decodes a COBS block into dst (room for len bytes); returns the decoded
 * length, or (size_t)-1 when the block is not valid COBS. */
size_t camotp_cobs_decode(const uint8_t *src, size_t len, uint8_t *dst);

/* Builds the wire bytes of one frame, delimiter included, into wire (room
 * for CAMOTP_MAX_WIRE); returns their length, 0 when the payload is too long. */
size_t camotp_frame_encode(uint8_t type, const uint8_t *payload, size_t payload_len, uint8_t *wire);

/* Checks one block (the bytes between two delimiters). On CAMOTP_OK, *type
 * is the frame type and the payload is copied to payload (room for
 * CAMOTP_MAX_FRAME) with its length in *payload_len. */
camotp_err camotp_frame_decode(const uint8_t *block, size_t len, uint8_t *type, uint8_t *payload, size_t *payload_len);

/* Stream receiver: feed bytes one at a time; returns 1 when a good frame is
 * complete (then read type/payload/len), 0 otherwise. Bad frames are
 * counted in dropped[] by camotp_err and skipped up to the next delimiter. */
typedef struct {
  uint8_t buf[CAMOTP_MAX_WIRE];
  size_t len;
  int overflow;
  uint8_t type;
  uint8_t payload[CAMOTP_MAX_FRAME];
  size_t payload_len;
  uint32_t frames;
  uint32_t dropped[6];
} camotp_rx;

void camotp_rx_init(camotp_rx *rx);
int camotp_rx_feed(camotp_rx *rx, uint8_t byte);

#endif
