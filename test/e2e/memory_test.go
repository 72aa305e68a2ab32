package e2e

import (
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/zegocallback/traefik-zego-callback/internal/conformance"
	"github.com/zegocallback/traefik-zego-callback/test/traefiktest"
)

// slowClients is how many clients each wave of TestSlowClientsHoldLittleMemory opens:
// each declares the largest body the route accepts (1 MiB) and sends one byte of it.
// Memory that followed the declared length would hold a mebibyte for each.
const slowClients = 150

// TestSlowClientsHoldLittleMemory opens slowClients connections, each sending the
// headers of a POST that declares Content-Length: 1048576 (maxBodyBytes) and one byte
// of body, then nothing; closes them, and opens a second wave, so that memory freed by
// the first is reused (and so touched) by the second. While the second wave waits,
// Traefik's live heap and resident memory must have grown with the bytes received, not
// with the lengths declared: bounds far under one mebibyte a client. Only the memory is
// asserted, with generous bounds; how long a body takes to fill is not.
func TestSlowClientsHoldLittleMemory(t *testing.T) {
	backend := &conformance.Backend{}
	tr := traefiktest.Start(t, []traefiktest.Route{{Name: "zego", Backend: upstream(t, backend), Plugin: conformance.Config()}},
		traefiktest.Options{Debug: true})
	addr := strings.TrimPrefix(tr.URL, "http://")

	// Warm up: Traefik's first requests through the plugin grow its heap on their own.
	for i := 0; i < 20; i++ {
		conformance.Remote(tr.URL+"/zego", backend).Do(t, conformance.Request{Body: conformance.Fresh()})
	}
	heapBefore, rssBefore := liveHeap(t, tr), settledRSS(t, tr)

	head := "POST /zego/callback HTTP/1.1\r\nHost: " + addr + "\r\nContent-Type: application/json\r\nContent-Length: 1048576\r\n\r\n{"
	wave := func() []net.Conn {
		conns := make([]net.Conn, 0, slowClients)
		for i := 0; i < slowClients; i++ {
			c, err := net.DialTimeout("tcp", addr, 5*time.Second)
			if err != nil {
				t.Fatalf("client %d: %v", i, err)
			}
			conns = append(conns, c)
			if _, err := c.Write([]byte(head)); err != nil {
				t.Fatalf("client %d: %v", i, err)
			}
		}
		time.Sleep(2 * time.Second) // each is now in the middleware, reading
		return conns
	}
	closeAll := func(conns []net.Conn) {
		for _, c := range conns {
			c.Close()
		}
	}
	closeAll(wave())
	time.Sleep(time.Second)
	second := wave()
	defer closeAll(second)
	heapDuring, rssDuring := liveHeap(t, tr), settledRSS(t, tr)

	heapPerClient := float64(heapDuring-heapBefore) / 1024 / slowClients
	rssPerClient := float64(rssDuring-rssBefore) / slowClients
	t.Logf("%d clients each declaring 1 MiB and sending 1 byte, after a first such wave: live heap %d -> %d MB (%.0f KB a client), RSS %d -> %d MB (%.0f KB a client)",
		slowClients, heapBefore>>20, heapDuring>>20, heapPerClient, rssBefore>>10, rssDuring>>10, rssPerClient)
	// 64 KiB of body buffer and Traefik's own per-connection state; a mebibyte a client
	// is what reading into a buffer of the declared length cost.
	const heapBoundKB, rssBoundKB = 160, 320
	if heapPerClient > heapBoundKB {
		t.Errorf("%.0f KB of live heap per slow client, want at most %d KB: memory follows the declared length", heapPerClient, heapBoundKB)
	}
	if rssPerClient > rssBoundKB {
		t.Errorf("%.0f KB of RSS per slow client, want at most %d KB: memory follows the declared length", rssPerClient, rssBoundKB)
	}
	if n := len(backend.Calls()); n != 20 {
		t.Errorf("the backend got %d requests, want the 20 of the warm-up", n)
	}
}

// settledRSS reads Traefik's resident memory until two readings a second apart differ by
// less than 2 %, and returns the last, in KB.
func settledRSS(t *testing.T, tr *traefiktest.Traefik) int64 {
	t.Helper()
	last, err := readRSS(tr.Pid())
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 10; i++ {
		time.Sleep(time.Second)
		now, err := readRSS(tr.Pid())
		if err != nil {
			t.Fatal(err)
		}
		if d := now - last; d*50 < now && -d*50 < now {
			return now
		}
		last = now
	}
	t.Log(fmt.Sprintf("Traefik's RSS did not settle; using %d KB", last))
	return last
}
