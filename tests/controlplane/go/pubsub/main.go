// Command pubsub-fake serves cloud.google.com/go/pubsub/v2/pstest, the in-memory Pub/Sub fake of
// Google's Go client library, on a loopback address, so that the Python client can reach it through
// PUBSUB_EMULATOR_HOST. It prints "listening on HOST:PORT" and serves until SIGTERM or SIGINT.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"cloud.google.com/go/pubsub/v2/pstest"
)

func main() {
	port := flag.Int("port", 0, "loopback port; 0 picks a free one")
	flag.Parse()
	srv := pstest.NewServerWithAddress(fmt.Sprintf("127.0.0.1:%d", *port))
	fmt.Printf("listening on %s\n", srv.Addr)
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	<-stop
	_ = srv.Close()
}
