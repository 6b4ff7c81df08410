package core

// Metrics is how an adapter adds to the gateway's Prometheus metrics
// without linking them. The core gives every instance one
// (Instance.Metrics), already labelled with the instance's name. Its
// methods are cheap and safe for concurrent use.
type Metrics interface {
	// Rejected counts one request, connection or message the adapter
	// refused: a webhook with a wrong secret ("wrong_secret"), a client
	// over a limit ("ip_rate_limit"). reason becomes a label value, so it
	// must come from a small fixed set, never from the request. The core
	// exports it as switchboard_adapter_rejects_total{instance,reason}.
	Rejected(reason string)
}

// NopMetrics counts nothing: what an adapter uses when Instance.Metrics
// is nil (a hand-built Instance).
type NopMetrics struct{}

// Rejected does nothing.
func (NopMetrics) Rejected(string) {}

// MetricsOf returns inst.Metrics, or NopMetrics when it is nil.
func MetricsOf(inst Instance) Metrics {
	if inst.Metrics == nil {
		return NopMetrics{}
	}
	return inst.Metrics
}
