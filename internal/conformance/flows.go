package conformance

import (
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/zegocallback/traefik-zego-callback/internal/zegotest"
)

// Flow is a behaviour that a table row cannot state: copies sent while another is still
// at the backend, or at once. Like a Case it is written once and run wherever a Server
// can be had: in front of the middleware natively, through Yaegi, or behind a real
// Traefik (with Remote).
type Flow struct {
	Desc    string
	Config  map[string]any  // over the base configuration
	Backend func() *Backend // the backend it needs; nil for a plain one
	Run     func(t *testing.T, srv *Server)
}

// NewBackend returns the flow's backend.
func (f Flow) NewBackend() *Backend {
	if f.Backend == nil {
		return &Backend{}
	}
	return f.Backend()
}

// Flows returns the flows that exercise the replay store: each runs with every store.
func Flows() []Flow {
	return []Flow{
		{Desc: "a copy while the first is at the backend gets 409; once it is delivered, copies are acknowledged",
			Backend: heldBackend, Run: runInFlight},
		{Desc: "another body under a triple in flight gets 409 signature_reused, and never a 2xx",
			Backend: heldBackend, Run: runReusedInFlight},
		{Desc: "50 concurrent copies: exactly one reaches the backend", Run: runConcurrent},
		{Desc: "after the genuine body's delivery failed, a forged body under its triple is refused and the genuine retry gets through",
			Backend: func() *Backend { return &Backend{Plan: []Answer{{Status: http.StatusBadGateway}}} }, Run: runForgedAfterFailure},
		{Desc: "a claim lapses after inFlightTimeout: the next copy is forwarded, and the first owner's failure does not undo it",
			Config: map[string]any{"inFlightTimeout": "1s"},
			Backend: func() *Backend {
				return &Backend{Hold: make(chan struct{}), Entered: make(chan struct{}, 4),
					Plan: []Answer{{Status: http.StatusInternalServerError, Hold: true}, {Status: http.StatusOK}}}
			},
			Run: runLapse},
	}
}

// heldBackend holds every request until its Hold channel is closed.
func heldBackend() *Backend {
	return &Backend{Hold: make(chan struct{}), Entered: make(chan struct{}, 4)}
}

// freshMix is a mix_start signed now.
func freshMix() []byte {
	return zegotest.New("mix_start.json", zegotest.Secret, zegotest.Seconds(time.Now())).Body
}

// sendAsync sends body in the background; its answer comes on the channel.
func sendAsync(t *testing.T, srv *Server, body []byte) chan Response {
	out := make(chan Response, 1)
	go func() { out <- srv.Do(t, Request{Body: body}) }()
	return out
}

func waitEntered(t *testing.T, b *Backend) {
	t.Helper()
	select {
	case <-b.Entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the first copy never reached the backend")
	}
}

func runInFlight(t *testing.T, srv *Server) {
	body := freshMix()
	first := sendAsync(t, srv, body)
	waitEntered(t, srv.Backend)
	CheckStep(t, "copy while in flight", srv, Step{Req: Request{Body: body}, Status: http.StatusConflict, Code: "duplicate"})
	close(srv.Backend.Hold)
	if r := <-first; r.Status != http.StatusOK {
		t.Errorf("first copy: %d, want 200", r.Status)
	}
	CheckStep(t, "copy after delivery", srv, Step{Req: Request{Body: body}, Status: http.StatusOK, RespHeader: map[string]string{"X-Zego-Duplicate": "true"}})
	if n := len(srv.Backend.Calls()); n != 1 {
		t.Errorf("the backend got %d copies, want 1", n)
	}
}

func runReusedInFlight(t *testing.T, srv *Server) {
	body := freshMix()
	other := bodyWithField(body, "channel_id", "forged-room")
	first := sendAsync(t, srv, body)
	waitEntered(t, srv.Backend)
	CheckStep(t, "another body while in flight", srv, Step{Req: Request{Body: other}, Status: http.StatusConflict, Code: "signature_reused"})
	close(srv.Backend.Hold)
	if r := <-first; r.Status != http.StatusOK {
		t.Errorf("first copy: %d, want 200", r.Status)
	}
	CheckStep(t, "another body once delivered", srv, Step{Req: Request{Body: other}, Status: http.StatusConflict, Code: "signature_reused"})
	CheckStep(t, "the same body once delivered", srv, Step{Req: Request{Body: body}, Status: http.StatusOK, RespHeader: map[string]string{"X-Zego-Duplicate": "true"}})
}

func runConcurrent(t *testing.T, srv *Server) {
	body := freshMix()
	const copies = 50
	var wg sync.WaitGroup
	statuses := make(chan int, copies)
	start := make(chan struct{})
	for i := 0; i < copies; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			statuses <- srv.Do(t, Request{Body: body}).Status
		}()
	}
	close(start)
	wg.Wait()
	close(statuses)
	for s := range statuses {
		if s != http.StatusOK && s != http.StatusConflict {
			t.Errorf("a copy got %d, want 200 or 409", s)
		}
	}
	if n := len(srv.Backend.Calls()); n != 1 {
		t.Errorf("the backend got %d of %d concurrent copies, want exactly 1", n, copies)
	}
}

func runForgedAfterFailure(t *testing.T, srv *Server) {
	genuine := freshMix()
	forged := bodyWithField(genuine, "channel_id", "forged-room")
	CheckStep(t, "the genuine callback, the backend fails", srv, Step{Req: Request{Body: genuine}, Status: http.StatusBadGateway, Forwarded: true})
	CheckStep(t, "a forged body under its triple", srv, Step{Req: Request{Body: forged}, Status: http.StatusConflict, Code: "signature_reused"})
	CheckStep(t, "ZEGO's retry of the genuine one", srv, Step{Req: Request{Body: genuine}, Status: http.StatusOK, Forwarded: true})
	CheckStep(t, "the forged body again", srv, Step{Req: Request{Body: forged}, Status: http.StatusConflict, Code: "signature_reused"})
}

// runLapse holds the first copy at the backend past inFlightTimeout (1s): a copy sent
// after it is claimed anew and delivered; the first then fails (500), which must not
// forget the delivery; later copies are acknowledged.
func runLapse(t *testing.T, srv *Server) {
	body := freshMix()
	first := sendAsync(t, srv, body)
	waitEntered(t, srv.Backend)
	claimedAt := time.Now()
	CheckStep(t, "copy before the claim lapses", srv, Step{Req: Request{Body: body}, Status: http.StatusConflict, Code: "duplicate"})
	time.Sleep(time.Until(claimedAt.Add(1500 * time.Millisecond)))
	CheckStep(t, "copy after the claim lapsed", srv, Step{Req: Request{Body: body}, Status: http.StatusOK, Forwarded: true})
	close(srv.Backend.Hold)
	if r := <-first; r.Status != http.StatusInternalServerError {
		t.Errorf("first copy: %d, want the backend's 500", r.Status)
	}
	CheckStep(t, "copy after both settled", srv, Step{Req: Request{Body: body}, Status: http.StatusOK, RespHeader: map[string]string{"X-Zego-Duplicate": "true"}})
	if n := len(srv.Backend.Calls()); n != 2 {
		t.Errorf("the backend got %d copies, want 2", n)
	}
}

// RunFlows runs every flow against the middleware that build makes, with store's
// settings.
func RunFlows(t *testing.T, build Builder, store StoreConfig) {
	for _, f := range Flows() {
		f := f
		t.Run(f.Desc, func(t *testing.T) {
			name := UniqueName("flow")
			srv := StartWith(t, build, merge(merge(BaseConfig(), f.Config), store.of(name)), name, f.NewBackend())
			f.Run(t, srv)
		})
	}
}
