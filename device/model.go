// Package device is the camera firmware core: models and their buttons, the
// button-gesture detector, the menu state machine, the Authenticator screen,
// the camera clock and the seed store. It imports no terminal, serial or MQTT
// package: it talks to small interfaces (Display, Clock, SeedSource) and
// consumes timestamped button edges, so a keyboard, a script and a real board
// all drive the same code.
package device

import (
	"fmt"
	"strings"
)

// Model identifies a camera model.
type Model string

// The supported camera models.
const (
	Body4     Model = "body4"
	Body3     Model = "body3"
	Workforce Model = "workforce"
)

// Models lists every supported model in display order.
var Models = []Model{Body4, Body3, Workforce}

// ParseModel returns the Model named s or an error listing the valid names.
func ParseModel(s string) (Model, error) {
	for _, m := range Models {
		if string(m) == strings.ToLower(strings.TrimSpace(s)) {
			return m, nil
		}
	}
	return "", fmt.Errorf("unknown camera model %q (want body4, body3 or workforce)", s)
}

// DisplayName is the product name of the model.
func (m Model) DisplayName() string {
	switch m {
	case Body4:
		return "Body 4"
	case Body3:
		return "Body 3"
	case Workforce:
		return "Body Workforce"
	}
	return string(m)
}

// MenuGesture is the gesture that opens the menu from the home screen on this
// model: a double-press of Select on Body 4, a long-press of Program on Body 3
// and Body Workforce.
func (m Model) MenuGesture() Gesture {
	if m == Body4 {
		return Gesture{Kind: DoublePress, Button: Select}
	}
	return Gesture{Kind: LongPress, Button: Program}
}

// Buttons lists the model's buttons in their physical order on the body, as
// an emulator or a board draws them. Body 4's Select sits between the volume
// keys.
func (m Model) Buttons() []Button {
	if m == Body4 {
		return []Button{VolUp, Select, VolDown, Program, Power}
	}
	return []Button{Power, Program, VolUp, VolDown, Select}
}

// HowTo gives the steps an officer follows on this model to read the
// verification code, as the sign-in page shows them.
func (m Model) HowTo() []string {
	open := "Long-press Program to open the menu."
	if m == Body4 {
		open = "Double-press Select (the button between the volume keys) to open the menu."
	}
	return []string{
		open,
		"Press Volume Down to highlight Authenticator.",
		"Press Select.",
		"Read the 6-digit code on the screen before the countdown ends.",
	}
}

// Button is one physical button of a camera.
type Button uint8

// The buttons a camera may have.
const (
	Select Button = iota + 1
	VolUp
	VolDown
	Program
	Power
)

// AllButtons lists every button.
var AllButtons = []Button{Select, VolUp, VolDown, Program, Power}

var buttonNames = map[Button]string{
	Select: "select", VolUp: "volup", VolDown: "voldown", Program: "program", Power: "power",
}

var buttonLabels = map[Button]string{
	Select: "Select", VolUp: "Vol+", VolDown: "Vol-", Program: "Program", Power: "Power",
}

// String returns the button's script name (select, volup, voldown, program, power).
func (b Button) String() string {
	if n, ok := buttonNames[b]; ok {
		return n
	}
	return fmt.Sprintf("button(%d)", uint8(b))
}

// Label is the short label printed next to the button on the body.
func (b Button) Label() string {
	if l, ok := buttonLabels[b]; ok {
		return l
	}
	return b.String()
}

// ParseButton returns the button with script name s.
func ParseButton(s string) (Button, error) {
	for b, n := range buttonNames {
		if n == s {
			return b, nil
		}
	}
	return 0, fmt.Errorf("unknown button %q (want select, volup, voldown, program or power)", s)
}
