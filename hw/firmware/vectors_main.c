/*
 * Host-side check of the firmware codec against the shared vectors:
 *   cc -std=c99 -Wall -Werror -o vectors vectors_main.c camotp_board/src/camotp_proto.c && ./vectors ../testdata/vectors.txt
 * Exit status 0 when every vector passes. hw/frame_test.go runs it.
 */
#include <stdio.h>
#include <string.h>

#include "camotp_board/src/camotp_proto.h"

static size_t unhex(const char *s, uint8_t *out, size_t cap) {
  size_t n = strlen(s);
  if (n % 2 != 0 || n / 2 > cap) return (size_t)-1;
  for (size_t i = 0; i < n / 2; i++) {
    unsigned v;
    if (sscanf(s + 2 * i, "%2x", &v) != 1) return (size_t)-1;
    out[i] = (uint8_t)v;
  }
  return n / 2;
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s vectors.txt\n", argv[0]);
    return 2;
  }
  FILE *f = fopen(argv[1], "r");
  if (!f) {
    perror(argv[1]);
    return 2;
  }
  char line[4096], name[128], kind[8], a[2048], b[2048];
  int failed = 0, checked = 0;
  if (camotp_crc16((const uint8_t *)"123456789", 9) != 0x29B1) {
    printf("FAIL crc check value\n");
    failed++;
  }
  while (fgets(line, sizeof line, f)) {
    if (line[0] == '#' || line[0] == '\n') continue;
    if (sscanf(line, "%127s %7s %2047s %2047s", name, kind, a, b) != 4) {
      printf("FAIL malformed line: %s", line);
      failed++;
      continue;
    }
    uint8_t dec[1024], wire[1024], out[1024], payload[CAMOTP_MAX_FRAME], type;
    size_t plen;
    checked++;
    if (strcmp(kind, "ok") == 0) {
      size_t dn = unhex(a, dec, sizeof dec), wn = unhex(b, wire, sizeof wire);
      if (dn == (size_t)-1 || wn == (size_t)-1 || dn < 4) {
        printf("FAIL %s: bad hex\n", name);
        failed++;
        continue;
      }
      size_t n = camotp_frame_encode(dec[1], dec + 2, dn - 4, out);
      if (n != wn || memcmp(out, wire, n) != 0) {
        printf("FAIL %s: encode differs\n", name);
        failed++;
      }
      /* Byte-at-a-time receiver, as the board's UART loop runs it. */
      camotp_rx rx;
      camotp_rx_init(&rx);
      int got = 0;
      for (size_t i = 0; i < wn; i++) got += camotp_rx_feed(&rx, wire[i]);
      if (got != 1 || rx.type != dec[1] || rx.payload_len != dn - 4 || memcmp(rx.payload, dec + 2, dn - 4) != 0) {
        printf("FAIL %s: decode differs\n", name);
        failed++;
      }
    } else {
      size_t bn = unhex(a, wire, sizeof wire);
      camotp_err want = strcmp(b, "crc") == 0 ? CAMOTP_ERR_CRC
                      : strcmp(b, "cobs") == 0 ? CAMOTP_ERR_COBS
                      : strcmp(b, "short") == 0 ? CAMOTP_ERR_SHORT
                      : strcmp(b, "version") == 0 ? CAMOTP_ERR_VERSION : CAMOTP_OK;
      camotp_err err = camotp_frame_decode(wire, bn, &type, payload, &plen);
      if (want == CAMOTP_OK || err != want) {
        printf("FAIL %s: got error %d, want %s\n", name, err, b);
        failed++;
      }
    }
  }
  fclose(f);
  printf("%d vectors checked, %d failed\n", checked, failed);
  return failed ? 1 : 0;
}
