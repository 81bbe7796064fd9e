/* camotp board link watchdog; see camotp_link.h. */
#include "camotp_link.h"

#include "camotp_proto.h"

void camotp_link_init(camotp_link *l) {
  l->state = CAMOTP_LINK_WAITING;
  l->last_rx = 0;
}

int camotp_link_rx(camotp_link *l, uint32_t now, uint8_t type) {
  int hello = l->state == CAMOTP_LINK_LOST && type != CAMOTP_DRAW && type != CAMOTP_HELLO_REQ;
  l->state = CAMOTP_LINK_UP;
  l->last_rx = now;
  return hello;
}

int camotp_link_poll(camotp_link *l, uint32_t now) {
  /* Unsigned subtraction: the elapsed time is right across a wrap. */
  if (l->state == CAMOTP_LINK_UP && (uint32_t)(now - l->last_rx) >= CAMOTP_LINK_TIMEOUT_MS) {
    l->state = CAMOTP_LINK_LOST;
    return 1;
  }
  return 0;
}
