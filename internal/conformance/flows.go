package conformance

import (
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/zegocallback/traefik-zego-callback/internal/zegotest"
)

// FlowRows are the behaviours a table row cannot state: copies sent while another is
// still at the backend, or at once, or across a reload. Each exercises the replay store.
func FlowRows() []Row {
	held := []Mw{{Backend: heldBackend}}
	return []Row{
		{Desc: "a copy while the first is at the backend gets 409; once it is delivered, copies are acknowledged",
			Store: true, Mws: held, Run: runInFlight},
		{Desc: "another body under a triple in flight gets 409 signature_reused, and never a 2xx",
			Store: true, Mws: held, Run: runReusedInFlight},
		{Desc: "50 concurrent copies over two routers of one middleware: exactly one reaches the backend",
			Store: true, Twins: true, Run: runConcurrent},
		{Desc: "after the genuine body's delivery failed, a forged body under its triple is refused and the genuine retry gets through",
			Store: true, Mws: []Mw{{Backend: func() *Backend { return &Backend{Plan: []Answer{{Status: http.StatusBadGateway}}} }}},
			Run: runForgedAfterFailure},
		{Desc: "a claim lapses after inFlightTimeout: the next copy is forwarded, and the first owner's failure does not undo it",
			Store: true, Mws: []Mw{{Config: map[string]any{"inFlightTimeout": "1s"}, Backend: func() *Backend {
				return &Backend{Hold: make(chan struct{}), Entered: make(chan struct{}, 4),
					Plan: []Answer{{Status: http.StatusInternalServerError, Hold: true}, {Status: http.StatusOK}}}
			}}},
			Run: runLapse},
		{Desc: "appSecretsFile rotates: a new secret for app A passes, then the old one is refused",
			Run: runAppSecretsFile},
		{Desc: "appSecrets beside secrets, secretsFile and appSecretsFile: each app's own, and every app's",
			Run: runAppSecretCombos},
		{Desc: "the replay store outlives New: another router, a reload, a reload that changes the middleware's settings; another middleware knows it in memory, not under another Redis keyPrefix",
			Store: true, Twins: true, Mws: []Mw{{}, {}}, Run: runReload},
	}
}

// SharedRows need a store that replicas share: two Traefik processes, one Redis.
func SharedRows() []Row {
	return []Row{{Desc: "replicas: delivered through one, replayed to the other; 50 copies over both reach the backend once",
		Shared: true, Run: runReplicas}}
}

// heldBackend holds every request until its Hold channel is closed.
func heldBackend() *Backend {
	return &Backend{Hold: make(chan struct{}), Entered: make(chan struct{}, 4)}
}

// Fresh is ZEGO's mix_start example signed now with zegotest.Secret, a nonce of its own.
func Fresh() []byte {
	return zegotest.New("mix_start.json", zegotest.Secret, zegotest.Seconds(time.Now())).Body
}

// holdFirst sends body and waits until the backend holds it; release lets it go and
// checks the answer the first copy got.
func holdFirst(t *testing.T, srv *Server, body []byte) (release func(want int)) {
	t.Helper()
	first := make(chan Response, 1)
	go func() { first <- srv.Do(t, Request{Body: body}) }()
	srv.Backend.WaitEntered(t, "the first copy")
	return func(want int) {
		close(srv.Backend.Hold)
		if r := <-first; r.Status != want {
			t.Errorf("first copy: %d, want %d", r.Status, want)
		}
	}
}

func runInFlight(t *testing.T, e *Env) {
	srv := e.Srv[0]
	body := Fresh()
	release := holdFirst(t, srv, body)
	CheckStep(t, "copy while in flight", srv, Step{Req: Request{Body: body}, Status: http.StatusConflict, Code: "duplicate"})
	release(http.StatusOK)
	CheckStep(t, "copy after delivery", srv, Acked(body))
	if n := len(srv.Backend.Calls()); n != 1 {
		t.Errorf("the backend got %d copies, want 1", n)
	}
}

func runReusedInFlight(t *testing.T, e *Env) {
	srv := e.Srv[0]
	body := Fresh()
	other := bodyWithField(body, "channel_id", "forged-room")
	release := holdFirst(t, srv, body)
	CheckStep(t, "another body while in flight", srv, Step{Req: Request{Body: other}, Status: http.StatusConflict, Code: "signature_reused"})
	release(http.StatusOK)
	CheckStep(t, "another body once delivered", srv, Step{Req: Request{Body: other}, Status: http.StatusConflict, Code: "signature_reused"})
	CheckStep(t, "the same body once delivered", srv, Acked(body))
}

func runConcurrent(t *testing.T, e *Env) {
	statuses := sendAtOnce(t, []*Server{e.Srv[0], e.Twin[0]}, Fresh(), 50)
	checkOneDelivered(t, e.Srv[0].Backend, 0, statuses, http.StatusOK, http.StatusConflict)
}

// sendAtOnce sends n copies of body at once, in turn to each of servers, and counts the
// statuses they got.
func sendAtOnce(t *testing.T, servers []*Server, body []byte, n int) map[int]int {
	var wg sync.WaitGroup
	statuses := make(chan int, n)
	start := make(chan struct{})
	for i := 0; i < n; i++ {
		srv := servers[i%len(servers)]
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			resp := srv.Do(t, Request{Body: body})
			if (resp.Code != "" || resp.Duplicate()) && len(resp.Left) != 0 {
				t.Errorf("a copy answered %d kept %v once the middleware returned", resp.Status, resp.Left)
			}
			statuses <- resp.Status
		}()
	}
	close(start)
	wg.Wait()
	close(statuses)
	counts := map[int]int{}
	for s := range statuses {
		counts[s]++
	}
	return counts
}

// checkOneDelivered checks that the backend got one copy more than before, and that the
// copies got only the statuses allowed.
func checkOneDelivered(t *testing.T, b *Backend, before int, statuses map[int]int, allowed ...int) {
	t.Helper()
	n := 0
	for s, c := range statuses {
		n += c
		if !slices.Contains(allowed, s) {
			t.Errorf("%d copies got %d, want one of %v", c, s, allowed)
		}
	}
	if got := len(b.Calls()) - before; got != 1 {
		t.Errorf("the backend got %d of %d copies sent at once, want exactly 1", got, n)
	}
}

// runReload delivers a callback, then replays it through a second router of the
// middleware, after a reload that leaves it as it was, and after one that changes its
// settings (each applied, as Traefik applies a reload, to every router); the callback
// stays a replay, which gets the backend's remembered answer whatever duplicates says.
// Another middleware knows it when both keep their store in memory (one per process);
// one with a Redis keyPrefix of its own does not.
func runReload(t *testing.T, e *Env) {
	body := Fresh()
	replay := Acked(body)
	CheckStep(t, "delivered", e.Srv[0], Delivered(body))
	CheckStep(t, "replayed through another router", e.Twin[0], replay)
	e.Reload(t, 0, nil)
	CheckStep(t, "replayed after a reload", e.Srv[0], replay)
	e.Reload(t, 0, map[string]any{"duplicates": "reject", "fields": []string{"event"}})
	CheckStep(t, "replayed after the middleware's settings changed", e.Srv[0], replay)
	CheckStep(t, "replayed through the other router after the change", e.Twin[0], replay)
	CheckStep(t, "a new callback after the change", e.Srv[0], Step{Req: Request{Body: Fresh()}, Status: http.StatusOK,
		Forwarded: true, Got: map[string][]string{"X-Zego-Event": {"mix_start"}}, NotGot: []string{"X-Zego-Appid"}})
	if e.Memory {
		CheckStep(t, "another middleware, both in memory: a replay", e.Srv[1], replay)
	} else {
		CheckStep(t, "another middleware, another Redis keyPrefix: its own store", e.Srv[1], Delivered(body))
	}
}

// runReplicas sends a callback through one replica and its replay through the other,
// then 50 copies of another over both at once.
func runReplicas(t *testing.T, e *Env) {
	body := Fresh()
	CheckStep(t, "replica A", e.Srv[0], Delivered(body))
	CheckStep(t, "replica B", e.Replica[0], Acked(body))
	before := len(e.Srv[0].Backend.Calls())
	statuses := sendAtOnce(t, []*Server{e.Srv[0], e.Replica[0]}, Fresh(), 50)
	checkOneDelivered(t, e.Srv[0].Backend, before, statuses, http.StatusOK, http.StatusConflict)
}

func runForgedAfterFailure(t *testing.T, e *Env) {
	srv := e.Srv[0]
	genuine := Fresh()
	forged := bodyWithField(genuine, "channel_id", "forged-room")
	CheckStep(t, "the genuine callback, the backend fails", srv, Step{Req: Request{Body: genuine}, Status: http.StatusBadGateway, Forwarded: true})
	CheckStep(t, "a forged body under its triple", srv, Step{Req: Request{Body: forged}, Status: http.StatusConflict, Code: "signature_reused"})
	CheckStep(t, "ZEGO's retry of the genuine one", srv, Delivered(genuine))
	CheckStep(t, "the forged body again", srv, Step{Req: Request{Body: forged}, Status: http.StatusConflict, Code: "signature_reused"})
}

// runLapse holds the first copy at the backend past inFlightTimeout (1s): a copy sent
// after it is claimed anew and delivered; the first then fails (500), which must not
// forget the delivery; later copies are acknowledged.
func runLapse(t *testing.T, e *Env) {
	srv := e.Srv[0]
	body := Fresh()
	release := holdFirst(t, srv, body)
	claimedAt := time.Now()
	CheckStep(t, "copy before the claim lapses", srv, Step{Req: Request{Body: body}, Status: http.StatusConflict, Code: "duplicate"})
	time.Sleep(time.Until(claimedAt.Add(1500 * time.Millisecond)))
	CheckStep(t, "copy after the claim lapsed", srv, Delivered(body))
	release(http.StatusInternalServerError)
	CheckStep(t, "copy after both settled", srv, Acked(body))
	if n := len(srv.Backend.Calls()); n != 2 {
		t.Errorf("the backend got %d copies, want 2", n)
	}
}
