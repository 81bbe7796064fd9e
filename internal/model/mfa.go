package model

import "time"

// MFA methods a user registers (the body camera is assigned by an admin
// instead).
const (
	MethodApp = "app" // authenticator app (TOTP)
)

// MethodPhone is a confirmed phone number: text message and phone call.
const MethodPhone = "phone"

// OutboxMessage is a message kept by the development outbox.
type OutboxMessage struct {
	ID      int64     `json:"id"`
	At      time.Time `json:"at"`
	Channel string    `json:"channel"`
	Address string    `json:"address"`
	Subject string    `json:"subject"`
	Body    string    `json:"body"`
}
