package hw

import (
	"strings"
	"time"

	"github.com/camotp/camotp/device"
)

// LinkTimeout is how long a board shows the host's screen without a frame
// from the host: then it blanks the screen to LinkLostText (a frozen code
// must not stay on a board whose host is gone) until the host draws again.
// The host pings every HeartbeatInterval, so this is two missed heartbeats
// and half a second of slack. The firmware's CAMOTP_LINK_TIMEOUT_MS is the
// same; testdata/link.txt checks both.
const LinkTimeout = 2500 * time.Millisecond

// LinkCheckInterval is how often the board simulator checks the link, as
// the firmware's loop does at every turn.
const LinkCheckInterval = 50 * time.Millisecond

// LinkLostText is what a board shows in place of the host's screen once the
// link is lost.
const LinkLostText = "Link lost"

// linkState is where a board's link watchdog stands.
type linkState uint8

const (
	linkWaiting linkState = iota // since boot, no host frame yet
	linkUp                       // a host frame came less than LinkTimeout ago
	linkLost                     // timed out: the screen shows LinkLostText
)

func (s linkState) String() string {
	return [...]string{"waiting", "up", "lost"}[s]
}

// linkWatch is the board's link watchdog on its wrapping millisecond clock:
// the firmware's camotp_link.c, in Go for the board simulator.
type linkWatch struct {
	state  linkState
	lastRx uint32 // board ms of the last good host frame
}

// rx records a good host frame of type typ at board time now. It reports
// whether the board must send Hello unasked: the frame ends a link loss and
// is neither a Draw (a fresh screen) nor a HelloReq (answered by a Hello
// anyway). The host redraws on a Hello it did not ask for; until then the
// board keeps LinkLostText on screen, never the screen from before the loss.
func (l *linkWatch) rx(now uint32, typ byte) (hello bool) {
	hello = l.state == linkLost && typ != TypeDraw && typ != TypeHelloReq
	l.state, l.lastRx = linkUp, now
	return hello
}

// poll checks the link at board time now. It reports true once, when the
// link is declared lost: the board then blanks its screen and LED.
// Unsigned subtraction keeps it right across the counter's wrap.
func (l *linkWatch) poll(now uint32) (blank bool) {
	if l.state == linkUp && now-l.lastRx >= uint32(LinkTimeout/time.Millisecond) {
		l.state = linkLost
		return true
	}
	return false
}

// linkLostDraw is the screen a board shows once the link is lost.
func linkLostDraw(rows, cols int) Draw {
	center := func(s string) string { return strings.Repeat(" ", max((cols-len(s))/2, 0)) + s }
	return DrawScreen(device.Screen{Lines: []string{"", "", center(LinkLostText), center("waiting for host")}}, rows, cols)
}
