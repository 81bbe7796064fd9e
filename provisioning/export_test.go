package provisioning

import "net"

// SetDial makes a open its network connections with dial (tests cut them).
func SetDial(a *Agent, dial func(addr string) (net.Conn, error)) { a.dial = dial }
