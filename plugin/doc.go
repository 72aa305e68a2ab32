// Package zegocallback is a Traefik middleware plugin that verifies ZEGOCLOUD server
// callbacks at the edge: it checks each callback's signature, the freshness of its
// timestamp and that the callback was not delivered before, rejects the ones that fail,
// and forwards the genuine ones with their top-level fields as request headers.
//
// Traefik runs the package in its Yaegi interpreter, so it uses the standard library
// only and keeps the request path to a few compiled calls (see the README's design notes).
package zegocallback
