package agentcard

import (
	"crypto/x509"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/proto/spiffe/workload"
	"google.golang.org/grpc"
	"google.golang.org/grpc/status"
)

// fakeWorkloadAPI serves go-spiffe's Workload API protocol in-process over a
// unix socket, handing out one fixed SVID and bundle. The real SPIRE agent
// is exercised by the integration test; this keeps the unit tests fast.
type fakeWorkloadAPI struct {
	workload.UnimplementedSpiffeWorkloadAPIServer
	svid    svid
	bundle  []*x509.Certificate
	td      string
	addr    string
	keyDER  []byte
	noSVIDs bool
	// silent makes FetchX509SVID never answer, like an agent that has not
	// attested the workload yet; the time left before the client's deadline
	// (sent in the grpc-timeout header) is then sent on remaining.
	silent    bool
	remaining chan time.Duration
}

func startFakeWorkloadAPI(t *testing.T, s svid, ca *testCA) *fakeWorkloadAPI {
	t.Helper()
	keyDER, err := x509.MarshalPKCS8PrivateKey(s.key)
	if err != nil {
		t.Fatal(err)
	}
	// Unix socket paths are limited to about 100 bytes, which t.TempDir
	// can exceed; a short directory of our own keeps well under it.
	dir, err := os.MkdirTemp("", "wlapi")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	path := filepath.Join(dir, "agent.sock")
	lis, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeWorkloadAPI{svid: s, bundle: []*x509.Certificate{ca.cert}, td: ca.td.IDString(), addr: "unix://" + path, keyDER: keyDER}
	srv := grpc.NewServer()
	workload.RegisterSpiffeWorkloadAPIServer(srv, f)
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)
	return f
}

func concatDER(certs []*x509.Certificate) []byte {
	var out []byte
	for _, c := range certs {
		out = append(out, c.Raw...)
	}
	return out
}

func (f *fakeWorkloadAPI) FetchX509SVID(_ *workload.X509SVIDRequest, stream grpc.ServerStreamingServer[workload.X509SVIDResponse]) error {
	if f.silent {
		left := time.Duration(-1) // no deadline
		if d, ok := stream.Context().Deadline(); ok {
			left = time.Until(d)
		}
		select {
		case f.remaining <- left:
		default:
		}
		<-stream.Context().Done()
		// Ending with the context's status, not OK: the server's copy of
		// the deadline may fire first, and OK reads as EOF at the client.
		return status.FromContextError(stream.Context().Err()).Err()
	}
	resp := &workload.X509SVIDResponse{}
	if !f.noSVIDs {
		id, _ := x509svidID(f.svid.leaf())
		resp.Svids = []*workload.X509SVID{{
			SpiffeId:    id,
			X509Svid:    concatDER(f.svid.chain),
			X509SvidKey: f.keyDER,
			Bundle:      concatDER(f.bundle),
		}}
	}
	if err := stream.Send(resp); err != nil {
		return err
	}
	<-stream.Context().Done()
	return nil
}

func (f *fakeWorkloadAPI) FetchX509Bundles(_ *workload.X509BundlesRequest, stream grpc.ServerStreamingServer[workload.X509BundlesResponse]) error {
	if err := stream.Send(&workload.X509BundlesResponse{Bundles: map[string][]byte{f.td: concatDER(f.bundle)}}); err != nil {
		return err
	}
	<-stream.Context().Done()
	return nil
}

func x509svidID(c *x509.Certificate) (string, error) {
	if len(c.URIs) != 1 {
		return "", nil
	}
	return c.URIs[0].String(), nil
}
