/*
 * camotp serial protocol: the board's link watchdog. A board whose host
 * stops talking must not keep showing the last verification code: after
 * CAMOTP_LINK_TIMEOUT_MS without a good frame from the host it blanks its
 * screen to "Link lost", and when frames resume it asks the host to redraw.
 * Portable C99 on the board's wrapping millisecond counter, no I/O: the
 * board's loop acts on the results; the host runs the same logic in tests
 * (link_main.c, hw/link_test.go, hw/testdata/link.txt).
 */
#ifndef CAMOTP_LINK_H
#define CAMOTP_LINK_H

#include <stdint.h>

/* No good host frame for this long: the link is lost. The host pings every
 * second, so this is two missed heartbeats and half a second of slack. */
#define CAMOTP_LINK_TIMEOUT_MS 2500u

typedef enum {
  CAMOTP_LINK_WAITING = 0, /* since boot, no host frame yet */
  CAMOTP_LINK_UP = 1,      /* a host frame came less than the timeout ago */
  CAMOTP_LINK_LOST = 2,    /* timed out; the screen shows "Link lost" */
} camotp_link_state;

typedef struct {
  camotp_link_state state;
  uint32_t last_rx; /* board ms of the last good host frame */
} camotp_link;

void camotp_link_init(camotp_link *l);

/* A good frame of type from the host at board time now. Returns 1 when the
 * board must send Hello unasked: the frame ends a link loss and is neither a
 * Draw (a fresh screen) nor a HelloReq (its answer is the Hello). The host
 * redraws on a Hello it did not ask for; the board keeps "Link lost" on
 * screen until that Draw, never the screen it had before the loss. */
int camotp_link_rx(camotp_link *l, uint32_t now, uint8_t type);

/* The board's loop at board time now. Returns 1 once, when the link is
 * declared lost: the board then blanks its screen to "Link lost" and turns
 * its LED off. Safe across the 49.7-day wrap of the millisecond counter. */
int camotp_link_poll(camotp_link *l, uint32_t now);

#endif
