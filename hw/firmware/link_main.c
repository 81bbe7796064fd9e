/*
 * Host-side check of the firmware's link watchdog against the shared script:
 *   cc -std=c99 -Wall -Werror -o link link_main.c camotp_board/src/camotp_link.c && ./link ../testdata/link.txt
 * Exit status 0 when every step behaves as the script says. hw/link_test.go
 * runs it.
 */
#include <stdio.h>
#include <string.h>

#include "camotp_board/src/camotp_link.h"

static const char *state_name(camotp_link_state s) {
  switch (s) {
    case CAMOTP_LINK_WAITING:
      return "waiting";
    case CAMOTP_LINK_UP:
      return "up";
    case CAMOTP_LINK_LOST:
      return "lost";
  }
  return "?";
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s link.txt\n", argv[0]);
    return 2;
  }
  FILE *f = fopen(argv[1], "r");
  if (!f) {
    perror(argv[1]);
    return 2;
  }
  camotp_link link;
  camotp_link_init(&link);
  char line[512], op[8], type[8], state[16], action[16];
  unsigned long ms;
  int failed = 0, steps = 0, lineno = 0;
  while (fgets(line, sizeof line, f)) {
    lineno++;
    if (line[0] == '#' || line[0] == '\n') continue;
    if (sscanf(line, "%7s %lu %7s %15s %15s", op, &ms, type, state, action) != 5) {
      printf("FAIL line %d: malformed: %s", lineno, line);
      failed++;
      continue;
    }
    steps++;
    const char *did = "-";
    if (strcmp(op, "rx") == 0) {
      unsigned t;
      if (sscanf(type, "%x", &t) != 1) {
        printf("FAIL line %d: bad type %s\n", lineno, type);
        failed++;
        continue;
      }
      if (camotp_link_rx(&link, (uint32_t)ms, (uint8_t)t)) did = "hello";
    } else if (strcmp(op, "poll") == 0) {
      if (camotp_link_poll(&link, (uint32_t)ms)) did = "blank";
    } else {
      printf("FAIL line %d: unknown step %s\n", lineno, op);
      failed++;
      continue;
    }
    if (strcmp(state_name(link.state), state) != 0 || strcmp(did, action) != 0) {
      printf("FAIL line %d: %s %lu: state %s, action %s; want %s %s\n", lineno, op, ms, state_name(link.state), did,
             state, action);
      failed++;
    }
  }
  fclose(f);
  printf("%d link steps checked, %d failed\n", steps, failed);
  return failed || steps == 0 ? 1 : 0;
}
