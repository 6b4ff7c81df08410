// Package messengertest is the test kit of the core.Messenger contract:
// the conformance suite every adapter runs against its own fake network
// (the way database/sql's drivers are exercised through the real
// database/sql path), and the pieces an adapter's own tests need.
//
//	func TestConformance(t *testing.T) {
//		messengertest.Run(t, messengertest.Harness{
//			New: func(t *testing.T) (core.Messenger, messengertest.Network) {
//				fake := newFake(t) // this test's own network
//				inst, _ := messengertest.Instance(t, Kind, core.RawConfig{"api_url": fake.URL(), "token": fake.Token()})
//				m, err := New(inst)
//				if err != nil {
//					t.Fatal(err)
//				}
//				return m, network{fake} // UserSays, Delivered, and what else the fake can do
//			},
//		})
//	}
//
// examples/mychat/mychat_test.go is a complete one.
//
// The suite checks the rules of core/messenger.go that hold for every
// network: the lifecycle (Start, Stop, Stop twice, Stop after a failed
// Start, Start again after Stop, Send before Start and after Stop),
// delivery and acknowledgement (no acknowledgement while DeliverFunc
// fails, the same Inbound.ID for every redelivery, or for networks that
// never redeliver, retries in the process and a backfill after a
// restart), the bot's own messages never reaching the core, concurrent
// Send under -race, a cancelled context honoured, a rate limit reported as
// *core.RetryAfterError and a gone chat as core.ErrUnknownChat. A check
// whose network capability the harness does not offer is skipped, and
// says so.
//
// Beside the suite: Core, a DeliverFunc that behaves like the engine
// (dedupe by Inbound.ID, failures on demand); Instance, the core.Instance
// the engine would give a factory; and CheckExample, the one check that
// an adapter's example.yaml decodes to its defaults and is the block
// config.yaml.example shows.
package messengertest
