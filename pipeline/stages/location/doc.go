// Package location is the location stage: a request whose Request-URI is
// an address-of-record of the cluster's domains goes to a registered
// contact of it, decided before the dispatcher (route) runs. Bindings come
// from a lock-free per-core cache, filled on demand by a per-worker helper
// that asks the binding store (park/resume, as auth does) and kept fresh by
// the store's pushed invalidations. See README.md.
//
// The stateless edge sends to one contact: the highest q, then the most
// recently registered. Forking to several belongs to the stateful tier.
//
// It also delivers requests other nodes route to a NATed contact through
// this node: a Route naming this node whose user part is a flow token of
// the cluster key (sipcore.Key.AppendFlowToken) goes to the address the
// token names.
//
// location imports pipeline, pipeline/node, sipcore and
// registrar/bindings; it must not import another stage, appliance or a port.
package location
