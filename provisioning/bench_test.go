package provisioning_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/camotp/camotp/device"
	"github.com/camotp/camotp/internal/model"
	"github.com/camotp/camotp/internal/testenv"
	"github.com/camotp/camotp/provisioning"
)

// BenchmarkProvisionFleet provisions a fleet of in-process cameras end to
// end: each is a real paho client on the embedded broker with its own state
// directory; the clock runs from the first command to the last verified
// proof. Run: go test -run '^$' -bench ProvisionFleet -benchtime 1x ./provisioning/
func BenchmarkProvisionFleet(b *testing.B) {
	for _, n := range []int{100, 1000} {
		b.Run(fmt.Sprintf("cameras=%d", n), func(b *testing.B) {
			for range b.N {
				b.StopTimer()
				srv := testenv.Server(b, b.TempDir(), nil)
				ctx := context.Background()
				serials := make([]string, n)
				agents := make([]*provisioning.Agent, 0, n)
				b.Cleanup(func() {
					// Disconnect waits for its quiesce period: stop all at once.
					var wg sync.WaitGroup
					for _, a := range agents {
						wg.Go(a.Stop)
					}
					wg.Wait()
				})
				for i := range n {
					sn := fmt.Sprintf("FLEET-%05d", i)
					serials[i] = sn
					st, err := device.InitState(filepath.Join(b.TempDir(), sn), sn, device.Body4)
					if err != nil {
						b.Fatal(err)
					}
					pub := st.Identity().Public()
					if err := srv.Store.AddCamera(ctx, sn, pub.Model, pub.PublicKey); err != nil {
						b.Fatal(err)
					}
					a := provisioning.NewAgent(st, provisioning.LinkConfig{Broker: "tcp://" + srv.MQTTAddr(), Log: testenv.Log(b)})
					a.Start()
					agents = append(agents, a)
				}
				waitConnected(b, srv, n)
				b.StartTimer()
				start := time.Now()
				for _, sn := range serials {
					if _, err := srv.Provisioning.Start(ctx, sn, model.OpProvision, "bench", ""); err != nil {
						b.Fatal(err)
					}
				}
				for {
					cams, err := srv.Store.Cameras(ctx)
					if err != nil {
						b.Fatal(err)
					}
					done := 0
					for _, c := range cams {
						if c.State == model.StateProvisioned {
							done++
						}
					}
					if done == n {
						break
					}
					if time.Since(start) > 5*time.Minute {
						b.Fatalf("only %d of %d provisioned", done, n)
					}
					time.Sleep(20 * time.Millisecond)
				}
				elapsed := time.Since(start)
				b.StopTimer()
				b.ReportMetric(elapsed.Seconds(), "s/fleet")
				b.ReportMetric(float64(n)/elapsed.Seconds(), "cameras/s")
				srv.Close()
			}
		})
	}
}
