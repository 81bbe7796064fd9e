/* camotp serial protocol frame codec; see camotp_proto.h. */
#include "camotp_proto.h"

#include <string.h>

uint16_t camotp_crc16(const uint8_t *data, size_t len) {
  uint16_t crc = 0xFFFF;
  for (size_t i = 0; i < len; i++) {
    crc ^= (uint16_t)data[i] << 8;
    for (int b = 0; b < 8; b++) {
      crc = (crc & 0x8000) ? (uint16_t)((crc << 1) ^ 0x1021) : (uint16_t)(crc << 1);
    }
  }
  return crc;
}

size_t camotp_cobs_encode(const uint8_t *src, size_t len, uint8_t *dst) {
  uint8_t *out = dst;
  uint8_t *codep = out++;
  uint8_t code = 1;
  for (size_t i = 0; i < len; i++) {
    if (src[i] != 0) {
      *out++ = src[i];
      code++;
    }
    if (src[i] == 0 || code == 0xFF) {
      *codep = code;
      code = 1;
      codep = out;
      if (src[i] == 0 || i + 1 < len) {
        out++;
      } else {
        codep = NULL; /* a full block ends the input: no empty block */
      }
    }
  }
  if (codep != NULL) {
    *codep = code;
  }
  return (size_t)(out - dst);
}

size_t camotp_cobs_decode(const uint8_t *src, size_t len, uint8_t *dst) {
  size_t i = 0, o = 0;
  while (i < len) {
    uint8_t code = src[i];
    if (code == 0 || i + code > len) {
      return (size_t)-1;
    }
    for (size_t k = 1; k < code; k++) {
      if (src[i + k] == 0) {
        return (size_t)-1;
      }
      dst[o++] = src[i + k];
    }
    i += code;
    if (code < 0xFF && i < len) {
      dst[o++] = 0;
    }
  }
  return o;
}

size_t camotp_frame_encode(uint8_t type, const uint8_t *payload, size_t payload_len, uint8_t *wire) {
  uint8_t raw[CAMOTP_MAX_FRAME];
  if (payload_len + 4 > CAMOTP_MAX_FRAME) {
    return 0;
  }
  raw[0] = CAMOTP_PROTOCOL_VERSION;
  raw[1] = type;
  if (payload_len > 0) {
    memcpy(raw + 2, payload, payload_len);
  }
  uint16_t crc = camotp_crc16(raw, payload_len + 2);
  raw[payload_len + 2] = (uint8_t)(crc >> 8);
  raw[payload_len + 3] = (uint8_t)crc;
  size_t n = camotp_cobs_encode(raw, payload_len + 4, wire);
  wire[n++] = 0;
  return n;
}

camotp_err camotp_frame_decode(const uint8_t *block, size_t len, uint8_t *type, uint8_t *payload, size_t *payload_len) {
  uint8_t raw[CAMOTP_MAX_WIRE];
  if (len > CAMOTP_MAX_WIRE) {
    return CAMOTP_ERR_OVERSIZE;
  }
  size_t n = camotp_cobs_decode(block, len, raw);
  if (n == (size_t)-1) {
    return CAMOTP_ERR_COBS;
  }
  if (n < 4) {
    return CAMOTP_ERR_SHORT;
  }
  if (n > CAMOTP_MAX_FRAME) {
    return CAMOTP_ERR_OVERSIZE;
  }
  uint16_t want = (uint16_t)((raw[n - 2] << 8) | raw[n - 1]);
  if (camotp_crc16(raw, n - 2) != want) {
    return CAMOTP_ERR_CRC;
  }
  if (raw[0] != CAMOTP_PROTOCOL_VERSION) {
    return CAMOTP_ERR_VERSION;
  }
  *type = raw[1];
  *payload_len = n - 4;
  memcpy(payload, raw + 2, n - 4);
  return CAMOTP_OK;
}

void camotp_rx_init(camotp_rx *rx) { memset(rx, 0, sizeof *rx); }

int camotp_rx_feed(camotp_rx *rx, uint8_t byte) {
  if (byte != 0) {
    if (rx->len >= sizeof rx->buf) {
      rx->overflow = 1;
    } else {
      rx->buf[rx->len++] = byte;
    }
    return 0;
  }
  int got = 0;
  if (rx->overflow) {
    rx->dropped[CAMOTP_ERR_OVERSIZE]++;
  } else if (rx->len > 0) {
    camotp_err err = camotp_frame_decode(rx->buf, rx->len, &rx->type, rx->payload, &rx->payload_len);
    if (err == CAMOTP_OK) {
      rx->frames++;
      got = 1;
    } else {
      rx->dropped[err]++;
    }
  }
  rx->len = 0;
  rx->overflow = 0;
  return got;
}
