package model

import "time"

// User is an account (no password hash).
type User struct {
	Username  string    `json:"username"`
	Email     string    `json:"email"`
	Phone     string    `json:"phone,omitempty"`
	Role      string    `json:"role"`
	Camera    string    `json:"camera,omitempty"`
	CreatedAt time.Time `json:"createdAt"`
	// LastMethod is the MFA method the user last signed in with ("" when none).
	LastMethod string `json:"lastMethod,omitempty"`
	// Subject is the user's stable random identifier towards OpenID
	// Connect clients (the ID token's sub), never the username.
	Subject string `json:"subject,omitempty"`
}
