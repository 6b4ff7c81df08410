// Package engine runs a Switchboard gateway: it builds the adapter
// instances a config names (through the factories registered in core),
// supervises their lifecycles, moves messages between them and Selarti
// through the durable outbox (core/store), receives Selarti's webhooks,
// and serves health, metrics and the admin API on one HTTP listener.
//
// Adapters never import this package: they implement core.Messenger and
// register a factory. The binary (cmd/switchboard) and the end-to-end
// tests build a Gateway with New and run it.
package engine
