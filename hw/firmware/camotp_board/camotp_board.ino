/*
 * camotp board firmware: a Raspberry Pi Pico (RP2040, arduino-pico core)
 * with an SSD1306 128x64 I2C OLED and five buttons becomes a camotp camera
 * panel over USB serial. The host (camotp camera run --ui serial:PATH) runs
 * the camera; this board only draws what it is sent and reports button edges
 * stamped with its own millisecond clock (the board measures gesture timing).
 * When the host goes silent for CAMOTP_LINK_TIMEOUT_MS it blanks the screen
 * to "Link lost" (never a frozen code) until the host draws again.
 *
 * Wiring and build: hw/README.md. Protocol: docs/serial-protocol.md.
 * Libraries: Adafruit SSD1306, Adafruit GFX (Arduino Library Manager).
 */
#include <Adafruit_GFX.h>
#include <Adafruit_SSD1306.h>
#include <Wire.h>

extern "C" {
#include "src/camotp_link.h"
#include "src/camotp_proto.h"
}

#define BOARD_ID_PREFIX "pico-"
#define OLED_ADDR 0x3C
#define OLED_SDA 4
#define OLED_SCL 5
#define LED_PIN LED_BUILTIN
#define COLS 20
#define ROWS 6
#define DEBOUNCE_MS 15

/* GPIO of each button, indexed by protocol button number - 1. */
static const uint8_t BUTTON_PINS[5] = {
    10, /* CAMOTP_SELECT  */
    11, /* CAMOTP_VOLUP   */
    12, /* CAMOTP_VOLDOWN */
    13, /* CAMOTP_PROGRAM */
    14, /* CAMOTP_POWER   */
};

static Adafruit_SSD1306 oled(128, 64, &Wire, -1);
static camotp_rx rx;
static camotp_link host_link;
static uint8_t wire_buf[CAMOTP_MAX_WIRE];
static char board_id[33];
static uint8_t led_state = 0;

struct Button {
  bool down;          /* debounced state */
  bool raw;           /* last raw reading */
  uint32_t raw_since; /* when raw last changed */
};
static Button buttons[5];

static void send_frame(uint8_t type, const uint8_t *payload, size_t len) {
  size_t n = camotp_frame_encode(type, payload, len, wire_buf);
  if (n > 0) Serial.write(wire_buf, n);
}

static void send_hello() {
  uint8_t p[4 + 32];
  size_t idlen = strlen(board_id);
  p[0] = CAMOTP_PROTOCOL_VERSION;
  p[1] = COLS;
  p[2] = ROWS;
  p[3] = 5;
  memcpy(p + 4, board_id, idlen);
  send_frame(CAMOTP_HELLO, p, 4 + idlen);
}

static void put_u32(uint8_t *p, uint32_t v) {
  p[0] = v >> 24;
  p[1] = v >> 16;
  p[2] = v >> 8;
  p[3] = v;
}

static void send_button(uint8_t button, bool down, uint32_t ms) {
  uint8_t p[6];
  p[0] = button;
  p[1] = down ? 1 : 0;
  put_u32(p + 2, ms);
  send_frame(CAMOTP_BUTTON, p, sizeof p);
}

static void draw(const uint8_t *p, size_t len) {
  if (len < 2) return;
  uint8_t rows = p[0], cols = p[1];
  if (len != 2 + (size_t)rows * cols) return;
  oled.clearDisplay();
  oled.setTextSize(1);
  oled.setTextColor(SSD1306_WHITE);
  for (uint8_t r = 0; r < rows && r < 8; r++) {
    oled.setCursor(0, r * 10 + 2); /* 6x8 font, 10 px pitch fills 64 px */
    for (uint8_t c = 0; c < cols && c < 21; c++) oled.write(p[2 + r * cols + c]);
  }
  oled.display();
}

/* The host is gone: the code it drew must not stay on screen. */
static void draw_link_lost() {
  oled.clearDisplay();
  oled.setTextSize(1);
  oled.setTextColor(SSD1306_WHITE);
  oled.setCursor(37, 22); /* "Link lost", centred: 9 chars x 6 px */
  oled.print("Link lost");
  oled.setCursor(16, 34);
  oled.print("waiting for host");
  oled.display();
}

static void handle_frame() {
  switch (rx.type) {
    case CAMOTP_HELLO_REQ:
      send_hello();
      break;
    case CAMOTP_PING:
      if (rx.payload_len == 4) {
        uint8_t p[8];
        memcpy(p, rx.payload, 4);
        put_u32(p + 4, millis());
        send_frame(CAMOTP_PONG, p, sizeof p);
      }
      break;
    case CAMOTP_DRAW:
      draw(rx.payload, rx.payload_len);
      break;
    case CAMOTP_LED:
      if (rx.payload_len == 2 && rx.payload[1] <= 2) led_state = rx.payload[1];
      break;
    default:
      break; /* unknown: ignored, as the protocol requires */
  }
}

void setup() {
  pinMode(LED_PIN, OUTPUT);
  for (int i = 0; i < 5; i++) {
    pinMode(BUTTON_PINS[i], INPUT_PULLUP);
    buttons[i] = {false, false, 0};
  }
  /* The RP2040's unique flash id names the board. */
  snprintf(board_id, sizeof board_id, "%s%08lx", BOARD_ID_PREFIX, (unsigned long)rp2040.getChipID());
  Wire.setSDA(OLED_SDA);
  Wire.setSCL(OLED_SCL);
  Wire.begin();
  oled.begin(SSD1306_SWITCHCAPVCC, OLED_ADDR);
  oled.clearDisplay();
  oled.setTextColor(SSD1306_WHITE);
  oled.setCursor(0, 0);
  oled.print("camotp board\nwaiting for host");
  oled.display();
  Serial.begin(115200); /* USB CDC: the baud is nominal */
  camotp_rx_init(&rx);
  camotp_link_init(&host_link);
  send_hello();
}

void loop() {
  while (Serial.available() > 0) {
    if (camotp_rx_feed(&rx, (uint8_t)Serial.read())) {
      /* Back after a loss: ask the host for the screen (it redraws on an
       * unasked Hello); "Link lost" stays until its Draw. */
      if (camotp_link_rx(&host_link, millis(), rx.type)) send_hello();
      handle_frame();
    }
  }
  uint32_t now = millis();
  if (camotp_link_poll(&host_link, now)) {
    draw_link_lost();
    led_state = 0;
  }
  for (int i = 0; i < 5; i++) {
    bool raw = digitalRead(BUTTON_PINS[i]) == LOW; /* pressed pulls to GND */
    if (raw != buttons[i].raw) {
      buttons[i].raw = raw;
      buttons[i].raw_since = now;
    }
    /* Debounced edge, stamped with the time the contact settled. */
    if (buttons[i].down != raw && now - buttons[i].raw_since >= DEBOUNCE_MS) {
      buttons[i].down = raw;
      send_button(i + 1, raw, buttons[i].raw_since);
    }
  }
  bool on = led_state == 1 || (led_state == 2 && (now / 500) % 2 == 0);
  digitalWrite(LED_PIN, on ? HIGH : LOW);
}
